// Process identity that survives PID reuse: (pid, start time in clock ticks since boot).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>

namespace fwipc {

// Field 22 of /proc/PID/stat, or 0 if the process does not exist.
uint64_t process_start_time(pid_t pid) noexcept;

// True unless the process is gone or its PID now names a process started at another time.
bool process_alive(pid_t pid, uint64_t start_time) noexcept;

// A new descriptor for the file behind fd, opened read-only through /proc/self/fd (no
// mapping of it can ever be writable), or -errno. For shared memory handed to readers.
int reopen_read_only(int fd) noexcept;

// Opens, through /proc/PID/fd (same uid or root), a descriptor process pid holds for the
// memfd named `memfd_name`, with open flags `flags`; with `held_writable`, only one pid
// opened read-write (its own, not one it was handed read-only). Candidates go to accept()
// in fd order; the first it takes is returned (the rest are closed), else -ENOENT or
// the error that kept us from looking.
int open_memfd_of(pid_t pid, const std::string& memfd_name, int flags, bool held_writable,
                  const std::function<bool(int fd)>& accept) noexcept;

}  // namespace fwipc
