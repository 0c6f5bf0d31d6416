// What the harness's files share: process plumbing for the peers they fork.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "base/time.h"

namespace fwipc::bench::util {

constexpr uint32_t kStopType = 0xdeadu;

inline int64_t now_ns() { return monotonic_ns(); }

inline void reap(int pid) {
  if (pid <= 0) return;
  int st;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}

inline int wait_byte(int fd) {
  char b;
  return ::read(fd, &b, 1) == 1 ? 0 : -1;
}

}  // namespace fwipc::bench::util
