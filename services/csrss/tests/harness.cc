#include "services/csrss/tests/harness.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace csrss::test {

std::string runfile(const std::string& path) {
  const char* src = std::getenv("TEST_SRCDIR");
  return std::string(src ? src : ".") + "/freeworld_ipc/" + path;
}

namespace {
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

Runtime::Runtime() {
  char tmpl[] = "/tmp/fwipc-XXXXXX";
  if (!::mkdtemp(tmpl)) std::abort();
  dir_ = tmpl;
  ::chmod(tmpl, 0755);
  ::setenv("FWIPC_RUNTIME_DIR", tmpl, 1);
  ::setenv("FWIPC_REGISTRY_IDLE_MS", "1000", 1);
  ::unsetenv("FWIPC_NO_AUTOSTART");
  const std::string reg = runfile("runtime/registry/daemon/fwipc-registryd");
  if (::access(reg.c_str(), X_OK) == 0) ::setenv("FWIPC_REGISTRYD", reg.c_str(), 1);
}

Runtime::~Runtime() {
  const pid_t r = registry_pid(dir_);
  if (r > 0) ::kill(r, SIGKILL);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Daemon::Daemon(std::vector<std::string> args, const std::string& program) {
  const std::string bin = runfile(program);
  // Outside the runtime directory (the registry tidies that), and only the daemon's own
  // datagram counts (the registry it starts inherits NOTIFY_SOCKET and says READY=1 too).
  const std::string sock = "/tmp/fwipc-csrss-notify-" + std::to_string(::getpid()) + ".sock";
  const int nfd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int on = 1;
  ::setsockopt(nfd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, sock.c_str(), sizeof a.sun_path - 1);
  ::unlink(sock.c_str());
  if (::bind(nfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::abort();
  pid_ = ::fork();
  if (pid_ == 0) {
    ::setenv("NOTIFY_SOCKET", sock.c_str(), 1);
    std::vector<char*> argv{const_cast<char*>(bin.c_str())};
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  // READY=1, or the daemon's exit, within an anti-hang bound.
  pollfd p{nfd, POLLIN, 0};
  char buf[256] = {};
  for (int i = 0; i < 600; i++) {
    if (::poll(&p, 1, 100) == 1) {
      iovec iov{buf, sizeof buf - 1};
      alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(ucred))];
      msghdr m{};
      m.msg_iov = &iov, m.msg_iovlen = 1, m.msg_control = ctl, m.msg_controllen = sizeof ctl;
      const ssize_t n = ::recvmsg(nfd, &m, 0);
      const cmsghdr* c = CMSG_FIRSTHDR(&m);
      ucred cr{};
      if (c && c->cmsg_type == SCM_CREDENTIALS) std::memcpy(&cr, CMSG_DATA(c), sizeof cr);
      if (n > 0) buf[n] = 0;
      if (n > 0 && cr.pid == pid_ && std::strstr(buf, "READY=1")) break;
    }
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      break;
    }
  }
  ::close(nfd);
  ::unlink(sock.c_str());
}

int Daemon::stop() {
  if (pid_ < 0) return -1;
  ::kill(pid_, SIGTERM);
  const int st = wait_exit(pid_, 20000);
  pid_ = -1;
  return st;
}

Daemon::~Daemon() { stop(); }

pid_t spawn(const std::function<int()>& fn) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(fn());
  return pid;
}

int wait_exit(pid_t pid, int timeout_ms) {
  int st = 0;
  for (int waited = 0;; waited += 5) {
    const pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) break;
    if (r < 0) return -1;
    if (waited >= timeout_ms) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      return -2;
    }
    timespec ts{0, 5000000};
    ::nanosleep(&ts, nullptr);
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Run run(const std::vector<std::string>& args) {
  int p[2];
  if (::pipe(p) != 0) return Run{-1, {}};
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(p[1], 1);
    ::close(p[0]);
    ::close(p[1]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(p[1]);
  Run r{0, {}};
  char buf[4096];
  for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;) r.out.append(buf, size_t(n));
  ::close(p[0]);
  r.status = wait_exit(pid);
  return r;
}

}  // namespace csrss::test
