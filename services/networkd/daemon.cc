// networkd: applies the network configuration through rtnetlink, persists it, serves the
// `networkd` channel (protocol.h), runs udhcpc for DHCP links, writes resolv.conf.
//
// Restart safety: the configuration and leases persisted in --state-dir are compared with
// the kernel's dump at start, and only what is missing is added; nothing the kernel
// already holds is removed or re-added. A change computes the kernel objects of the old
// and the new configuration (config.h: wanted()) and touches only their difference.
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/rtnetlink.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "fwsvc.h"
#include "services/events/fwevent.h"
#include "services/networkd/config.h"
#include "services/networkd/protocol.h"
#include "services/networkd/rtnl.h"

using json = nlohmann::json;
using namespace networkd;

namespace {

constexpr const char* kUsage =
    "Usage: networkd --state-dir DIR --resolv-conf PATH [OPTIONS]\n"
    "\n"
    "Serves the `networkd` channel ($FWIPC_RUNTIME_DIR/networkd.sock): static IPv4\n"
    "addresses, DHCP (busybox udhcpc), routes, DNS, link up/down, checkpoint and rollback,\n"
    "applied through rtnetlink (libnl-route-3) in the network namespace it runs in.\n"
    "\n"
    "  --state-dir DIR     where the configuration, leases and a pending checkpoint are\n"
    "                      persisted (DIR/state.json, written atomically); created if missing\n"
    "  --resolv-conf PATH  the resolver file networkd writes (atomically)\n"
    "  --admin-group GROUP a group (name or gid) whose members may change the configuration\n"
    "                      besides root; anyone may query it\n"
    "  --udhcpc PATH       the DHCP client (default: udhcpc in PATH, else busybox udhcpc)\n"
    "  -h, --help          this text\n"
    "\n"
    "At start networkd reads DIR/state.json, dumps the kernel's links, addresses and routes,\n"
    "and adds only what is missing: a restart never removes and re-adds a configured address\n"
    "or route. Changes are validated completely (per field) before anything is applied.\n"
    "After a checkpoint (netctl checkpoint MS), changes not confirmed within MS are undone,\n"
    "in the kernel and in the state file, also across a restart of networkd.\n"
    "\n"
    "Needs CAP_NET_ADMIN to change anything; without it changes fail with a permission error.\n"
    "SIGTERM/SIGINT stop it (the kernel configuration stays); SIGHUP re-applies the state.\n"
    "Exit status: 0 after SIGTERM, 1 on a start-up failure, 2 on a usage error.\n";

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

struct DhcpClient {
  pid_t pid = 0;
  int pidfd = -1;
  int64_t started_ms = 0;
  std::string last_event;  // from the hook
  int restart_timer = 0;
  int64_t restart_at_ms = 0;
  int restarts = 0;
};

struct Daemon {
  std::string state_dir, resolv_conf, udhcpc, self_exe;
  gid_t admin_gid = 0;
  bool has_admin_group = false;
  fwsvc_loop* loop = nullptr;
  fwsvc_service* svc = nullptr;
  Rtnl nl;
  Config cfg;
  Leases leases;
  int lease_timer = 0;
  std::map<std::string, DhcpClient> dhcp;
  int hook_r = -1, hook_w = -1;
  std::string hook_buf;
  uint64_t hook_bad_lines = 0;
  // Checkpoint: the configuration to return to, and when (CLOCK_REALTIME ms).
  std::optional<Config> snapshot;
  int64_t rollback_at_ms = 0;
  int rollback_timer = 0;
  std::string last_apply_error;
  uint64_t events_published = 0, events_dropped = 0;
};

// Publishes system.network.SUFFIX on the event bus (logd records it) without waiting:
// no bus (eventsd not running) or a full channel counts a drop and changes nothing else.
void publish(Daemon& d, const std::string& suffix, const json& body) {
  const std::string topic = "system.network." + suffix;
  const std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  if (fwevent_emit_timeout(topic.c_str(), text.c_str(), 0) == 0)
    ++d.events_published;
  else
    ++d.events_dropped;
}

// ---- persistence

int persist(Daemon& d) {
  json st = {{"version", 1}, {"config", to_json(d.cfg)}, {"leases", to_json(d.leases)}};
  if (d.snapshot) st["checkpoint"] = {{"rollback_at_ms", d.rollback_at_ms}, {"config", to_json(*d.snapshot)}};
  return write_atomic(d.state_dir + "/state.json", st.dump(2) + "\n");
}

int write_resolv(Daemon& d) {
  const std::string text = resolv_conf_text(dns_servers(d.cfg, d.leases));
  std::ifstream in(d.resolv_conf);
  std::stringstream cur;
  cur << in.rdbuf();
  if (in && cur.str() == text) return 0;  // unchanged: not even the file's mtime moves
  return write_atomic(d.resolv_conf, text);
}

// ---- the kernel

int ifindex(const std::vector<KLink>& links, const std::string& name) {
  for (const auto& l : links)
    if (l.name == name) return l.index;
  return 0;
}

// DHCP routes get metric 1024 (systemd-networkd's default), so that a lease's default
// route sits beside a static one (metric 0) instead of colliding with it.
uint32_t route_metric(const WantRoute& r) { return std::string_view(r.source) == "dhcp" ? 1024 : 0; }

uint8_t proto_of(const WantRoute& r) { return std::string_view(r.source) == "dhcp" ? RTPROT_DHCP : RTPROT_STATIC; }

KRoute kroute(const WantRoute& r, int index) {
  KRoute k;
  k.dst = r.dest.net;
  k.prefix = r.dest.prefix;
  k.gateway = r.gateway;
  k.index = index;
  k.protocol = proto_of(r);
  k.priority = route_metric(r);
  return k;
}

bool has_route(const std::vector<KRoute>& ks, const WantRoute& r, int index) {
  for (const auto& k : ks)
    if (k.dst == r.dest.net && k.prefix == r.dest.prefix && k.gateway == r.gateway && k.index == index &&
        k.priority == route_metric(r))
      return true;
  return false;
}

bool has_addr(const std::vector<KAddr>& ks, const WantAddr& a, int index) {
  for (const auto& k : ks)
    if (k.index == index && k.ip == a.ip && k.prefix == a.prefix) return true;
  return false;
}

// Moves the kernel from what `from` implies to what `to` implies, touching only the
// difference (and adding whatever of `to` the kernel lacks). 0 or the first error.
int apply(Daemon& d, const Wanted& from, const Wanted& to, const Config& to_cfg, std::string* err) {
  std::vector<KLink> links;
  std::vector<KAddr> addrs;
  std::vector<KRoute> routes;
  int rc = d.nl.links(&links);
  if (rc == 0) rc = d.nl.addrs(&addrs);
  if (rc == 0) rc = d.nl.routes(&routes);
  if (rc < 0) return (*err = d.nl.error()), rc;
  for (const auto& r : from.routes) {
    if (std::find(to.routes.begin(), to.routes.end(), r) != to.routes.end()) continue;
    const int idx = ifindex(links, r.iface);
    if (idx == 0 || !has_route(routes, r, idx)) continue;
    rc = d.nl.del_route(kroute(r, idx));
    if (rc < 0 && rc != -ENOENT) return (*err = "route " + format_cidr(r.dest) + ": " + d.nl.error()), rc;
  }
  for (const auto& a : from.addrs) {
    if (std::find(to.addrs.begin(), to.addrs.end(), a) != to.addrs.end()) continue;
    const int idx = ifindex(links, a.iface);
    if (idx == 0 || !has_addr(addrs, a, idx)) continue;
    rc = d.nl.del_addr(KAddr{idx, a.ip, a.prefix});
    if (rc < 0 && rc != -ENOENT && rc != -EADDRNOTAVAIL)
      return (*err = "address " + format_ipv4(a.ip) + ": " + d.nl.error()), rc;
  }
  for (const auto& [name, l] : to_cfg.links) {
    if (!l.up) continue;
    for (const auto& k : links)
      if (k.name == name && k.admin_up != *l.up) {
        rc = d.nl.set_up(k.index, *l.up);
        if (rc < 0) return (*err = name + ": " + d.nl.error()), rc;
      }
  }
  for (const auto& a : to.addrs) {
    const int idx = ifindex(links, a.iface);
    if (idx == 0) return (*err = a.iface + ": no such interface"), -ENODEV;
    if (has_addr(addrs, a, idx)) continue;
    rc = d.nl.add_addr(KAddr{idx, a.ip, a.prefix});
    if (rc < 0 && rc != -EEXIST) return (*err = "address " + format_ipv4(a.ip) + ": " + d.nl.error()), rc;
  }
  if (!to.addrs.empty()) d.nl.routes(&routes);  // new addresses bring their prefix routes
  for (const auto& r : to.routes) {
    const int idx = ifindex(links, r.iface);
    if (idx == 0) return (*err = r.iface + ": no such interface"), -ENODEV;
    if (has_route(routes, r, idx)) continue;
    // A link that is down holds no routes (the kernel drops them); they return when it
    // comes up, by this same loop.
    const auto lc = to_cfg.links.find(r.iface);
    bool up = lc != to_cfg.links.end() && lc->second.up ? *lc->second.up : true;
    for (const auto& k : links)
      if (k.index == idx && lc == to_cfg.links.end()) up = k.admin_up;
    if (!up) continue;
    rc = d.nl.add_route(kroute(r, idx));
    if (rc < 0) return (*err = "route " + format_cidr(r.dest) + ": " + d.nl.error()), rc;
  }
  return 0;
}

void sync_dhcp(Daemon& d);
void arm_lease_timers(Daemon& d);

// Makes (cfg, leases) the state: kernel, state file, resolv.conf, DHCP clients. On a
// failure the kernel is moved back and nothing else changes.
int commit(Daemon& d, const Config& cfg, const Leases& leases, FieldError* err) {
  const Wanted from = wanted(d.cfg, d.leases), to = wanted(cfg, leases);
  std::string why;
  int rc = apply(d, from, to, cfg, &why);
  if (rc < 0) {
    std::string ignored;
    apply(d, to, from, d.cfg, &ignored);
    *err = FieldError{-rc, "kernel", why};
    d.last_apply_error = why;
    return rc;
  }
  const Config old_cfg = d.cfg;
  const Leases old_leases = d.leases;
  d.cfg = cfg;
  d.leases = leases;
  rc = persist(d);
  if (rc < 0) {
    d.cfg = old_cfg;
    d.leases = old_leases;
    std::string ignored;
    apply(d, to, from, d.cfg, &ignored);
    *err = FieldError{-rc, "state", "cannot write " + d.state_dir + "/state.json: " + std::strerror(-rc)};
    return rc;
  }
  d.last_apply_error.clear();
  rc = write_resolv(d);
  if (rc < 0) {
    *err = FieldError{-rc, "resolv_conf", "cannot write " + d.resolv_conf + ": " + std::strerror(-rc)};
    return rc;
  }
  sync_dhcp(d);
  arm_lease_timers(d);
  return 0;
}

// ---- DHCP: udhcpc with networkd itself as the hook (NETWORKD_HOOK_FD)

void on_dhcp_exit(void* ctx, int fd, uint32_t);

void spawn_udhcpc(Daemon& d, const std::string& iface) {
  DhcpClient& c = d.dhcp[iface];
  std::vector<std::string> args;
  if (d.udhcpc.find("busybox") != std::string::npos && d.udhcpc.size() >= 7 &&
      d.udhcpc.compare(d.udhcpc.size() - 7, 7, "busybox") == 0) {
    args = {d.udhcpc, "udhcpc"};
  } else {
    args = {d.udhcpc};
  }
  // -f foreground, retry discovery forever every few seconds; the hook reports events.
  for (const char* a : {"-f", "-i", iface.c_str(), "-s", d.self_exe.c_str(), "-t", "3", "-T", "1", "-A", "2"})
    args.emplace_back(a);
  const auto lease = d.leases.find(iface);
  if (lease != d.leases.end()) args.insert(args.end(), {"-r", format_ipv4(lease->second.ip)});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string hookfd = "NETWORKD_HOOK_FD=" + std::to_string(d.hook_w);
  std::string path = std::string("PATH=") + (getenv("PATH") ? getenv("PATH") : "/usr/sbin:/usr/bin:/sbin:/bin");
  char* envp[] = {hookfd.data(), path.data(), nullptr};
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls here: the parent has threads.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    prctl(PR_SET_PDEATHSIG, SIGTERM);  // networkd killed: its udhcpc goes too
    if (getppid() != parent) _exit(1);
    fcntl(d.hook_w, F_SETFD, 0);
    const int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
    }
    execve(argv[0], argv.data(), envp);
    _exit(127);
  }
  if (pid < 0) return;
  c.pid = pid;
  c.started_ms = now_ms();
  c.last_event = "started";
  c.pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (c.pidfd >= 0) fwsvc_loop_add_fd(d.loop, c.pidfd, FWSVC_EVENT_IN, on_dhcp_exit, &d);
}

void stop_udhcpc(Daemon& d, DhcpClient& c) {
  if (c.pidfd >= 0) {
    fwsvc_loop_remove_fd(d.loop, c.pidfd);
    close(c.pidfd);
    c.pidfd = -1;
  }
  if (c.pid > 0) {
    kill(c.pid, SIGTERM);
    waitpid(c.pid, nullptr, 0);
    c.pid = 0;
  }
  if (c.restart_timer > 0) fwsvc_loop_remove_timer(d.loop, c.restart_timer);
  c.restart_timer = 0;
}

void on_restart_timer(void* ctx) {
  Daemon& d = *static_cast<Daemon*>(ctx);
  for (auto& [iface, c] : d.dhcp) {
    if (c.pid != 0 || c.restart_timer == 0 || c.restart_at_ms > now_ms() + 5) continue;
    c.restart_timer = 0;
    spawn_udhcpc(d, iface);
  }
}

void on_dhcp_exit(void* ctx, int fd, uint32_t) {
  Daemon& d = *static_cast<Daemon*>(ctx);
  for (auto& [iface, c] : d.dhcp) {
    if (c.pidfd != fd) continue;
    fwsvc_loop_remove_fd(d.loop, fd);
    close(fd);
    c.pidfd = -1;
    int st = 0;
    waitpid(c.pid, &st, 0);
    c.pid = 0;
    c.last_event = "udhcpc exited (status " + std::to_string(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st)) +
                   "); restarting";
    // Back off (1 s, 2 s, ... 30 s) so that a client that cannot start does not spin.
    const uint64_t delay = std::min<uint64_t>(30000, 1000ull << std::min(c.restarts, 5));
    ++c.restarts;
    c.restart_at_ms = now_ms() + int64_t(delay);
    c.restart_timer = fwsvc_loop_add_timer(d.loop, delay, 0, on_restart_timer, &d);
    return;
  }
}

void sync_dhcp(Daemon& d) {
  for (auto it = d.dhcp.begin(); it != d.dhcp.end();) {
    const auto l = d.cfg.links.find(it->first);
    if (l == d.cfg.links.end() || !l->second.dhcp) {
      stop_udhcpc(d, it->second);
      it = d.dhcp.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [name, l] : d.cfg.links)
    if (l.dhcp && d.dhcp.find(name) == d.dhcp.end()) spawn_udhcpc(d, name);
}

// One timer, for the earliest expiry: expired leases go (their address and route with them).
void on_lease_timer(void* ctx) {
  Daemon& d = *static_cast<Daemon*>(ctx);
  d.lease_timer = 0;
  Leases next = d.leases;
  for (auto it = next.begin(); it != next.end();) {
    if (it->second.expires_s * 1000 > now_ms()) {
      ++it;
      continue;
    }
    if (d.dhcp.count(it->first)) d.dhcp[it->first].last_event = "lease expired";
    it = next.erase(it);
  }
  FieldError err;
  if (next != d.leases && commit(d, d.cfg, next, &err) == 0) publish(d, "dhcp.expired", json::object());
  arm_lease_timers(d);
}

void arm_lease_timers(Daemon& d) {
  if (d.lease_timer > 0) fwsvc_loop_remove_timer(d.loop, d.lease_timer);
  d.lease_timer = 0;
  int64_t first = INT64_MAX;
  for (const auto& [iface, l] : d.leases) first = std::min(first, l.expires_s * 1000);
  if (first == INT64_MAX) return;
  const int64_t left = std::max<int64_t>(1, first - now_ms());
  d.lease_timer = fwsvc_loop_add_timer(d.loop, uint64_t(left), 0, on_lease_timer, &d);
}

void handle_hook_line(Daemon& d, const std::string& line) {
  std::string why;
  const auto ev = decode_hook_event(line, &why);
  if (!ev) {
    ++d.hook_bad_lines;
    return;
  }
  const auto l = d.cfg.links.find(ev->iface);
  if (l == d.cfg.links.end() || !l->second.dhcp) return;  // a client we stopped
  auto& c = d.dhcp[ev->iface];
  c.last_event = ev->event;
  if (ev->event != "bound" && ev->event != "renew") return;  // deconfig: keep a valid lease's address
  c.restarts = 0;
  Lease lease;
  lease.ip = ev->ip;
  lease.prefix = ev->prefix;
  lease.router = ev->routers.empty() ? 0 : ev->routers[0];
  if (lease.router != 0 && !in_subnet(lease.router, lease.ip, lease.prefix)) lease.router = 0;
  lease.server = ev->server;
  lease.dns = ev->dns;
  lease.obtained_s = now_ms() / 1000;
  lease.expires_s = lease.obtained_s + ev->lease_s;
  Leases next = d.leases;
  next[ev->iface] = lease;
  FieldError err;
  const bool changed = d.leases.find(ev->iface) == d.leases.end() || d.leases[ev->iface].ip != lease.ip;
  if (commit(d, d.cfg, next, &err) < 0) {
    c.last_event = ev->event + " (not applied: " + err.reason + ")";
    return;
  }
  publish(d, changed ? "dhcp.bound" : "dhcp.renewed",
          {{"iface", ev->iface},
           {"address", format_cidr(Cidr{lease.ip, lease.prefix})},
           {"server", format_ipv4(lease.server)},
           {"expires", lease.expires_s}});
}

void on_hook_readable(void* ctx, int fd, uint32_t) {
  Daemon& d = *static_cast<Daemon*>(ctx);
  char buf[4096];
  const ssize_t n = read(fd, buf, sizeof buf);
  if (n <= 0) return;
  d.hook_buf.append(buf, size_t(n));
  size_t nl;
  while ((nl = d.hook_buf.find('\n')) != std::string::npos) {
    const std::string line = d.hook_buf.substr(0, nl);
    d.hook_buf.erase(0, nl + 1);
    handle_hook_line(d, line);
  }
  if (d.hook_buf.size() > 16384) {  // a line this long is no hook's: drop it
    d.hook_buf.clear();
    ++d.hook_bad_lines;
  }
}

// The hook: udhcpc runs networkd EVENT with its lease in the environment.
int hook_main(const char* event, const char* fdtext) {
  json j = {{"event", event}};
  for (const char* k : {"interface", "ip", "subnet", "router", "dns", "serverid", "lease", "mask"}) {
    const char* v = getenv(k);
    if (v != nullptr && strlen(v) < 1024) j[k] = v;
  }
  const std::string line = j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  const int fd = atoi(fdtext);
  if (fd < 3 || line.size() > 4096) return 1;
  return write(fd, line.data(), line.size()) == ssize_t(line.size()) ? 0 : 1;
}

// ---- requests

FieldError refuse(int code, std::string field, std::string reason) {
  return FieldError{code, std::move(field), std::move(reason)};
}

void reply_error(const fwsvc_request* req, const FieldError& e) {
  const std::string body = encode_error(e);
  fwsvc_reply(req, -e.code, body.data(), body.size());
}

void reply_ok(const fwsvc_request* req, const std::string& body = "{}") {
  fwsvc_reply(req, 0, body.data(), body.size());
}

// The caller's effective uid and groups, from /proc (the PID is the kernel's).
bool may_change(const Daemon& d, uint32_t pid, std::string* who) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  long euid = -1;
  std::vector<long> groups;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string key;
    s >> key;
    if (key == "Uid:") {
      long r;
      s >> r >> euid;
    } else if (key == "Gid:") {
      long r, e;
      s >> r >> e;
      groups.push_back(e);
    } else if (key == "Groups:") {
      for (long v; s >> v;) groups.push_back(v);
    }
  }
  *who = "uid " + std::to_string(euid);
  if (euid == 0) return true;
  if (euid < 0 || !d.has_admin_group) return false;
  return std::find(groups.begin(), groups.end(), long(d.admin_gid)) != groups.end();
}

std::vector<KLink> kernel_links(Daemon& d) {
  std::vector<KLink> links;
  d.nl.links(&links);
  return links;
}

bool link_exists(Daemon& d, const std::string& name) { return ifindex(kernel_links(d), name) != 0; }

// Subnets on iface that a gateway may lie in: configured ones and the kernel's.
bool gateway_reachable(Daemon& d, const Config& cfg, const std::string& iface, uint32_t gw) {
  for (const auto& a : wanted(cfg, d.leases).addrs)
    if (a.iface == iface && in_subnet(gw, a.ip, a.prefix)) return true;
  std::vector<KAddr> addrs;
  d.nl.addrs(&addrs);
  const int idx = ifindex(kernel_links(d), iface);
  for (const auto& a : addrs)
    if (a.index == idx && in_subnet(gw, a.ip, a.prefix)) return true;
  return false;
}

// True when gw lies in a subnet on iface that networkd did not configure (an address
// someone else put there), i.e. one that stays whatever networkd does to its own.
bool foreign_subnet_has(Daemon& d, const std::string& iface, uint32_t gw) {
  std::vector<KAddr> addrs;
  d.nl.addrs(&addrs);
  const int idx = ifindex(kernel_links(d), iface);
  const Wanted w = wanted(d.cfg, d.leases);
  for (const auto& a : addrs) {
    if (a.index != idx || !in_subnet(gw, a.ip, a.prefix)) continue;
    bool ours = false;
    for (const auto& x : w.addrs) ours = ours || (x.iface == iface && x.ip == a.ip && x.prefix == a.prefix);
    if (!ours) return true;
  }
  return false;
}

// A configured route through iface whose gateway the new addressing would leave outside
// every subnet of iface: refused up front rather than failing in the kernel.
std::optional<FieldError> check_routes_keep_gateway(Daemon& d, const std::string& iface, std::optional<Cidr> subnet,
                                                    const char* field) {
  for (const auto& rt : d.cfg.routes) {
    if (rt.iface != iface || rt.gateway == 0) continue;
    if (subnet && in_subnet(rt.gateway, subnet->net, subnet->prefix)) continue;
    if (foreign_subnet_has(d, iface, rt.gateway)) continue;
    return refuse(ENETUNREACH, field,
                  "the configured route " + format_cidr(rt.dest) + " via " + format_ipv4(rt.gateway) +
                      " would lose its gateway's subnet on " + iface + "; delete that route first");
  }
  return std::nullopt;
}

std::optional<FieldError> check_route(Daemon& d, const Config& cfg, RouteReq& r, bool adding) {
  if (!r.iface.empty() && !link_exists(d, r.iface)) return refuse(ENODEV, "iface", r.iface + ": no such interface");
  if (adding && r.gateway) {
    if (r.iface.empty()) {
      for (const auto& [name, l] : cfg.links)
        if (gateway_reachable(d, cfg, name, *r.gateway)) r.iface = name;
      if (r.iface.empty())
        for (const auto& k : kernel_links(d))
          if (gateway_reachable(d, cfg, k.name, *r.gateway)) r.iface = k.name;
      if (r.iface.empty())
        return refuse(ENETUNREACH, "gateway", format_ipv4(*r.gateway) + " is in no subnet of any interface");
    } else if (!gateway_reachable(d, cfg, r.iface, *r.gateway)) {
      return refuse(ENETUNREACH, "gateway", format_ipv4(*r.gateway) + " is outside every subnet on " + r.iface);
    }
  }
  return std::nullopt;
}

std::string state_json(Daemon& d);
std::optional<FieldError> online(Daemon& d, const std::string& iface);
void start_checkpoint(Daemon& d, uint32_t ms);

void handle(void* ctx, const fwsvc_request* req) {
  Daemon& d = *static_cast<Daemon*>(ctx);
  FieldError err;
  auto decoded = decode_request(req->method, req->body, req->body_len, &err);
  if (!decoded) return reply_error(req, err);
  Request& rq = *decoded;

  if (req->method == kGetState || req->method == kOnline) {
    if (req->method == kGetState) return reply_ok(req, state_json(d));
    const auto why = online(d, std::get<IfaceReq>(rq).iface);
    return why ? reply_error(req, *why) : reply_ok(req);
  }
  std::string who;
  if (!may_change(d, req->sender_pid, &who))
    return reply_error(req, refuse(EPERM, "",
                                   who + " may not change the network configuration (root" +
                                       std::string(d.has_admin_group ? " or the admin group" : "") + " only)"));
  Config next = d.cfg;
  switch (req->method) {
    case kConfigureStatic: {
      auto& r = std::get<StaticReq>(rq);
      if (!link_exists(d, r.iface)) return reply_error(req, refuse(ENODEV, "iface", r.iface + ": no such interface"));
      if (auto e = check_routes_keep_gateway(d, r.iface, Cidr{r.ip, r.prefix}, "ip")) return reply_error(req, *e);
      LinkConfig& l = next.links[r.iface];
      l.dhcp = false;
      l.up = true;
      l.address = Cidr{r.ip, r.prefix};
      l.gateway = r.gateway;
      if (r.gateway) {
        for (const auto& rt : next.routes)
          if (rt.dest == Cidr{})
            return reply_error(req, refuse(EEXIST, "gateway",
                                           "a default route is already configured (" + format_ipv4(rt.gateway) +
                                               " via " + rt.iface + ")"));
        for (const auto& [name, other] : next.links)
          if (name != r.iface && other.gateway && !other.dhcp)
            return reply_error(req, refuse(EEXIST, "gateway", "the default route is already " + name + "'s"));
      }
      Leases leases = d.leases;
      leases.erase(r.iface);
      if (commit(d, next, leases, &err) < 0) return reply_error(req, err);
      json ev = {{"iface", r.iface}, {"address", format_cidr(Cidr{r.ip, r.prefix})}};
      if (r.gateway) ev["gateway"] = format_ipv4(*r.gateway);
      publish(d, "static", ev);
      return reply_ok(req);
    }
    case kEnableDhcp: {
      auto& r = std::get<IfaceReq>(rq);
      if (!link_exists(d, r.iface)) return reply_error(req, refuse(ENODEV, "iface", r.iface + ": no such interface"));
      LinkConfig& l = next.links[r.iface];
      if (l.dhcp) return reply_ok(req);
      if (auto e = check_routes_keep_gateway(d, r.iface, std::nullopt, "iface")) return reply_error(req, *e);
      l = LinkConfig{};
      l.dhcp = true;
      l.up = true;
      if (commit(d, next, d.leases, &err) < 0) return reply_error(req, err);
      publish(d, "dhcp.enabled", {{"iface", r.iface}});
      return reply_ok(req);
    }
    case kSetDns: {
      auto& r = std::get<DnsReq>(rq);
      next.dns = r.servers;
      next.dns_merge = r.merge;
      if (commit(d, next, d.leases, &err) < 0) return reply_error(req, err);
      json servers = json::array();
      for (const auto& e : dns_servers(d.cfg, d.leases)) servers.push_back(format_ipv4(e.server) + " " + e.source);
      publish(d, "dns", {{"servers", servers}, {"merge", r.merge}});
      return reply_ok(req);
    }
    case kAddRoute:
    case kDelRoute: {
      auto& r = std::get<RouteReq>(rq);
      const bool adding = req->method == kAddRoute;
      if (auto e = check_route(d, next, r, adding)) return reply_error(req, *e);
      const auto same = [&](const RouteConfig& c) {
        return c.dest == r.dest && (!r.gateway || c.gateway == *r.gateway) && (r.iface.empty() || c.iface == r.iface);
      };
      auto it = std::find_if(next.routes.begin(), next.routes.end(), same);
      if (!adding) {
        if (it == next.routes.end())
          return reply_error(req, refuse(ENOENT, "dest", format_cidr(r.dest) + ": no such configured route"));
        next.routes.erase(it);
      } else {
        if (it != next.routes.end())
          return reply_error(req, refuse(EEXIST, "dest", format_cidr(r.dest) + ": this route is already configured"));
        for (const auto& w : wanted(d.cfg, d.leases).routes)
          if (w.dest == r.dest && std::string_view(w.source) == "static")
            return reply_error(req,
                               refuse(EEXIST, "dest",
                                      format_cidr(r.dest) + ": already routed via " + w.iface + " (" + w.source + ")"));
        std::vector<KRoute> kr;
        d.nl.routes(&kr);
        for (const auto& k : kr)
          if (k.dst == r.dest.net && k.prefix == r.dest.prefix && k.priority == 0)
            return reply_error(req,
                               refuse(EEXIST, "dest", format_cidr(r.dest) + ": the kernel already has a route to it"));
        next.routes.push_back(RouteConfig{r.dest, r.gateway.value_or(0), r.iface});
      }
      if (commit(d, next, d.leases, &err) < 0) return reply_error(req, err);
      json ev = {{"dest", format_cidr(r.dest)}};
      if (r.gateway) ev["gateway"] = format_ipv4(*r.gateway);
      if (!r.iface.empty()) ev["iface"] = r.iface;
      publish(d, adding ? "route.added" : "route.removed", ev);
      return reply_ok(req);
    }
    case kLinkUp: {
      auto& r = std::get<LinkReq>(rq);
      if (!link_exists(d, r.iface)) return reply_error(req, refuse(ENODEV, "iface", r.iface + ": no such interface"));
      next.links[r.iface].up = r.up;
      if (commit(d, next, d.leases, &err) < 0) return reply_error(req, err);
      publish(d, r.up ? "link.up" : "link.down", {{"iface", r.iface}});
      return reply_ok(req);
    }
    case kCheckpoint: {
      if (d.snapshot)
        return reply_error(req, refuse(EBUSY, "rollback_ms", "a checkpoint is already pending; confirm it first"));
      start_checkpoint(d, std::get<CheckpointReq>(rq).rollback_ms);
      const int rc = persist(d);
      if (rc < 0) {
        fwsvc_loop_remove_timer(d.loop, d.rollback_timer);
        d.snapshot.reset();
        return reply_error(req,
                           refuse(-rc, "state", std::string("cannot persist the checkpoint: ") + std::strerror(-rc)));
      }
      publish(d, "checkpoint", {{"rollback_ms", std::get<CheckpointReq>(rq).rollback_ms}});
      return reply_ok(req);
    }
    case kConfirm: {
      if (!d.snapshot) return reply_error(req, refuse(ENOENT, "", "no checkpoint is pending"));
      fwsvc_loop_remove_timer(d.loop, d.rollback_timer);
      d.rollback_timer = 0;
      d.snapshot.reset();
      persist(d);
      publish(d, "confirmed", json::object());
      return reply_ok(req);
    }
    default: return reply_error(req, refuse(ENOSYS, "", "unknown method"));
  }
}

// ---- checkpoint, state, online

void rollback(void* ctx) {
  Daemon& d = *static_cast<Daemon*>(ctx);
  d.rollback_timer = 0;
  if (!d.snapshot) return;
  const Config target = *d.snapshot;
  d.snapshot.reset();
  Leases leases = d.leases;
  for (auto it = leases.begin(); it != leases.end();) {  // leases of links no longer DHCP go
    const auto l = target.links.find(it->first);
    it = (l == target.links.end() || !l->second.dhcp) ? leases.erase(it) : std::next(it);
  }
  FieldError err;
  if (commit(d, target, leases, &err) < 0) {
    fprintf(stderr, "networkd: rollback failed: %s: %s\n", err.field.c_str(), err.reason.c_str());
    d.snapshot = target;  // try again in a second
    d.rollback_timer = fwsvc_loop_add_timer(d.loop, 1000, 0, rollback, &d);
    return;
  }
  fprintf(stderr, "networkd: checkpoint not confirmed in time: configuration rolled back\n");
  publish(d, "rolled_back", json::object());
}

void start_checkpoint(Daemon& d, uint32_t ms) {
  d.snapshot = d.cfg;
  d.rollback_at_ms = now_ms() + ms;
  d.rollback_timer = fwsvc_loop_add_timer(d.loop, ms, 0, rollback, &d);
}

std::string state_json(Daemon& d) {
  std::vector<KLink> links;
  std::vector<KAddr> addrs;
  std::vector<KRoute> routes;
  d.nl.links(&links);
  d.nl.addrs(&addrs);
  d.nl.routes(&routes);
  const Wanted w = wanted(d.cfg, d.leases);
  const auto name_of = [&](int idx) -> std::string {
    for (const auto& l : links)
      if (l.index == idx) return l.name;
    return std::to_string(idx);
  };
  json jl = json::array();
  for (const auto& k : links) {
    const auto cfg = d.cfg.links.find(k.name);
    json addr = json::array();
    bool all_present = true;
    for (const auto& a : addrs) {
      if (a.index != k.index) continue;
      const char* src = "foreign";
      for (const auto& x : w.addrs)
        if (x.iface == k.name && x.ip == a.ip && x.prefix == a.prefix) src = x.source;
      addr.push_back({{"address", format_ipv4(a.ip) + "/" + std::to_string(a.prefix)}, {"source", src}});
    }
    for (const auto& x : w.addrs)
      if (x.iface == k.name && !has_addr(addrs, x, k.index)) all_present = false;
    json o = {{"name", k.name},         {"index", k.index},      {"operstate", k.operstate},
              {"admin_up", k.admin_up}, {"carrier", k.lower_up}, {"addresses", addr}};
    if (cfg == d.cfg.links.end()) {
      o["setup"] = "unmanaged";
    } else {
      o["setup"] = all_present ? "configured" : (cfg->second.dhcp ? "configuring" : "failed");
      json dh = {{"enabled", cfg->second.dhcp}};
      if (cfg->second.dhcp) {
        const auto c = d.dhcp.find(k.name);
        if (c != d.dhcp.end()) dh["client"] = {{"pid", c->second.pid}, {"last_event", c->second.last_event}};
        const auto l = d.leases.find(k.name);
        if (l != d.leases.end()) {
          json dns = json::array();
          for (uint32_t s : l->second.dns) dns.push_back(format_ipv4(s));
          dh["lease"] = {{"address", format_ipv4(l->second.ip) + "/" + std::to_string(l->second.prefix)},
                         {"server", format_ipv4(l->second.server)},
                         {"router", format_ipv4(l->second.router)},
                         {"dns", dns},
                         {"obtained", l->second.obtained_s},
                         {"expires", l->second.expires_s},
                         {"expires_in_s", std::max<int64_t>(0, l->second.expires_s - now_ms() / 1000)}};
        }
      }
      o["dhcp"] = dh;
    }
    jl.push_back(o);
  }
  json jr = json::array();
  for (const auto& r : routes) {
    const char* src = r.protocol == RTPROT_KERNEL ? "kernel" : "foreign";
    for (const auto& x : w.routes)
      if (x.dest.net == r.dst && x.dest.prefix == r.prefix && x.gateway == r.gateway && x.iface == name_of(r.index) &&
          route_metric(x) == r.priority)
        src = x.source;
    json o = {{"dest", format_cidr(Cidr{r.dst, r.prefix})}, {"iface", name_of(r.index)}, {"source", src}};
    if (r.gateway != 0) o["gateway"] = format_ipv4(r.gateway);
    if (r.priority != 0) o["metric"] = r.priority;
    jr.push_back(o);
  }
  json jd = json::array();
  for (const auto& e : dns_servers(d.cfg, d.leases))
    jd.push_back({{"server", format_ipv4(e.server)}, {"source", e.source}});
  json out = {{"links", jl},
              {"routes", jr},
              {"dns", jd},
              {"dns_merge", d.cfg.dns_merge},
              {"resolv_conf", d.resolv_conf},
              {"config", to_json(d.cfg)}};
  if (d.snapshot)
    out["checkpoint"] = {{"rollback_in_ms", std::max<int64_t>(0, d.rollback_at_ms - now_ms())}};
  else
    out["checkpoint"] = nullptr;
  if (!d.last_apply_error.empty()) out["last_error"] = d.last_apply_error;
  out["events"] = {{"published", d.events_published}, {"dropped", d.events_dropped}};
  out["dhcp_hook_bad_lines"] = d.hook_bad_lines;
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Why iface (or, empty, every managed link) is not online; nullopt when it is.
std::optional<FieldError> online(Daemon& d, const std::string& iface) {
  std::vector<KLink> links;
  std::vector<KAddr> addrs;
  if (d.nl.links(&links) < 0 || d.nl.addrs(&addrs) < 0) return refuse(EIO, "kernel", d.nl.error());
  std::vector<std::string> names;
  if (!iface.empty()) {
    names.push_back(iface);
  } else {
    for (const auto& [name, l] : d.cfg.links)
      if (l.up.value_or(true)) names.push_back(name);
    if (names.empty()) return refuse(EAGAIN, "iface", "no link is managed by networkd");
  }
  const Wanted w = wanted(d.cfg, d.leases);
  for (const auto& name : names) {
    const KLink* k = nullptr;
    for (const auto& l : links)
      if (l.name == name) k = &l;
    if (k == nullptr) return refuse(ENODEV, "iface", name + ": no such interface");
    if (!k->admin_up) return refuse(EAGAIN, "iface", name + ": link is administratively down");
    if (!k->lower_up) return refuse(EAGAIN, "iface", name + ": no carrier (operstate " + k->operstate + ")");
    const auto c = d.cfg.links.find(name);
    if (c != d.cfg.links.end() && c->second.dhcp && d.leases.find(name) == d.leases.end()) {
      const auto cl = d.dhcp.find(name);
      std::string ev = cl != d.dhcp.end() ? cl->second.last_event : "no client";
      return refuse(EAGAIN, "iface", name + ": no DHCP lease yet (udhcpc: " + ev + ")");
    }
    bool any = false;
    for (const auto& x : w.addrs) {
      if (x.iface != name) continue;
      if (!has_addr(addrs, x, k->index))
        return refuse(EAGAIN, "iface", name + ": configured address " + format_ipv4(x.ip) + " not in the kernel");
      any = true;
    }
    for (const auto& a : addrs) any = any || a.index == k->index;
    if (!any) return refuse(EAGAIN, "iface", name + ": no IPv4 address");
  }
  return std::nullopt;
}

std::string find_udhcpc() {
  const char* path = getenv("PATH");
  std::string p = path ? path : "/usr/sbin:/usr/bin:/sbin:/bin";
  for (const char* exe : {"udhcpc", "busybox"}) {
    size_t pos = 0;
    while (pos <= p.size()) {
      const size_t end = std::min(p.find(':', pos), p.size());
      const std::string cand = p.substr(pos, end - pos) + "/" + exe;
      if (access(cand.c_str(), X_OK) == 0) return cand;
      pos = end + 1;
    }
  }
  return "/bin/busybox";
}

void on_reload(void* ctx) {
  Daemon& d = *static_cast<Daemon*>(ctx);
  const Wanted w = wanted(d.cfg, d.leases);
  std::string why;
  if (apply(d, w, w, d.cfg, &why) < 0) {
    d.last_apply_error = why;
    fprintf(stderr, "networkd: reload: %s\n", why.c_str());
  }
}

int load_state(Daemon& d, std::string* why) {
  std::ifstream in(d.state_dir + "/state.json");
  if (!in) return 0;  // first start
  std::stringstream s;
  s << in.rdbuf();
  json j = json::parse(s.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return (*why = "state.json is not JSON"), -EINVAL;
  if (!from_json(j.value("config", json::object()), &d.cfg, why)) return -EINVAL;
  if (!from_json(j.value("leases", json::object()), &d.leases, why)) return -EINVAL;
  const auto cp = j.find("checkpoint");
  if (cp != j.end() && cp->is_object()) {
    Config snap;
    if (!from_json(cp->value("config", json::object()), &snap, why)) return -EINVAL;
    d.snapshot = snap;
    d.rollback_at_ms = cp->value("rollback_at_ms", int64_t(0));
  }
  // Expired leases are gone; their addresses are removed by the first apply below.
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* fd = getenv("NETWORKD_HOOK_FD"); fd != nullptr && argc == 2 && argv[1][0] != '-')
    return hook_main(argv[1], fd);
  Daemon d;
  std::string group_name;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&](std::string* out) {
      if (i + 1 >= argc) {
        fprintf(stderr, "networkd: %s needs a value\n%s", a.c_str(), kUsage);
        exit(2);
      }
      *out = argv[++i];
    };
    if (a == "-h" || a == "--help") {
      fputs(kUsage, stdout);
      return 0;
    } else if (a == "--state-dir") {
      value(&d.state_dir);
    } else if (a == "--resolv-conf") {
      value(&d.resolv_conf);
    } else if (a == "--admin-group") {
      value(&group_name);
    } else if (a == "--udhcpc") {
      value(&d.udhcpc);
    } else {
      fprintf(stderr, "networkd: unknown argument %s\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (d.state_dir.empty() || d.resolv_conf.empty()) {
    fprintf(stderr, "networkd: --state-dir and --resolv-conf are required\n%s", kUsage);
    return 2;
  }
  if (!group_name.empty()) {
    if (const struct group* gr = getgrnam(group_name.c_str())) {
      d.admin_gid = gr->gr_gid;
    } else if (group_name.find_first_not_of("0123456789") == std::string::npos && group_name.size() < 10) {
      d.admin_gid = gid_t(std::stoul(group_name));
    } else {
      fprintf(stderr, "networkd: --admin-group: no group %s\n", group_name.c_str());
      return 2;
    }
    d.has_admin_group = true;
  }
  if (d.udhcpc.empty()) d.udhcpc = find_udhcpc();
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    fprintf(stderr, "networkd: cannot resolve /proc/self/exe\n");
    return 1;
  }
  d.self_exe.assign(self, size_t(n));
  if (mkdir(d.state_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "networkd: --state-dir %s: %s\n", d.state_dir.c_str(), strerror(errno));
    return 1;
  }
  std::string why;
  if (load_state(d, &why) < 0) {
    fprintf(stderr, "networkd: %s/state.json: %s (move it away to start empty)\n", d.state_dir.c_str(), why.c_str());
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  int rc = fwsvc_loop_new(&d.loop);
  if (rc < 0) {
    fprintf(stderr, "networkd: loop: %s\n", ipc_strerror(rc));
    return 1;
  }
  if (d.nl.open() < 0) {
    fprintf(stderr, "networkd: %s\n", d.nl.error().c_str());
    return 1;
  }
  int hp[2];
  if (pipe2(hp, O_CLOEXEC | O_NONBLOCK) != 0) {
    fprintf(stderr, "networkd: pipe: %s\n", strerror(errno));
    return 1;
  }
  d.hook_r = hp[0];
  d.hook_w = hp[1];
  fcntl(d.hook_w, F_SETFL, 0);  // the hook's write may block briefly; the read end never does
  fwsvc_loop_add_fd(d.loop, d.hook_r, FWSVC_EVENT_IN, on_hook_readable, &d);

  // Expired leases are dropped first; then the kernel gets what is missing, nothing removed.
  const Wanted before = wanted(d.cfg, d.leases);
  for (auto it = d.leases.begin(); it != d.leases.end();)
    it = it->second.expires_s * 1000 <= now_ms() ? d.leases.erase(it) : std::next(it);
  const Wanted after = wanted(d.cfg, d.leases);
  if (apply(d, before, after, d.cfg, &why) < 0) {
    d.last_apply_error = why;
    fprintf(stderr, "networkd: applying the persisted state: %s\n", why.c_str());
  }
  persist(d);
  rc = write_resolv(d);
  if (rc < 0) fprintf(stderr, "networkd: --resolv-conf %s: %s\n", d.resolv_conf.c_str(), strerror(-rc));

  fwsvc_options opts;
  fwsvc_options_init(&opts);
  opts.type = IPC_TYPE_SOCKET;  // $FWIPC_RUNTIME_DIR/networkd.sock: reachable from any netns
  opts.perm_mode = 0666;        // anyone may query; changes are checked per caller
  opts.creator_mode = IPC_MODE_WRITE;
  rc = fwsvc_service_new(d.loop, "networkd", &opts, &d.svc);
  if (rc < 0) {
    fprintf(stderr, "networkd: channel networkd: %s%s%s\n", ipc_strerror(rc), *ipc_last_error_detail() ? ": " : "",
            ipc_last_error_detail());
    return 1;
  }
  for (uint32_t m = kConfigureStatic; m <= kOnline; ++m) fwsvc_service_add_method(d.svc, m, handle, &d);
  fwsvc_loop_on_reload(d.loop, on_reload, &d);
  sync_dhcp(d);
  arm_lease_timers(d);
  if (d.snapshot) {  // a checkpoint from before the restart: its deadline still holds
    const int64_t left = d.rollback_at_ms - now_ms();
    d.rollback_timer = fwsvc_loop_add_timer(d.loop, uint64_t(std::max<int64_t>(1, left)), 0, rollback, &d);
  }
  // Ours alone: the runtime spawns a registry without NOTIFY_SOCKET, udhcpc gets an
  // environment of its own (spawn_udhcpc).
  fwsvc_notify("READY=1");
  rc = fwsvc_loop_run(d.loop);
  for (auto& [iface, c] : d.dhcp) stop_udhcpc(d, c);
  fwsvc_service_free(d.svc);
  fwsvc_loop_free(d.loop);
  if (rc != 0) fprintf(stderr, "networkd: %s\n", ipc_strerror(rc));
  return rc == 0 ? 0 : 1;
}
