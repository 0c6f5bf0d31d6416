// C++ API over the same core as the C API: move-only RAII channels built by factories,
// span-based send/receive, and zero-copy loan/commit on the shared-memory ring.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "runtime/common/result.h"
#include "runtime/core.h"
#include "runtime/include/ipc.h"

namespace fwipc {

class Channel;

// A claimed ring slot. Fill payload(), then commit(); destroyed uncommitted, it is
// published as a skip record so the channel never wedges on it.
class [[nodiscard]] LoanedMessage {
 public:
  LoanedMessage(LoanedMessage&& o) noexcept : id_(o.id_), loan_(std::exchange(o.loan_, {})) {}
  LoanedMessage& operator=(LoanedMessage&&) = delete;
  ~LoanedMessage() { core::abandon(id_, &loan_); }

  std::span<std::byte> payload() noexcept {
    return {reinterpret_cast<std::byte*>(loan_.data()), shm::Loan::capacity()};
  }
  // Publishes size_bytes of payload(). Returns size_bytes or a negative errno.
  int commit(uint32_t size_bytes, uint32_t type, uint32_t priority = 0, uint32_t receiver = 0) noexcept {
    return core::commit(id_, &loan_, MsgHeader{type, size_bytes, 0, receiver, priority});
  }

 private:
  friend class Channel;
  LoanedMessage(uint32_t id, shm::Loan l) noexcept : id_(id), loan_(l) {}
  uint32_t id_;
  shm::Loan loan_;
};

class Channel {
 public:
  static Result<Channel> create(const char* name, uint32_t type, uint32_t capacity_bytes,
                                uint32_t perm_mode = 0660) noexcept {
    return from(core::create(name, type, capacity_bytes, perm_mode));
  }
  static Result<Channel> open(const char* name, uint32_t mode) noexcept { return from(core::open(name, mode)); }

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
    if (id_ >= 0) (void)core::close(static_cast<uint32_t>(id_));
    id_ = -1;
  }

  [[nodiscard]] int send(std::span<const std::byte> data, uint32_t type, uint32_t priority = 0,
                         uint32_t receiver = 0) noexcept {
    if (data.size() > IPC_MAX_PAYLOAD) return -EMSGSIZE;
    return core::send(uid(), MsgHeader{type, static_cast<uint32_t>(data.size()), 0, receiver, priority}, data.data());
  }
  // Receives into buf; *hdr (if given) gets type, size, sender, receiver, priority.
  [[nodiscard]] int receive(std::span<std::byte> buf, MsgHeader* hdr = nullptr,
                            int timeout_ms = core::kDefaultTimeout) noexcept {
    MsgHeader local;
    return core::receive(uid(), hdr ? hdr : &local, buf.data(), static_cast<uint32_t>(buf.size()), timeout_ms);
  }
  [[nodiscard]] Result<LoanedMessage> loan() noexcept {
    shm::Loan l;
    const int rc = core::loan(uid(), &l);
    if (rc < 0) return Result<LoanedMessage>::error(rc);
    return LoanedMessage(uid(), l);
  }
  [[nodiscard]] int fd() noexcept { return core::notify_fd(uid()); }
  // The transport really used (a QUEUE channel may have fallen back to a socket).
  TransportKind transport() const noexcept { return static_cast<TransportKind>(core::transport_of(uid())); }

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
