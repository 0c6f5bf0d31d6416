// networkd's configuration (what the administrator asked for), its DHCP leases, and the
// kernel objects both imply. Persisted as one JSON file, written atomically.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "services/networkd/ip4.h"

namespace networkd {

struct LinkConfig {
  std::optional<bool> up;  // unset: networkd leaves the link's state alone
  bool dhcp = false;
  std::optional<Cidr> address;  // the static address: net holds the host address here
  std::optional<uint32_t> gateway;
  bool operator==(const LinkConfig&) const = default;
};
struct RouteConfig {
  Cidr dest;
  uint32_t gateway = 0;  // 0: on-link
  std::string iface;
  bool operator==(const RouteConfig&) const = default;
};
struct Config {
  std::map<std::string, LinkConfig> links;
  std::vector<RouteConfig> routes;
  std::vector<uint32_t> dns;  // static servers
  bool dns_merge = false;     // false: static servers replace DHCP ones
  bool operator==(const Config&) const = default;
};
struct Lease {
  uint32_t ip = 0;
  uint8_t prefix = 0;
  uint32_t router = 0;
  uint32_t server = 0;
  std::vector<uint32_t> dns;
  int64_t obtained_s = 0;  // CLOCK_REALTIME seconds
  int64_t expires_s = 0;
  bool operator==(const Lease&) const = default;
};
using Leases = std::map<std::string, Lease>;

// What the kernel must hold.
struct WantAddr {
  std::string iface;
  uint32_t ip = 0;
  uint8_t prefix = 0;
  const char* source = "static";
  bool operator==(const WantAddr& o) const { return iface == o.iface && ip == o.ip && prefix == o.prefix; }
};
struct WantRoute {
  std::string iface;
  Cidr dest;
  uint32_t gateway = 0;
  const char* source = "static";
  bool operator==(const WantRoute& o) const {
    return iface == o.iface && dest == o.dest && gateway == o.gateway && std::string_view(source) == o.source;
  }
};
struct Wanted {
  std::vector<WantAddr> addrs;
  std::vector<WantRoute> routes;
};
// Addresses before routes; a DHCP link's lease takes the place of a static address.
Wanted wanted(const Config& c, const Leases& l);

struct DnsEntry {
  uint32_t server;
  const char* source;
};
// The resolver list: static servers alone when there are any and dns_merge is false,
// else static then DHCP servers (first seen wins).
std::vector<DnsEntry> dns_servers(const Config& c, const Leases& l);
std::string resolv_conf_text(const std::vector<DnsEntry>& servers);

nlohmann::json to_json(const Config& c);
nlohmann::json to_json(const Leases& l);
// Parses a persisted configuration; false (and *why) when the file is not one.
bool from_json(const nlohmann::json& j, Config* c, std::string* why);
bool from_json(const nlohmann::json& j, Leases* l, std::string* why);

// Writes text to path through a temporary file in the same directory, fsync and
// rename: the file is the old or the new one, never half. 0 or a negative errno.
int write_atomic(const std::string& path, const std::string& text);

}  // namespace networkd
