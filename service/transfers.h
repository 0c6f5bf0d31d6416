// The service side of fragmentation, with no I/O: fragments in, complete request bodies
// or answers out. It holds incomplete request bodies and the unsent rest of long replies,
// keyed by (caller PID, transfer id), and bounds what callers can make it hold: a body
// size, a count per caller and in total, and an idle timeout. The fuzz target drives it
// directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <unordered_map>
#include <vector>

#include "service/wire.h"

namespace fwsvc {

struct Limits {
  uint32_t max_body_bytes = 1u << 20;
  uint32_t max_transfers = 16;
  uint32_t max_per_caller = 4;
  uint32_t timeout_ms = 5000;
};

struct TransferStats {
  uint64_t malformed = 0;
  uint64_t unknown_method = 0;
  uint64_t refused_busy = 0;
  uint64_t refused_size = 0;
  uint64_t expired = 0;
  uint64_t evicted = 0;
};

// A request body that arrived whole: the handler's input. body points into the payload
// given to accept() or into the table, valid until the next call on the table.
struct Complete {
  uint32_t pid = 0;
  uint32_t transfer = 0;
  uint32_t method = 0;
  std::span<const uint8_t> body;
};

class TransferTable {
 public:
  // known(method): whether a handler exists, asked before a body is held for it.
  TransferTable(const Limits& limits, std::function<bool(uint32_t)> known);

  // Takes one call payload (n bytes) from pid at now_ms. Either the request is complete:
  // returns 0 and fills *done (answer it with reply()); or writes the answer (kAck, kReply
  // for a fetch, kError) into out, IPC_MAX_PAYLOAD bytes, and returns its length.
  [[nodiscard]] size_t accept(uint32_t pid, const uint8_t* payload, size_t n, int64_t now_ms, Complete* done,
                              uint8_t* out);

  // The answer to a complete request: the reply's first fragment into out (returns its
  // length). Keeps the rest for kFetch, making room by evicting if the caps are reached.
  // body.size() must be <= max_body_bytes (the caller checks: fwsvc_reply's -EMSGSIZE).
  [[nodiscard]] size_t reply(const Complete& done, int32_t status, std::span<const uint8_t> body, int64_t now_ms,
                             uint8_t* out);

  // Drops every transfer idle for timeout_ms or more.
  void expire(int64_t now_ms);

  size_t size() const noexcept { return entries_.size(); }
  // Bytes held in bodies (reserved capacity), for the fuzz target's bound check.
  size_t bytes_held() const noexcept;
  const TransferStats& stats() const noexcept { return stats_; }
  const Limits& limits() const noexcept { return limits_; }

 private:
  struct Entry {
    bool receiving = true;  // an incomplete request; else the rest of a reply
    uint32_t method = 0;    // receiving
    int32_t status = 0;     // sending
    uint32_t total = 0;
    uint32_t done = 0;  // bytes received, or bytes sent
    std::vector<uint8_t> body;
    int64_t touched_ms = 0;
    uint64_t age = 0;  // creation order, for eviction
  };
  static uint64_t key(uint32_t pid, uint32_t transfer) noexcept { return (uint64_t(pid) << 32) | transfer; }

  size_t on_request(uint32_t pid, const FragmentHeader& h, std::span<const uint8_t> data, int64_t now_ms,
                    Complete* done, uint8_t* out);
  size_t on_fetch(uint32_t pid, const FragmentHeader& h, int64_t now_ms, uint8_t* out);
  size_t error(uint32_t transfer, int err, uint8_t* out) const noexcept;
  void erase(uint64_t k);
  void make_room(uint32_t pid);
  uint32_t held_by(uint32_t pid) const;

  Limits limits_;
  std::function<bool(uint32_t)> known_;
  std::unordered_map<uint64_t, Entry> entries_;
  std::unordered_map<uint32_t, uint32_t> per_pid_;  // pid -> entries held
  std::vector<uint8_t> completed_;                  // the last reassembled body
  uint64_t next_age_ = 0;
  TransferStats stats_;
};

}  // namespace fwsvc
