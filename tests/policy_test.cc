// The registry's name policy (runtime/registry/daemon/policy.h): parsing, who may own a
// name, and the real registry refusing a service name to the wrong uid. The end-to-end
// cases need root (setuid in children), so the target runs unsandboxed.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ipc.h"
#include "runtime/registry/daemon/policy.h"
#include "tests/support.h"

using fwipc::Caller;
using fwipc::registry::Policy;
using fwipc::test::spawn;
using fwipc::test::TempRuntime;
using fwipc::test::wait_exit;

namespace {
constexpr uid_t kNobody = 65534;
constexpr uid_t kDaemon = 1;

Policy parsed(const std::string& text) {
  Policy p;
  std::string err;
  REQUIRE_MESSAGE(Policy::parse(text, "test.conf", &p, &err) == 0, err);
  return p;
}

std::string parse_error(const std::string& text) {
  Policy p;
  std::string err;
  CHECK(Policy::parse(text, "test.conf", &p, &err) == -EINVAL);
  return err;
}

// In a child: becomes uid (and gid) `uid`, creates `name`, returns 0 on success, 1 on
// -EACCES, 2 on anything else.
int create_as(uid_t uid, const char* name) {
  return wait_exit(spawn([=] {
    if (::setgid(uid) != 0 || ::setuid(uid) != 0) return 100;
    const int rc = ipc_create_channel(name, IPC_TYPE_QUEUE, 0);
    if (rc >= 0) return ipc_close_channel(uint32_t(rc)) == 0 ? 0 : 3;
    return rc == -EACCES ? 1 : 2;
  }));
}
}  // namespace

TEST_CASE("shouldReserveTheServiceNamesForRootWithoutAPolicyFile") {
  const Policy p = Policy::builtin();
  const Caller nobody{::getpid(), kNobody, kNobody};
  for (const char* name : {"logd", "networkd", "csrss", "events"}) {
    CAPTURE(name);
    CHECK_FALSE(p.may_own(name, nobody));
    CHECK(p.may_own(name, Caller{::getpid(), 0, 0}));
  }
  CHECK(p.may_own("logd.x", nobody));  // an exact rule covers that name only
  CHECK(p.may_own("app", nobody));
}

TEST_CASE("shouldGrantANameOrPrefixToTheUsersAndGroupsItNames") {
  const Policy p = parsed(
      "# services\n"
      "own logd user:root\n"
      "own demo.* user:65534   # nobody's prefix\n"
      "own shared.* group:4242 user:1\n");
  const Caller nobody{::getpid(), kNobody, kNobody}, daemon{::getpid(), kDaemon, kDaemon};
  CHECK(p.may_own("demo.x", nobody));
  CHECK_FALSE(p.may_own("demo.x", daemon));
  CHECK(p.may_own("demo.", nobody));
  CHECK_FALSE(p.may_own("logd", nobody));
  CHECK(p.may_own("shared.a", daemon));
  CHECK(p.may_own("shared.a", Caller{::getpid(), 5000, 4242}));  // primary group
  CHECK_FALSE(p.may_own("shared.a", nobody));
  CHECK(p.may_own("other", nobody));  // no rule covers it
  CHECK(p.may_own("demo.x", Caller{::getpid(), 0, 0}));  // root always may
}

TEST_CASE("shouldResolveUserAndGroupNames") {
  const Policy p = parsed("own n1 user:nobody\nown n2 group:root\n");
  CHECK(p.may_own("n1", Caller{::getpid(), kNobody, kNobody}));
  CHECK(p.may_own("n2", Caller{::getpid(), 1234, 0}));
  CHECK_FALSE(p.may_own("n2", Caller{::getpid(), 1234, 1234}));
}

TEST_CASE("shouldRefuseAMalformedPolicyNamingTheLine") {
  CHECK(parse_error("own logd user:root\nallow logd\n") ==
        "test.conf:2: unknown directive 'allow' (expected 'own' or 'limit')");
  CHECK(parse_error("own logd\n").find("test.conf:1: 'own logd' names no principal") == 0);
  CHECK(parse_error("\n\nown logd person:root\n").find("test.conf:3: principal 'person:root'") == 0);
  CHECK(parse_error("own a/b user:root\n").find("test.conf:1:") == 0);
  CHECK(parse_error("own x user:no-such-user-here\n").find("no such user 'no-such-user-here'") != std::string::npos);
  CHECK(parse_error("own\n").find("test.conf:1:") == 0);
}

TEST_CASE("shouldGiveEveryNonRootUidTheDefaultLimitsAndRootNone") {
  using fwipc::registry::kDefaultLimits;
  const Policy p = Policy::builtin();
  const auto nobody = p.limits_for(Caller{::getpid(), kNobody, kNobody});
  CHECK(nobody[fwipc::registry::kQuotaChannels] == 256);
  CHECK(nobody[fwipc::registry::kQuotaBytes] == (uint64_t(1) << 30));
  CHECK(nobody[fwipc::registry::kQuotaConnections] == 256);
  CHECK(nobody[fwipc::registry::kQuotaMemberships] == 4096);
  CHECK(nobody == kDefaultLimits);
  for (uint64_t v : p.limits_for(Caller{::getpid(), 0, 0})) CHECK(v == fwipc::registry::kQuotaUnlimited);
  // Root needs no rule to be unlimited, even one naming it.
  for (uint64_t v : parsed("limit user:root channels=1\n").limits_for(Caller{::getpid(), 0, 0}))
    CHECK(v == fwipc::registry::kQuotaUnlimited);
}

TEST_CASE("shouldParseLimitsWithSizeSuffixesAndUnlimited") {
  using namespace fwipc::registry;
  const Policy p = parsed(
      "limit user:nobody channels=16 bytes=64M   # the issue's example\n"
      "limit user:1 bytes=2G connections=unlimited memberships=10\n"
      "limit user:2 bytes=512K\n"
      "limit user:3 bytes=100\n");
  const auto n = p.limits_for(Caller{::getpid(), kNobody, kNobody});
  CHECK(n[kQuotaChannels] == 16);
  CHECK(n[kQuotaBytes] == 64ull << 20);
  CHECK(n[kQuotaConnections] == 256);  // not set: the default
  const auto d = p.limits_for(Caller{::getpid(), kDaemon, kDaemon});
  CHECK(d[kQuotaBytes] == 2ull << 30);
  CHECK(d[kQuotaConnections] == kQuotaUnlimited);
  CHECK(d[kQuotaMemberships] == 10);
  CHECK(p.limits_for(Caller{::getpid(), 2, 2})[kQuotaBytes] == 512ull << 10);
  CHECK(p.limits_for(Caller{::getpid(), 3, 3})[kQuotaBytes] == 100);
}

TEST_CASE("shouldLetAUserRuleBeatGroupRulesAndTheSmallestOfAKindApply") {
  using namespace fwipc::registry;
  const Policy p = parsed(
      "limit default channels=100 connections=50\n"
      "limit group:4242 connections=512 channels=30\n"
      "limit group:4243 connections=400\n"
      "limit user:5000 connections=8\n"
      "limit user:5000 connections=20\n"
      "limit default channels=120\n");
  // uid 5000 in both groups: its user rules win connections (the smaller of the two);
  // channels come from the group rule, not the defaults.
  const auto u = p.limits_for(Caller{::getpid(), 5000, 4242});
  CHECK(u[kQuotaConnections] == 8);
  CHECK(u[kQuotaChannels] == 30);
  // A member of the group, no user rule: the group's (each uid gets it, not a pool).
  const auto g = p.limits_for(Caller{::getpid(), 5001, 4242});
  CHECK(g[kQuotaConnections] == 512);
  CHECK(g[kQuotaChannels] == 30);
  // Nobody in no group with a rule: the defaults of the file (the smallest of two lines),
  // the built-in ones for keys the file leaves alone.
  const auto n = p.limits_for(Caller{::getpid(), kNobody, kNobody});
  CHECK(n[kQuotaChannels] == 100);
  CHECK(n[kQuotaConnections] == 50);
  CHECK(n[kQuotaBytes] == kDefaultLimits[kQuotaBytes]);
  CHECK(n[kQuotaMemberships] == kDefaultLimits[kQuotaMemberships]);
}

TEST_CASE("shouldRefuseMalformedLimitsNamingTheLine") {
  CHECK(parse_error("limit\n").find("test.conf:1: 'limit' needs a principal") == 0);
  CHECK(parse_error("limit user:nobody\n").find("test.conf:1: 'limit user:nobody' sets no limit") == 0);
  CHECK(parse_error("limit user:nobody files=3\n").find("'files=3' is not KEY=VALUE") != std::string::npos);
  CHECK(parse_error("limit user:nobody channels\n").find("'channels' is not KEY=VALUE") != std::string::npos);
  CHECK(parse_error("limit user:nobody channels=16M\n").find("'channels=16M': the value is not a number") !=
        std::string::npos);
  CHECK(parse_error("limit user:nobody bytes=1T\n").find("(optionally with K, M or G)") != std::string::npos);
  CHECK(parse_error("limit user:nobody bytes=-1\n").find("test.conf:1:") == 0);
  CHECK(parse_error("limit user:nobody bytes=99999999999999999G\n").find("test.conf:1:") == 0);
  CHECK(parse_error("limit person:x channels=1\n").find("principal 'person:x'") != std::string::npos);
  CHECK(parse_error("own x user:root\nlimit user:no-such-user-here channels=1\n").find("test.conf:2: no such user") ==
        0);
}

TEST_CASE("shouldTellWhoOwnsAReservedName") {
  const Policy p = parsed("own svc.* user:1 group:4242\n");
  CHECK(p.owns_reserved(Caller{::getpid(), 0, 0}));
  CHECK(p.owns_reserved(Caller{::getpid(), kDaemon, kDaemon}));
  CHECK(p.owns_reserved(Caller{::getpid(), 5000, 4242}));
  CHECK_FALSE(p.owns_reserved(Caller{::getpid(), kNobody, kNobody}));
  CHECK_FALSE(Policy::builtin().owns_reserved(Caller{::getpid(), kNobody, kNobody}));
}

TEST_CASE("shouldRefuseAServiceNameToAnotherUidInARealRegistry") {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test needs root to switch uid");
  {
    // The built-in policy (no FWIPC_POLICY_FILE, no default file): the case of a nobody
    // process taking "logd" before the real logd starts.
    REQUIRE_MESSAGE(::access(fwipc::registry::kDefaultPolicyPath, F_OK) != 0,
                    "this case needs the built-in policy: move the system's policy file away");
    ::unsetenv("FWIPC_POLICY_FILE");
    TempRuntime rt;
    // Root starts the registry (nobody may not create files in a root-owned directory).
    REQUIRE(ipc_open_channel("none", IPC_MODE_READ) == -ENOENT);
    CHECK(create_as(kNobody, "logd") == 1);
    CHECK(create_as(kNobody, "events") == 1);
    CHECK(create_as(kNobody, "nobodys") == 0);
    const int logd = ipc_create_channel("logd", IPC_TYPE_SOCKET, 0);
    CHECK(logd >= 0);
    IPC_CHANNEL_INFO info;
    REQUIRE(ipc_channel_info(uint32_t(logd), &info) == 0);
    CHECK(info.owner_uid == 0);
    CHECK(info.creator_pid == uint32_t(::getpid()));
    CHECK(info.type == IPC_TYPE_SOCKET);
    CHECK(info.transport == IPC_TRANSPORT_SOCKET);
    CHECK(std::string(info.name) == "logd");
    CHECK(ipc_close_channel(uint32_t(logd)) == 0);
  }
  {
    TempRuntime rt;
    const std::string file = rt.dir() + "/policy.conf";
    FILE* f = std::fopen(file.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs("own demo.* user:nobody\n", f);
    std::fclose(f);
    ::setenv("FWIPC_POLICY_FILE", file.c_str(), 1);
    REQUIRE(ipc_open_channel("none", IPC_MODE_READ) == -ENOENT);  // starts the registry
    CHECK(create_as(kNobody, "demo.x") == 0);
    CHECK(create_as(kDaemon, "demo.x") == 1);
    CHECK(create_as(kNobody, "logd") == 0);  // a policy file replaces the built-in rules
    const int root = ipc_create_channel("demo.y", IPC_TYPE_QUEUE, 0);  // root always may
    CHECK(root >= 0);
    CHECK(ipc_close_channel(uint32_t(root)) == 0);
  }
  ::unsetenv("FWIPC_POLICY_FILE");
}

TEST_CASE("shouldNotStartARegistryWhosePolicyFileIsMissingOrMalformed") {
  TempRuntime rt;
  ::setenv("FWIPC_POLICY_FILE", (rt.dir() + "/missing.conf").c_str(), 1);
  // The auto-started registry refuses to run: a typo must never open a service name.
  CHECK(ipc_create_channel("x", IPC_TYPE_QUEUE, 0) == -ECONNREFUSED);
  ::unsetenv("FWIPC_POLICY_FILE");
}
