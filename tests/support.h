// Test helpers: a short private runtime directory per test, and real child processes
// (daemons awaited through their READY=1). Used by tests/, service/ and services/*.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <cstdlib>
#include <string>
#include <vector>

namespace fwipc::test {

// mkdtemp("/tmp/fwipc-XXXXXX") as FWIPC_RUNTIME_DIR (TEST_TMPDIR is too long for a Unix
// socket path). The auto-started registry exits soon after its last client.
class TempRuntime {
 public:
  TempRuntime();
  ~TempRuntime();
  const std::string& dir() const { return dir_; }
  // Kills the registry serving this directory (found through its socket's peer creds).
  pid_t registry_pid() const;
  void kill_registry() const;

 private:
  std::string dir_;
};

// A file in the test's runfiles (PATH relative to the workspace root): a program of the
// tree the test has as a data dependency.
std::string runfile(const std::string& path);

// A program run as a child: its exit status and standard output (stderr goes to the test
// log). argv[0] is a path or a name looked up in PATH.
struct Run {
  int status;
  std::string out;
};
Run run(const std::vector<std::string>& argv);
// Runs bazel-bin/tools/ipcctl (a data dependency of the test, in its runfiles) with args.
Run ipcctl(std::vector<std::string> args);
inline bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// Whether the registries this test starts make QUEUE channels ring v2 (FWIPC_RING=2 in
// the environment they inherit): where v2 differs by design (no bridge for other uids,
// a ring per writer), a case asserts v2's behaviour instead.
inline bool ring_v2() {
  const char* v = std::getenv("FWIPC_RING");
  return v != nullptr && std::string(v) == "2";
}

// The PID listening on dir/registry.sock (its peer credentials), or -1.
pid_t registry_pid_at(const std::string& dir);

// Runs fn in a forked child, which exits with fn's return value (never returns here).
// stdio is flushed first, so that the child does not write the parent's buffers again.
pid_t spawn(const std::function<int()>& fn);
// Waits for pid; returns its exit code, or 128 + signal.
int wait_exit(pid_t pid);
// The same, but SIGKILLs pid after timeout_ms and returns -2 (it hung).
int wait_exit_within(pid_t pid, int timeout_ms);

// A descriptor of this process whose /proc/self/fd link target ends with `suffix` (or
// contains it, if `anywhere`), the way a hostile process finds what its runtime holds; -1.
int fd_with_target(const std::string& suffix, bool anywhere = false);
// Writes one frame claiming `sender` (a data frame with text as payload, unless kind says
// otherwise) as raw bytes to fd (a FIFO or a socket). Returns write()'s result.
long write_forged_frame(int fd, uint32_t sender, const std::string& text, uint16_t kind = 1, uint32_t type = 0);

// A service manager's $NOTIFY_SOCKET for a daemon the test starts: a datagram socket at a
// path in a private directory (a path, not an abstract name: a daemon in another network
// namespace reaches it too). Create it before forking the daemon.
class NotifySocket {
 public:
  NotifySocket();
  ~NotifySocket();
  const std::string& path() const { return path_; }
  // True once pid sent a datagram with READY=1 (told apart by its credentials: another
  // process's is ignored); false when pid exited (it is not reaped) or after timeout_ms.
  bool wait_ready(pid_t pid, int timeout_ms) const;

 private:
  std::string dir_, path_;
  int fd_ = -1;
};

// Starts argv (argv[0] a path: runfile("services/x/x")) with $NOTIFY_SOCKET set, signals
// unblocked, stdio inherited; its pid once it said READY=1, or -1 when it exited first or
// did not within timeout_ms (then it is killed and reaped).
pid_t start_ready(const std::vector<std::string>& argv, int timeout_ms = 30000);

// One-byte barrier between processes.
struct Barrier {
  int fds[2];
  Barrier();
  ~Barrier();
  void signal() const;         // one byte
  bool wait(int count) const;  // count bytes (false on EOF, or after 60 s)
};

}  // namespace fwipc::test
