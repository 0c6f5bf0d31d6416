// Issue 19: the bounded queues a client can make a creator's process grow (a SOCKET or
// PIPE hub's relay queues, a QUEUE bridge's queues for readers of another uid, NAME.call
// callers) have counters that are visible outside that process: the creator's runtime
// publishes them in the channel's stats page, and `ipcctl stats NAME` / `ipcctl list
// --json` show them. A reader that lags makes them move; one that catches up brings the
// queue back to empty; an evicted reader is counted in `ipcctl list`.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <unistd.h>

#include <signal.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "ipc.h"
#include "tests/channels.h"
#include "tests/support.h"

using fwipc::test::Barrier;
using fwipc::test::create_small;
using fwipc::test::fill;
using fwipc::test::idle_reader;
using fwipc::test::ipcctl;
using fwipc::test::kAllTypes;
using fwipc::test::spawn;
using fwipc::test::TempRuntime;
using fwipc::test::wait_exit_within;
using nlohmann::json;

namespace {

constexpr int kWaitMs = 60'000;

// `ipcctl --json stats NAME`, parsed (null on failure).
json stats_of(const std::string& name) {
  const auto r = ipcctl({"--json", "stats", name});
  if (r.status != 0) return nullptr;
  return json::parse(r.out, nullptr, false);
}

// Polls `ipcctl` until ok(answer) (the creator republishes within 100 ms of a change);
// false after a generous bound.
bool await_stats(const std::string& name, const std::function<bool(const json&)>& ok, json* last) {
  for (int i = 0; i < 400; ++i) {
    *last = stats_of(name);
    if (!last->is_discarded() && !last->is_null() && (*last)["queues"].is_object() && ok((*last)["queues"]))
      return true;
    ::usleep(25'000);  // between looks at another process's state; the loop awaits the condition
  }
  return false;
}

}  // namespace

TEST_CASE("shouldShowTheCreatorsQueueCountersMoveWhenAReaderLags") {
  struct Case {
    uint32_t type;
    bool other_uid;  // QUEUE: a reader of another uid, whose queue is the bridge's
  };
  for (const Case k : {Case{IPC_TYPE_SOCKET, false}, Case{IPC_TYPE_PIPE, false}, Case{IPC_TYPE_QUEUE, true}}) {
    CAPTURE(k.type);
    if (k.other_uid && ::geteuid() != 0) {
      MESSAGE("skipped: a reader of another uid needs root");
      continue;
    }
    TempRuntime rt;
    IPC_CHANNEL_OPTIONS o{};
    o.type = k.type;
    o.perm_mode = 0666;
    o.creator_mode = IPC_MODE_WRITE | IPC_MODE_NONBLOCK;
    const int c = create_small("lag", o);  // 16 frames per relay queue
    REQUIRE(c >= 0);
    Barrier joined, go;
    if (k.type == IPC_TYPE_QUEUE && fwipc::test::ring_v2()) {
      // Ring v2 has no bridge: the reader of another uid maps the channel and holds the
      // creator back at its own ring's 16 records, with no queue in the creator between.
      const pid_t reader = idle_reader("lag", joined, go, true);
      REQUIRE(joined.wait(1));
      int rc;
      CHECK(fill(c, &rc) == 16);
      CHECK(rc == -EAGAIN);
      ::kill(reader, SIGKILL);
      CHECK(wait_exit_within(reader, kWaitMs) == 128 + SIGKILL);
      CHECK(ipc_close_channel(uint32_t(c)) == 0);
      continue;
    }
    // Nothing waits yet: the page is there, published, and empty.
    json s;
    REQUIRE(await_stats(
        "lag", [](const json& q) { return q["frames"] == 0 && q["bound"] == 16; }, &s));
    CHECK(s["queues"]["publisher"] == ::getpid());
    const pid_t reader = idle_reader("lag", joined, go, k.other_uid);  // reads nothing until killed
    REQUIRE(joined.wait(1));
    // Fill until the lagging reader holds the creator back (-EAGAIN): its kernel buffer,
    // then its relay queue in the creator's process, fill.
    int rc;
    fill(c, &rc);
    CHECK(rc == -EAGAIN);
    REQUIRE(await_stats(
        "lag", [](const json& q) { return q["frames"] >= 16 && q["high_water"] >= 16; }, &s));
    CHECK(s["queues"]["bytes"] > 0);
    if (k.type != IPC_TYPE_QUEUE) {
      CHECK(s["queues"]["held_back"] == true);
      CHECK(s["queues"]["held_back_times"] >= 1);
    }
    // `ipcctl list` shows the same queue.
    const auto l = ipcctl({"--json", "list"});
    REQUIRE(l.status == 0);
    const json all = json::parse(l.out, nullptr, false);
    REQUIRE(all.is_array());
    REQUIRE(all.size() == 1);
    CHECK(all[0]["queues"]["frames"] >= 16);
    CHECK(all[0]["evictions"] == 0);
    // A reader that goes away takes its queue with it.
    ::kill(reader, SIGKILL);
    CHECK(wait_exit_within(reader, kWaitMs) == 128 + SIGKILL);
    REQUIRE(await_stats(
        "lag", [](const json& q) { return q["frames"] == 0 && q["held_back"] == false; }, &s));
    CHECK(s["queues"]["high_water"] >= 16);  // a high-water mark stays
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}

TEST_CASE("shouldCountAReaderCatchingUpThroughEveryMessage") {
  TempRuntime rt;
  IPC_CHANNEL_OPTIONS o{};
  o.type = IPC_TYPE_SOCKET;
  o.creator_mode = IPC_MODE_WRITE | IPC_MODE_NONBLOCK;
  const int c = create_small("catch", o);
  REQUIRE(c >= 0);
  Barrier joined, go;
  // How many it will get is known only after the fill: it is told through a pipe.
  int count_pipe[2];
  REQUIRE(::pipe(count_pipe) == 0);
  const pid_t reader = spawn([&] {
    ::close(count_pipe[1]);
    const int r = ipc_open_channel("catch", IPC_MODE_READ);
    if (r < 0) return 10;
    joined.signal();
    uint32_t count = 0;
    if (::read(count_pipe[0], &count, sizeof count) != int(sizeof count)) return 11;
    IPC_MESSAGE m;
    for (uint32_t i = 0; i < count; ++i) {
      if (ipc_receive_message(uint32_t(r), &m, kWaitMs) != 4) return 12;
      uint32_t v;
      std::memcpy(&v, m.payload, 4);
      if (v != i) return 13;
    }
    return 0;
  });
  ::close(count_pipe[0]);
  REQUIRE(joined.wait(1));
  const uint32_t sent = fill(c);
  json s;
  REQUIRE(await_stats(
      "catch", [](const json& q) { return q["frames"] >= 16 && q["held_back"] == true; }, &s));
  REQUIRE(::write(count_pipe[1], &sent, sizeof sent) == int(sizeof sent));
  ::close(count_pipe[1]);
  CHECK(wait_exit_within(reader, kWaitMs) == 0);
  REQUIRE(await_stats(
      "catch", [](const json& q) { return q["frames"] == 0 && q["held_back"] == false; }, &s));
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

// An evicted reader is counted where everyone can see it: `ipcctl list` (the ring's count
// on QUEUE, the hub's in the stats page on SOCKET and PIPE).
TEST_CASE("shouldListEvictionsPerChannel") {
  for (uint32_t type : kAllTypes) {
    CAPTURE(type);
    TempRuntime rt;
    IPC_CHANNEL_OPTIONS o{};
    o.type = type;
    o.creator_mode = IPC_MODE_WRITE;
    o.overflow = IPC_OVERFLOW_EVICT;
    o.evict_after_ms = 100;
    const int c = create_small("ev", o);
    REQUIRE(c >= 0);
    Barrier joined, done;
    const pid_t stuck = idle_reader("ev", joined, done);  // never reads
    REQUIRE(joined.wait(1));
    char payload[256] = {};
    for (int i = 0; i < 2000; ++i) REQUIRE(ipc_send(uint32_t(c), payload, sizeof payload, 1) == int(sizeof payload));
    bool listed = false;
    for (int i = 0; i < 400 && !listed; ++i) {
      const auto l = ipcctl({"--json", "list"});
      const json all = json::parse(l.out, nullptr, false);
      listed = all.is_array() && all.size() == 1 && all[0]["overflow"] == "evict" && all[0]["evictions"] == 1;
      if (!listed) ::usleep(25'000);  // the hub republishes within 100 ms
    }
    CHECK(listed);
    const auto t = ipcctl({"list"});
    CHECK(fwipc::test::has(t.out, "EVICTIONS"));
    done.signal();
    CHECK(wait_exit_within(stuck, kWaitMs) == 0);
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}
