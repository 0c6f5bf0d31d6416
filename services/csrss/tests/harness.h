// Test harness for csrss: a private runtime directory, the daemon from the runfiles
// (started with NOTIFY_SOCKET and awaited until READY=1), helpers for real child processes.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace csrss::test {

std::string runfile(const std::string& path);

// mkdtemp("/tmp/fwipc-XXXXXX") (0755, so other uids reach the registry) as
// FWIPC_RUNTIME_DIR with the registry from the runfiles; removed with its registry.
class Runtime {
 public:
  Runtime();
  ~Runtime();
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// The daemon (csrss, or another program of the tree that sends READY=1), run with args;
// the constructor returns once it sent READY=1.
class Daemon {
 public:
  explicit Daemon(std::vector<std::string> args = {}, const std::string& program = "services/csrss/csrss");
  ~Daemon();  // SIGTERM, then its exit status is checked to be 0
  pid_t pid() const { return pid_; }
  int stop();  // SIGTERM; its exit status

 private:
  pid_t pid_ = -1;
};

// Runs fn in a forked child that exits with its value.
pid_t spawn(const std::function<int()>& fn);
// The child's exit code or 128 + signal; SIGKILLs it after timeout_ms and returns -2.
int wait_exit(pid_t pid, int timeout_ms = 60000);

// Runs a program; its exit status and standard output (stderr goes to the test log).
struct Run {
  int status;
  std::string out;
};
Run run(const std::vector<std::string>& argv);

}  // namespace csrss::test
