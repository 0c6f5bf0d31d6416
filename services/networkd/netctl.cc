// netctl: networkd's command line, a thin shell over libnetworkd_ipc.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fwsvc.h"
#include "services/networkd/ip4.h"
#include "services/networkd/networkd_ipc.h"

using json = nlohmann::json;

namespace {

constexpr const char* kUsage =
    "Usage: netctl COMMAND [ARGS]\n"
    "\n"
    "Asks networkd (channel `networkd` in $FWIPC_RUNTIME_DIR) to show or change the network.\n"
    "\n"
    "  status [--json]                 links, addresses, routes, DNS (each with its source)\n"
    "  static IFACE IP NETMASK [GW]    a static IPv4 address; GW becomes the default route\n"
    "  dhcp IFACE                      run DHCP on IFACE\n"
    "  dns [--merge] [SERVER...]       static DNS servers (none: clear them); they replace\n"
    "                                  the DHCP servers unless --merge\n"
    "  route add|del CIDR [GW] [IFACE] a route (CIDR a.b.c.d/len or default)\n"
    "  link IFACE up|down              bring a link up or down\n"
    "  checkpoint MS                   undo later changes unless confirmed within MS ms\n"
    "  confirm                         keep the changes made since the checkpoint\n"
    "  wait-online [IFACE] [--timeout MS]  wait until online (default 30000 ms); says why not\n"
    "  -h, --help                      this text\n"
    "\n"
    "Changing needs root (or networkd's --admin-group). Exit status: 0 done, 1 refused or\n"
    "failed (the reason, naming the field, on stderr), 2 usage error.\n";

int usage_error(const char* what) {
  fprintf(stderr, "netctl: %s\n%s", what, kUsage);
  return 2;
}

int result(int rc, const char* what) {
  if (rc == 0) return 0;
  fprintf(stderr, "netctl: %s: %s (%s)\n", what, networkd_last_error(), std::strerror(-rc));
  return 1;
}

std::string s(const json& j, const char* k) {
  const auto it = j.find(k);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

void print_status(const json& st) {
  for (const auto& l : st["links"]) {
    printf("%d: %s  %s (carrier %s, %s)  setup %s\n", l.value("index", 0), s(l, "name").c_str(),
           s(l, "operstate").c_str(), l.value("carrier", false) ? "on" : "off",
           l.value("admin_up", false) ? "admin up" : "admin down", s(l, "setup").c_str());
    for (const auto& a : l["addresses"]) printf("    inet %s  (%s)\n", s(a, "address").c_str(), s(a, "source").c_str());
    if (l.contains("dhcp") && l["dhcp"].value("enabled", false)) {
      const json& d = l["dhcp"];
      if (d.contains("lease"))
        printf("    dhcp lease %s from %s, expires in %llds\n", s(d["lease"], "address").c_str(),
               s(d["lease"], "server").c_str(), (long long)d["lease"].value("expires_in_s", int64_t(0)));
      else
        printf("    dhcp: no lease yet (%s)\n",
               d.contains("client") ? s(d["client"], "last_event").c_str() : "no client");
    }
  }
  printf("routes:\n");
  for (const auto& r : st["routes"]) {
    printf("    %s", s(r, "dest").c_str());
    if (r.contains("gateway")) printf(" via %s", s(r, "gateway").c_str());
    printf(" dev %s  (%s)\n", s(r, "iface").c_str(), s(r, "source").c_str());
  }
  printf("dns (%s):\n", s(st, "resolv_conf").c_str());
  for (const auto& d : st["dns"]) printf("    %s  (%s)\n", s(d, "server").c_str(), s(d, "source").c_str());
  if (st.contains("checkpoint") && st["checkpoint"].is_object())
    printf("checkpoint pending: rolled back in %lld ms unless confirmed\n",
           (long long)st["checkpoint"].value("rollback_in_ms", int64_t(0)));
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.empty()) return usage_error("no command");
  const std::string cmd = a[0];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "status") {
    const bool as_json = a.size() == 2 && a[1] == "--json";
    if (a.size() > 2 || (a.size() == 2 && !as_json)) return usage_error("status takes only --json");
    std::vector<char> buf(1 << 20);
    const int rc = networkd_get_state(buf.data(), buf.size());
    if (rc != 0) return result(rc, "status");
    if (as_json) {
      printf("%s\n", buf.data());
      return 0;
    }
    const json st = json::parse(buf.data(), nullptr, false);
    if (st.is_discarded()) return result(-EPROTO, "status");
    print_status(st);
    return 0;
  }
  if (cmd == "static") {
    if (a.size() != 4 && a.size() != 5) return usage_error("static IFACE IP NETMASK [GW]");
    return result(
        networkd_configure_static(a[1].c_str(), a[2].c_str(), a[3].c_str(), a.size() == 5 ? a[4].c_str() : nullptr),
        "static");
  }
  if (cmd == "dhcp") {
    if (a.size() != 2) return usage_error("dhcp IFACE");
    return result(networkd_enable_dhcp(a[1].c_str()), "dhcp");
  }
  if (cmd == "dns") {
    bool merge = false;
    std::vector<const char*> servers;
    for (size_t i = 1; i < a.size(); ++i) {
      if (a[i] == "--merge")
        merge = true;
      else
        servers.push_back(a[i].c_str());
    }
    return result(networkd_set_dns_merge(servers.data(), int(servers.size()), merge), "dns");
  }
  if (cmd == "route") {
    if (a.size() < 3 || a.size() > 5 || (a[1] != "add" && a[1] != "del"))
      return usage_error("route add|del CIDR [GW] [IFACE]");
    const char* gw = nullptr;
    const char* iface = nullptr;
    if (a.size() >= 4) (networkd::parse_ipv4(a[3]) ? gw : iface) = a[3].c_str();
    if (a.size() == 5) {
      if (iface != nullptr) return usage_error("route: GW comes before IFACE");
      iface = a[4].c_str();
    }
    const int rc =
        a[1] == "add" ? networkd_add_route(a[2].c_str(), gw, iface) : networkd_del_route(a[2].c_str(), gw, iface);
    return result(rc, ("route " + a[1]).c_str());
  }
  if (cmd == "link") {
    if (a.size() != 3 || (a[2] != "up" && a[2] != "down")) return usage_error("link IFACE up|down");
    return result(networkd_link_up(a[1].c_str(), a[2] == "up"), "link");
  }
  if (cmd == "checkpoint") {
    char* end = nullptr;
    const long ms = a.size() == 2 ? strtol(a[1].c_str(), &end, 10) : 0;
    if (a.size() != 2 || *end != '\0' || ms <= 0 || ms > 86400000) return usage_error("checkpoint MS (1..86400000)");
    return result(networkd_checkpoint(int(ms)), "checkpoint");
  }
  if (cmd == "confirm") {
    if (a.size() != 1) return usage_error("confirm takes no argument");
    return result(networkd_confirm(), "confirm");
  }
  if (cmd == "wait-online") {
    const char* iface = nullptr;
    long timeout = 30000;
    for (size_t i = 1; i < a.size(); ++i) {
      if (a[i] == "--timeout" && i + 1 < a.size()) {
        char* end = nullptr;
        timeout = strtol(a[++i].c_str(), &end, 10);
        if (*end != '\0' || timeout < 0 || timeout > 86400000) return usage_error("--timeout MS");
      } else if (iface == nullptr) {
        iface = a[i].c_str();
      } else {
        return usage_error("wait-online [IFACE] [--timeout MS]");
      }
    }
    return result(networkd_wait_online(iface, int(timeout)), "wait-online");
  }
  return usage_error(("unknown command " + cmd).c_str());
}
