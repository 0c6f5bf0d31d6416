// Test helpers for service/ (see test_support.h).
#include "service/test_support.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace fwsvc::test {
namespace {

// The registry serving dir, found through its socket's peer credentials.
pid_t registry_pid(const std::string& dir) {
  const std::string path = dir + "/registry.sock";
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  pid_t pid = -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    ucred c{};
    socklen_t len = sizeof c;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) == 0) pid = c.pid;
  }
  ::close(fd);
  return pid;
}

}  // namespace

std::string runfile(const std::string& path) {
  const char* src = std::getenv("TEST_SRCDIR");
  return std::string(src != nullptr ? src : ".") + "/freeworld_ipc/" + path;
}

TempRuntime::TempRuntime() {
  char tmpl[] = "/tmp/fwsvc-XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  if (d == nullptr) std::abort();
  dir_ = d;
  ::chmod(d, 0755);
  ::setenv("FWIPC_RUNTIME_DIR", dir_.c_str(), 1);
  ::setenv("FWIPC_REGISTRY_IDLE_MS", "1000", 1);
  ::unsetenv("FWIPC_NO_AUTOSTART");
  const std::string exe = runfile("runtime/registry/daemon/fwipc-registryd");
  if (::access(exe.c_str(), X_OK) == 0) ::setenv("FWIPC_REGISTRYD", exe.c_str(), 1);
}

TempRuntime::~TempRuntime() {
  const pid_t pid = registry_pid(dir_);
  if (pid > 0) {
    ::kill(pid, SIGKILL);
    for (int i = 0; i < 500 && ::kill(pid, 0) == 0; ++i) ::usleep(2000);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

pid_t spawn(const std::function<int()>& fn) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(fn());
  return pid;
}

int wait_exit(pid_t pid, int timeout_ms) {
  int st = 0;
  for (int waited = 0;; waited += 5) {
    const pid_t r = ::waitpid(pid, &st, timeout_ms < 0 ? 0 : WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return -1;
    if (timeout_ms >= 0 && waited >= timeout_ms) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      return -2;
    }
    if (r == 0) ::usleep(5000);
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

}  // namespace fwsvc::test
