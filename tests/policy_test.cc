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
  CHECK(parse_error("own logd user:root\nallow logd\n") == "test.conf:2: unknown directive 'allow' (expected 'own')");
  CHECK(parse_error("own logd\n").find("test.conf:1: 'own logd' names no principal") == 0);
  CHECK(parse_error("\n\nown logd person:root\n").find("test.conf:3: principal 'person:root'") == 0);
  CHECK(parse_error("own a/b user:root\n").find("test.conf:1:") == 0);
  CHECK(parse_error("own x user:no-such-user-here\n").find("no such user 'no-such-user-here'") != std::string::npos);
  CHECK(parse_error("own\n").find("test.conf:1:") == 0);
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
