// Failures as values: a T or a negative errno, never an exception across the C boundary.
#pragma once

#include <cassert>
#include <optional>
#include <utility>

namespace fwipc {

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

}  // namespace fwipc
