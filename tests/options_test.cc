// ipc_create_channel_opts: the creator's own mode (a pure writer never holds its channel
// back), permission defaults, and what the registry reports through ipc_channel_info.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ipc.h"
#include "tests/support.h"

using fwipc::test::Barrier;
using fwipc::test::spawn;
using fwipc::test::TempRuntime;
using fwipc::test::wait_exit;

namespace {
const uint32_t kTypes[] = {IPC_TYPE_QUEUE, IPC_TYPE_SOCKET, IPC_TYPE_PIPE};
}

TEST_CASE("shouldLetAPureWriterCreatorSendTenRingsToAReaderWithoutBlockingOnItself") {
  for (uint32_t type : kTypes) {
    CAPTURE(type);
    TempRuntime rt;
    IPC_CHANNEL_OPTIONS o{};
    o.type = type;
    o.buffer_size = IPC_BUFFER_MIN;  // 16 messages
    o.creator_mode = IPC_MODE_WRITE;
    const int c = ipc_create_channel_opts("pub", &o);
    REQUIRE(c >= 0);
    IPC_CHANNEL_INFO info;
    REQUIRE(ipc_channel_info(uint32_t(c), &info) == 0);
    const uint32_t total = 10 * (info.capacity / IPC_SLOT_BYTES);
    CHECK(total == 160);
    Barrier joined;
    const pid_t reader = spawn([&] {
      const int r = ipc_open_channel("pub", IPC_MODE_READ);
      if (r < 0) return 10;
      joined.signal();
      IPC_MESSAGE m;
      for (uint32_t i = 0; i < total; ++i) {
        if (ipc_receive_message(uint32_t(r), &m, 20000) != 4) return 11;
        uint32_t v;
        std::memcpy(&v, m.payload, 4);
        if (v != i) return 12;
      }
      return 0;
    });
    REQUIRE(joined.wait(1));
    for (uint32_t i = 0; i < total; ++i) REQUIRE(ipc_send(uint32_t(c), &i, 4, 1) == 4);
    CHECK(wait_exit(reader) == 0);
    IPC_MESSAGE m;
    CHECK(ipc_receive_message(uint32_t(c), &m, 0) == -EBADF);  // it is not a reader
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}

TEST_CASE("shouldReportWhoServesAChannel") {
  TempRuntime rt;
  IPC_CHANNEL_OPTIONS o{};
  o.type = IPC_TYPE_QUEUE;
  const int c = ipc_create_channel_opts("info", &o);
  REQUIRE(c >= 0);
  const int w = ipc_open_channel("info", IPC_MODE_WRITE);
  REQUIRE(w >= 0);
  for (int id : {c, w}) {
    IPC_CHANNEL_INFO i;
    REQUIRE(ipc_channel_info(uint32_t(id), &i) == 0);
    CHECK(i.type == IPC_TYPE_QUEUE);
    CHECK(i.transport == IPC_TRANSPORT_SHM);
    CHECK(i.owner_uid == ::geteuid());
    CHECK(i.owner_gid == ::getegid());
    CHECK(i.mode == 0660);  // the options' 0
    CHECK(i.capacity == IPC_BUFFER_DEFAULT);
    CHECK(i.creator_pid == uint32_t(::getpid()));
    CHECK(i.overflow == IPC_OVERFLOW_BLOCK);
    CHECK(std::strcmp(i.name, "info") == 0);
  }
  IPC_CHANNEL_INFO i;
  CHECK(ipc_channel_info(12345, &i) == -EBADF);
  CHECK(ipc_channel_info(uint32_t(c), nullptr) == -EFAULT);
  CHECK(ipc_close_channel(uint32_t(w)) == 0);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

TEST_CASE("shouldRefuseBadOptionsAndSayWhatIsNotBuiltYet") {
  TempRuntime rt;
  IPC_CHANNEL_OPTIONS o{};
  o.type = 7;
  CHECK(ipc_create_channel_opts("bad", &o) == -EINVAL);
  o = IPC_CHANNEL_OPTIONS{};
  o.creator_mode = 0x80;
  CHECK(ipc_create_channel_opts("bad", &o) == -EINVAL);
  o = IPC_CHANNEL_OPTIONS{};
  o.reserved[1] = 1;
  CHECK(ipc_create_channel_opts("bad", &o) == -EINVAL);
  o = IPC_CHANNEL_OPTIONS{};
  o.overflow = IPC_OVERFLOW_EVICT;
  o.evict_after_ms = 0;  // EVICT needs a bound (tests/evict_test.cc covers the policy)
  CHECK(ipc_create_channel_opts("evict", &o) == -EINVAL);
  CHECK(ipc_create_channel_opts("bad", nullptr) == -EFAULT);
  // ipc_create_channel_ex keeps its meaning: mode 0 is mode 0, not the options' default.
  const int z = ipc_create_channel_ex("zero", IPC_TYPE_QUEUE, 0, 0);
  REQUIRE(z >= 0);
  IPC_CHANNEL_INFO i;
  REQUIRE(ipc_channel_info(uint32_t(z), &i) == 0);
  CHECK(i.mode == 0);
  CHECK(ipc_close_channel(uint32_t(z)) == 0);
}
