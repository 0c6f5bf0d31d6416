// IPv4 values as networkd takes them from requests: strict dotted quads, contiguous
// netmasks, CIDR prefixes. Addresses are host byte order; no I/O, no allocation but strings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace networkd {

// "192.168.1.100" and nothing else (no leading zeros, no shorthand, no trailing bytes).
std::optional<uint32_t> parse_ipv4(std::string_view s);
// True when s parses as an IPv6 address (so the error can say "IPv6" instead of "malformed").
bool looks_ipv6(std::string_view s);
// Prefix length of a contiguous netmask ("255.255.255.0" -> 24), or nullopt.
std::optional<uint8_t> mask_to_prefix(uint32_t mask);
inline uint32_t prefix_to_mask(uint8_t prefix) { return prefix == 0 ? 0u : ~0u << (32 - prefix); }
inline bool in_subnet(uint32_t ip, uint32_t net, uint8_t prefix) {
  return (ip & prefix_to_mask(prefix)) == (net & prefix_to_mask(prefix));
}
std::string format_ipv4(uint32_t ip);

struct Cidr {
  uint32_t net = 0;
  uint8_t prefix = 0;
  bool operator==(const Cidr&) const = default;
};
// "10.0.0.0/8", "default" (0.0.0.0/0), or a bare address (/32). Host bits must be zero.
enum class CidrError { kNone, kMalformed, kPrefix, kHostBits };
CidrError parse_cidr(std::string_view s, Cidr* out);
std::string format_cidr(const Cidr& c);

}  // namespace networkd
