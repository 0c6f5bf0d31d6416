// Process identity that survives PID reuse: (pid, start time in clock ticks since boot).
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace fwipc {

// Field 22 of /proc/PID/stat, or 0 if the process does not exist.
uint64_t process_start_time(pid_t pid) noexcept;

// True unless the process is gone or its PID now names a process started at another time.
bool process_alive(pid_t pid, uint64_t start_time) noexcept;

// A new descriptor for the file behind fd, opened read-only through /proc/self/fd (no
// mapping of it can ever be writable), or -errno. For shared memory handed to readers.
int reopen_read_only(int fd) noexcept;

}  // namespace fwipc
