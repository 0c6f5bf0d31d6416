// The event loop: one epoll set over the caller's descriptors, one timerfd per timer, a
// signalfd for SIGTERM/SIGINT (end) and SIGHUP (reload), and an eventfd that lets
// fwsvc_loop_quit() wake the loop from any thread or a signal handler.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <new>
#include <unordered_map>

#include "fwsvc.h"

static_assert(FWSVC_EVENT_IN == EPOLLIN && FWSVC_EVENT_OUT == EPOLLOUT, "events are passed to epoll as they are");
static_assert(FWSVC_EVENT_ERR == EPOLLERR && FWSVC_EVENT_HUP == EPOLLHUP, "events are passed to epoll as they are");

namespace {

// epoll tokens below kFirstSourceToken name the loop's own descriptors. A source's token
// is never reused, so an event still queued for a source removed earlier in the same batch
// finds nothing and is dropped instead of reaching whatever took the descriptor over.
constexpr uint64_t kSignalToken = 1;
constexpr uint64_t kQuitToken = 2;
constexpr uint64_t kFirstSourceToken = 16;
constexpr int kEventsPerWait = 32;

struct Source {
  int fd = -1;       // the watched descriptor, or the timer's own timerfd
  int timer_id = 0;  // > 0 for timers
  bool repeat = false;
  fwsvc_fd_fn fd_fn = nullptr;
  fwsvc_timer_fn timer_fn = nullptr;
  void* ctx = nullptr;
};

}  // namespace

struct fwsvc_loop {
  int epfd = -1;
  int sigfd = -1;
  int quitfd = -1;
  std::atomic<bool> quit{false};
  std::atomic<int> code{0};
  std::unordered_map<uint64_t, Source> sources;    // token -> source
  std::unordered_map<int, uint64_t> fd_tokens;     // watched fd -> token
  std::unordered_map<int, uint64_t> timer_tokens;  // timer id -> token
  uint64_t next_token = kFirstSourceToken;
  int next_timer_id = 1;
  fwsvc_reload_fn reload_fn = nullptr;
  void* reload_ctx = nullptr;
};

namespace {

int add_own(int epfd, int fd, uint64_t token) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = token;
  return ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

void close_loop_fds(fwsvc_loop* l) {
  if (l->epfd >= 0) ::close(l->epfd);
  if (l->sigfd >= 0) ::close(l->sigfd);
  if (l->quitfd >= 0) ::close(l->quitfd);
}

// Reads every queued signal: SIGTERM/SIGINT ask the loop to end with 0, SIGHUP reloads.
void drain_signals(fwsvc_loop* l) {
  signalfd_siginfo si;
  while (::read(l->sigfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
      fwsvc_loop_quit(l, 0);
    } else if (si.ssi_signo == SIGHUP && l->reload_fn != nullptr) {
      l->reload_fn(l->reload_ctx);
    }
  }
}

void erase_source(fwsvc_loop* l, uint64_t token) {
  auto it = l->sources.find(token);
  if (it == l->sources.end()) return;
  ::epoll_ctl(l->epfd, EPOLL_CTL_DEL, it->second.fd, nullptr);
  if (it->second.timer_id > 0) {
    l->timer_tokens.erase(it->second.timer_id);
    ::close(it->second.fd);
  } else {
    l->fd_tokens.erase(it->second.fd);
  }
  l->sources.erase(it);
}

void dispatch(fwsvc_loop* l, const epoll_event& ev) {
  const uint64_t token = ev.data.u64;
  if (token == kSignalToken) return drain_signals(l);
  if (token == kQuitToken) {
    uint64_t n;
    (void)!::read(l->quitfd, &n, sizeof n);
    return;
  }
  auto it = l->sources.find(token);
  if (it == l->sources.end()) return;  // removed by an earlier callback of this batch
  // Copied out: the callback may remove this very source (and so free `it`).
  const Source s = it->second;
  if (s.timer_id > 0) {
    uint64_t expirations = 0;
    if (::read(s.fd, &expirations, sizeof expirations) != static_cast<ssize_t>(sizeof expirations)) return;
    if (!s.repeat) erase_source(l, token);
    s.timer_fn(s.ctx);
  } else {
    s.fd_fn(s.ctx, s.fd, ev.events);
  }
}

}  // namespace

extern "C" {

int fwsvc_loop_new(fwsvc_loop** out) {
  if (out == nullptr) return -EINVAL;
  *out = nullptr;
  auto* l = new (std::nothrow) fwsvc_loop;
  if (l == nullptr) return -ENOMEM;
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  int rc = -pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  if (rc == 0) {
    l->epfd = ::epoll_create1(EPOLL_CLOEXEC);
    l->sigfd = ::signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    l->quitfd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->sigfd < 0 || l->quitfd < 0) rc = -errno;
  }
  if (rc == 0) rc = add_own(l->epfd, l->sigfd, kSignalToken);
  if (rc == 0) rc = add_own(l->epfd, l->quitfd, kQuitToken);
  if (rc != 0) {
    close_loop_fds(l);
    delete l;
    return rc;
  }
  *out = l;
  return 0;
}

void fwsvc_loop_free(fwsvc_loop* loop) {
  if (loop == nullptr) return;
  for (auto& [token, s] : loop->sources) {
    if (s.timer_id > 0) ::close(s.fd);
  }
  close_loop_fds(loop);
  delete loop;
}

int fwsvc_loop_add_fd(fwsvc_loop* loop, int fd, uint32_t events, fwsvc_fd_fn fn, void* ctx) {
  if (loop == nullptr || fn == nullptr || fd < 0) return -EINVAL;
  if (loop->fd_tokens.count(fd) != 0) return -EEXIST;
  const uint64_t token = loop->next_token++;
  epoll_event ev{};
  ev.events = events & (EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP);
  ev.data.u64 = token;
  if (::epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) return -errno;
  Source s;
  s.fd = fd;
  s.fd_fn = fn;
  s.ctx = ctx;
  loop->sources.emplace(token, s);
  loop->fd_tokens.emplace(fd, token);
  return 0;
}

int fwsvc_loop_remove_fd(fwsvc_loop* loop, int fd) {
  if (loop == nullptr) return -EINVAL;
  auto it = loop->fd_tokens.find(fd);
  if (it == loop->fd_tokens.end()) return -ENOENT;
  erase_source(loop, it->second);
  return 0;
}

int fwsvc_loop_add_timer(fwsvc_loop* loop, uint64_t interval_ms, int repeat, fwsvc_timer_fn fn, void* ctx) {
  if (loop == nullptr || fn == nullptr || interval_ms == 0) return -EINVAL;
  if (loop->next_timer_id == INT32_MAX) return -EMFILE;
  const int tfd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (tfd < 0) return -errno;
  itimerspec its{};
  its.it_value.tv_sec = static_cast<time_t>(interval_ms / 1000);
  its.it_value.tv_nsec = static_cast<long>(interval_ms % 1000) * 1000000L;
  if (repeat != 0) its.it_interval = its.it_value;
  const uint64_t token = loop->next_token++;
  int rc = ::timerfd_settime(tfd, 0, &its, nullptr) == 0 ? 0 : -errno;
  if (rc == 0) rc = add_own(loop->epfd, tfd, token);
  if (rc != 0) {
    ::close(tfd);
    return rc;
  }
  Source s;
  s.fd = tfd;
  s.timer_id = loop->next_timer_id++;
  s.repeat = repeat != 0;
  s.timer_fn = fn;
  s.ctx = ctx;
  loop->sources.emplace(token, s);
  loop->timer_tokens.emplace(s.timer_id, token);
  return s.timer_id;
}

int fwsvc_loop_remove_timer(fwsvc_loop* loop, int timer_id) {
  if (loop == nullptr) return -EINVAL;
  auto it = loop->timer_tokens.find(timer_id);
  if (it == loop->timer_tokens.end()) return -ENOENT;
  erase_source(loop, it->second);
  return 0;
}

void fwsvc_loop_on_reload(fwsvc_loop* loop, fwsvc_reload_fn fn, void* ctx) {
  if (loop == nullptr) return;
  loop->reload_fn = fn;
  loop->reload_ctx = ctx;
}

int fwsvc_loop_run(fwsvc_loop* loop) {
  if (loop == nullptr) return -EINVAL;
  epoll_event evs[kEventsPerWait];
  // SYNC POINT READ (quit): pairs with fwsvc_loop_quit()'s release store.
  while (!loop->quit.load(std::memory_order_acquire)) {
    const int n = ::epoll_wait(loop->epfd, evs, kEventsPerWait, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    // Stops mid-batch once asked to: what is left stays readable for a later run.
    for (int i = 0; i < n && !loop->quit.load(std::memory_order_acquire); ++i) dispatch(loop, evs[i]);
  }
  // Re-armed for a later run; the code was published before the flag.
  loop->quit.store(false, std::memory_order_relaxed);
  return loop->code.load(std::memory_order_relaxed);
}

void fwsvc_loop_quit(fwsvc_loop* loop, int code) {
  if (loop == nullptr) return;
  loop->code.store(code, std::memory_order_relaxed);
  // SYNC POINT WRITE (quit): the code above is visible to the run that sees the flag.
  loop->quit.store(true, std::memory_order_release);
  const uint64_t one = 1;
  (void)!::write(loop->quitfd, &one, sizeof one);
}

}  // extern "C"
