// The event loop: descriptors, timers, signals (in child processes, whose exit code says
// what the loop returned), quitting, and callbacks that change the loop under it.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "fwsvc.h"
#include "service/test_support.h"

using fwsvc::test::spawn;
using fwsvc::test::wait_exit;

namespace {

struct Pipe {
  int fds[2];
  Pipe() { REQUIRE(::pipe(fds) == 0); }
  ~Pipe() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  void put() const { REQUIRE(::write(fds[1], "x", 1) == 1); }
};

struct Counter {
  fwsvc_loop* loop;
  int calls = 0;
  int quit_after = 1;
};

void count_and_maybe_quit(void* ctx) {
  auto* c = static_cast<Counter*>(ctx);
  if (++c->calls == c->quit_after) fwsvc_loop_quit(c->loop, 0);
}

void read_one(void* ctx, int fd, uint32_t events) {
  char b;
  CHECK((events & FWSVC_EVENT_IN) != 0);
  CHECK(::read(fd, &b, 1) == 1);
  count_and_maybe_quit(ctx);
}

}  // namespace

TEST_CASE("shouldCallAWatchedDescriptorWhileItIsReadable") {
  fwsvc_loop* loop = nullptr;
  REQUIRE(fwsvc_loop_new(&loop) == 0);
  Pipe p;
  Counter c{loop, 0, 3};
  REQUIRE(fwsvc_loop_add_fd(loop, p.fds[0], FWSVC_EVENT_IN, read_one, &c) == 0);
  CHECK(fwsvc_loop_add_fd(loop, p.fds[0], FWSVC_EVENT_IN, read_one, &c) == -EEXIST);
  p.put();
  p.put();
  p.put();  // level-triggered: one byte per call, three calls
  CHECK(fwsvc_loop_run(loop) == 0);
  CHECK(c.calls == 3);
  CHECK(fwsvc_loop_remove_fd(loop, p.fds[0]) == 0);
  CHECK(fwsvc_loop_remove_fd(loop, p.fds[0]) == -ENOENT);
  fwsvc_loop_free(loop);
}

TEST_CASE("shouldFireOneShotTimersOnceAndRepeatingTimersUntilRemoved") {
  fwsvc_loop* loop = nullptr;
  REQUIRE(fwsvc_loop_new(&loop) == 0);
  Counter once{loop, 0, 100};
  Counter again{loop, 0, 5};
  const int t1 = fwsvc_loop_add_timer(loop, 1, 0, count_and_maybe_quit, &once);
  const int t2 = fwsvc_loop_add_timer(loop, 2, 1, count_and_maybe_quit, &again);
  REQUIRE(t1 > 0);
  REQUIRE(t2 > 0);
  CHECK(t1 != t2);
  CHECK(fwsvc_loop_run(loop) == 0);
  CHECK(once.calls == 1);
  CHECK(again.calls == 5);
  CHECK(fwsvc_loop_remove_timer(loop, t1) == -ENOENT);  // a one-shot timer is gone once fired
  CHECK(fwsvc_loop_remove_timer(loop, t2) == 0);
  CHECK(fwsvc_loop_add_timer(loop, 0, 1, count_and_maybe_quit, &once) == -EINVAL);
  fwsvc_loop_free(loop);
}

namespace {

struct Removal {
  fwsvc_loop* loop;
  int fd_a;
  int fd_b;
  int calls = 0;
};

// Removes both descriptors and itself ends the loop a little later.
void remove_both(void* ctx, int, uint32_t) {
  auto* r = static_cast<Removal*>(ctx);
  ++r->calls;
  CHECK(fwsvc_loop_remove_fd(r->loop, r->fd_a) == 0);
  CHECK(fwsvc_loop_remove_fd(r->loop, r->fd_b) == 0);
  fwsvc_loop_add_timer(
      r->loop, 20, 0, [](void* c) { fwsvc_loop_quit(static_cast<Removal*>(c)->loop, 0); }, r);
}

}  // namespace

TEST_CASE("shouldNotCallASourceRemovedEarlierInTheSameBatch") {
  fwsvc_loop* loop = nullptr;
  REQUIRE(fwsvc_loop_new(&loop) == 0);
  Pipe a, b;
  a.put();
  b.put();  // both readable: one epoll_wait returns both
  Removal r{loop, a.fds[0], b.fds[0]};
  REQUIRE(fwsvc_loop_add_fd(loop, a.fds[0], FWSVC_EVENT_IN, remove_both, &r) == 0);
  REQUIRE(fwsvc_loop_add_fd(loop, b.fds[0], FWSVC_EVENT_IN, remove_both, &r) == 0);
  CHECK(fwsvc_loop_run(loop) == 0);
  CHECK(r.calls == 1);  // whichever ran first removed the other
  fwsvc_loop_free(loop);
}

TEST_CASE("shouldReturnTheCodeGivenToQuitFromAnotherThread") {
  fwsvc_loop* loop = nullptr;
  REQUIRE(fwsvc_loop_new(&loop) == 0);
  std::thread t([loop] {
    ::usleep(20000);
    fwsvc_loop_quit(loop, 7);
  });
  CHECK(fwsvc_loop_run(loop) == 7);
  t.join();
  fwsvc_loop_quit(loop, 9);  // before run: run returns at once
  CHECK(fwsvc_loop_run(loop) == 9);
  fwsvc_loop_free(loop);
}

TEST_CASE("shouldEndTheLoopWithZeroOnSigtermAndOnSigint") {
  for (int sig : {SIGTERM, SIGINT}) {
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t child = spawn([&] {
      fwsvc_loop* loop = nullptr;
      if (fwsvc_loop_new(&loop) != 0) return 10;
      (void)!::write(ready[1], "r", 1);
      const int rc = fwsvc_loop_run(loop);  // blocks in epoll_wait until the signal
      fwsvc_loop_free(loop);
      return rc == 0 ? 0 : 11;
    });
    char b;
    REQUIRE(::read(ready[0], &b, 1) == 1);
    ::usleep(10000);
    ::kill(child, sig);
    CHECK(wait_exit(child, 10000) == 0);
    ::close(ready[0]);
    ::close(ready[1]);
  }
}

TEST_CASE("shouldRunTheReloadCallbackOnSighupAndKeepRunning") {
  const pid_t child = spawn([] {
    fwsvc_loop* loop = nullptr;
    if (fwsvc_loop_new(&loop) != 0) return 10;
    int reloads = 0;
    fwsvc_loop_on_reload(
        loop, [](void* c) { ++*static_cast<int*>(c); }, &reloads);
    ::kill(::getpid(), SIGHUP);  // blocked since fwsvc_loop_new: waits in the signalfd
    struct Quit {
      fwsvc_loop* loop;
      int* reloads;
    } q{loop, &reloads};
    fwsvc_loop_add_timer(
        loop, 50, 0,
        [](void* c) {
          auto* q = static_cast<Quit*>(c);
          fwsvc_loop_quit(q->loop, 20 + *q->reloads);
        },
        &q);
    const int rc = fwsvc_loop_run(loop);
    fwsvc_loop_free(loop);
    return rc;
  });
  CHECK(wait_exit(child, 10000) == 21);  // one reload, then the timer ended the loop
}

TEST_CASE("shouldRefuseBadArguments") {
  CHECK(fwsvc_loop_new(nullptr) == -EINVAL);
  fwsvc_loop* loop = nullptr;
  REQUIRE(fwsvc_loop_new(&loop) == 0);
  CHECK(fwsvc_loop_add_fd(loop, -1, FWSVC_EVENT_IN, read_one, nullptr) == -EINVAL);
  CHECK(fwsvc_loop_add_fd(loop, 0, FWSVC_EVENT_IN, nullptr, nullptr) == -EINVAL);
  CHECK(fwsvc_loop_add_fd(loop, 9999, FWSVC_EVENT_IN, read_one, nullptr) == -EBADF);
  CHECK(fwsvc_loop_remove_timer(loop, 12345) == -ENOENT);
  fwsvc_loop_free(loop);
  fwsvc_loop_free(nullptr);
}
