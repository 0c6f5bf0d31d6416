#include "services/networkd/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "services/networkd/protocol.h"

namespace networkd {

using json = nlohmann::json;

Wanted wanted(const Config& c, const Leases& l) {
  Wanted w;
  for (const auto& [name, link] : c.links) {
    if (link.dhcp) {
      const auto it = l.find(name);
      if (it == l.end()) continue;
      w.addrs.push_back(WantAddr{name, it->second.ip, it->second.prefix, "dhcp"});
      if (it->second.router != 0) w.routes.push_back(WantRoute{name, Cidr{}, it->second.router, "dhcp"});
    } else if (link.address) {
      w.addrs.push_back(WantAddr{name, link.address->net, link.address->prefix, "static"});
      if (link.gateway) w.routes.push_back(WantRoute{name, Cidr{}, *link.gateway, "static"});
    }
  }
  for (const auto& r : c.routes) w.routes.push_back(WantRoute{r.iface, r.dest, r.gateway, "static"});
  return w;
}

std::vector<DnsEntry> dns_servers(const Config& c, const Leases& l) {
  std::vector<DnsEntry> out;
  const auto add = [&](uint32_t s, const char* src) {
    for (const auto& e : out)
      if (e.server == s) return;
    out.push_back(DnsEntry{s, src});
  };
  for (uint32_t s : c.dns) add(s, "static");
  if (c.dns.empty() || c.dns_merge) {
    for (const auto& [name, lease] : l) {
      const auto it = c.links.find(name);
      if (it == c.links.end() || !it->second.dhcp) continue;
      for (uint32_t s : lease.dns) add(s, "dhcp");
    }
  }
  return out;
}

std::string resolv_conf_text(const std::vector<DnsEntry>& servers) {
  std::string t =
      "# Written by networkd; changes here are overwritten. Static servers replace DHCP ones\n"
      "# unless merge was asked for (netctl dns --merge).\n";
  for (const auto& e : servers) t += "nameserver " + format_ipv4(e.server) + "  # " + e.source + "\n";
  return t;
}

namespace {

json ip(uint32_t v) { return format_ipv4(v); }

bool get_ip(const json& j, const char* key, uint32_t* out) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return false;
  const auto v = parse_ipv4(it->get_ref<const std::string&>());
  if (!v) return false;
  *out = *v;
  return true;
}

bool get_cidr_host(const json& j, const char* key, Cidr* out) {
  // Static addresses keep their host bits: "192.168.1.100/24".
  const auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return false;
  const std::string& s = it->get_ref<const std::string&>();
  const size_t slash = s.find('/');
  if (slash == std::string::npos) return false;
  const auto a = parse_ipv4(std::string_view(s).substr(0, slash));
  Cidr tmp;
  if (!a || parse_cidr("0.0.0.0" + s.substr(slash), &tmp) != CidrError::kNone) return false;
  *out = Cidr{*a, tmp.prefix};
  return true;
}

}  // namespace

json to_json(const Config& c) {
  json links = json::object();
  for (const auto& [name, l] : c.links) {
    json o = {{"dhcp", l.dhcp}};
    if (l.up) o["up"] = *l.up;
    if (l.address) o["address"] = format_ipv4(l.address->net) + "/" + std::to_string(l.address->prefix);
    if (l.gateway) o["gateway"] = format_ipv4(*l.gateway);
    links[name] = o;
  }
  json routes = json::array();
  for (const auto& r : c.routes) {
    json o = {{"dest", format_cidr(r.dest)}, {"iface", r.iface}};
    if (r.gateway != 0) o["gateway"] = format_ipv4(r.gateway);
    routes.push_back(o);
  }
  json dns = json::array();
  for (uint32_t s : c.dns) dns.push_back(ip(s));
  return {{"links", links}, {"routes", routes}, {"dns", dns}, {"dns_merge", c.dns_merge}};
}

json to_json(const Leases& ls) {
  json out = json::object();
  for (const auto& [name, l] : ls) {
    json dns = json::array();
    for (uint32_t s : l.dns) dns.push_back(ip(s));
    out[name] = {{"address", format_ipv4(l.ip) + "/" + std::to_string(l.prefix)},
                 {"router", ip(l.router)},
                 {"server", ip(l.server)},
                 {"dns", dns},
                 {"obtained", l.obtained_s},
                 {"expires", l.expires_s}};
  }
  return out;
}

bool from_json(const json& j, Config* c, std::string* why) {
  *c = Config{};
  if (!j.is_object()) return (*why = "config is not an object"), false;
  const auto links = j.find("links");
  if (links != j.end() && links->is_object()) {
    for (auto it = links->begin(); it != links->end(); ++it) {
      if (!valid_iface_name(it.key()) || !it->is_object()) return (*why = "bad link entry"), false;
      LinkConfig l;
      const json& o = *it;
      if (o.contains("up") && o["up"].is_boolean()) l.up = o["up"].get<bool>();
      l.dhcp = o.contains("dhcp") && o["dhcp"].is_boolean() && o["dhcp"].get<bool>();
      Cidr a;
      if (o.contains("address")) {
        if (!get_cidr_host(o, "address", &a)) return (*why = "bad address of " + it.key()), false;
        l.address = a;
      }
      uint32_t gw = 0;
      if (o.contains("gateway")) {
        if (!get_ip(o, "gateway", &gw)) return (*why = "bad gateway of " + it.key()), false;
        l.gateway = gw;
      }
      c->links[it.key()] = l;
    }
  }
  const auto routes = j.find("routes");
  if (routes != j.end() && routes->is_array()) {
    for (const auto& o : *routes) {
      RouteConfig r;
      if (!o.is_object() || !o.contains("dest") || !o["dest"].is_string() ||
          parse_cidr(o["dest"].get<std::string>(), &r.dest) != CidrError::kNone || !o.contains("iface") ||
          !o["iface"].is_string() || !valid_iface_name(o["iface"].get<std::string>()))
        return (*why = "bad route"), false;
      r.iface = o["iface"].get<std::string>();
      if (o.contains("gateway") && !get_ip(o, "gateway", &r.gateway)) return (*why = "bad route gateway"), false;
      c->routes.push_back(r);
    }
  }
  const auto dns = j.find("dns");
  if (dns != j.end() && dns->is_array()) {
    for (const auto& s : *dns) {
      const auto v = s.is_string() ? parse_ipv4(s.get<std::string>()) : std::nullopt;
      if (!v) return (*why = "bad dns server"), false;
      c->dns.push_back(*v);
    }
  }
  c->dns_merge = j.contains("dns_merge") && j["dns_merge"].is_boolean() && j["dns_merge"].get<bool>();
  return true;
}

bool from_json(const json& j, Leases* ls, std::string* why) {
  ls->clear();
  if (!j.is_object()) return true;
  for (auto it = j.begin(); it != j.end(); ++it) {
    Lease l;
    Cidr a;
    const json& o = *it;
    if (!valid_iface_name(it.key()) || !o.is_object() || !get_cidr_host(o, "address", &a))
      return (*why = "bad lease"), false;
    l.ip = a.net;
    l.prefix = a.prefix;
    get_ip(o, "router", &l.router);
    get_ip(o, "server", &l.server);
    if (o.contains("dns") && o["dns"].is_array())
      for (const auto& s : o["dns"]) {
        const auto v = s.is_string() ? parse_ipv4(s.get<std::string>()) : std::nullopt;
        if (v) l.dns.push_back(*v);
      }
    if (o.contains("obtained") && o["obtained"].is_number_integer()) l.obtained_s = o["obtained"].get<int64_t>();
    if (o.contains("expires") && o["expires"].is_number_integer()) l.expires_s = o["expires"].get<int64_t>();
    (*ls)[it.key()] = l;
  }
  return true;
}

int write_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = -errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return e;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int e = -errno;
    ::unlink(tmp.c_str());
    return e;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = -errno;
    ::unlink(tmp.c_str());
    return e;
  }
  return 0;
}

}  // namespace networkd
