// Monotonic time and deadlines. Every timed call in the runtime takes a relative
// timeout_ns (< 0: forever, 0: do not wait, > 0: that long) and turns it into one Deadline
// at entry, so retries inside the call never extend the caller's bound.
#pragma once

#include <climits>
#include <cstdint>
#include <ctime>

namespace fwipc {

inline int64_t monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

class Deadline {
 public:
  // timeout_ns < 0: never expires; 0: already expired (poll); > 0: that long from now.
  static Deadline after_ns(int64_t timeout_ns) noexcept {
    if (timeout_ns < 0) return Deadline(-1);
    return Deadline(monotonic_ns() + timeout_ns);
  }
  static Deadline after_ms(int timeout_ms) noexcept {
    return after_ns(timeout_ms < 0 ? -1 : int64_t(timeout_ms) * 1000000);
  }
  static Deadline never() noexcept { return Deadline(-1); }

  bool infinite() const noexcept { return at_ns_ < 0; }
  bool expired() const noexcept { return !infinite() && monotonic_ns() >= at_ns_; }

  // Nanoseconds left: -1 if infinite, else >= 0.
  int64_t remaining_ns() const noexcept {
    if (infinite()) return -1;
    const int64_t left = at_ns_ - monotonic_ns();
    return left > 0 ? left : 0;
  }

  // A poll()/epoll_wait() timeout: -1 if infinite, else the milliseconds left rounded up
  // (so a waiter never wakes just before the deadline and spins), at most cap_ms when
  // cap_ms >= 0.
  int poll_ms(int cap_ms = -1) const noexcept {
    int64_t ms;
    if (infinite()) {
      ms = -1;
    } else {
      ms = (remaining_ns() + 999999) / 1000000;
      if (ms > INT_MAX) ms = INT_MAX;
    }
    if (cap_ms >= 0 && (ms < 0 || ms > cap_ms)) ms = cap_ms;
    return static_cast<int>(ms);
  }

  // Absolute monotonic time, -1 when infinite (for code that stores the deadline).
  int64_t at_ns() const noexcept { return at_ns_; }

 private:
  explicit Deadline(int64_t at_ns) noexcept : at_ns_(at_ns) {}
  int64_t at_ns_;
};

}  // namespace fwipc
