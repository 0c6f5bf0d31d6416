// Test helpers for service/ (//tests:support is private to tests/): a private runtime
// directory with the registry from the test's runfiles, child processes, and where the
// runfiles are.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

namespace fwsvc::test {

// mkdtemp("/tmp/fwsvc-XXXXXX") as FWIPC_RUNTIME_DIR, the registry auto-started from the
// runfiles; removed (registry killed) at the end.
class TempRuntime {
 public:
  TempRuntime();
  ~TempRuntime();
  TempRuntime(const TempRuntime&) = delete;
  TempRuntime& operator=(const TempRuntime&) = delete;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// A file in the test's runfiles (PATH relative to the workspace root).
std::string runfile(const std::string& path);
// Runs fn in a forked child, which _exits with its return value.
pid_t spawn(const std::function<int()>& fn);
// The child's exit code, or 128 + signal; SIGKILLs it after timeout_ms (< 0: no limit)
// and returns -2.
int wait_exit(pid_t pid, int timeout_ms = -1);

}  // namespace fwsvc::test
