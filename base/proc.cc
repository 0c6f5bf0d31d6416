#include "base/proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace fwipc {

int reopen_read_only(int fd) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  const int ro = ::open(path, O_RDONLY | O_CLOEXEC);
  return ro < 0 ? -errno : ro;
}

namespace {
// Whether /proc/PID/fdinfo/N says the descriptor was opened read-write.
bool held_read_write(const std::string& fdinfo) noexcept {
  FILE* f = std::fopen(fdinfo.c_str(), "re");
  if (f == nullptr) return false;
  char line[128];
  bool rw = false;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    unsigned flags = 0;
    if (std::sscanf(line, "flags: %o", &flags) == 1) {
      rw = (flags & O_ACCMODE) == O_RDWR;
      break;
    }
  }
  std::fclose(f);
  return rw;
}
}  // namespace

int open_memfd_of(pid_t pid, const std::string& memfd_name, int flags, bool held_writable,
                  const std::function<bool(int fd)>& accept) noexcept {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return -errno;
  const std::string want = "/memfd:" + memfd_name + " (deleted)";
  int found = -ENOENT;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[512];
    const std::string link = dir + "/" + e->d_name;
    const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    if (want != target) continue;
    if (held_writable && !held_read_write("/proc/" + std::to_string(pid) + "/fdinfo/" + e->d_name)) continue;
    const int fd = ::open(link.c_str(), flags | O_CLOEXEC);
    if (fd < 0) {
      found = -errno;
      continue;
    }
    if (accept(fd)) {
      found = fd;
      break;
    }
    ::close(fd);
  }
  ::closedir(d);
  return found;
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
