// Helpers for the event bus tests: a private runtime directory with the registry from the
// runfiles, eventsd started and awaited through its READY=1, children, tools of the tree,
// and the registry's view of who is a member of the channel `events`. The runtime
// directory, children and the daemon's start come from tests/support.h.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tests/support.h"

namespace fwevent::test {

using fwipc::test::runfile;
using fwipc::test::spawn;
// mkdtemp("/tmp/fwipc-XXXXXX") as FWIPC_RUNTIME_DIR; the destructor kills the registry that
// serves it and removes it.
using fwipc::test::TempRuntime;

// eventsd with args, started and awaited (READY=1 on a NOTIFY_SOCKET of ours, 10 s bound).
// pid() <= 0 when it did not come up. The destructor stops it (SIGTERM, then SIGKILL).
class Eventsd {
 public:
  explicit Eventsd(std::vector<std::string> args = {});
  ~Eventsd();
  pid_t pid() const { return pid_; }
  int stop();  // SIGTERM; its exit status

 private:
  pid_t pid_ = -1;
};

// The child's exit code, or 128 + signal; after timeout_ms it is SIGKILLed and -2 returned.
inline int wait_exit(pid_t pid, int timeout_ms = 60000) { return fwipc::test::wait_exit_within(pid, timeout_ms); }

// A program run with its stdout and stderr piped to us.
struct Child {
  pid_t pid = -1;
  int out = -1;
  int err = -1;
};
Child start(const std::string& exe, const std::vector<std::string>& args);
// Reads fd until `what` appears in what was read, EOF, or timeout_ms; all that was read.
std::string read_until(int fd, const std::string& what, int timeout_ms);
std::string read_all(int fd, int timeout_ms);

// One-byte signals between processes (bounded waits).
struct Pipe {
  int fds[2];
  Pipe();
  ~Pipe();
  void signal(char c = 1) const;
  int wait(int timeout_ms = 30000) const;  // the byte, or -1 (EOF or timeout)
};

struct Member {
  uint32_t pid;
  bool reads, writes, creator, alive;
};
// The registry's members of the channel `events` (empty when there is no such channel).
std::vector<Member> events_members();
bool is_member(uint32_t pid);

}  // namespace fwevent::test
