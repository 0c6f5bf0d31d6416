#include "services/events/test_support.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "runtime/registry/client.h"
#include "runtime/registry/protocol.h"

namespace fwevent::test {

namespace {

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

pid_t registry_pid_at(const std::string& dir) {
  const std::string path = dir + "/registry.sock";
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  pid_t pid = -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    ucred c{};
    socklen_t len = sizeof c;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) == 0) pid = c.pid;
  }
  close(fd);
  return pid;
}

}  // namespace

std::string runfile(const std::string& path) {
  const char* src = std::getenv("TEST_SRCDIR");
  return std::string(src != nullptr ? src : ".") + "/freeworld_ipc/" + path;
}

TempRuntime::TempRuntime() {
  char tmpl[] = "/tmp/fwipc-XXXXXX";
  const char* d = mkdtemp(tmpl);
  if (d == nullptr) std::abort();
  dir_ = d;
  setenv("FWIPC_RUNTIME_DIR", dir_.c_str(), 1);
  setenv("FWIPC_REGISTRY_IDLE_MS", "1000", 1);
  unsetenv("FWIPC_NO_AUTOSTART");
  const std::string exe = runfile("runtime/registry/daemon/fwipc-registryd");
  if (access(exe.c_str(), X_OK) == 0) setenv("FWIPC_REGISTRYD", exe.c_str(), 1);
}

TempRuntime::~TempRuntime() {
  const pid_t pid = registry_pid_at(dir_);
  if (pid > 0) {
    kill(pid, SIGKILL);
    for (int i = 0; i < 500 && kill(pid, 0) == 0; ++i) usleep(2000);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Eventsd::Eventsd(std::vector<std::string> args) {
  static int n = 0;
  // Unique across concurrent tests: PIDs repeat in sandboxes' PID namespaces, the abstract
  // socket namespace is shared; the runtime directory's mkdtemp name is not.
  const char* dir = std::getenv("FWIPC_RUNTIME_DIR");
  const std::string name = "@fwevent-test" + std::string(dir != nullptr ? dir : "") + "-" + std::to_string(++n);
  const int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path + 1, name.c_str() + 1, name.size() - 1);
  const socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + name.size());
  if (bind(s, reinterpret_cast<sockaddr*>(&a), len) != 0) {
    close(s);
    return;
  }
  const std::string exe = runfile("services/events/eventsd");
  pid_ = fork();
  if (pid_ == 0) {
    setenv("NOTIFY_SOCKET", name.c_str(), 1);
    std::vector<char*> argv{const_cast<char*>(exe.c_str())};
    for (auto& x : args) argv.push_back(x.data());
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  bool ready = false;
  const int64_t deadline = now_ms() + 10000;
  while (!ready && now_ms() < deadline) {
    pollfd p{s, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) break;  // it exited
      continue;
    }
    char buf[256];
    const ssize_t r = recv(s, buf, sizeof buf - 1, 0);
    if (r > 0) {
      buf[r] = '\0';
      ready = std::strstr(buf, "READY=1") != nullptr;
    }
  }
  close(s);
  if (!ready) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

int Eventsd::stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  const int st = wait_exit(pid_, 10000);
  pid_ = -1;
  return st;
}

Eventsd::~Eventsd() { stop(); }

pid_t spawn(const std::function<int()>& fn) {
  const pid_t pid = fork();
  if (pid == 0) _exit(fn());
  return pid;
}

int wait_exit(pid_t pid, int timeout_ms) {
  const int64_t deadline = now_ms() + timeout_ms;
  while (true) {
    int st = 0;
    const pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
    if (r < 0 && errno != EINTR) return -1;
    if (now_ms() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      return -2;
    }
    usleep(2000);  // an anti-hang bound on a child's exit, not synchronisation
  }
}

Child start(const std::string& exe, const std::vector<std::string>& args) {
  int o[2], e[2];
  if (pipe2(o, O_CLOEXEC) != 0 || pipe2(e, O_CLOEXEC) != 0) return {};
  Child c;
  c.pid = fork();
  if (c.pid == 0) {
    dup2(o[1], 1);
    dup2(e[1], 2);
    std::vector<std::string> a = args;
    std::vector<char*> argv{const_cast<char*>(exe.c_str())};
    for (auto& x : a) argv.push_back(x.data());
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  close(o[1]);
  close(e[1]);
  c.out = o[0];
  c.err = e[0];
  return c;
}

std::string read_until(int fd, const std::string& what, int timeout_ms) {
  std::string got;
  const int64_t deadline = now_ms() + timeout_ms;
  while (what.empty() || got.find(what) == std::string::npos) {
    const int64_t left = deadline - now_ms();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, int(left)) <= 0) continue;
    char buf[4096];
    const ssize_t r = read(fd, buf, sizeof buf);
    if (r <= 0) break;
    got.append(buf, size_t(r));
  }
  return got;
}

std::string read_all(int fd, int timeout_ms) { return read_until(fd, "", timeout_ms); }

Pipe::Pipe() {
  if (pipe2(fds, O_CLOEXEC) != 0) std::abort();
}
Pipe::~Pipe() {
  close(fds[0]);
  close(fds[1]);
}
void Pipe::signal(char c) const { (void)!write(fds[1], &c, 1); }
int Pipe::wait(int timeout_ms) const {
  pollfd p{fds[0], POLLIN, 0};
  int r;
  do r = poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  char c;
  if (r <= 0 || read(fds[0], &c, 1) != 1) return -1;
  return static_cast<unsigned char>(c);
}

std::vector<Member> events_members() {
  namespace reg = fwipc::registry;
  reg::Client c;
  reg::ClientOptions o;
  o.autostart = false;
  std::vector<Member> out;
  const char* dir = std::getenv("FWIPC_RUNTIME_DIR");
  for (uint32_t cursor = 0;;) {
    reg::Request rq{};
    rq.op = static_cast<uint32_t>(reg::Op::kList);
    rq.handle = cursor;
    reg::ChannelInfo info{};
    int fds[reg::kReplyFds];
    if (c.call(dir ? dir : "", o, rq, &info, sizeof info, fds) < 0 || info.status < 0) break;
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
    info.name[sizeof info.name - 1] = '\0';
    if (std::strcmp(info.name, "events") == 0) {
      for (uint32_t i = 0; i < std::min(info.listed, reg::kInfoMembers); ++i) {
        const auto& m = info.members[i];
        out.push_back(Member{m.pid, (m.flags & reg::kMemberRead) != 0, (m.flags & reg::kMemberWrite) != 0,
                             (m.flags & reg::kMemberCreator) != 0, (m.flags & reg::kMemberAlive) != 0});
      }
      break;
    }
    cursor = info.channel + 1;
  }
  return out;
}

bool is_member(uint32_t pid) {
  for (const Member& m : events_members()) {
    if (m.pid == pid) return true;
  }
  return false;
}

}  // namespace fwevent::test
