// C++ API: move-only RAII channels built by factories, span-based send/receive, batches,
// and zero-copy loan/commit and consume on the shared-memory ring. Header-only over the
// public C calls of ipc.h, so a C++ program needs only -Iruntime/include and -lfwipc.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>

#include "fwipc/types.hpp"
#include "ipc.h"

namespace fwipc {

class Channel;

// A claimed ring slot. Fill payload(), then commit(); destroyed uncommitted, it is
// published as a skip record so the channel never wedges on it.
class [[nodiscard]] LoanedMessage {
 public:
  LoanedMessage(LoanedMessage&& o) noexcept : id_(o.id_), loan_(std::exchange(o.loan_, IPC_LOAN{})) {}
  LoanedMessage& operator=(LoanedMessage&&) = delete;
  ~LoanedMessage() { ipc_abandon(id_, &loan_); }

  std::span<std::byte> payload() noexcept { return {static_cast<std::byte*>(loan_.payload), capacity()}; }
  static constexpr size_t capacity() noexcept { return IPC_MAX_PAYLOAD; }
  // Publishes size_bytes of payload(). Returns size_bytes or a negative errno.
  int commit(uint32_t size_bytes, uint32_t type, uint32_t priority = 0, uint32_t receiver = 0) noexcept {
    const MsgHeader h{type, size_bytes, 0, receiver, priority};
    return ipc_commit(id_, &loan_, &h);
  }

 private:
  friend class Channel;
  LoanedMessage(uint32_t id, IPC_LOAN l) noexcept : id_(id), loan_(l) {}
  uint32_t id_;
  IPC_LOAN loan_;
};

class Channel {
 public:
  static Result<Channel> create(const char* name, uint32_t type, uint32_t capacity_bytes,
                                uint32_t perm_mode = 0660) noexcept {
    return from(ipc_create_channel_ex(name, type, capacity_bytes, perm_mode));
  }
  static Result<Channel> open(const char* name, uint32_t mode) noexcept { return from(ipc_open_channel(name, mode)); }
  // Takes over an id from the C API (closed with the Channel); release() gives it back.
  static Channel adopt(int id) noexcept {
    Channel c;
    c.id_ = id;
    return c;
  }
  [[nodiscard]] int release() noexcept { return std::exchange(id_, -1); }

  Channel() = default;
  Channel(Channel&& o) noexcept : id_(std::exchange(o.id_, -1)) {}
  Channel& operator=(Channel&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, -1);
    }
    return *this;
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  ~Channel() { reset(); }

  int id() const noexcept { return id_; }
  void reset() noexcept {
    if (id_ >= 0) (void)ipc_close_channel(static_cast<uint32_t>(id_));
    id_ = -1;
  }

  [[nodiscard]] int send(std::span<const std::byte> data, uint32_t type, uint32_t priority = 0,
                         uint32_t receiver = 0) noexcept {
    if (data.size() > IPC_MAX_PAYLOAD) return -EMSGSIZE;
    const MsgHeader h{type, static_cast<uint32_t>(data.size()), 0, receiver, priority};
    return ipc_send_header(uid(), &h, data.data());
  }
  // Receives into buf; *hdr (if given) gets type, size, sender, receiver, priority.
  // timeout_ms < 0 waits forever (0 on a non-blocking id), 0 polls.
  [[nodiscard]] int receive(std::span<std::byte> buf, MsgHeader* hdr = nullptr, int timeout_ms = -1) noexcept {
    MsgHeader local;
    return ipc_receive_header(uid(), hdr ? hdr : &local, buf.data(), static_cast<uint32_t>(buf.size()), timeout_ms);
  }
  // One message of a batch: what send() takes, as a value.
  struct OutMessage {
    std::span<const std::byte> data;
    uint32_t type = 0;
    uint32_t priority = 0;
    uint32_t receiver = 0;
  };
  // Sends msgs in order (ipc_send_batch). Returns how many were sent (all of them unless
  // an error stopped the batch part-way) or a negative errno if none was. Oversize:
  // -EMSGSIZE, none sent.
  [[nodiscard]] int send_batch(std::span<const OutMessage> msgs) noexcept {
    constexpr size_t kChunk = 64;
    MsgHeader hdrs[kChunk];
    const void* payloads[kChunk];
    for (const OutMessage& m : msgs)
      if (m.data.size() > IPC_MAX_PAYLOAD) return -EMSGSIZE;
    size_t done = 0;
    while (done < msgs.size()) {
      const size_t n = std::min(kChunk, msgs.size() - done);
      for (size_t i = 0; i < n; ++i) {
        const OutMessage& m = msgs[done + i];
        hdrs[i] = MsgHeader{m.type, static_cast<uint32_t>(m.data.size()), 0, m.receiver, m.priority};
        payloads[i] = m.data.data();
      }
      const int rc = ipc_send_batch(uid(), hdrs, payloads, static_cast<uint32_t>(n));
      if (rc < 0) return done > 0 ? static_cast<int>(done) : rc;
      done += static_cast<size_t>(rc);
      if (static_cast<size_t>(rc) < n) break;
    }
    return static_cast<int>(done);
  }
  // Calls fn(const MsgHeader&, std::span<const std::byte>) for up to max waiting messages,
  // waiting like receive() for the first (ipc_consume). On QUEUE the span points into the
  // ring (no copy) and is valid only during the call. fn must not throw. Returns how many
  // messages fn saw, or a negative errno as receive().
  template <typename F>
  [[nodiscard]] int consume(F&& fn, uint32_t max = 64, int timeout_ms = -1) noexcept {
    using Fn = std::remove_reference_t<F>;
    auto thunk = [](void* ctx, const IPC_HEADER* h, const void* p) {
      (*static_cast<Fn*>(ctx))(*h, std::span<const std::byte>(static_cast<const std::byte*>(p), h->size));
    };
    return ipc_consume(uid(), max, thunk, const_cast<void*>(static_cast<const void*>(&fn)), timeout_ms);
  }
  [[nodiscard]] Result<LoanedMessage> loan() noexcept {
    IPC_LOAN l{};
    const int rc = ipc_loan(uid(), &l);
    if (rc < 0) return Result<LoanedMessage>::error(rc);
    return LoanedMessage(uid(), l);
  }
  [[nodiscard]] int fd() noexcept { return ipc_channel_fd(uid()); }
  // The transport really used (a QUEUE channel may have fallen back to a socket).
  TransportKind transport() const noexcept { return static_cast<TransportKind>(ipc_channel_transport(uid())); }

 private:
  static Result<Channel> from(int id) noexcept {
    if (id < 0) return Result<Channel>::error(id);
    Channel c;
    c.id_ = id;
    return c;
  }
  uint32_t uid() const noexcept { return static_cast<uint32_t>(id_); }
  int id_ = -1;
};

}  // namespace fwipc
