// Per-uid limits in the registry (the policy's `limit` rules): real processes of real uids
// (setuid children) against a real registry, so it runs unsandboxed as root. The greedy
// user is nobody; the second user is daemon (uid 1).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ipc.h"
#include "runtime/registry/protocol.h"
#include "tests/support.h"
#include "transports/frame.h"
#include "transports/shm/layout.h"

using fwipc::test::Barrier;
using fwipc::test::has;
using fwipc::test::ipcctl;
using fwipc::test::Run;
using fwipc::test::spawn;
using fwipc::test::TempRuntime;
using fwipc::test::wait_exit;
using fwipc::test::wait_exit_within;
namespace reg = fwipc::registry;

namespace {
constexpr uid_t kNobody = 65534;
constexpr uid_t kDaemon = 1;
constexpr int kBoundMs = 30'000;  // against hangs only

bool become(uid_t uid) {
  if (::setgroups(0, nullptr) != 0 || ::setgid(uid) != 0 || ::setuid(uid) != 0) return false;
  ::prctl(PR_SET_DUMPABLE, 1);
  return true;
}

// Writes the policy file and points the registries this process starts at it.
void use_policy(const TempRuntime& rt, const std::string& text) {
  const std::string file = rt.dir() + "/policy.conf";
  FILE* f = std::fopen(file.c_str(), "w");
  REQUIRE(f != nullptr);
  std::fputs(text.c_str(), f);
  std::fclose(f);
  ::setenv("FWIPC_POLICY_FILE", file.c_str(), 1);
}

// Root starts the registry (others may not create files in the root-owned directory) and
// keeps it running with its connection.
void start_registry() { REQUIRE(ipc_open_channel("none", IPC_MODE_READ) == -ENOENT); }

// Creates channels prefix.0, prefix.1, ... until one fails; the count, and the failure in
// *failure. The first want_at_least creates retry -EDQUOT for up to 3 s: the registry may
// not have seen an earlier holder's exit yet.
int create_until_refused(const std::string& prefix, uint32_t type, uint32_t capacity, int* failure, int want_at_least,
                         std::vector<int>* ids) {
  for (int i = 0;; ++i) {
    const std::string name = prefix + "." + std::to_string(i);
    int rc = ipc_create_channel(name.c_str(), type, capacity);
    for (int tries = 0; rc == -EDQUOT && i < want_at_least && tries < 300; ++tries) {
      ::usleep(10'000);
      rc = ipc_create_channel(name.c_str(), type, capacity);
    }
    if (rc < 0) {
      *failure = rc;
      return i;
    }
    if (ids) ids->push_back(rc);
  }
}

// A child of uid `uid` that creates channels until refused, reports (count, failure) on a
// pipe, then holds them until released (or killed).
struct Holder {
  pid_t pid = -1;
  int count = -1, failure = 0;
  Barrier go;
  int result[2] = {-1, -1};

  Holder(uid_t uid, const std::string& prefix, uint32_t type, uint32_t capacity, int expect) {
    REQUIRE(::pipe(result) == 0);
    pid = spawn([&, uid, prefix, type, capacity, expect] {
      ::close(result[0]);
      int out[2] = {-1, 0};
      if (become(uid)) out[0] = create_until_refused(prefix, type, capacity, &out[1], expect, nullptr);
      (void)!::write(result[1], out, sizeof out);
      return go.wait(1) ? 0 : 1;
    });
    ::close(result[1]);
    int in[2] = {-1, 0};
    if (::read(result[0], in, sizeof in) == static_cast<ssize_t>(sizeof in)) {
      count = in[0];
      failure = in[1];
    }
    ::close(result[0]);
  }
  // Lets it exit (closing its channels) and waits for it.
  int release() {
    go.signal();
    return wait_exit_within(pid, kBoundMs);
  }
  ~Holder() {
    if (pid > 0 && ::kill(pid, 0) == 0) {
      ::kill(pid, SIGKILL);
      wait_exit(pid);
    }
  }
};

// In a child of uid: creates `n` channels (expecting success) then one more, which must
// fail with `then` (0: no extra). Exit 0 when all went as expected.
int creates_as(uid_t uid, const std::string& prefix, int n, int then) {
  return wait_exit_within(spawn([=] {
                            if (!become(uid)) return 100;
                            int failure = 0;
                            const int got = create_until_refused(prefix, IPC_TYPE_SOCKET, 0, &failure, n, nullptr);
                            if (then == 0) return got >= n ? 0 : 10 + got;
                            return got == n && failure == then ? 0 : 10 + got;
                          }),
                          kBoundMs);
}

// A raw registry connection of this process: connected and answering a ping, or refused.
struct RawConn {
  int fd = -1;
  int status = 0;      // the ping's answer
  std::string detail;  // a refusal's text
};

RawConn raw_connect(const std::string& dir) {
  RawConn c;
  c.fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s/%s", dir.c_str(), reg::kSocketName);
  if (::connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    c.status = -errno;
    return c;
  }
  reg::Request rq{};
  rq.magic = reg::kProtoMagic;
  rq.op = static_cast<uint32_t>(reg::Op::kPing);
  timeval tv{10, 0};
  ::setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::send(c.fd, &rq, sizeof rq, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof rq)) {
    c.status = -errno;
    return c;
  }
  reg::Refusal r{};
  const ssize_t n = ::recv(c.fd, &r, sizeof r, 0);
  if (n < static_cast<ssize_t>(sizeof(reg::Reply))) {
    c.status = n < 0 ? -errno : -EPROTO;
    return c;
  }
  c.status = r.status;
  if (n == static_cast<ssize_t>(sizeof r)) c.detail.assign(r.detail, strnlen(r.detail, sizeof r.detail));
  return c;
}

// The soft descriptor limit up to the hard one (never lowering the hard one), at least want.
void raise_fd_limit(rlim_t want) {
  rlimit rl{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &rl) == 0);
  REQUIRE_MESSAGE(rl.rlim_max >= want, "this case needs a hard descriptor limit of ", want);
  rl.rlim_cur = rl.rlim_max;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &rl) == 0);
}

struct Env {
  Env() { REQUIRE_MESSAGE(::geteuid() == 0, "this test needs root to switch uid"); }
  ~Env() { ::unsetenv("FWIPC_POLICY_FILE"); }
};

}  // namespace

TEST_CASE("shouldRefuseChannelsPastTheCountAndByteLimitsAndStillServeRootAndAnotherUser") {
  Env env;
  TempRuntime rt;
  use_policy(rt, "limit user:nobody channels=16 bytes=64M\n");
  start_registry();
  {
    // The count: small SOCKET channels, 16 of them, then -EDQUOT.
    Holder nobody(kNobody, "n", IPC_TYPE_SOCKET, 0, 16);
    CHECK(nobody.count == 16);
    CHECK(nobody.failure == -EDQUOT);
    // Root is never limited, and logd is root's.
    const int logd = ipc_create_channel("logd", IPC_TYPE_QUEUE, 0);
    CHECK(logd >= 0);
    // Another uid has its own quota (the default: 256 channels).
    CHECK(creates_as(kDaemon, "d", 20, 0) == 0);
    // ipcctl quota shows nobody at its limit.
    const Run j = ipcctl({"--json", "quota"});
    CHECK(j.status == 0);
    CHECK(has(j.out, "\"uid\":65534,\"user\":\"nobody\""));
    CHECK(has(j.out, "\"channels\":{\"used\":16,\"limit\":16}"));
    CHECK(has(j.out,
              "\"bytes\":{\"used\":" + std::to_string(16 * 256 * fwipc::frame::kMaxFrame) + ",\"limit\":67108864}"));
    CHECK(has(j.out, "\"headroom\":410"));
    const Run t = ipcctl({"quota"});
    CHECK(t.status == 0);
    CHECK(has(t.out, "UID"));
    CHECK(has(t.out, "16/16"));
    CHECK(has(t.out, "nobody"));
    CHECK(nobody.release() == 0);
    if (logd >= 0) CHECK(ipc_close_channel(uint32_t(logd)) == 0);
  }
  {
    // The bytes: 9 MiB QUEUE rings (16384 slots) fill 64 MiB after 7 (each also has a
    // header), then -EDQUOT: nothing near the 16-channel limit.
    const uint32_t slots = 16384;
    const int expect = int((64ull << 20) / fwipc::shm::segment_bytes(slots));
    Holder nobody(kNobody, "b", IPC_TYPE_QUEUE, slots * fwipc::shm::kSlotBytes, expect);
    CHECK(expect == 7);
    CHECK(nobody.count == expect);
    CHECK(nobody.failure == -EDQUOT);
    // Another user and root still create theirs.
    CHECK(creates_as(kDaemon, "d2", 3, 0) == 0);
    const int root = ipc_create_channel("rootq", IPC_TYPE_QUEUE, slots * fwipc::shm::kSlotBytes);
    CHECK(root >= 0);
    CHECK(nobody.release() == 0);
    if (root >= 0) CHECK(ipc_close_channel(uint32_t(root)) == 0);
  }
}

TEST_CASE("shouldReleaseUsageWhenChannelsCloseOrTheirCreatorIsKilled") {
  Env env;
  TempRuntime rt;
  use_policy(rt, "limit user:nobody channels=3\n");
  start_registry();
  {
    Holder a(kNobody, "k", IPC_TYPE_QUEUE, 0, 3);
    CHECK(a.count == 3);
    CHECK(a.failure == -EDQUOT);
    ::kill(a.pid, SIGKILL);
    wait_exit(a.pid);
  }
  // The registry sees the connection close: all three are free again (the first create
  // retries while the registry catches up), and the fourth is refused again.
  CHECK(creates_as(kNobody, "k2", 3, -EDQUOT) == 0);
  // Closing one frees one.
  CHECK(wait_exit_within(spawn([] {
                           if (!become(kNobody)) return 100;
                           std::vector<int> ids;
                           int failure = 0;
                           if (create_until_refused("c", IPC_TYPE_PIPE, 0, &failure, 3, &ids) != 3) return 1;
                           if (failure != -EDQUOT) return 2;
                           if (ipc_close_channel(uint32_t(ids[0])) != 0) return 3;
                           if (ipc_create_channel("c.again", IPC_TYPE_PIPE, 0) < 0) return 4;
                           return ipc_create_channel("c.more", IPC_TYPE_PIPE, 0) == -EDQUOT ? 0 : 5;
                         }),
                         kBoundMs) == 0);
}

TEST_CASE("shouldRefuseMembershipsPastTheLimit") {
  Env env;
  TempRuntime rt;
  use_policy(rt, "limit user:nobody memberships=5\n");
  start_registry();
  const int root = ipc_create_channel_ex("shared", IPC_TYPE_SOCKET, 0, 0666);
  REQUIRE(root >= 0);
  CHECK(wait_exit_within(spawn([] {
                           if (!become(kNobody)) return 100;
                           if (ipc_create_channel("mine", IPC_TYPE_QUEUE, 0) < 0) return 1;  // 1
                           for (int i = 0; i < 4; ++i)                                       // 2..5
                             if (ipc_open_channel(i % 2 ? "mine" : "shared", IPC_MODE_READ) < 0) return 2 + i;
                           if (ipc_open_channel("shared", IPC_MODE_WRITE) != -EDQUOT) return 10;
                           return ipc_create_channel("more", IPC_TYPE_QUEUE, 0) == -EDQUOT ? 0 : 11;
                         }),
                         kBoundMs) == 0);
  CHECK(ipc_open_channel("shared", IPC_MODE_WRITE) >= 0);  // root: unlimited
  CHECK(ipc_close_channel(uint32_t(root)) == 0);
}

TEST_CASE("shouldApplyALoweredLimitAfterSighupAndInANewRegistry") {
  Env env;
  TempRuntime rt;
  use_policy(rt, "limit user:nobody channels=4\n");
  start_registry();
  CHECK(creates_as(kNobody, "a", 4, -EDQUOT) == 0);
  // SIGHUP: the same registry reads the file again; later requests follow it.
  use_policy(rt, "limit user:nobody channels=2\n");
  const pid_t first = rt.registry_pid();
  REQUIRE(first > 0);
  ::kill(first, SIGHUP);
  ::usleep(300'000);
  CHECK(creates_as(kNobody, "h", 2, -EDQUOT) == 0);
  CHECK(rt.registry_pid() == first);
  use_policy(rt, "limit default channels=100\nlimit user:nobody channels=1\n");
  rt.kill_registry();
  start_registry();  // a new registry, reading the file again
  CHECK(rt.registry_pid() != first);
  CHECK(creates_as(kNobody, "b", 1, -EDQUOT) == 0);
  CHECK(creates_as(kDaemon, "c", 100, -EDQUOT) == 0);  // the new default
}

TEST_CASE("shouldRefuseConnectionsPastTheLimitWithAReasonAndStillServeRoot") {
  Env env;
  TempRuntime rt;
  use_policy(rt, "limit user:nobody connections=4\n");
  start_registry();
  Barrier ready, go;
  const std::string dir = rt.dir();
  const pid_t child = spawn([&] {
    if (!become(kNobody)) return 100;
    std::vector<RawConn> held;
    for (int i = 0; i < 4; ++i) {
      held.push_back(raw_connect(dir));
      if (held.back().status != 0) return 10 + i;
    }
    const RawConn refused = raw_connect(dir);
    if (refused.status != -EDQUOT) return 20;
    if (!has(refused.detail, "uid 65534 already holds 4 of its 4 connections")) return 21;
    // The runtime's own connection is refused the same way: its call fails with -EDQUOT.
    if (ipc_create_channel("x", IPC_TYPE_SOCKET, 0) != -EDQUOT) return 22;
    // ...and the reason reaches the caller out of band.
    if (!has(ipc_last_error_detail(), "already holds 4 of its 4 connections")) return 25;
    ready.signal();
    if (!go.wait(1)) return 23;
    // One closed: the runtime connects (once the registry has seen the close).
    ::close(held.back().fd);
    int rc = -EDQUOT;
    for (int i = 0; i < 300 && rc == -EDQUOT; ++i) {
      rc = ipc_create_channel("x", IPC_TYPE_SOCKET, 0);
      if (rc == -EDQUOT) ::usleep(10'000);
    }
    return rc >= 0 ? 0 : 24;
  });
  REQUIRE(ready.wait(1));
  // Root is served while nobody holds all it may.
  const int id = ipc_create_channel("rootch", IPC_TYPE_SOCKET, 0);
  CHECK(id >= 0);
  const RawConn root = raw_connect(dir);
  CHECK(root.status == 0);
  ::close(root.fd);
  go.signal();
  CHECK(wait_exit_within(child, kBoundMs) == 0);
  if (id >= 0) CHECK(ipc_close_channel(uint32_t(id)) == 0);
}

TEST_CASE("shouldKeepTheLastConnectionsForRootAndOwnersOfReservedNames") {
  Env env;
  TempRuntime rt;
  // nobody has no per-uid limit here: only the global cap's headroom stops it. daemon owns
  // a reserved name, so it may use the headroom.
  use_policy(rt, "limit user:nobody connections=unlimited\nown svc user:daemon\n");
  raise_fd_limit(8192);  // inherited by the child (and the registry)
  start_registry();
  Barrier ready, go;
  const std::string dir = rt.dir();
  const pid_t child = spawn([&] {
    if (!become(kNobody)) return 100;
    std::vector<int> held;
    for (int i = 0; i < 5000; ++i) {
      const RawConn c = raw_connect(dir);
      if (c.status == -ENOSPC) {
        if (!has(c.detail, "are kept for root and the owners of reserved names")) return 2;
        // Everyone but root's own registry connection (1) is ours.
        if (held.size() + 1 != 4096 - 410) return 3;
        ready.signal();
        return go.wait(1) ? 0 : 4;
      }
      if (c.status != 0) return 5;
      held.push_back(c.fd);
    }
    return 6;
  });
  REQUIRE(ready.wait(1));
  const RawConn root = raw_connect(dir);
  CHECK(root.status == 0);
  CHECK(wait_exit_within(spawn([&] {
                           if (!become(kDaemon)) return 100;
                           return ipc_create_channel("svc", IPC_TYPE_SOCKET, 0) >= 0 ? 0 : 1;
                         }),
                         kBoundMs) == 0);
  CHECK(wait_exit_within(spawn([&] {
                           if (!become(2)) return 100;  // bin: no reserved name
                           return ipc_create_channel("y", IPC_TYPE_SOCKET, 0) == -ENOSPC ? 0 : 1;
                         }),
                         kBoundMs) == 0);
  ::close(root.fd);
  go.signal();
  CHECK(wait_exit_within(child, 60'000) == 0);
}

TEST_CASE("shouldKeepTheLastChannelsForRootAndOwnersOfReservedNames") {
  Env env;
  TempRuntime rt;
  use_policy(rt, "limit user:nobody channels=unlimited memberships=unlimited\nown svc user:daemon\n");
  raise_fd_limit(9000);  // each SOCKET channel: two descriptors
  start_registry();
  // Everyone but the headroom: nobody takes all it can (no limit of its own; four
  // processes, as one connection holds at most 1024 ids), then -ENOSPC.
  std::vector<std::unique_ptr<Holder>> nobody;
  int taken = 0;
  for (int i = 0; i < 4; ++i) {
    nobody.push_back(std::make_unique<Holder>(kNobody, "f" + std::to_string(i), IPC_TYPE_SOCKET, IPC_BUFFER_MIN, 0));
    taken += nobody.back()->count;
    CHECK(nobody.back()->failure == -ENOSPC);
  }
  CHECK(taken == 4096 - 410);
  // root. A QUEUE channel: a SOCKET hub would start the runtime's progress thread here, and
  // a child forked from a process with threads that starts threads itself (the children
  // below do) is beyond ThreadSanitizer, not the runtime.
  const int logd = ipc_create_channel("logd", IPC_TYPE_QUEUE, IPC_BUFFER_MIN);
  CHECK(logd >= 0);
  CHECK(wait_exit_within(spawn([&] {
                           if (!become(kDaemon)) return 100;  // owns svc: may use the headroom
                           return ipc_create_channel("svc", IPC_TYPE_SOCKET, IPC_BUFFER_MIN) >= 0 ? 0 : 1;
                         }),
                         kBoundMs) == 0);
  CHECK(wait_exit_within(spawn([&] {
                           if (!become(2)) return 100;
                           return ipc_create_channel("other", IPC_TYPE_SOCKET, IPC_BUFFER_MIN) == -ENOSPC ? 0 : 1;
                         }),
                         kBoundMs) == 0);
  for (auto& h : nobody) CHECK(h->release() == 0);
  if (logd >= 0) CHECK(ipc_close_channel(uint32_t(logd)) == 0);
}
