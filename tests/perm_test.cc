// base/perm: channel access decided like file access, supplementary groups included
// (read from /proc for a real process). Needs root for setgroups/setuid in the child.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/perm.h"
#include "tests/support.h"

using fwipc::Caller;
using fwipc::mode_permits;

namespace {
constexpr uid_t kOwner = 1000;
constexpr gid_t kGroup = 2000;
}  // namespace

TEST_CASE("shouldLetRootDoAnythingWhateverTheMode") {
  CHECK(mode_permits(Caller{::getpid(), 0, 0}, kOwner, kGroup, 0000, true, true));
}

TEST_CASE("shouldApplyTheOwnersBitsToTheOwnerOnly") {
  const Caller owner{::getpid(), kOwner, 1};
  CHECK(mode_permits(owner, kOwner, kGroup, 0600, true, true));
  CHECK(mode_permits(owner, kOwner, kGroup, 0400, true, false));
  CHECK_FALSE(mode_permits(owner, kOwner, kGroup, 0400, false, true));
  // The owner gets the owner's bits even when others' bits would allow more.
  CHECK_FALSE(mode_permits(owner, kOwner, kGroup, 0066, true, false));
}

TEST_CASE("shouldApplyTheGroupBitsToThePrimaryGroup") {
  const Caller member{::getpid(), 3000, kGroup};
  CHECK(mode_permits(member, kOwner, kGroup, 0640, true, false));
  CHECK_FALSE(mode_permits(member, kOwner, kGroup, 0640, false, true));
  CHECK(mode_permits(member, kOwner, kGroup, 0660, true, true));
}

TEST_CASE("shouldApplyOthersBitsToEveryoneElse") {
  // A pid whose /proc/PID/status lists no such group: ours, as root with no extra groups.
  const Caller other{::getpid(), 3000, 3000};
  CHECK_FALSE(mode_permits(other, kOwner, kGroup, 0660, true, false));
  CHECK(mode_permits(other, kOwner, kGroup, 0664, true, false));
  CHECK_FALSE(mode_permits(other, kOwner, kGroup, 0664, false, true));
  CHECK(mode_permits(other, kOwner, kGroup, 0666, true, true));
}

TEST_CASE("shouldApplyTheGroupBitsToASupplementaryGroupOfARealProcess") {
  REQUIRE_MESSAGE(::geteuid() == 0, "needs root to give a child supplementary groups");
  fwipc::test::Barrier ready;
  int go[2];
  REQUIRE(::pipe(go) == 0);
  const pid_t child = ::fork();
  if (child == 0) {
    const gid_t groups[] = {kGroup};
    if (::setgroups(1, groups) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(1);
    ::close(go[1]);  // only the parent holds the write end: its close lets us go
    ready.signal();
    char b;
    (void)!::read(go[0], &b, 1);  // stay alive while the parent looks at /proc
    ::_exit(0);
  }
  REQUIRE(ready.wait(1));
  const Caller c{child, 65534, 65534};
  CHECK(mode_permits(c, kOwner, kGroup, 0660, true, true));
  CHECK_FALSE(mode_permits(c, kOwner, kGroup + 1, 0660, true, false));
  ::close(go[1]);
  CHECK(fwipc::test::wait_exit(child) == 0);
  ::close(go[0]);
}
