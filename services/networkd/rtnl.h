// The kernel side of networkd: rtnetlink through libnl-route-3. Dumps (links, IPv4
// addresses, main-table IPv4 routes) and single changes. Every call returns 0 or a
// negative errno and leaves libnl's message for the failure in error().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct nl_sock;

namespace networkd {

struct KLink {
  int index = 0;
  std::string name;
  bool admin_up = false;  // IFF_UP
  bool lower_up = false;  // IFF_LOWER_UP: carrier
  std::string operstate;  // "up", "down", "lowerlayerdown", "unknown", ...
};
struct KAddr {
  int index = 0;
  uint32_t ip = 0;
  uint8_t prefix = 0;
  bool operator==(const KAddr&) const = default;
};
struct KRoute {
  uint32_t dst = 0;
  uint8_t prefix = 0;
  uint32_t gateway = 0;  // 0: on-link
  int index = 0;         // output interface
  uint8_t protocol = 0;  // RTPROT_*
  uint32_t priority = 0;
};

class Rtnl {
 public:
  Rtnl() = default;
  ~Rtnl();
  Rtnl(const Rtnl&) = delete;
  Rtnl& operator=(const Rtnl&) = delete;

  int open();
  int links(std::vector<KLink>* out);
  int addrs(std::vector<KAddr>* out);
  int routes(std::vector<KRoute>* out);  // main table, IPv4, unicast
  int add_addr(const KAddr& a);
  int del_addr(const KAddr& a);
  int add_route(const KRoute& r);
  int del_route(const KRoute& r);
  int set_up(int index, bool up);
  const std::string& error() const { return error_; }

 private:
  int fail(int nle, const char* what);
  nl_sock* sk_ = nullptr;
  std::string error_;
};

}  // namespace networkd
