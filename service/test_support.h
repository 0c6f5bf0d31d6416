// Test helpers for service/: the runtime's own (tests/support.h: a private runtime
// directory with the registry from the runfiles, child processes, the runfiles, daemons
// awaited through READY=1), plus a wait with an optional bound.
#pragma once

#include <sys/types.h>

#include <string>

#include "tests/support.h"

namespace fwsvc::test {

using fwipc::test::runfile;
using fwipc::test::spawn;
using fwipc::test::TempRuntime;

// The child's exit code, or 128 + signal; SIGKILLs it after timeout_ms (< 0: no limit)
// and returns -2.
inline int wait_exit(pid_t pid, int timeout_ms = -1) {
  return timeout_ms < 0 ? fwipc::test::wait_exit(pid) : fwipc::test::wait_exit_within(pid, timeout_ms);
}

}  // namespace fwsvc::test
