// See progress.h.
#include "transports/progress/progress.h"

#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <map>
#include <mutex>
#include <new>
#include <thread>
#include <utility>

namespace fwipc::progress {
namespace {

struct State {
  std::mutex mu;  // guards everything here; held while a progress() call runs
  int ep = -1;
  int wake = -1;     // eventfd in ep: a registration changed, or the thread must stop
  uint64_t gen = 0;  // the running thread's generation; a thread whose gen is stale exits
  std::thread thread;
  std::map<Work*, int> works;  // and the descriptor each is watched by
};

State& state() {
  static State* s = new State();  // never destroyed: in use until the process ends
  return *s;
}

void run(uint64_t my_gen) {
  State& s = state();
  for (;;) {
    epoll_event evs[32];
    const int n = ::epoll_wait(s.ep, evs, 32, -1);
    std::lock_guard<std::mutex> lk(s.mu);
    if (s.gen != my_gen) return;
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.ptr == nullptr) {  // the wake eventfd
        uint64_t v;
        (void)!::read(s.wake, &v, sizeof v);
        continue;
      }
      Work* w = static_cast<Work*>(evs[i].data.ptr);
      if (s.works.count(w)) w->progress();  // removed meanwhile: its fd may be gone
    }
  }
}

void poke(State& s) {
  const uint64_t one = 1;
  (void)!::write(s.wake, &one, sizeof one);
}

}  // namespace

int add(int fd, Work* w) noexcept {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  if (s.ep < 0) {
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    const int wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;
    if (ep < 0 || wake < 0 || ::epoll_ctl(ep, EPOLL_CTL_ADD, wake, &ev) != 0) {
      const int e = errno;
      if (ep >= 0) ::close(ep);
      if (wake >= 0) ::close(wake);
      return -e;
    }
    s.ep = ep;
    s.wake = wake;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = w;
  if (::epoll_ctl(s.ep, EPOLL_CTL_ADD, fd, &ev) != 0) return -errno;
  if (!s.thread.joinable()) {
    const uint64_t gen = ++s.gen;
    // Every signal blocked in the thread from its first instruction (it inherits this
    // mask): a SIGTERM for the process must reach the application's own handling (a
    // service's signalfd), never this thread.
    sigset_t all, old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    bool started = true;
    try {
      s.thread = std::thread(run, gen);
    } catch (...) {
      started = false;
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (!started) {  // no thread: nothing to watch with
      ::epoll_ctl(s.ep, EPOLL_CTL_DEL, fd, nullptr);
      return -EAGAIN;
    }
  }
  s.works[w] = fd;
  return 0;
}

void remove(Work* w) noexcept {
  State& s = state();
  std::thread stopping;
  {
    std::lock_guard<std::mutex> lk(s.mu);
    auto it = s.works.find(w);
    if (it == s.works.end()) return;
    // Out of the set now, while the owner's descriptor is open: a closed descriptor stays
    // in an epoll set as long as another copy of it lives (a forked child's).
    ::epoll_ctl(s.ep, EPOLL_CTL_DEL, it->second, nullptr);
    s.works.erase(it);
    if (s.works.empty()) {
      ++s.gen;  // the thread exits at its next look
      poke(s);
      stopping = std::move(s.thread);
    }
  }
  if (stopping.joinable()) {
    if (stopping.get_id() == std::this_thread::get_id())
      stopping.detach();  // removed from progress()
    else
      stopping.join();
  }
}

void before_fork() noexcept { state().mu.lock(); }

void after_fork_parent() noexcept { state().mu.unlock(); }

void after_fork_child() noexcept {
  State& s = state();
  if (s.ep >= 0) ::close(s.ep);
  if (s.wake >= 0) ::close(s.wake);
  s.ep = s.wake = -1;
  s.works.clear();  // consistent: before_fork() held every change off
  // The parent's thread does not exist here, and destroying its joinable object would
  // terminate: overwrite it without running its destructor.
  new (&s.thread) std::thread();
  // The forking thread took the lock in before_fork(): in the child it is this thread's
  // to release.
  s.mu.unlock();
}

}  // namespace fwipc::progress
