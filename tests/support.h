// Test helpers: a short private runtime directory per test, and real child processes.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
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

// A tool of the tree run as a child: its exit status and standard output.
struct Run {
  int status;
  std::string out;
};
// Runs bazel-bin/tools/ipcctl (a data dependency of the test, in its runfiles) with args.
Run ipcctl(std::vector<std::string> args);
inline bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// The PID listening on dir/registry.sock (its peer credentials), or -1.
pid_t registry_pid_at(const std::string& dir);

// Runs fn in a forked child, which exits with fn's return value (never returns here).
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

// One-byte barrier between processes.
struct Barrier {
  int fds[2];
  Barrier();
  ~Barrier();
  void signal() const;         // one byte
  bool wait(int count) const;  // count bytes (false on EOF, or after 60 s)
};

}  // namespace fwipc::test
