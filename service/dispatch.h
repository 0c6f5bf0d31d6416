// Method dispatch, with no I/O: one call payload in, one answer out. Fragments go
// through the transfer table; a complete request runs its method's handler, whose
// fwsvc_reply() writes the answer. service.cc feeds it from the channel; tests feed it
// directly.
#pragma once

#include <cstdint>
#include <unordered_map>

#include "fwsvc.h"
#include "service/transfers.h"

namespace fwsvc {

class Dispatcher {
 public:
  explicit Dispatcher(const Limits& limits);
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // 0, or -EEXIST when method has a handler.
  int add_method(uint32_t method, fwsvc_method_fn fn, void* ctx);
  // Answers one call from sender: writes reply->type, size and payload (priority,
  // receiver 0). Runs at most one handler.
  void handle(uint32_t sender, const IPC_MESSAGE& request, IPC_MESSAGE* reply, int64_t now_ms);
  void expire(int64_t now_ms) { table_.expire(now_ms); }

  size_t held() const noexcept { return table_.size(); }
  uint64_t calls() const noexcept { return calls_; }
  const TransferStats& table_stats() const noexcept { return table_.stats(); }
  const Limits& limits() const noexcept { return table_.limits(); }

 private:
  struct Method {
    fwsvc_method_fn fn;
    void* ctx;
  };
  std::unordered_map<uint32_t, Method> methods_;
  TransferTable table_;
  uint64_t calls_ = 0;
};

// Limits from options (0 fields: the defaults).
Limits limits_from(const fwsvc_options& opts);

}  // namespace fwsvc
