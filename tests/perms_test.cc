// Permission checks with a real second uid: needs root (setuid), so it runs unsandboxed.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/include/ipc.h"
#include "tests/support.h"

using fwipc::test::spawn;
using fwipc::test::TempRuntime;
using fwipc::test::wait_exit;

namespace {
constexpr uid_t kNobody = 65534;

// Opens name as uid nobody in a child; returns the child's open() result as exit code.
int open_as_nobody(const char* name, uint32_t mode) {
  const pid_t child = spawn([=] {
    if (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) return 100;
    const int rc = ipc_open_channel(name, mode);
    if (rc >= 0) return 0;
    return rc == -EACCES ? 1 : 2;
  });
  return wait_exit(child);
}
}  // namespace

TEST_CASE("shouldRefuseAnotherUidAccessToA0600Channel") {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test needs root to switch uid");
  for (uint32_t type : {IPC_TYPE_QUEUE, IPC_TYPE_SOCKET, IPC_TYPE_PIPE}) {
    CAPTURE(type);
    TempRuntime rt;
    const int priv = ipc_create_channel_ex("private", type, 0, 0600);
    const int pub = ipc_create_channel_ex("public", type, 0, 0666);
    const int ro = ipc_create_channel_ex("readonly", type, 0, 0644);
    REQUIRE(priv >= 0);
    REQUIRE(pub >= 0);
    REQUIRE(ro >= 0);
    CHECK(open_as_nobody("private", IPC_MODE_READ) == 1);
    CHECK(open_as_nobody("private", IPC_MODE_WRITE) == 1);
    CHECK(open_as_nobody("public", IPC_MODE_READ | IPC_MODE_WRITE) == 0);
    CHECK(open_as_nobody("readonly", IPC_MODE_READ) == 0);
    CHECK(open_as_nobody("readonly", IPC_MODE_WRITE) == 1);
    for (int id : {priv, pub, ro}) CHECK(ipc_close_channel(uint32_t(id)) == 0);
  }
}
