#include "services/events/test_support.h"

#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "runtime/registry/client.h"
#include "runtime/registry/protocol.h"

namespace fwevent::test {

namespace {

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

}  // namespace

Eventsd::Eventsd(std::vector<std::string> args) {
  args.insert(args.begin(), runfile("services/events/eventsd"));
  pid_ = fwipc::test::start_ready(args, 10000);
}

int Eventsd::stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  const int st = wait_exit(pid_, 10000);
  pid_ = -1;
  return st;
}

Eventsd::~Eventsd() { stop(); }

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
