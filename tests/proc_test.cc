// base/proc: process identity from /proc/PID/stat, whose second field (comm) a process
// chooses itself and may fill with spaces and parentheses.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/proc.h"
#include "tests/support.h"

namespace {

// A child that renames itself to comm, then waits for the parent to let it go.
struct Renamed {
  pid_t pid;
  int go[2];
  explicit Renamed(const char* comm) {
    fwipc::test::Barrier ready;
    REQUIRE(::pipe(go) == 0);
    pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_NAME, comm);
      ::close(go[1]);  // only the parent holds the write end: its close lets us go
      ready.signal();
      char b;
      (void)!::read(go[0], &b, 1);
      ::_exit(0);
    }
    REQUIRE(ready.wait(1));
  }
  void release() {
    ::close(go[1]);
    fwipc::test::wait_exit(pid);
    ::close(go[0]);
  }
};

}  // namespace

TEST_CASE("shouldReadTheStartTimeOfAProcessWhoseCommHasSpacesAndParentheses") {
  const uint64_t self = fwipc::process_start_time(::getpid());
  REQUIRE(self != 0);
  // The start time does not change when a process renames itself: read it both ways.
  for (const char* comm : {"plain", "a) 1 2 3 (b", ") ) )", "x (y) z", "((("}) {
    CAPTURE(comm);
    Renamed r(comm);
    const uint64_t t = fwipc::process_start_time(r.pid);
    CHECK(t != 0);
    CHECK(t >= self);  // started after us, in clock ticks since boot
    CHECK(fwipc::process_alive(r.pid, t));
    CHECK_FALSE(fwipc::process_alive(r.pid, t + 1));  // another process at the same PID
    r.release();
  }
}

TEST_CASE("shouldCountAZombieAsDead") {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  // Not reaped yet: a zombie runs no more instructions, so it holds nothing.
  for (int i = 0; i < 1000 && fwipc::process_alive(child, 0); ++i) ::usleep(1000);
  CHECK_FALSE(fwipc::process_alive(child, 0));
  CHECK(fwipc::process_start_time(child) != 0);  // still in /proc until reaped
  CHECK(fwipc::test::wait_exit(child) == 0);
  CHECK(fwipc::process_start_time(child) == 0);
}

TEST_CASE("shouldReportNoProcessForInvalidPids") {
  CHECK_FALSE(fwipc::process_alive(0, 0));
  CHECK_FALSE(fwipc::process_alive(-1, 0));
  CHECK(fwipc::process_start_time(0) == 0);
}
