#include "base/proc.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fwipc {

int reopen_read_only(int fd) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  const int ro = ::open(path, O_RDONLY | O_CLOEXEC);
  return ro < 0 ? -errno : ro;
}

namespace {
// Fields 3 (state) and 22 (start time) of /proc/PID/stat; false if unreadable.
bool read_stat(pid_t pid, char* state, uint64_t* start_time) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  // comm (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr || p[1] != ' ' || p[2] == '\0') return false;
  *state = p[2];
  int field = 2;
  for (; *p && field < 22; ++p) {
    if (*p == ' ') ++field;
  }
  if (field != 22) return false;
  *start_time = std::strtoull(p, nullptr, 10);
  return true;
}
}  // namespace

uint64_t process_start_time(pid_t pid) noexcept {
  char state;
  uint64_t t = 0;
  return read_stat(pid, &state, &t) ? t : 0;
}

bool process_alive(pid_t pid, uint64_t start_time) noexcept {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  char state;
  uint64_t now = 0;
  if (!read_stat(pid, &state, &now)) return ::kill(pid, 0) == 0 || errno == EPERM;  // /proc unreadable
  // A zombie has run its last instruction: its claims and cursors will never move again.
  if (state == 'Z' || state == 'X') return false;
  return start_time == 0 || now == start_time;
}

}  // namespace fwipc
