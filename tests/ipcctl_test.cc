// ipcctl against a real registry and real channels: the binary is run as a child process
// and its output read back.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "ipc.h"
#include "tests/support.h"

using fwipc::test::has;
using fwipc::test::ipcctl;
using fwipc::test::Run;
using fwipc::test::TempRuntime;
using fwipc::test::wait_exit;

TEST_CASE("shouldListChannelsWithTheirCountersAndMembers") {
  TempRuntime rt;
  const int q = ipc_create_channel("watched", IPC_TYPE_QUEUE, IPC_BUFFER_MIN);
  REQUIRE(q >= 0);
  const int s = ipc_create_channel("watched-s", IPC_TYPE_SOCKET, 0);
  REQUIRE(s >= 0);
  const int w = ipc_open_channel("watched", IPC_MODE_WRITE);
  REQUIRE(w >= 0);
  for (int i = 0; i < 3; ++i) REQUIRE(ipc_send(uint32_t(w), "abc", 3, 1) == 3);
  const std::string me = std::to_string(::getpid());

  const Run j = ipcctl({"--json", "list"});
  CHECK(j.status == 0);
  CHECK(has(j.out, "\"name\":\"watched\",\"type\":\"QUEUE\",\"transport\":\"shm\""));
  CHECK(has(j.out,
            "\"mode\":\"0660\",\"capacity\":16,\"overflow\":\"block\",\"depth\":3,\"messages\":3,\"drops\":0,"
            "\"abandoned\":0"));
  CHECK(has(j.out, "\"readers\":[{\"pid\":" + me + ",\"alive\":true,\"lag\":3}]"));
  CHECK(has(j.out, "\"name\":\"watched-s\",\"type\":\"SOCKET\",\"transport\":\"socket\""));

  const Run t = ipcctl({"list"});
  CHECK(t.status == 0);
  CHECK(has(t.out, "NAME"));
  CHECK(has(t.out, "watched-s"));
  // Columns line up: every row starts its TYPE column where the header does.
  const size_t col = t.out.find("TYPE");
  const size_t row = t.out.find("\nwatched ");
  REQUIRE(row != std::string::npos);
  CHECK(t.out.compare(row + 1 + col, 5, "QUEUE") == 0);

  const Run st = ipcctl({"--json", "stat", "watched", "--interval", "20", "--count", "1"});
  CHECK(st.status == 0);
  CHECK(has(st.out, "\"messages\":3,\"depth\":3"));
  CHECK(ipc_close_channel(uint32_t(w)) == 0);
  CHECK(ipc_close_channel(uint32_t(s)) == 0);
  CHECK(ipc_close_channel(uint32_t(q)) == 0);
}

TEST_CASE("shouldTailWithoutConsumingAnyReadersMessages") {
  TempRuntime rt;
  const int q = ipc_create_channel("tailed", IPC_TYPE_QUEUE, IPC_BUFFER_MIN);
  REQUIRE(q >= 0);
  REQUIRE(ipc_send(uint32_t(q), "hello1", 6, 7) == 6);
  REQUIRE(ipc_send(uint32_t(q), "hello2", 6, 7) == 6);
  const Run r = ipcctl({"--json", "tail", "tailed", "--all", "--count", "2"});
  CHECK(r.status == 0);
  CHECK(has(r.out, "\"type\":7,\"size\":6"));
  CHECK(has(r.out, "68656c6c6f31"));  // "hello1"
  CHECK(has(r.out, "68656c6c6f32"));
  char buf[8];
  CHECK(ipc_receive(uint32_t(q), buf, sizeof buf) == 6);  // still there for the reader
  CHECK(ipc_receive(uint32_t(q), buf, sizeof buf) == 6);
  CHECK(ipcctl({"tail", "no-such"}).status == 1);
  CHECK(ipc_close_channel(uint32_t(q)) == 0);
}

TEST_CASE("shouldCleanOnlyStaleFiles") {
  TempRuntime rt;
  const int s = ipc_create_channel("live-s", IPC_TYPE_SOCKET, 0);
  REQUIRE(s >= 0);
  const std::string stale = rt.dir() + "/gone.fifo", live = rt.dir() + "/live-s.sock";
  const int fd = ::open(stale.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  ::close(fd);
  const Run r = ipcctl({"--json", "clean"});
  CHECK(r.status == 0);
  CHECK(has(r.out, "\"removed\":1"));
  CHECK(::access(stale.c_str(), F_OK) != 0);
  CHECK(::access(live.c_str(), F_OK) == 0);
  CHECK(ipc_close_channel(uint32_t(s)) == 0);
  // With no registry at all, clean works on the directory itself.
  rt.kill_registry();
  const int fd2 = ::open(stale.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  REQUIRE(fd2 >= 0);
  ::close(fd2);
  CHECK(ipcctl({"clean"}).status == 0);
  CHECK(::access(stale.c_str(), F_OK) != 0);
}
