// Request/reply (ipc_call, ipc_receive_request, ipc_reply) over every channel type, with
// real processes and threads: each caller gets its own reply, late replies are discarded,
// and callers that die or never read cost the server nothing.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "base/time.h"
#include "ipc.h"
#include "tests/support.h"

using fwipc::test::Barrier;
using fwipc::test::spawn;
using fwipc::test::TempRuntime;
using fwipc::test::wait_exit;
using fwipc::test::wait_exit_within;

namespace {

const uint32_t kTypes[] = {IPC_TYPE_QUEUE, IPC_TYPE_SOCKET, IPC_TYPE_PIPE};
constexpr uint32_t kStop = 0xdead;

IPC_MESSAGE text_message(uint32_t type, const std::string& text) {
  IPC_MESSAGE m{};
  m.type = type;
  m.size = uint32_t(text.size());
  std::memcpy(m.payload, text.data(), text.size());
  return m;
}

// Serves calls on the creator's id c until a kStop call: answers each with "re:" + the
// request, after delay_ms. Returns how many it answered.
int serve(int c, int delay_ms = 0) {
  int answered = 0;
  for (;;) {
    IPC_MESSAGE rq;
    uint64_t call = 0;
    const int n = ipc_receive_request(uint32_t(c), &rq, &call, 20000);
    if (n < 0) return n == -ETIMEDOUT ? answered : -1;
    if (delay_ms) ::usleep(delay_ms * 1000);
    const IPC_MESSAGE rp = text_message(rq.type + 1, "re:" + std::string(rq.payload, rq.size));
    if (ipc_reply(uint32_t(c), call, &rp) == 0) ++answered;
    if (rq.type == kStop) return answered;
  }
}

}  // namespace

TEST_CASE("shouldGiveEveryCallerItsOwnReplyAcrossProcessesAndThreads") {
  constexpr int kProcs = 4, kThreads = 2, kCalls = 1000;
  for (uint32_t type : kTypes) {
    CAPTURE(type);
    TempRuntime rt;
    // Children are forked before the channel exists: a hub starts the runtime's progress
    // thread in the creator, and a process that forks with threads running and then starts
    // threads in the child is beyond ThreadSanitizer (the runtime itself is fine with it).
    Barrier created;
    std::vector<pid_t> kids;
    for (int p = 0; p < kProcs; ++p) {
      kids.push_back(spawn([p, &created] {
        if (!created.wait(1)) return 9;
        const int id = ipc_open_channel("rpc", IPC_MODE_WRITE);  // write-only: may call
        if (id < 0) return 10;
        std::atomic<int> bad{0};
        std::vector<std::thread> ts;
        for (int t = 0; t < kThreads; ++t) {
          ts.emplace_back([&, t] {
            for (int i = 0; i < kCalls; ++i) {
              const std::string body = std::to_string(p) + "/" + std::to_string(t) + "/" + std::to_string(i);
              const IPC_MESSAGE rq = text_message(7, body);
              IPC_MESSAGE rp;
              const int n = ipc_call(uint32_t(id), &rq, &rp, 20000);
              if (n != int(body.size()) + 3 || rp.type != 8 || std::string(rp.payload, rp.size) != "re:" + body ||
                  rp.sender != uint32_t(::getppid()))
                bad.fetch_add(1);
            }
          });
        }
        for (auto& th : ts) th.join();
        return bad.load() == 0 ? 0 : 11;
      }));
    }
    const int c = ipc_create_channel("rpc", type, 0);
    REQUIRE(c >= 0);
    for (int p = 0; p < kProcs; ++p) created.signal();
    // The server: every request carries its caller's real PID.
    int answered = 0;
    bool pids_ok = true;
    while (answered < kProcs * kThreads * kCalls) {
      IPC_MESSAGE rq;
      uint64_t call;
      const int n = ipc_receive_request(uint32_t(c), &rq, &call, 20000);
      REQUIRE(n >= 0);
      pids_ok = pids_ok && std::find(kids.begin(), kids.end(), pid_t(rq.sender)) != kids.end();
      const IPC_MESSAGE rp = text_message(rq.type + 1, "re:" + std::string(rq.payload, rq.size));
      REQUIRE(ipc_reply(uint32_t(c), call, &rp) == 0);
      ++answered;
    }
    CHECK(pids_ok);
    for (pid_t k : kids) CHECK(wait_exit(k) == 0);
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}

TEST_CASE("shouldDiscardALateReplyInsteadOfHandingItToTheNextCall") {
  for (uint32_t type : kTypes) {
    CAPTURE(type);
    TempRuntime rt;
    const int c = ipc_create_channel("slow", type, 0);
    REQUIRE(c >= 0);
    const pid_t client = spawn([] {
      const int id = ipc_open_channel("slow", IPC_MODE_WRITE);
      if (id < 0) return 10;
      IPC_MESSAGE rp;
      const IPC_MESSAGE first = text_message(1, "first");
      if (ipc_call(uint32_t(id), &first, &rp, 100) != -ETIMEDOUT) return 11;  // the server takes 300 ms
      const IPC_MESSAGE second = text_message(1, "second");
      const int n = ipc_call(uint32_t(id), &second, &rp, 20000);
      if (n < 0 || std::string(rp.payload, rp.size) != "re:second") return 12;
      const IPC_MESSAGE stop = text_message(kStop, "stop");
      return ipc_call(uint32_t(id), &stop, &rp, 20000) >= 0 ? 0 : 13;
    });
    CHECK(serve(c, 300) == 3);
    CHECK(wait_exit(client) == 0);
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}

TEST_CASE("shouldNeverBlockTheServerOnACallerThatDiesOrDoesNotRead") {
  for (uint32_t type : kTypes) {
    CAPTURE(type);
    TempRuntime rt;
    // A caller that fires calls from many threads and never reads a reply: its threads
    // give up at once (timeout 0), so replies pile up unread in its socket. Forked before
    // the channel exists, as in the test above.
    Barrier sent, created;
    const pid_t deaf = spawn([&] {
      if (!created.wait(1)) return 9;
      const int id = ipc_open_channel("deaf", IPC_MODE_WRITE);
      if (id < 0) return 10;
      std::vector<std::thread> ts;
      for (int t = 0; t < 8; ++t)
        ts.emplace_back([id] {
          const IPC_MESSAGE rq = text_message(1, std::string(400, 'x'));
          IPC_MESSAGE rp;
          for (int i = 0; i < 400; ++i) (void)ipc_call(uint32_t(id), &rq, &rp, 0);
        });
      for (auto& th : ts) th.join();
      sent.signal();
      ::pause();  // alive, never reading
      return 0;
    });
    const int c = ipc_create_channel("deaf", type, 0);
    REQUIRE(c >= 0);
    // A caller killed in the middle of its call.
    Barrier calling;
    const pid_t killed = spawn([&] {
      const int id = ipc_open_channel("deaf", IPC_MODE_WRITE);
      if (id < 0) return 10;
      calling.signal();
      const IPC_MESSAGE rq = text_message(1, "dying");
      IPC_MESSAGE rp;
      (void)ipc_call(uint32_t(id), &rq, &rp, -1);
      return 0;
    });
    REQUIRE(calling.wait(1));
    ::usleep(20000);
    ::kill(killed, SIGKILL);
    CHECK(wait_exit(killed) == 128 + SIGKILL);
    created.signal();
    // Answer everything that comes: every reply returns at once, whatever the callers do.
    int replies = 0, dropped = 0;
    const int64_t t0 = fwipc::monotonic_ns();
    for (;;) {
      IPC_MESSAGE rq;
      uint64_t call;
      if (ipc_receive_request(uint32_t(c), &rq, &call, 2000) < 0) break;
      const int rc = ipc_reply(uint32_t(c), call, &rq);
      if (rc == 0)
        ++replies;
      else if (rc == -EAGAIN || rc == -EPIPE)
        ++dropped;
      else
        FAIL("unexpected ipc_reply result " << rc);
    }
    CHECK(sent.wait(1));
    CHECK(replies + dropped > 0);
    CHECK(dropped > 0);  // the deaf caller's socket filled up: its replies were dropped
    CHECK(fwipc::monotonic_ns() - t0 < int64_t(60) * 1000000000);  // generous: no hang
    // The server still serves a healthy caller.
    const pid_t healthy = spawn([] {
      const int id = ipc_open_channel("deaf", IPC_MODE_WRITE);
      const IPC_MESSAGE stop = text_message(kStop, "ok");
      IPC_MESSAGE rp;
      return id >= 0 && ipc_call(uint32_t(id), &stop, &rp, 20000) == 5 ? 0 : 1;
    });
    CHECK(serve(c) == 1);
    CHECK(wait_exit(healthy) == 0);
    ::kill(deaf, SIGKILL);
    wait_exit(deaf);
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}

TEST_CASE("shouldRefuseCallsOnIdsThatCannotWriteAndRequestsOnIdsThatDidNotCreate") {
  TempRuntime rt;
  const int c = ipc_create_channel("modes", IPC_TYPE_QUEUE, 0);
  REQUIRE(c >= 0);
  const int r = ipc_open_channel("modes", IPC_MODE_READ);
  REQUIRE(r >= 0);
  IPC_MESSAGE m = text_message(1, "x"), out;
  uint64_t call;
  CHECK(ipc_call(uint32_t(r), &m, &out, 100) == -EBADF);
  CHECK(ipc_receive_request(uint32_t(r), &m, &call, 0) == -EBADF);
  CHECK(ipc_request_fd(uint32_t(r)) == -EBADF);
  CHECK(ipc_request_fd(uint32_t(c)) >= 0);
  CHECK(ipc_receive_request(uint32_t(c), &m, &call, 0) == -EAGAIN);
  CHECK(ipc_receive_request(uint32_t(c), &m, &call, 50) == -ETIMEDOUT);
  m.size = IPC_MAX_PAYLOAD + 1;
  CHECK(ipc_call(uint32_t(c), &m, &out, 100) == -EMSGSIZE);
  CHECK(ipc_close_channel(uint32_t(r)) == 0);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

TEST_CASE("shouldFailCallsWithEpipeOnceTheServerIsGone") {
  TempRuntime rt;
  const int c = ipc_create_channel("gone", IPC_TYPE_SOCKET, 0);
  REQUIRE(c >= 0);
  const int w = ipc_open_channel("gone", IPC_MODE_WRITE);
  REQUIRE(w >= 0);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
  IPC_MESSAGE m = text_message(1, "anyone?"), out;
  CHECK(ipc_call(uint32_t(w), &m, &out, 2000) == -EPIPE);
  CHECK(ipc_close_channel(uint32_t(w)) == 0);
}

namespace {

// ipc_call_result() until it is not -EAGAIN, sleeping in poll() on the call descriptor
// (10 s at most per sleep: a loop that is never woken ends with -EAGAIN).
int await_result(int w, int fd, uint64_t call, IPC_MESSAGE* out) {
  int n;
  while ((n = ipc_call_result(uint32_t(w), call, out)) == -EAGAIN) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) break;
  }
  return n;
}

}  // namespace

// ipc_call_start / ipc_call_fd / ipc_call_result / ipc_call_cancel: a loop that never waits
// in the runtime gets each reply through poll() on one descriptor, in any order; a
// cancelled call's reply is dropped; a reply a thread in ipc_call() read for the loop
// still wakes the loop.
TEST_CASE("shouldAnswerCallsStartedFromAnEventLoopThroughOneDescriptor") {
  for (uint32_t type : kTypes) {
    CAPTURE(type);
    TempRuntime rt;
    // The client starts a thread: it is forked before the channel (and a hub's progress
    // thread) exists, as in the first case, so that ThreadSanitizer can follow it.
    Barrier created;
    const pid_t client = spawn([&created] {
      if (!created.wait(1)) return 9;
      const int id = ipc_open_channel("loop", IPC_MODE_WRITE);
      if (id < 0) return 10;
      const int fd = ipc_call_fd(uint32_t(id));
      if (fd < 0 || ipc_call_fd(uint32_t(id)) != fd) return 11;
      const char* texts[] = {"a", "b", "c"};
      uint64_t calls[3];
      for (int i = 0; i < 3; i++) {
        const IPC_MESSAGE m = text_message(1, texts[i]);
        if (ipc_call_start(uint32_t(id), &m, &calls[i]) != 0) return 12;
      }
      if (ipc_call_cancel(uint32_t(id), calls[1]) != 0) return 13;
      IPC_MESSAGE rp;
      if (ipc_call_result(uint32_t(id), calls[1], &rp) != -ENOENT) return 14;
      if (ipc_call_result(uint32_t(id), 1ull << 40, &rp) != -ENOENT) return 15;
      // Collects c before a whatever order they come in.
      for (int want : {2, 0}) {
        if (await_result(id, fd, calls[want], &rp) < 0) return 18;
        if (std::string(rp.payload, rp.size) != std::string("re:") + texts[want]) return 16;
        if (rp.sender != uint32_t(getppid())) return 17;
      }
      if (ipc_call_result(uint32_t(id), calls[0], &rp) != -ENOENT) return 20;  // taken
      // A thread in ipc_call() may read the loop's reply off the socket: the loop still wakes.
      for (int round = 0; round < 50; round++) {
        uint64_t mine = 0;
        const IPC_MESSAGE m = text_message(1, "loop");
        if (ipc_call_start(uint32_t(id), &m, &mine) != 0) return 21;
        int sync_rc = 0;
        std::thread t([&] {
          const IPC_MESSAGE q = text_message(1, "thread");
          IPC_MESSAGE r;
          sync_rc = ipc_call(uint32_t(id), &q, &r, 20000) >= 0 && std::string(r.payload, r.size) == "re:thread";
        });
        const int n = await_result(id, fd, mine, &rp);
        t.join();
        if (n < 0 || std::string(rp.payload, rp.size) != "re:loop" || !sync_rc) return 23;
      }
      const IPC_MESSAGE stop = text_message(kStop, "stop");
      return ipc_call(uint32_t(id), &stop, &rp, 20000) >= 0 ? 0 : 24;
    });
    const int c = ipc_create_channel("loop", type, 0);
    REQUIRE(c >= 0);
    created.signal();
    CHECK(serve(c) == 3 + 100 + 1);  // the cancelled call is answered too; its reply is dropped
    CHECK(wait_exit(client) == 0);
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}

namespace {

// Server gone while the event loop's call is in flight. with_thread: a thread also waits in
// ipc_call() on the same id. When it handles the hang-up while the loop sleeps in poll(),
// the socket leaves the epoll set as the thread closes it: the loop must still be woken.
// The interleaving is the scheduler's; every one of them must end in -EPIPE for both.
void check_server_gone_during_call(uint32_t type, bool with_thread) {
  TempRuntime rt;
  const int c = ipc_create_channel("away", type, 0);
  REQUIRE(c >= 0);
  const int w = ipc_open_channel("away", IPC_MODE_WRITE);
  REQUIRE(w >= 0);
  const int fd = ipc_call_fd(uint32_t(w));
  REQUIRE(fd >= 0);
  const IPC_MESSAGE m = text_message(1, "anyone?");
  uint64_t call = 0;
  REQUIRE(ipc_call_start(uint32_t(w), &m, &call) == 0);
  IPC_MESSAGE out;
  CHECK(ipc_call_result(uint32_t(w), call, &out) == -EAGAIN);
  int sync_rc = -EPIPE;
  Barrier started;
  std::thread t;
  if (with_thread) {
    t = std::thread([&] {
      IPC_MESSAGE r;
      started.signal();
      sync_rc = ipc_call(uint32_t(w), &m, &r, 20000);
    });
    REQUIRE(started.wait(1));
  }
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
  CHECK(await_result(w, fd, call, &out) == -EPIPE);
  if (t.joinable()) t.join();
  CHECK(sync_rc == -EPIPE);
  CHECK(ipc_call_start(uint32_t(w), &m, &call) == -EPIPE);
  CHECK(ipc_close_channel(uint32_t(w)) == 0);
}

}  // namespace

TEST_CASE("shouldFailAStartedCallWithEpipeWhenTheServerGoesAway") {
  for (uint32_t type : kTypes) {
    CAPTURE(type);
    check_server_gone_during_call(type, false);
  }
}

TEST_CASE("shouldWakeTheLoopWhenAThreadInIpcCallSeesTheServerGo") {
  for (uint32_t type : kTypes) {
    CAPTURE(type);
    check_server_gone_during_call(type, true);
  }
}
