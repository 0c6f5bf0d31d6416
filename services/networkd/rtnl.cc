#include "services/networkd/rtnl.h"

#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>

#include <cerrno>
#include <memory>

namespace networkd {

namespace {

// libnl's codes to errnos (libnl folds the kernel's errno into these).
int to_errno(int nle) {
  switch (nle < 0 ? -nle : nle) {
    case NLE_PERM:
    case NLE_NOACCESS: return -EPERM;
    case NLE_EXIST: return -EEXIST;
    case NLE_OBJ_NOTFOUND:
    case NLE_NOADDR: return -ENOENT;
    case NLE_NODEV: return -ENODEV;
    case NLE_NOMEM: return -ENOMEM;
    case NLE_BUSY: return -EBUSY;
    case NLE_AGAIN:
    case NLE_DUMP_INTR: return -EAGAIN;
    case NLE_RANGE: return -ERANGE;
    case NLE_OPNOTSUPP:
    case NLE_AF_NOSUPPORT: return -EOPNOTSUPP;
    case NLE_INVAL: return -EINVAL;
    default: return -EIO;
  }
}

struct CacheFree {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
struct AddrFree {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
using NlAddr = std::unique_ptr<nl_addr, AddrFree>;

NlAddr build4(uint32_t ip, uint8_t prefix) {
  const uint32_t be = htonl(ip);
  NlAddr a(nl_addr_build(AF_INET, &be, 4));
  if (a) nl_addr_set_prefixlen(a.get(), prefix);
  return a;
}

uint32_t read4(nl_addr* a) {
  if (a == nullptr || nl_addr_get_family(a) != AF_INET || nl_addr_get_len(a) != 4) return 0;
  uint32_t be = 0;
  __builtin_memcpy(&be, nl_addr_get_binary_addr(a), 4);
  return ntohl(be);
}

}  // namespace

Rtnl::~Rtnl() {
  if (sk_ != nullptr) nl_socket_free(sk_);
}

int Rtnl::fail(int nle, const char* what) {
  error_ = std::string(what) + ": " + nl_geterror(nle);
  const int e = to_errno(nle);
  if (e == -EPERM) error_ += " (changing the network needs CAP_NET_ADMIN)";
  return e;
}

int Rtnl::open() {
  sk_ = nl_socket_alloc();
  if (sk_ == nullptr) return -ENOMEM;
  const int rc = nl_connect(sk_, NETLINK_ROUTE);
  return rc < 0 ? fail(rc, "netlink connect") : 0;
}

int Rtnl::links(std::vector<KLink>* out) {
  nl_cache* raw = nullptr;
  const int rc = rtnl_link_alloc_cache(sk_, AF_UNSPEC, &raw);
  if (rc < 0) return fail(rc, "link dump");
  std::unique_ptr<nl_cache, CacheFree> cache(raw);
  out->clear();
  for (nl_object* o = nl_cache_get_first(raw); o != nullptr; o = nl_cache_get_next(o)) {
    auto* l = reinterpret_cast<rtnl_link*>(o);
    KLink k;
    k.index = rtnl_link_get_ifindex(l);
    const char* name = rtnl_link_get_name(l);
    k.name = name != nullptr ? name : "";
    const unsigned flags = rtnl_link_get_flags(l);
    k.admin_up = (flags & IFF_UP) != 0;
    k.lower_up = (flags & IFF_LOWER_UP) != 0;
    char buf[32];
    k.operstate = rtnl_link_operstate2str(rtnl_link_get_operstate(l), buf, sizeof buf);
    out->push_back(std::move(k));
  }
  return 0;
}

int Rtnl::addrs(std::vector<KAddr>* out) {
  nl_cache* raw = nullptr;
  const int rc = rtnl_addr_alloc_cache(sk_, &raw);
  if (rc < 0) return fail(rc, "address dump");
  std::unique_ptr<nl_cache, CacheFree> cache(raw);
  out->clear();
  for (nl_object* o = nl_cache_get_first(raw); o != nullptr; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    if (rtnl_addr_get_family(a) != AF_INET) continue;
    out->push_back(KAddr{rtnl_addr_get_ifindex(a), read4(rtnl_addr_get_local(a)),
                         static_cast<uint8_t>(rtnl_addr_get_prefixlen(a))});
  }
  return 0;
}

int Rtnl::routes(std::vector<KRoute>* out) {
  nl_cache* raw = nullptr;
  const int rc = rtnl_route_alloc_cache(sk_, AF_INET, 0, &raw);
  if (rc < 0) return fail(rc, "route dump");
  std::unique_ptr<nl_cache, CacheFree> cache(raw);
  out->clear();
  for (nl_object* o = nl_cache_get_first(raw); o != nullptr; o = nl_cache_get_next(o)) {
    auto* r = reinterpret_cast<rtnl_route*>(o);
    if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_type(r) != RTN_UNICAST) continue;
    KRoute k;
    nl_addr* dst = rtnl_route_get_dst(r);
    k.dst = read4(dst);
    k.prefix = dst != nullptr ? static_cast<uint8_t>(nl_addr_get_prefixlen(dst)) : 0;
    k.protocol = rtnl_route_get_protocol(r);
    k.priority = rtnl_route_get_priority(r);
    if (rtnl_route_get_nnexthops(r) > 0) {
      rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
      k.index = rtnl_route_nh_get_ifindex(nh);
      k.gateway = read4(rtnl_route_nh_get_gateway(nh));
    }
    out->push_back(k);
  }
  return 0;
}

int Rtnl::add_addr(const KAddr& a) {
  rtnl_addr* addr = rtnl_addr_alloc();
  if (addr == nullptr) return -ENOMEM;
  NlAddr local = build4(a.ip, a.prefix);
  rtnl_addr_set_ifindex(addr, a.index);
  rtnl_addr_set_local(addr, local.get());
  rtnl_addr_set_prefixlen(addr, a.prefix);
  if (a.prefix <= 30) {
    NlAddr brd = build4(a.ip | ~(a.prefix == 0 ? 0u : ~0u << (32 - a.prefix)), 32);
    rtnl_addr_set_broadcast(addr, brd.get());
  }
  const int rc = rtnl_addr_add(sk_, addr, NLM_F_EXCL);
  rtnl_addr_put(addr);
  return rc < 0 ? fail(rc, "add address") : 0;
}

int Rtnl::del_addr(const KAddr& a) {
  rtnl_addr* addr = rtnl_addr_alloc();
  if (addr == nullptr) return -ENOMEM;
  NlAddr local = build4(a.ip, a.prefix);
  rtnl_addr_set_ifindex(addr, a.index);
  rtnl_addr_set_local(addr, local.get());
  rtnl_addr_set_prefixlen(addr, a.prefix);
  const int rc = rtnl_addr_delete(sk_, addr, 0);
  rtnl_addr_put(addr);
  return rc < 0 ? fail(rc, "delete address") : 0;
}

namespace {

rtnl_route* build_route(const KRoute& k) {
  rtnl_route* r = rtnl_route_alloc();
  if (r == nullptr) return nullptr;
  rtnl_route_set_family(r, AF_INET);
  rtnl_route_set_table(r, RT_TABLE_MAIN);
  rtnl_route_set_type(r, RTN_UNICAST);
  rtnl_route_set_protocol(r, k.protocol);
  rtnl_route_set_scope(r, k.gateway != 0 ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
  if (k.priority != 0) rtnl_route_set_priority(r, k.priority);
  NlAddr dst = build4(k.dst, k.prefix);
  rtnl_route_set_dst(r, dst.get());
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  rtnl_route_nh_set_ifindex(nh, k.index);
  if (k.gateway != 0) {
    NlAddr gw = build4(k.gateway, 32);
    rtnl_route_nh_set_gateway(nh, gw.get());
  }
  rtnl_route_add_nexthop(r, nh);
  return r;
}

}  // namespace

int Rtnl::add_route(const KRoute& k) {
  rtnl_route* r = build_route(k);
  if (r == nullptr) return -ENOMEM;
  const int rc = rtnl_route_add(sk_, r, NLM_F_EXCL);
  rtnl_route_put(r);
  return rc < 0 ? fail(rc, "add route") : 0;
}

int Rtnl::del_route(const KRoute& k) {
  rtnl_route* r = build_route(k);
  if (r == nullptr) return -ENOMEM;
  const int rc = rtnl_route_delete(sk_, r, 0);
  rtnl_route_put(r);
  return rc < 0 ? fail(rc, "delete route") : 0;
}

int Rtnl::set_up(int index, bool up) {
  rtnl_link* orig = rtnl_link_alloc();
  rtnl_link* change = rtnl_link_alloc();
  if (orig == nullptr || change == nullptr) {
    if (orig) rtnl_link_put(orig);
    if (change) rtnl_link_put(change);
    return -ENOMEM;
  }
  rtnl_link_set_ifindex(orig, index);
  if (up)
    rtnl_link_set_flags(change, IFF_UP);
  else
    rtnl_link_unset_flags(change, IFF_UP);
  const int rc = rtnl_link_change(sk_, orig, change, 0);
  rtnl_link_put(orig);
  rtnl_link_put(change);
  return rc < 0 ? fail(rc, up ? "link up" : "link down") : 0;
}

}  // namespace networkd
