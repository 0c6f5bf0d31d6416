// The C API against a real registry process: names, errors, modes, timeouts, the pollable
// descriptor, lifetime, fork.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "fwipc/channel.hpp"
#include "ipc.h"
#include "tests/support.h"

using fwipc::test::Barrier;
using fwipc::test::spawn;
using fwipc::test::TempRuntime;
using fwipc::test::wait_exit;

TEST_CASE("shouldRefuseBadNames") {
  TempRuntime rt;
  CHECK(ipc_create_channel("", IPC_TYPE_QUEUE, 0) == -EINVAL);
  CHECK(ipc_create_channel(nullptr, IPC_TYPE_QUEUE, 0) == -EINVAL);
  CHECK(ipc_create_channel(std::string(64, 'a').c_str(), IPC_TYPE_QUEUE, 0) == -ENAMETOOLONG);
  CHECK(ipc_create_channel("../x", IPC_TYPE_QUEUE, 0) == -EINVAL);
  CHECK(ipc_create_channel("a/b", IPC_TYPE_QUEUE, 0) == -EINVAL);
  CHECK(ipc_create_channel("..", IPC_TYPE_QUEUE, 0) == -EINVAL);
  CHECK(ipc_create_channel("caf\xc3\xa9", IPC_TYPE_QUEUE, 0) == -EINVAL);
  CHECK(ipc_create_channel("sp ace", IPC_TYPE_QUEUE, 0) == -EINVAL);
  CHECK(ipc_open_channel("a/b", IPC_MODE_READ) == -EINVAL);
  const int id = ipc_create_channel(std::string(63, 'a').c_str(), IPC_TYPE_QUEUE, 0);
  CHECK(id >= 0);
  CHECK(ipc_close_channel(uint32_t(id)) == 0);
}

TEST_CASE("shouldReportMissingExistingAndUnknown") {
  TempRuntime rt;
  CHECK(ipc_open_channel("nope", IPC_MODE_READ) == -ENOENT);
  const int id = ipc_create_channel("dup", IPC_TYPE_QUEUE, 0);
  REQUIRE(id >= 0);
  CHECK(ipc_create_channel("dup", IPC_TYPE_QUEUE, 0) == -EEXIST);
  CHECK(ipc_send(12345, "x", 1, 0) == -EBADF);
  CHECK(ipc_close_channel(12345) == -EBADF);
  CHECK(ipc_create_channel("t", 7, 0) == -EINVAL);
  CHECK(ipc_create_channel("t", IPC_TYPE_QUEUE, IPC_BUFFER_MAX + 1) == -EINVAL);
  CHECK(ipc_open_channel("dup", 0) == -EINVAL);
  CHECK(ipc_close_channel(uint32_t(id)) == 0);
  CHECK(ipc_close_channel(uint32_t(id)) == -EBADF);  // stale id
  CHECK(std::string(ipc_strerror(-ENOENT)) == "no such channel");
}

TEST_CASE("shouldRespectOpenModes") {
  TempRuntime rt;
  const int c = ipc_create_channel("modes", IPC_TYPE_QUEUE, 0);
  REQUIRE(c >= 0);
  const int w = ipc_open_channel("modes", IPC_MODE_WRITE);
  const int r = ipc_open_channel("modes", IPC_MODE_READ | IPC_MODE_NONBLOCK);
  REQUIRE(w >= 0);
  REQUIRE(r >= 0);
  char buf[16];
  CHECK(ipc_receive(uint32_t(w), buf, sizeof buf) == -EBADF);
  CHECK(ipc_send(uint32_t(r), "x", 1, 0) == -EBADF);
  CHECK(ipc_receive(uint32_t(r), buf, sizeof buf) == -EAGAIN);
  CHECK(ipc_send(uint32_t(w), "hello", 5, 9) == 5);
  IPC_MESSAGE m{};
  CHECK(ipc_receive_message(uint32_t(r), &m, -1) == 5);
  CHECK(m.type == 9);
  CHECK(m.sender == uint32_t(::getpid()));
  CHECK(std::memcmp(m.payload, "hello", 5) == 0);
  // The creator is a reader from creation on: it got the message too.
  CHECK(ipc_receive(uint32_t(c), buf, sizeof buf) == 5);
  for (int id : {r, w, c}) CHECK(ipc_close_channel(uint32_t(id)) == 0);
}

TEST_CASE("shouldRejectOversizeAndKeepMessageOnSmallBuffer") {
  TempRuntime rt;
  const int c = ipc_create_channel("sizes", IPC_TYPE_QUEUE, 0);
  REQUIRE(c >= 0);
  char big[513] = {};
  CHECK(ipc_send(uint32_t(c), big, 513, 0) == -EMSGSIZE);
  CHECK(ipc_send(uint32_t(c), big, 512, 0) == 512);
  char small[100];
  CHECK(ipc_receive(uint32_t(c), small, sizeof small) == -EMSGSIZE);
  CHECK(ipc_receive(uint32_t(c), big, 512) == 512);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

TEST_CASE("shouldFailNonBlockingSendOnFullQueueAndTimeOutReceive") {
  TempRuntime rt;
  const int c = ipc_create_channel("full", IPC_TYPE_QUEUE, IPC_BUFFER_MIN);
  REQUIRE(c >= 0);
  const int w = ipc_open_channel("full", IPC_MODE_WRITE | IPC_MODE_NONBLOCK);
  REQUIRE(w >= 0);
  int sent = 0;
  while (ipc_send(uint32_t(w), &sent, 4, 0) == 4) ++sent;
  CHECK(sent == 16);
  CHECK(ipc_send(uint32_t(w), &sent, 4, 0) == -EAGAIN);
  int v;
  for (int i = 0; i < sent; ++i) REQUIRE(ipc_receive(uint32_t(c), &v, 4) == 4);
  IPC_MESSAGE m;
  CHECK(ipc_receive_message(uint32_t(c), &m, 30) == -ETIMEDOUT);
  CHECK(ipc_receive_message(uint32_t(c), &m, 0) == -EAGAIN);
  CHECK(ipc_close_channel(uint32_t(w)) == 0);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

TEST_CASE("shouldWakeABlockedReceiverInAnotherProcess") {
  TempRuntime rt;
  const int c = ipc_create_channel("wake", IPC_TYPE_QUEUE, 0);
  REQUIRE(c >= 0);
  Barrier ready;
  const pid_t child = spawn([&] {
    const int w = ipc_open_channel("wake", IPC_MODE_WRITE);
    if (w < 0) return 10;
    ready.wait(1);
    ::usleep(200000);  // the parent is asleep on the futex by now
    return ipc_send(uint32_t(w), "ping", 4, 1) == 4 ? 0 : 11;
  });
  ready.signal();
  IPC_MESSAGE m{};
  CHECK(ipc_receive_message(uint32_t(c), &m, 10000) == 4);
  CHECK(m.sender == uint32_t(child));
  CHECK(wait_exit(child) == 0);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

TEST_CASE("shouldPollReadableWhenAMessageWaits") {
  TempRuntime rt;
  const int c = ipc_create_channel("pollme", IPC_TYPE_QUEUE, 0);
  REQUIRE(c >= 0);
  const int fd = ipc_channel_fd(uint32_t(c));
  REQUIRE(fd >= 0);
  CHECK(ipc_channel_fd(uint32_t(c)) == fd);
  pollfd p{fd, POLLIN, 0};
  CHECK(::poll(&p, 1, 0) == 0);
  const pid_t child = spawn([] {
    const int w = ipc_open_channel("pollme", IPC_MODE_WRITE);
    ::usleep(100000);
    return w >= 0 && ipc_send(uint32_t(w), "x", 1, 0) == 1 ? 0 : 1;
  });
  CHECK(::poll(&p, 1, 10000) == 1);
  char b;
  CHECK(ipc_receive(uint32_t(c), &b, 1) == 1);
  CHECK(wait_exit(child) == 0);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

TEST_CASE("shouldRemoveNameAndFailSendsWhenCreatorCloses") {
  TempRuntime rt;
  const int c = ipc_create_channel("gone", IPC_TYPE_QUEUE, 0);
  REQUIRE(c >= 0);
  const int w = ipc_open_channel("gone", IPC_MODE_WRITE);
  REQUIRE(w >= 0);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
  CHECK(ipc_send(uint32_t(w), "x", 1, 0) == -EPIPE);
  CHECK(ipc_open_channel("gone", IPC_MODE_READ) == -ENOENT);
  CHECK(ipc_close_channel(uint32_t(w)) == 0);
  // The name is free again.
  const int again = ipc_create_channel("gone", IPC_TYPE_QUEUE, 0);
  CHECK(again >= 0);
  CHECK(ipc_close_channel(uint32_t(again)) == 0);
}

TEST_CASE("shouldRemoveTheNameWhenTheCreatorDies") {
  TempRuntime rt;
  Barrier created;
  Barrier done;
  const pid_t child = spawn([&] {
    if (ipc_create_channel("dies", IPC_TYPE_QUEUE, 0) < 0) return 1;
    created.signal();
    done.wait(1);
    return 0;
  });
  REQUIRE(created.wait(1));
  const int w = ipc_open_channel("dies", IPC_MODE_WRITE);
  CHECK(w >= 0);
  ::kill(child, SIGKILL);
  CHECK(wait_exit(child) == 128 + SIGKILL);
  int rc = 0;
  for (int i = 0; i < 500 && (rc = ipc_send(uint32_t(w), "x", 1, 0)) == 1; ++i) ::usleep(2000);
  CHECK(rc == -EPIPE);
  CHECK(ipc_open_channel("dies", IPC_MODE_WRITE) == -ENOENT);
  CHECK(ipc_close_channel(uint32_t(w)) == 0);
}

TEST_CASE("shouldGiveAForkedChildItsOwnRuntime") {
  TempRuntime rt;
  const int c = ipc_create_channel("prefork", IPC_TYPE_QUEUE, 0);
  REQUIRE(c >= 0);
  const pid_t child = spawn([&] {
    if (ipc_send(uint32_t(c), "x", 1, 0) != -EBADF) return 1;
    if (ipc_close_channel(uint32_t(c)) != -EBADF) return 2;
    const int w = ipc_open_channel("prefork", IPC_MODE_WRITE);
    if (w < 0) return 3;
    return ipc_send(uint32_t(w), "child", 5, 3) == 5 ? 0 : 4;
  });
  CHECK(wait_exit(child) == 0);
  IPC_MESSAGE m{};
  CHECK(ipc_receive_message(uint32_t(c), &m, 5000) == 5);
  CHECK(m.sender == uint32_t(child));  // the child's PID, not the parent's
  // The parent's id still works after the child closed its copy.
  CHECK(ipc_send(uint32_t(c), "p", 1, 0) == 1);
  CHECK(ipc_receive_message(uint32_t(c), &m, 5000) == 1);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

TEST_CASE("shouldCarryMessagesThroughTheCxxApiIncludingZeroCopy") {
  TempRuntime rt;
  auto ch = fwipc::Channel::create("cxx", IPC_TYPE_QUEUE, 0);
  REQUIRE(ch.ok());
  const std::byte data[3] = {std::byte{1}, std::byte{2}, std::byte{3}};
  CHECK(ch->send(data, 4, 2) == 3);
  {
    auto loan = ch->loan();
    REQUIRE(loan.ok());
    std::memcpy(loan->payload().data(), "zero", 4);
    CHECK(loan->commit(4, 5) == 4);
  }
  { auto dropped = ch->loan(); }  // never committed: must not wedge the channel
  const std::byte tail[1] = {std::byte{9}};
  CHECK(ch->send(tail, 6) == 1);
  std::byte buf[512];
  fwipc::MsgHeader h{};
  CHECK(ch->receive(buf, &h, 0) == 3);  // priority 2 first
  CHECK(h.priority == 2);
  CHECK(ch->receive(buf, &h, 0) == 4);
  CHECK(h.type == 5);
  CHECK(std::memcmp(buf, "zero", 4) == 0);
  CHECK(ch->receive(buf, &h, 0) == 1);
  CHECK(h.type == 6);
  CHECK(ch->receive(buf, &h, 0) == -EAGAIN);
  auto missing = fwipc::Channel::open("nope", IPC_MODE_READ);
  CHECK(missing.error() == -ENOENT);
}

TEST_CASE("shouldRefuseWhenNoRegistryAndAutostartIsOff") {
  TempRuntime rt;
  ::setenv("FWIPC_NO_AUTOSTART", "1", 1);
  CHECK(ipc_create_channel("x", IPC_TYPE_QUEUE, 0) == -ECONNREFUSED);
  ::unsetenv("FWIPC_NO_AUTOSTART");
  const int id = ipc_create_channel("x", IPC_TYPE_QUEUE, 0);
  CHECK(id >= 0);
  CHECK(ipc_close_channel(uint32_t(id)) == 0);
}
