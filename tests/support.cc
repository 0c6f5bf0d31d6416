#include "tests/support.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "transports/frame.h"

namespace fwipc::test {

TempRuntime::TempRuntime() {
  char tmpl[] = "/tmp/fwipc-XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  if (d == nullptr) std::abort();
  dir_ = d;
  ::chmod(d, 0755);  // other uids (permission tests) must reach the registry socket
  ::setenv("FWIPC_RUNTIME_DIR", dir_.c_str(), 1);
  ::setenv("FWIPC_REGISTRY_IDLE_MS", "1000", 1);
  ::unsetenv("FWIPC_NO_AUTOSTART");
  // The registry the runtime auto-starts: the test's data dependency in its runfiles.
  if (const char* src = std::getenv("TEST_SRCDIR")) {
    const std::string exe = std::string(src) + "/freeworld_ipc/runtime/registry/daemon/fwipc-registryd";
    if (::access(exe.c_str(), X_OK) == 0) ::setenv("FWIPC_REGISTRYD", exe.c_str(), 1);
  }
}

TempRuntime::~TempRuntime() {
  kill_registry();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

pid_t registry_pid_at(const std::string& dir) {
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

std::string runfile(const std::string& path) {
  const char* src = std::getenv("TEST_SRCDIR");
  return std::string(src != nullptr ? src : ".") + "/freeworld_ipc/" + path;
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

Run ipcctl(std::vector<std::string> args) {
  args.insert(args.begin(), runfile("tools/ipcctl"));
  return run(args);
}

pid_t TempRuntime::registry_pid() const { return registry_pid_at(dir_); }

void TempRuntime::kill_registry() const {
  const pid_t pid = registry_pid();
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  for (int i = 0; i < 500 && ::kill(pid, 0) == 0; ++i) ::usleep(2000);
}

pid_t spawn(const std::function<int()>& fn) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(fn());
  return pid;
}

int wait_exit(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

int wait_exit_within(pid_t pid, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 5) {
    int st = 0;
    const pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
    if (r < 0 && errno != EINTR) return -1;
    ::usleep(5000);
  }
  ::kill(pid, SIGKILL);
  wait_exit(pid);
  return -2;
}

NotifySocket::NotifySocket() {
  char tmpl[] = "/tmp/fwipc-n-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) std::abort();
  dir_ = tmpl;
  path_ = dir_ + "/notify";
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int on = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::abort();
  ::chmod(dir_.c_str(), 0755);  // a daemon that drops to another uid still says READY=1
  ::chmod(path_.c_str(), 0666);
}

NotifySocket::~NotifySocket() {
  ::close(fd_);
  ::unlink(path_.c_str());
  ::rmdir(dir_.c_str());
}

bool NotifySocket::wait_ready(pid_t pid, int timeout_ms) const {
  // Polled in short steps: the daemon's exit is seen too (waitid WNOWAIT: not reaped).
  for (int waited = 0; waited < timeout_ms; waited += 100) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) == 1) {
      char buf[256];
      iovec iov{buf, sizeof buf - 1};
      alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(ucred))];
      msghdr m{};
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_control = ctl;
      m.msg_controllen = sizeof ctl;
      const ssize_t n = ::recvmsg(fd_, &m, 0);
      const cmsghdr* c = CMSG_FIRSTHDR(&m);
      ucred cr{};
      if (c != nullptr && c->cmsg_type == SCM_CREDENTIALS) std::memcpy(&cr, CMSG_DATA(c), sizeof cr);
      if (n > 0) {
        buf[n] = '\0';
        if (cr.pid == pid && std::strstr(buf, "READY=1") != nullptr) return true;
      }
      continue;
    }
    siginfo_t si{};
    if (::waitid(P_PID, id_t(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid) return false;
  }
  return false;
}

pid_t start_ready(const std::vector<std::string>& args, int timeout_ms) {
  NotifySocket notify;
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::setenv("NOTIFY_SOCKET", notify.path().c_str(), 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (pid < 0) return -1;
  if (notify.wait_ready(pid, timeout_ms)) return pid;
  ::kill(pid, SIGKILL);
  wait_exit(pid);
  return -1;
}

Barrier::Barrier() {
  if (::pipe(fds) != 0) std::abort();
}

Barrier::~Barrier() {
  ::close(fds[0]);
  ::close(fds[1]);
}

void Barrier::signal() const {
  const char b = 1;
  (void)!::write(fds[1], &b, 1);
}

bool Barrier::wait(int count) const {
  // Bounded: a peer that died before signalling must fail the test, not hang it.
  constexpr int kTimeoutMs = 60'000;
  for (int i = 0; i < count; ++i) {
    pollfd p{fds[0], POLLIN, 0};
    int r;
    do {
      r = ::poll(&p, 1, kTimeoutMs);
    } while (r < 0 && errno == EINTR);
    char b;
    if (r != 1 || ::read(fds[0], &b, 1) != 1) return false;
  }
  return true;
}

int fd_with_target(const std::string& suffix, bool anywhere) {
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const std::string t = std::filesystem::read_symlink(e.path(), ec).string();
    if (ec) continue;
    const bool hit = anywhere
                         ? t.find(suffix) != std::string::npos
                         : t.size() >= suffix.size() && t.compare(t.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (hit) return std::atoi(e.path().filename().c_str());
  }
  return -1;
}

long write_forged_frame(int fd, uint32_t sender, const std::string& text, uint16_t kind, uint32_t type) {
  // Built as a message, then given any kind: tests forge JOINs and data alike.
  const MsgHeader h{type, static_cast<uint32_t>(text.size()), sender, 0, 0};
  frame::Frame f = frame::make_data_frame(h, text.data(), sender);
  f.kind = kind;
  return ::write(fd, &f, f.wire_bytes());
}

}  // namespace fwipc::test
