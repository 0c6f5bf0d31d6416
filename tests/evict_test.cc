// IPC_OVERFLOW_EVICT on every channel type: a reader that holds the writers back for more
// than evict_after_ms without taking anything is dropped; the writers go on, a healthy
// reader still gets everything in order, and the dropped one gets what it already had,
// then -ENOBUFS, and can open the channel again. Real processes: a reader that never
// reads, a SIGSTOPped one, and (QUEUE) one of another uid behind the creator's bridge
// (on ring v2, FWIPC_RING=2: mapping the channel directly).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "ipc.h"
#include "tests/channels.h"
#include "tests/support.h"

using fwipc::test::Barrier;
using fwipc::test::idle_reader;
using fwipc::test::kAllTypes;
using fwipc::test::spawn;
using fwipc::test::TempRuntime;
using fwipc::test::wait_exit_within;

namespace {

constexpr uint32_t kEvictMs = 400;  // generous: a healthy reader under a sanitizer is never this late
// More than a stuck reader's kernel buffers hold (a 64 KiB FIFO, a socket's send buffer):
// the writer must be held back by the hub, not only by the kernel.
constexpr uint32_t kFirst = 3000;
constexpr uint32_t kSecond = 200;
constexpr int kWaitMs = 60'000;  // anti-hang bound for children

struct Rec {
  uint32_t seq;
  char pad[60];  // 64-byte messages: fewer fit in the kernel's buffers
};

int create_evicting(const char* name, uint32_t type, uint32_t perm = 0) {
  IPC_CHANNEL_OPTIONS o{};
  o.type = type;
  o.perm_mode = perm;
  o.creator_mode = IPC_MODE_WRITE;  // a pure writer: only the readers can hold it back
  o.overflow = IPC_OVERFLOW_EVICT;
  o.evict_after_ms = kEvictMs;
  return fwipc::test::create_small(name, o);
}

int send_range(int id, uint32_t from, uint32_t to) {
  for (uint32_t i = from; i < to; ++i) {
    Rec r{};
    r.seq = i;
    if (ipc_send(uint32_t(id), &r, sizeof r, 1) != int(sizeof r)) return -1;
  }
  return 0;
}

// Receives [from, to) in order on id; 0 or a distinct code.
int expect_range(int id, uint32_t from, uint32_t to, int code) {
  IPC_MESSAGE m;
  for (uint32_t i = from; i < to; ++i) {
    if (ipc_receive_message(uint32_t(id), &m, kWaitMs) != int(sizeof(Rec))) return code;
    Rec r;
    std::memcpy(&r, m.payload, sizeof r);
    if (r.seq != i) return code + 1;
  }
  return 0;
}

// What an evicted id gives: messages 0, 1, ... in order (what it had), then -ENOBUFS, on
// every later call too. Returns how many it had, or a negative code.
int drain_evicted(int id) {
  IPC_MESSAGE m;
  int had = 0;
  for (;;) {
    const int rc = ipc_receive_message(uint32_t(id), &m, kWaitMs);
    if (rc == -ENOBUFS) break;
    if (rc != int(sizeof(Rec))) return -100 - (rc < 0 ? -rc : 0);
    Rec r;
    std::memcpy(&r, m.payload, sizeof r);
    if (r.seq != uint32_t(had)) return -2;
    ++had;
  }
  if (ipc_receive_message(uint32_t(id), &m, 0) != -ENOBUFS) return -3;
  IPC_CHANNEL_INFO info;
  if (ipc_channel_info(uint32_t(id), &info) != 0 || info.evicted != 1) return -4;
  return had;
}

int healthy_reader(const char* name, Barrier& joined) {
  const int r = ipc_open_channel(name, IPC_MODE_READ);
  if (r < 0) return 10;
  joined.signal();
  if (int rc = expect_range(r, 0, kFirst + kSecond, 11); rc != 0) return rc;
  IPC_CHANNEL_INFO info;
  if (ipc_channel_info(uint32_t(r), &info) != 0 || info.evicted != 0) return 13;
  return 0;
}

int evictions_of(int id) {
  IPC_CHANNEL_INFO info;
  return ipc_channel_info(uint32_t(id), &info) == 0 ? int(info.evictions) : -1;
}

// The stuck reader's part once released, after the writer sent [0, kFirst) past it: what
// it had, -ENOBUFS, and the channel opened again gets [kFirst, kFirst + kSecond).
int drain_and_reopen(const char* name, int r, const Barrier& reopened) {
  const int had = drain_evicted(r);
  if (had < 0) return 30 - had % 100;
  if (uint32_t(had) >= kFirst) return 22;  // it held the writer back: it cannot have everything
  if (ipc_close_channel(uint32_t(r)) != 0) return 23;
  const int again = ipc_open_channel(name, IPC_MODE_READ);
  if (again < 0) return 24;
  reopened.signal();
  return expect_range(again, kFirst, kFirst + kSecond, 25);
}

// The writer's side of it: sends [0, kFirst) (held back by the stuck reader until it is
// evicted), releases it, and sends [kFirst, kFirst + kSecond) once it reopened.
void evict_and_resume(int c, const Barrier& go_read, const Barrier& reopened) {
  REQUIRE(send_range(c, 0, kFirst) == 0);
  CHECK(evictions_of(c) == 1);
  go_read.signal();
  REQUIRE(reopened.wait(1));
  REQUIRE(send_range(c, kFirst, kFirst + kSecond) == 0);
}

}  // namespace

TEST_CASE("shouldEvictAReaderThatNeverReadsWhileAHealthyReaderGetsEverything") {
  for (uint32_t type : kAllTypes) {
    CAPTURE(type);
    TempRuntime rt;
    const int c = create_evicting("ev", type);
    REQUIRE(c >= 0);
    IPC_CHANNEL_INFO info;
    REQUIRE(ipc_channel_info(uint32_t(c), &info) == 0);
    CHECK(info.overflow == IPC_OVERFLOW_EVICT);
    CHECK(info.evict_after_ms == kEvictMs);
    Barrier joined, go_read, reopened;
    // Never reads until the writer is done.
    const pid_t stuck =
        idle_reader("ev", joined, go_read, false, [&](int r) { return drain_and_reopen("ev", r, reopened); });
    const pid_t healthy = spawn([&] { return healthy_reader("ev", joined); });
    REQUIRE(joined.wait(2));
    evict_and_resume(c, go_read, reopened);
    CHECK(wait_exit_within(stuck, kWaitMs) == 0);
    CHECK(wait_exit_within(healthy, kWaitMs) == 0);
    CHECK(evictions_of(c) == 1);  // the healthy reader and the reopened one were never dropped
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}

TEST_CASE("shouldEvictAStoppedReaderProcess") {
  for (uint32_t type : kAllTypes) {
    CAPTURE(type);
    TempRuntime rt;
    const int c = create_evicting("stopped", type);
    REQUIRE(c >= 0);
    Barrier joined;
    // Reads all the time (it is waiting in a receive when it is stopped).
    const pid_t sleeper = spawn([&] {
      const int r = ipc_open_channel("stopped", IPC_MODE_READ);
      if (r < 0) return 20;
      joined.signal();
      const int had = drain_evicted(r);
      if (had < 0) return 30 - had % 100;
      return uint32_t(had) < kFirst ? 0 : 22;
    });
    const pid_t healthy = spawn([&] { return healthy_reader("stopped", joined); });
    REQUIRE(joined.wait(2));
    REQUIRE(::kill(sleeper, SIGSTOP) == 0);
    REQUIRE(send_range(c, 0, kFirst + kSecond) == 0);
    CHECK(evictions_of(c) == 1);
    REQUIRE(::kill(sleeper, SIGCONT) == 0);
    CHECK(wait_exit_within(sleeper, kWaitMs) == 0);
    CHECK(wait_exit_within(healthy, kWaitMs) == 0);
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}

// The creator's own id is a reader too (unless it is a pure writer): a creator that never
// reads is evicted from its own channel like anyone else, and other writers go on.
TEST_CASE("shouldEvictACreatorThatNeverReads") {
  for (uint32_t type : kAllTypes) {
    CAPTURE(type);
    TempRuntime rt;
    IPC_CHANNEL_OPTIONS o{};
    o.type = type;
    o.overflow = IPC_OVERFLOW_EVICT;
    o.evict_after_ms = kEvictMs;
    const int c = fwipc::test::create_small("self", o);  // reads and writes
    REQUIRE(c >= 0);
    Barrier joined;
    const pid_t healthy = spawn([&] { return healthy_reader("self", joined); });
    REQUIRE(joined.wait(1));
    const pid_t writer = spawn([] {
      const int w = ipc_open_channel("self", IPC_MODE_WRITE);
      if (w < 0) return 40;
      return send_range(w, 0, kFirst + kSecond) == 0 ? 0 : 41;
    });
    // The creator makes no call on the channel while the writer is held back by it.
    CHECK(wait_exit_within(writer, kWaitMs) == 0);
    CHECK(wait_exit_within(healthy, kWaitMs) == 0);
    const int had = drain_evicted(c);
    CHECK(had >= 0);
    CHECK(uint32_t(had) < kFirst + kSecond);
    CHECK(evictions_of(c) == 1);
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}

// A QUEUE reader of another uid is fed by the creator's bridge from a ring entry of its
// own: the ring evicts that entry, the bridge tells the reader after what it passed on.
TEST_CASE("shouldEvictAStuckReaderOfAnotherUidBehindTheBridge") {
  REQUIRE_MESSAGE(::geteuid() == 0, "needs root to run a reader as another uid");
  TempRuntime rt;
  const int c = create_evicting("bridged", IPC_TYPE_QUEUE, 0666);
  REQUIRE(c >= 0);
  Barrier joined, go_read, reopened;
  // Ring v2 maps the channel for another uid directly (no bridge, by design): the stuck
  // reader then holds the writer's own ring and is evicted from the directory.
  const int carried = int(fwipc::test::ring_v2() ? IPC_TRANSPORT_SHM : IPC_TRANSPORT_SOCKET);
  const pid_t stuck = idle_reader("bridged", joined, go_read, true, [&](int r) {
    if (ipc_channel_transport(uint32_t(r)) != carried) return 19;  // the bridge on layout 4, the rings on v2
    return drain_and_reopen("bridged", r, reopened);
  });
  const pid_t healthy = spawn([&] { return healthy_reader("bridged", joined); });
  REQUIRE(joined.wait(2));
  evict_and_resume(c, go_read, reopened);
  CHECK(wait_exit_within(stuck, kWaitMs) == 0);
  CHECK(wait_exit_within(healthy, kWaitMs) == 0);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

// Without IPC_OVERFLOW_EVICT nothing is ever dropped: a reader that does not read holds a
// non-blocking writer at -EAGAIN for as long as it likes, and then gets every message.
TEST_CASE("shouldNeverEvictUnderTheDefaultBlockPolicy") {
  for (uint32_t type : kAllTypes) {
    CAPTURE(type);
    TempRuntime rt;
    IPC_CHANNEL_OPTIONS o{};
    o.type = type;
    o.creator_mode = IPC_MODE_WRITE | IPC_MODE_NONBLOCK;
    o.evict_after_ms = 1;  // ignored under IPC_OVERFLOW_BLOCK
    const int c = fwipc::test::create_small("block", o);
    REQUIRE(c >= 0);
    Barrier joined, go_read;
    const pid_t lazy = idle_reader("block", joined, go_read, false, [](int r) {
      uint32_t n = 0;
      if (ipc_receive(uint32_t(r), &n, sizeof n) != int(sizeof n) || n != 0) return 22;
      IPC_CHANNEL_INFO info;
      return ipc_channel_info(uint32_t(r), &info) == 0 && info.evicted == 0 ? 0 : 23;
    });
    REQUIRE(joined.wait(1));
    // Fill until -EAGAIN, then keep trying past many bounds of 1 ms (hub work runs on the
    // progress thread meanwhile): still -EAGAIN, never a drop.
    int rc;
    uint32_t sent = fwipc::test::fill(c, &rc);
    CHECK(rc == -EAGAIN);
    CHECK(sent > 0);
    for (int i = 0; i < 50; ++i) {
      ::usleep(2000);  // time must pass for an eviction to be due; nothing is awaited here
      CHECK(ipc_send(uint32_t(c), &sent, sizeof sent, 1) == -EAGAIN);
    }
    CHECK(evictions_of(c) == 0);
    go_read.signal();
    CHECK(wait_exit_within(lazy, kWaitMs) == 0);
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}
