// Test harness for csrss over tests/support.h: a private runtime directory, the daemon
// from the runfiles (awaited until READY=1), real child processes.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "tests/support.h"

namespace csrss::test {

using fwipc::test::run;
using fwipc::test::Run;
using fwipc::test::runfile;
using fwipc::test::spawn;
// mkdtemp("/tmp/fwipc-XXXXXX") (0755, so other uids reach the registry) as
// FWIPC_RUNTIME_DIR with the registry from the runfiles; removed with its registry.
using Runtime = fwipc::test::TempRuntime;

// The daemon (csrss, or another program of the tree that sends READY=1), run with args;
// the constructor returns once it sent READY=1 (pid() < 0 when it did not).
class Daemon {
 public:
  explicit Daemon(std::vector<std::string> args = {}, const std::string& program = "services/csrss/csrss");
  ~Daemon();  // stop()
  pid_t pid() const { return pid_; }
  int stop();  // SIGTERM; its exit status

 private:
  pid_t pid_ = -1;
};

// The child's exit code or 128 + signal; SIGKILLs it after timeout_ms and returns -2.
inline int wait_exit(pid_t pid, int timeout_ms = 60000) { return fwipc::test::wait_exit_within(pid, timeout_ms); }

}  // namespace csrss::test
