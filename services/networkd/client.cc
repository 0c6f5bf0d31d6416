// libnetworkd_ipc: the C calls of networkd_ipc.h as fwsvc calls (protocol.h).
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fwsvc.h"
#include "services/networkd/networkd_ipc.h"
#include "services/networkd/protocol.h"

using json = nlohmann::json;
using namespace networkd;

namespace {

thread_local std::string t_error;
constexpr int kCallTimeoutMs = 15000;
constexpr size_t kMaxReplyBytes = 1u << 20;

int set_error(int rc, std::string text) {
  t_error = std::move(text);
  return rc;
}

// One channel id per process, reopened after fork (the child's inherited id is -EBADF)
// or when networkd restarted (-EPIPE).
std::mutex g_mu;
int g_ch = -1;
pid_t g_pid = 0;

int channel(bool reopen) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_ch >= 0 && g_pid == getpid() && !reopen) return g_ch;
  if (g_ch >= 0 && g_pid == getpid()) ipc_close_channel(uint32_t(g_ch));
  g_ch = fwsvc_open("networkd", 0 /* root */, IPC_MODE_WRITE);
  g_pid = getpid();
  return g_ch;
}

int call(uint32_t method, const json& body, std::string* reply) {
  const std::string req = body.dump(-1, ' ', false, json::error_handler_t::replace);
  std::vector<char> buf(64 * 1024);
  for (int attempt = 0;; ++attempt) {
    const int ch = channel(attempt > 0);
    if (ch < 0) {
      const char* detail = ipc_last_error_detail();
      return set_error(ch, std::string("networkd: ") + ipc_strerror(ch) +
                               (ch == -EPERM ? " (the channel is not served by root)" : "") +
                               (detail && *detail ? std::string(": ") + detail : ""));
    }
    size_t got = 0;
    int rc = fwsvc_call(uint32_t(ch), method, req.data(), req.size(), buf.data(), buf.size(), &got, kCallTimeoutMs);
    if (rc == -EMSGSIZE && got > buf.size() && got <= kMaxReplyBytes) {
      // The state can outgrow the first buffer: ask again with room (the handler is a query).
      buf.resize(got);
      rc = fwsvc_call(uint32_t(ch), method, req.data(), req.size(), buf.data(), buf.size(), &got, kCallTimeoutMs);
    }
    if ((rc == -EPIPE || rc == -EBADF) && attempt == 0) continue;  // networkd restarted
    if (rc < 0) {
      std::string why = got > 0 && got <= buf.size() ? error_text(buf.data(), got) : std::string();
      if (why.empty()) why = std::string("networkd: ") + ipc_strerror(rc);
      return set_error(rc, why);
    }
    if (reply != nullptr) reply->assign(buf.data(), got);
    t_error.clear();
    return 0;
  }
}

json str_or_null(const char* s) { return s != nullptr ? json(s) : json(nullptr); }

bool valid_utf8_arg(const char* s) { return s == nullptr || std::strlen(s) <= 4096; }

}  // namespace

extern "C" {

const char* networkd_last_error(void) { return t_error.c_str(); }

int networkd_configure_static(const char* iface, const char* ip, const char* netmask, const char* gateway) {
  if (!valid_utf8_arg(iface) || !valid_utf8_arg(ip) || !valid_utf8_arg(netmask) || !valid_utf8_arg(gateway))
    return set_error(-EINVAL, "argument longer than 4096 bytes");
  json b = {{"iface", str_or_null(iface)}, {"ip", str_or_null(ip)}, {"netmask", str_or_null(netmask)}};
  if (gateway != nullptr) b["gateway"] = gateway;
  return call(kConfigureStatic, b, nullptr);
}

int networkd_enable_dhcp(const char* iface) {
  if (!valid_utf8_arg(iface)) return set_error(-EINVAL, "iface: longer than 4096 bytes");
  return call(kEnableDhcp, {{"iface", str_or_null(iface)}}, nullptr);
}

int networkd_set_dns_merge(const char* const* servers, int n, int merge) {
  if (n < 0 || (n > 0 && servers == nullptr)) return set_error(-EINVAL, "servers: negative count or NULL array");
  if (n > 64) return set_error(-E2BIG, "servers: more than " + std::to_string(kMaxDnsServers) + " servers");
  json list = json::array();
  for (int i = 0; i < n; ++i) {
    if (!valid_utf8_arg(servers[i])) return set_error(-EINVAL, "servers: longer than 4096 bytes");
    list.push_back(str_or_null(servers[i]));
  }
  return call(kSetDns, {{"servers", list}, {"merge", merge != 0}}, nullptr);
}

int networkd_set_dns(const char* const* servers, int n) { return networkd_set_dns_merge(servers, n, 0); }

static int route_call(uint32_t method, const char* dest, const char* gateway, const char* iface) {
  if (!valid_utf8_arg(dest) || !valid_utf8_arg(gateway) || !valid_utf8_arg(iface))
    return set_error(-EINVAL, "argument longer than 4096 bytes");
  json b = {{"dest", str_or_null(dest)}};
  if (gateway != nullptr) b["gateway"] = gateway;
  if (iface != nullptr) b["iface"] = iface;
  return call(method, b, nullptr);
}

int networkd_add_route(const char* dest_cidr, const char* gateway, const char* iface) {
  return route_call(kAddRoute, dest_cidr, gateway, iface);
}

int networkd_del_route(const char* dest_cidr, const char* gateway, const char* iface) {
  return route_call(kDelRoute, dest_cidr, gateway, iface);
}

int networkd_link_up(const char* iface, int up) {
  if (!valid_utf8_arg(iface)) return set_error(-EINVAL, "iface: longer than 4096 bytes");
  return call(kLinkUp, {{"iface", str_or_null(iface)}, {"up", up != 0}}, nullptr);
}

int networkd_get_state(char* out, size_t cap) {
  if (out == nullptr || cap == 0) return set_error(-EINVAL, "json: NULL or empty buffer");
  std::string reply;
  const int rc = call(kGetState, json::object(), &reply);
  if (rc < 0) return rc;
  if (reply.size() + 1 > cap)
    return set_error(-EMSGSIZE, "json: the state needs " + std::to_string(reply.size() + 1) + " bytes");
  std::memcpy(out, reply.data(), reply.size());
  out[reply.size()] = '\0';
  return 0;
}

int networkd_checkpoint(int rollback_ms) { return call(kCheckpoint, {{"rollback_ms", rollback_ms}}, nullptr); }

int networkd_confirm(void) { return call(kConfirm, json::object(), nullptr); }

int networkd_wait_online(const char* iface, int timeout_ms) {
  if (!valid_utf8_arg(iface)) return set_error(-EINVAL, "iface: longer than 4096 bytes");
  json b = json::object();
  if (iface != nullptr) b["iface"] = iface;
  timespec start{};
  clock_gettime(CLOCK_MONOTONIC, &start);
  // networkd answers at once (its loop never blocks on one client), so the wait is here:
  // ask, and ask again every 50 ms until online, refused for good, or out of time.
  for (;;) {
    const int rc = call(kOnline, b, nullptr);
    if (rc != -EAGAIN) return rc;
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const long waited = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (timeout_ms >= 0 && waited >= timeout_ms)
      return set_error(-ETIMEDOUT, "not online after " + std::to_string(timeout_ms) + " ms: " + t_error);
    poll(nullptr, 0, 50);
  }
}

}  // extern "C"
