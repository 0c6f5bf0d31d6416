// Vocabulary of the C++ API, shared with the runtime's internals: failures as values, the
// message header, and which transport carries a channel. Public and dependency-free, so
// every layer of the tree may use it.
#pragma once

#include <cassert>
#include <cstdint>
#include <optional>
#include <utility>

#include "ipc.h"

namespace fwipc {

// A T or a negative errno, never an exception across the C boundary.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)), err_(0) {}  // NOLINT: implicit by design
  static Result error(int neg_errno) noexcept {
    assert(neg_errno < 0);
    return Result(neg_errno);
  }
  bool ok() const noexcept { return err_ == 0; }
  explicit operator bool() const noexcept { return ok(); }
  int error() const noexcept { return err_; }
  T& value() & { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  T& operator*() { return *value_; }

 private:
  explicit Result(int e) noexcept : err_(e) {}
  std::optional<T> value_;
  int err_;
};

// The five header fields of IPC_MESSAGE: one type for the C API, the C++ API and every
// transport.
using MsgHeader = ::IPC_HEADER;

// What really carries a channel (a QUEUE channel may fall back to a socket).
enum class TransportKind : uint32_t {
  kShmRing = IPC_TRANSPORT_SHM,
  kSocket = IPC_TRANSPORT_SOCKET,
  kPipe = IPC_TRANSPORT_PIPE,
};

}  // namespace fwipc
