#include "services/networkd/ip4.h"

#include <arpa/inet.h>

#include <charconv>

namespace networkd {

std::optional<uint32_t> parse_ipv4(std::string_view s) {
  if (s.empty() || s.size() > 15) return std::nullopt;
  uint32_t out = 0;
  size_t pos = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (pos >= s.size() || s[pos] != '.') return std::nullopt;
      ++pos;
    }
    const size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9' && pos - start < 3) ++pos;
    const size_t len = pos - start;
    if (len == 0 || (len > 1 && s[start] == '0')) return std::nullopt;  // "01" is octal to inet_aton
    unsigned v = 0;
    std::from_chars(s.data() + start, s.data() + pos, v);
    if (v > 255) return std::nullopt;
    out = (out << 8) | v;
  }
  if (pos != s.size()) return std::nullopt;
  return out;
}

bool looks_ipv6(std::string_view s) {
  if (s.size() >= INET6_ADDRSTRLEN) return false;
  char buf[INET6_ADDRSTRLEN];
  s.copy(buf, s.size());
  buf[s.size()] = '\0';
  in6_addr a{};
  return ::inet_pton(AF_INET6, buf, &a) == 1;
}

std::optional<uint8_t> mask_to_prefix(uint32_t mask) {
  const uint32_t inv = ~mask;
  if ((inv & (inv + 1)) != 0) return std::nullopt;  // ones then zeros only
  return static_cast<uint8_t>(__builtin_popcount(mask));
}

std::string format_ipv4(uint32_t ip) {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 255) + "." + std::to_string((ip >> 8) & 255) +
         "." + std::to_string(ip & 255);
}

CidrError parse_cidr(std::string_view s, Cidr* out) {
  if (s == "default") {
    *out = Cidr{};
    return CidrError::kNone;
  }
  const size_t slash = s.find('/');
  const auto ip = parse_ipv4(s.substr(0, slash));
  if (!ip) return CidrError::kMalformed;
  unsigned prefix = 32;
  if (slash != std::string_view::npos) {
    const std::string_view p = s.substr(slash + 1);
    if (p.empty() || p.size() > 2 || (p.size() > 1 && p[0] == '0')) return CidrError::kPrefix;
    const auto r = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (r.ec != std::errc() || r.ptr != p.data() + p.size() || prefix > 32) return CidrError::kPrefix;
  }
  if ((*ip & ~prefix_to_mask(static_cast<uint8_t>(prefix))) != 0) return CidrError::kHostBits;
  *out = Cidr{*ip, static_cast<uint8_t>(prefix)};
  return CidrError::kNone;
}

std::string format_cidr(const Cidr& c) { return format_ipv4(c.net) + "/" + std::to_string(c.prefix); }

}  // namespace networkd
