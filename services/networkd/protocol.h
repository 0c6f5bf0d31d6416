// networkd's wire protocol over fwsvc calls: the method numbers, each request body (a
// JSON object), and the decoders that turn another process's bytes into typed requests
// with a per-field error. Shared by the daemon, the client library and the fuzz target.
//
// Reply: status 0 (or a negative errno) and a JSON body; on failure the body is
// {"field": "...", "reason": "..."} naming what was refused and why.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "services/networkd/ip4.h"

namespace networkd {

enum Method : uint32_t {
  kConfigureStatic = 1,  // {"iface","ip","netmask","gateway"?}
  kEnableDhcp = 2,       // {"iface"}
  kSetDns = 3,           // {"servers":[...],"merge"?:bool}
  kAddRoute = 4,         // {"dest","gateway"?,"iface"?}
  kDelRoute = 5,         // the same
  kLinkUp = 6,           // {"iface","up":bool}
  kGetState = 7,         // {}
  kCheckpoint = 8,       // {"rollback_ms"}
  kConfirm = 9,          // {}
  kOnline = 10,          // {"iface"?}: 0 when online, -EAGAIN and the reason when not
};

inline constexpr size_t kMaxBodyBytes = 64 * 1024;  // requests; state replies may be larger
inline constexpr size_t kMaxIfaceLen = 15;          // IFNAMSIZ - 1
inline constexpr size_t kMaxDnsServers = 8;
inline constexpr uint32_t kMaxRollbackMs = 24u * 3600u * 1000u;

// A refusal: errno (positive), the field it concerns ("" for the whole request), the reason.
struct FieldError {
  int code = 0;
  std::string field;
  std::string reason;
};

struct StaticReq {
  std::string iface;
  uint32_t ip = 0;
  uint8_t prefix = 0;
  std::optional<uint32_t> gateway;
};
struct IfaceReq {
  std::string iface;  // empty: all (kOnline only)
};
struct DnsReq {
  std::vector<uint32_t> servers;
  bool merge = false;
};
struct RouteReq {
  Cidr dest;
  std::optional<uint32_t> gateway;
  std::string iface;  // may be empty: chosen from the gateway's subnet
};
struct LinkReq {
  std::string iface;
  bool up = true;
};
struct CheckpointReq {
  uint32_t rollback_ms = 0;
};
struct EmptyReq {};

using Request = std::variant<StaticReq, IfaceReq, DnsReq, RouteReq, LinkReq, CheckpointReq, EmptyReq>;

// Decodes the body of a call of method. Syntax and everything checkable without the
// kernel: types, bounds, address forms, contiguous netmask, gateway inside the subnet.
// Returns nullopt and fills *err when refused.
std::optional<Request> decode_request(uint32_t method, const void* body, size_t len, FieldError* err);

// Encodes an error reply body.
std::string encode_error(const FieldError& e);
// Reads "field: reason" out of an error reply body (empty when it is not one).
std::string error_text(const void* body, size_t len);

// One line the udhcpc hook sends to the daemon (see daemon.cc: the hook is networkd run
// by udhcpc with NETWORKD_HOOK_FD set).
struct HookEvent {
  std::string event;  // deconfig, bound, renew, leasefail, nak
  std::string iface;
  uint32_t ip = 0;
  uint8_t prefix = 0;
  std::vector<uint32_t> routers;
  std::vector<uint32_t> dns;
  uint32_t server = 0;
  uint32_t lease_s = 0;
};
std::optional<HookEvent> decode_hook_event(const std::string& line, std::string* why);

bool valid_iface_name(const std::string& s);

}  // namespace networkd
