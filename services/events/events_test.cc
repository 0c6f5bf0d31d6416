// The event bus with real processes: eventsd, emitters and subscribers as separate
// processes on a private runtime directory, the fwevent CLI end to end.
//
// ThreadSanitizer: a subscription starts a thread, so the cases whose parent subscribes
// come last (doctest runs them in file order), fork their children before subscribing,
// and end with every subscription removed (the thread joined).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "ipc.h"
#include "services/events/event_bus.hpp"
#include "services/events/fwevent.h"
#include "services/events/test_support.h"

using namespace fwevent::test;

namespace {

const std::string kCli = runfile("services/events/fwevent");

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// What a callback subscription saw, awaited with a bound.
struct Seen {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> lines;  // "TOPIC JSON PID GAP"

  static void add(void* ctx, const fwevent_event* ev) {
    auto* s = static_cast<Seen*>(ctx);
    std::lock_guard<std::mutex> lk(s->m);
    s->lines.push_back(std::string(ev->topic) + " " + ev->json + " " + std::to_string(ev->sender_pid) + " " +
                       std::to_string(ev->gap));
    s->cv.notify_all();
  }
  bool wait_for(size_t n, int timeout_ms = 10000) {
    std::unique_lock<std::mutex> lk(m);
    return cv.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return lines.size() >= n; });
  }
  std::vector<std::string> snapshot() {
    std::lock_guard<std::mutex> lk(m);
    return lines;
  }
};

bool has_text(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

bool await_not_member(pid_t pid, int timeout_ms = 10000) {
  const int64_t deadline = now_ms() + timeout_ms;
  while (is_member(uint32_t(pid))) {
    if (now_ms() >= deadline) return false;
    usleep(10000);  // polling the registry's view: there is no event for "membership gone"
  }
  return true;
}

}  // namespace

TEST_CASE("shouldDeliverAnEventFromProcessAToProcessBWithTheEmittersPid") {
  TempRuntime rt;
  Eventsd d;
  REQUIRE(d.pid() > 0);
  Pipe ready, result;
  const pid_t b = spawn([&] {
    Seen seen;
    if (fwevent_subscribe("app.*.done", Seen::add, &seen) <= 0) return 10;
    ready.signal();
    if (!seen.wait_for(1)) return 11;
    const std::string line = seen.snapshot()[0] + "\n";
    (void)!write(result.fds[1], line.data(), line.size());
    return 0;
  });
  REQUIRE(ready.wait() == 1);
  const pid_t a = spawn([] {
    // The first does not match B's pattern; the second does.
    return fwevent_emit("app.job.started", "{}") == 0 && fwevent_emit("app.job.done", "{\"n\": 1}") == 0 ? 0 : 1;
  });
  CHECK(wait_exit(a) == 0);
  CHECK(wait_exit(b) == 0);
  const std::string got = read_until(result.fds[0], "\n", 10000);
  CHECK(got == "app.job.done {\"n\":1} " + std::to_string(a) + " 0\n");
}

TEST_CASE("shouldLeaveNothingBehindWhenASubscriberIsKilled") {
  TempRuntime rt;
  Eventsd d({"--slots", "16"});
  REQUIRE(d.pid() > 0);
  Pipe ready;
  const pid_t s = spawn([&] {
    Seen seen;
    if (fwevent_subscribe(">", Seen::add, &seen) <= 0) return 10;
    ready.signal();
    pause();
    return 0;
  });
  REQUIRE(ready.wait() == 1);
  bool reads = false;
  for (const Member& m : events_members()) {
    if (m.pid == uint32_t(s)) reads = m.reads && m.alive;
  }
  CHECK(reads);
  kill(s, SIGKILL);
  CHECK(wait_exit(s) == 128 + SIGKILL);
  CHECK(await_not_member(s));
  // Nothing holds the 16-slot channel: 200 events go without waiting for room.
  int failed = 0;
  for (int i = 0; i < 200; ++i) failed += fwevent_emit_timeout("after.kill", "{}", 0) != 0;
  CHECK(failed == 0);
  // Only eventsd is left (a pure writer); we are a writer now.
  for (const Member& m : events_members()) CHECK((m.pid == uint32_t(d.pid()) || m.pid == uint32_t(getpid())));
}

TEST_CASE("shouldNotStallEmittersWhenASubscriberStopsReading") {
  TempRuntime rt;
  Eventsd d({"--slots", "16", "--evict-ms", "500"});
  REQUIRE(d.pid() > 0);
  constexpr int kEvents = 500;
  Pipe stuck_ready, live_ready, rejoined;
  const pid_t stuck = spawn([&] {
    fwevent_watch* w = nullptr;
    if (fwevent_watch_open(">", &w) != 0 || !fwevent_watch_connected(w)) return 10;
    stuck_ready.signal();
    raise(SIGSTOP);  // stuck: joined, never reading, while the parent emits
    // Continued: take what we still had, find we were evicted, rejoin.
    fwevent_event ev{};
    while (fwevent_watch_next(w, &ev, 0) == 0) {
    }
    rejoined.signal();
    const int64_t deadline = now_ms() + 10000;
    while (now_ms() < deadline) {
      if (fwevent_watch_next(w, &ev, 1000) != 0) continue;
      if (std::strcmp(ev.topic, "after.cont") == 0) return ev.gap > 0 ? 0 : 12;  // the gap is reported
    }
    return 13;
  });
  const pid_t live = spawn([&] {
    fwevent_watch* w = nullptr;
    if (fwevent_watch_open("load.>", &w) != 0) return 10;
    live_ready.signal();
    for (int i = 0; i < kEvents; ++i) {
      fwevent_event ev{};
      if (fwevent_watch_next(w, &ev, 20000) != 0) return 11;
      if (ev.gap != 0) return 12;                                                  // evicted although reading
      if (std::string(ev.json) != "{\"i\":" + std::to_string(i) + "}") return 13;  // lost or out of order
    }
    return 0;
  });
  REQUIRE(stuck_ready.wait() == 1);
  REQUIRE(live_ready.wait() == 1);
  int st = 0;
  REQUIRE(waitpid(stuck, &st, WUNTRACED) == stuck);  // it is stopped now
  REQUIRE(WIFSTOPPED(st));

  const int ch = ipc_open_channel("events", IPC_MODE_WRITE);
  IPC_CHANNEL_INFO info{};
  REQUIRE(ipc_channel_info(uint32_t(ch), &info) == 0);
  ipc_close_channel(uint32_t(ch));
  INFO("the channel's overflow policy is " << info.overflow << " (1 = IPC_OVERFLOW_EVICT)");
  CHECK(info.overflow == IPC_OVERFLOW_EVICT);

  // 500 events through a 16-slot channel that the stopped subscriber holds full: each emit
  // waits at most 1 s for room, so with a stall they would fail.
  int failed = 0;
  for (int i = 0; i < kEvents; ++i) {
    failed += fwevent_emit("load.tick", ("{\"i\":" + std::to_string(i) + "}").c_str()) != 0;
  }
  CHECK(failed == 0);
  CHECK(wait_exit(live, 60000) == 0);  // every event, in order, no gap

  kill(stuck, SIGCONT);
  CHECK(rejoined.wait(10000) == 1);
  CHECK(fwevent_emit("after.cont", "{}") == 0);
  CHECK(wait_exit(stuck, 20000) == 0);
}

TEST_CASE("shouldRejoinAndReportTheGapWhenEventsdRestarts") {
  TempRuntime rt;
  auto d1 = std::make_unique<Eventsd>();
  REQUIRE(d1->pid() > 0);
  fwevent_watch* w = nullptr;
  REQUIRE(fwevent_watch_open("r.>", &w) == 0);
  REQUIRE(fwevent_watch_connected(w) == 1);
  const int fd = fwevent_watch_fd(w);
  CHECK(fwevent_emit("r.one", "{}") == 0);
  fwevent_event ev{};
  REQUIRE(fwevent_watch_next(w, &ev, 10000) == 0);
  CHECK(std::string(ev.topic) == "r.one");
  CHECK(ev.sender_pid == uint32_t(getpid()));
  CHECK(ev.gap == 0);

  CHECK(d1->stop() == 0);  // SIGTERM: a clean exit
  Eventsd d2;
  REQUIRE(d2.pid() > 0);
  // The watch rejoins by itself (within its 200 ms retry); an event emitted before that is
  // not ours, so emit until one arrives.
  bool got = false;
  const int64_t deadline = now_ms() + 10000;
  while (!got && now_ms() < deadline) {
    CHECK(fwevent_emit("r.two", "{}") == 0);  // the emitter reopens the new channel
    got = fwevent_watch_next(w, &ev, 300) == 0;
  }
  REQUIRE(got);
  CHECK(std::string(ev.topic) == "r.two");
  CHECK(ev.gap >= 1);
  CHECK(fwevent_watch_fd(w) == fd);  // stable for event loops
  fwevent_watch_close(w);
}

TEST_CASE("shouldEmitAndWatchFromTheCommandLine") {
  TempRuntime rt;
  Eventsd d;
  REQUIRE(d.pid() > 0);
  Child w = start(kCli, {"watch", "security.>", "--count", "2", "--json"});
  CHECK(has_text(read_until(w.err, "fwevent: watching security.>", 10000), "fwevent: watching security.>"));
  Child e1 = start(kCli, {"emit", "security.user.login", "{\"username\": \"user\"}"});
  CHECK(wait_exit(e1.pid) == 0);
  Child e2 = start(kCli, {"emit", "system.boot", "{}"});
  CHECK(wait_exit(e2.pid) == 0);
  Child e3 = start(kCli, {"emit", "security.sudo", "[1,2]"});
  CHECK(wait_exit(e3.pid) == 0);
  const std::string out = read_all(w.out, 10000);
  CHECK(wait_exit(w.pid) == 0);
  CHECK(out == "{\"topic\":\"security.user.login\",\"data\":{\"username\":\"user\"},\"pid\":" + std::to_string(e1.pid) +
                   "}\n{\"topic\":\"security.sudo\",\"data\":[1,2],\"pid\":" + std::to_string(e3.pid) + "}\n");

  Child t = start(kCli, {"watch", "a.>", "--count", "1"});
  CHECK(has_text(read_until(t.err, "watching", 10000), "watching"));
  Child e4 = start(kCli, {"emit", "a.b", "{\"k\":\"v\"}"});
  CHECK(wait_exit(e4.pid) == 0);
  CHECK(read_all(t.out, 10000) == "a.b {\"k\":\"v\"} pid=" + std::to_string(e4.pid) + "\n");
  CHECK(wait_exit(t.pid) == 0);

  struct Bad {
    std::vector<std::string> args;
    int status;
    const char* says;
  } bad[] = {
      {{"emit", "a..b", "{}"}, 2, "topic: empty segment at byte 2"},
      {{"emit", "a.b", "{x}"}, 2, "json: syntax error"},
      {{"emit", "a.b", "\"" + std::string(600, 'x') + "\""}, 1, "over the limit of 512"},
      {{"emit", "a.b"}, 2, "missing JSON"},
      {{"watch", "a.>.b"}, 2, "pattern: '>' is not the last segment"},
      {{"watch", "a", "--count", "0"}, 2, "--count"},
      {{"frobnicate"}, 2, "unknown command"},
  };
  for (const Bad& b : bad) {
    Child c = start(kCli, b.args);
    const std::string err = read_all(c.err, 10000);
    INFO(b.args[0] << ": " << err);
    CHECK(wait_exit(c.pid) == b.status);
    CHECK(has_text(err, b.says));
    close(c.out);
    close(c.err);
  }
  Child h = start(kCli, {"--help"});
  CHECK(has_text(read_all(h.out, 10000), "SYNOPSIS"));
  CHECK(wait_exit(h.pid) == 0);
  Child dh = start(runfile("services/events/eventsd"), {"--help"});
  CHECK(has_text(read_all(dh.out, 10000), "--evict-ms"));
  CHECK(wait_exit(dh.pid) == 0);

  CHECK(d.stop() == 0);
  Child none = start(kCli, {"emit", "a.b", "{}"});
  CHECK(has_text(read_all(none.err, 10000), "is eventsd running?"));
  CHECK(wait_exit(none.pid) == 1);
  for (Child* c : {&w, &e1, &e2, &e3, &t, &e4, &h, &dh, &none}) {
    close(c->out);
    close(c->err);
  }
}

// ---- Cases whose parent subscribes (a thread): last.

TEST_CASE("shouldStopDeliveringAfterUnsubscribingAWildcard") {
  TempRuntime rt;
  Eventsd d;
  REQUIRE(d.pid() > 0);
  Seen wild, sentinel;
  const int w = fwevent_subscribe("t.>", Seen::add, &wild);
  const int s = fwevent_subscribe("z.*", Seen::add, &sentinel);
  REQUIRE(w > 0);
  REQUIRE(s > 0);
  CHECK(is_member(uint32_t(getpid())));
  CHECK(fwevent_emit("t.a.b", "{}") == 0);
  CHECK(fwevent_emit("z.1", "{}") == 0);
  REQUIRE(sentinel.wait_for(1));
  CHECK(wild.snapshot().size() == 1);

  CHECK(fwevent_unsubscribe(w) == 0);
  CHECK(fwevent_unsubscribe(w) == -ENOENT);
  CHECK(fwevent_emit("t.c", "{}") == 0);
  CHECK(fwevent_emit("z.2", "{}") == 0);  // after t.c from the same emitter: t.c was dispatched first
  REQUIRE(sentinel.wait_for(2));
  CHECK(wild.snapshot().size() == 1);
  fwevent_stats st{};
  fwevent_get_stats(&st);
  CHECK(st.callback_subs == 1);

  // The last subscription gone: the thread stops and the process leaves the channel as a
  // reader (it stays a writer through its emitter id).
  CHECK(fwevent_unsubscribe(s) == 0);
  bool reads = true;
  for (const Member& m : events_members()) {
    if (m.pid == uint32_t(getpid())) reads = m.reads;
  }
  CHECK_FALSE(reads);
}

TEST_CASE("shouldRunEventBusListenersAndForwardSystemEventsThroughTheEventManager") {
  TempRuntime rt;
  Eventsd d;
  REQUIRE(d.pid() > 0);
  Pipe go;
  const pid_t emitter = spawn([&] {  // forked before the bus starts its thread
    if (go.wait() != 1) return 10;
    int rc = fwevent_emit("security.user.login", "{\"username\":\"user\"}");
    rc |= fwevent_emit("system.boot", "{}");
    rc |= fwevent_emit("other.thing", "{}");
    rc |= fwevent_emit("error.disk.full", "{\"dev\":\"sda\"}");
    rc |= fwevent_emit("done.now", "{}");
    return rc == 0 ? 0 : 1;
  });

  std::mutex m;
  std::condition_variable cv;
  std::vector<fwevent::LogRecord> records;
  int done = 0, users = 0;
  {
    fwevent::EventBus bus;
    fwevent::EventManager mgr(bus);
    REQUIRE(mgr.forward_system_events([&](const fwevent::LogRecord& r, const fwevent::Event&) {
      std::lock_guard<std::mutex> lk(m);
      records.push_back(r);
    }) == 0);
    CHECK(mgr.forward_system_events([](const fwevent::LogRecord&, const fwevent::Event&) {}) == -EALREADY);
    REQUIRE(bus.on("*.user.*", [&](const fwevent::Event& e) {
      std::lock_guard<std::mutex> lk(m);
      users += e.data.value("username", "") == "user";
    }) > 0);
    REQUIRE(bus.once("done.*", [&](const fwevent::Event&) {
      std::lock_guard<std::mutex> lk(m);
      ++done;
      cv.notify_all();
    }) > 0);
    CHECK(bus.on("a..b", [](const fwevent::Event&) {}) == -EINVAL);
    CHECK(bus.listener_count() == 5);
    go.signal();
    CHECK(wait_exit(emitter) == 0);
    {
      std::unique_lock<std::mutex> lk(m);
      REQUIRE(cv.wait_for(lk, std::chrono::seconds(10), [&] { return done == 1; }));
    }
    // once: removed as it fired; a second done.* is not delivered (the sentinel below comes
    // after it from the same emitter).
    CHECK(bus.listener_count() == 4);
    bool sentinel = false;
    REQUIRE(bus.once("zz.end", [&](const fwevent::Event&) {
      std::lock_guard<std::mutex> lk(m);
      sentinel = true;
      cv.notify_all();
    }) > 0);
    CHECK(bus.emit("done.again", nlohmann::json::object()) == 0);
    CHECK(bus.emit("zz.end", {{"k", 1}}) == 0);
    {
      std::unique_lock<std::mutex> lk(m);
      REQUIRE(cv.wait_for(lk, std::chrono::seconds(10), [&] { return sentinel; }));
      CHECK(done == 1);
      CHECK(users == 1);
      REQUIRE(records.size() == 3);
      CHECK(records[0].level == "notice");
      CHECK(records[0].tag == "security");
      CHECK(records[0].event == "security.user.login");
      CHECK(records[0].data == nlohmann::json{{"username", "user"}});
      CHECK(records[0].pid == emitter);
      CHECK(records[1].level == "info");
      CHECK(records[1].event == "system.boot");
      CHECK(records[2].level == "err");
      CHECK(records[2].tag == "error");
      CHECK(records[2].data["dev"] == "sda");
    }
    CHECK(mgr.forwarded() == 3);
    CHECK(bus.off("*.user.*") == 1);
    mgr.stop();
    CHECK(bus.listener_count() == 0);
  }
  fwevent_stats st{};
  fwevent_get_stats(&st);
  CHECK(st.callback_subs == 0);
}
