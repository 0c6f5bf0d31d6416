// The C API of fwevent.h: emitting, watches (a channel membership behind a stable epoll
// descriptor) and callback subscriptions (one watch and one thread per process).
#include "services/events/fwevent.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "ipc.h"
#include "services/events/topic.h"
#include "services/events/wire.h"

namespace {

thread_local std::string t_detail;

void set_detail(const std::string& s) noexcept {
  try {
    t_detail = s;
  } catch (...) {
  }
}

struct Counters {
  std::atomic<uint64_t> emitted{0}, emit_full{0}, received{0}, delivered{0}, malformed{0}, gaps{0}, subs{0};
};
Counters g_counters;

int64_t now_ms() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// The channel must be served by root or by us: its creator's runtime stamps the sender PID
// of other uids' messages, so whoever created it decides what "sender" means.
int open_events(uint32_t mode) noexcept {
  const int id = ipc_open_channel(FWEVENT_CHANNEL, mode);
  if (id < 0) {
    if (id == -ENOENT) set_detail("no event bus: the channel 'events' does not exist (is eventsd running?)");
    return id;
  }
  IPC_CHANNEL_INFO info{};
  if (ipc_channel_info(uint32_t(id), &info) != 0 || (info.owner_uid != 0 && info.owner_uid != geteuid())) {
    ipc_close_channel(uint32_t(id));
    set_detail("the channel 'events' is served by uid " + std::to_string(info.owner_uid) + ", not root or us");
    return -EPERM;
  }
  return id;
}

// ---------------------------------------------------------------- emit

// One write-only id per process, opened on first use, replaced after eventsd restarts
// (-EPIPE) and in a forked child (an inherited id is -EBADF there). Sends run outside the
// lock (the runtime allows sends on one id from several threads), so one emitter waiting
// for room never holds the others up, and no lock of ours is held inside the runtime.
// The shared_ptr closes a replaced id when its last sender is done with it.
struct EmitId {
  int id;
  explicit EmitId(int i) : id(i) {}
  ~EmitId() { ipc_close_channel(uint32_t(id)); }  // -EBADF, harmless, for a parent's id in a child
};
std::mutex g_emit_mu;
std::shared_ptr<EmitId> g_emit;
pid_t g_emit_pid = 0;

// The current id, or a new one when there is none or it is `stale`; *err on failure.
std::shared_ptr<EmitId> emit_id(const EmitId* stale, int* err) {
  std::shared_ptr<EmitId> old;  // released after the lock
  {
    std::lock_guard<std::mutex> lk(g_emit_mu);
    if (g_emit_pid != getpid()) {
      old = std::move(g_emit);
      g_emit_pid = getpid();
    }
    if (g_emit && g_emit.get() != stale) return g_emit;
    if (g_emit) old = std::move(g_emit);
  }
  old.reset();
  const int id = open_events(IPC_MODE_WRITE | IPC_MODE_NONBLOCK);
  if (id < 0) {
    *err = id;
    return nullptr;
  }
  auto fresh = std::make_shared<EmitId>(id);
  std::shared_ptr<EmitId> winner;
  {
    std::lock_guard<std::mutex> lk(g_emit_mu);
    if (!g_emit) g_emit = fresh;
    winner = g_emit;  // another thread may have opened one first: use it, close ours
  }
  return winner;
}

int emit_payload(const std::string& payload, int timeout_ms) {
  const int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
  bool reopened = false;
  useconds_t backoff_us = 50;
  int err = 0;
  std::shared_ptr<EmitId> e = emit_id(nullptr, &err);
  if (!e) return err;
  while (true) {
    IPC_HEADER h{};
    h.type = FWEVENT_WIRE_TYPE;
    h.size = uint32_t(payload.size());
    const int rc = ipc_send_header(uint32_t(e->id), &h, payload.data());
    if (rc >= 0) return 0;
    if ((rc == -EPIPE || rc == -EBADF) && !reopened) {  // eventsd restarted: a new channel
      reopened = true;
      e = emit_id(e.get(), &err);
      if (!e) return err;
      continue;
    }
    if (rc != -EAGAIN) return rc;
    // Full: a subscriber holds the channel back until it reads or the channel evicts it.
    // The runtime offers no timed send, so wait in short, growing steps within the bound.
    if (timeout_ms == 0 || (timeout_ms > 0 && now_ms() >= deadline)) {
      g_counters.emit_full.fetch_add(1, std::memory_order_relaxed);
      set_detail("the event bus stayed full (a subscriber is not reading)");
      return -EAGAIN;
    }
    usleep(backoff_us);
    if (backoff_us < 5000) backoff_us *= 2;
  }
}

// ---------------------------------------------------------------- watch

constexpr int kRetryMs = 200;  // how often a watch without a channel looks for it again

}  // namespace

struct fwevent_watch {
  std::string pattern;
  int ch = -1;       // channel id, -1 while the event bus is missing
  int ch_fd = -1;    // its ipc_channel_fd, in ep
  int ep = -1;       // what fwevent_watch_fd() returns
  int timer = -1;    // timerfd, in ep: retries while ch < 0
  uint32_t gap = 0;  // memberships lost since the last event handed out
  IPC_MESSAGE msg{};
  std::string topic, json;  // the last event's text (NUL-terminated copies)
};

namespace {

void watch_disconnect(fwevent_watch* w) noexcept {
  if (w->ch_fd >= 0) epoll_ctl(w->ep, EPOLL_CTL_DEL, w->ch_fd, nullptr);
  if (w->ch >= 0) ipc_close_channel(uint32_t(w->ch));
  w->ch = w->ch_fd = -1;
}

void arm_retry(fwevent_watch* w, bool on) noexcept {
  itimerspec its{};
  if (on) {
    its.it_value.tv_nsec = kRetryMs * 1'000'000L;
    its.it_interval = its.it_value;
  }
  timerfd_settime(w->timer, 0, &its, nullptr);
}

// Joins the channel; 0, or the open's error (the retry timer is then armed).
int watch_connect(fwevent_watch* w) noexcept {
  const int id = open_events(IPC_MODE_READ | IPC_MODE_NONBLOCK);
  if (id < 0) {
    arm_retry(w, true);
    return id;
  }
  const int fd = ipc_channel_fd(uint32_t(id));
  epoll_event ev{};
  ev.events = EPOLLIN;
  if (fd < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    ipc_close_channel(uint32_t(id));
    arm_retry(w, true);
    return fd < 0 ? fd : -errno;
  }
  w->ch = id;
  w->ch_fd = fd;
  arm_retry(w, false);
  return 0;
}

// poll()'s result: > 0 something to do, 0 timed out, < 0 with errno (EINTR: a signal).
int wait_ep(fwevent_watch* w, int timeout_ms) noexcept {
  pollfd p{w->ep, POLLIN, 0};
  return poll(&p, 1, timeout_ms);
}

}  // namespace

extern "C" {

int fwevent_topic_valid(const char* topic) {
  std::string why;
  if (topic == nullptr) why = "NULL";
  if (topic != nullptr && fwevent::valid_topic(topic, &why)) return 1;
  set_detail("topic: " + why);
  return 0;
}

int fwevent_pattern_valid(const char* pattern) {
  std::string why;
  if (pattern == nullptr) why = "NULL";
  if (pattern != nullptr && fwevent::valid_pattern(pattern, &why)) return 1;
  set_detail("pattern: " + why);
  return 0;
}

int fwevent_match(const char* pattern, const char* topic) {
  if (fwevent_pattern_valid(pattern) != 1 || fwevent_topic_valid(topic) != 1) return -EINVAL;
  return fwevent::match(pattern, topic) ? 1 : 0;
}

int fwevent_emit_timeout(const char* topic, const char* json, int timeout_ms) {
  if (topic == nullptr || json == nullptr) {
    set_detail(topic == nullptr ? "topic: NULL" : "json: NULL");
    return -EINVAL;
  }
  std::string payload, why;
  if (int rc = fwevent::encode(topic, json, &payload, &why); rc < 0) {
    set_detail(why);
    return rc;
  }
  int rc;
  try {
    rc = emit_payload(payload, timeout_ms);
  } catch (const std::bad_alloc&) {
    rc = -ENOMEM;
  }
  if (rc == 0) g_counters.emitted.fetch_add(1, std::memory_order_relaxed);
  return rc;
}

int fwevent_emit(const char* topic, const char* json) {
  return fwevent_emit_timeout(topic, json, FWEVENT_EMIT_WAIT_MS);
}

int fwevent_watch_open(const char* pattern, fwevent_watch** out) {
  if (out == nullptr) return -EFAULT;
  *out = nullptr;
  if (fwevent_pattern_valid(pattern) != 1) return -EINVAL;
  auto* w = new (std::nothrow) fwevent_watch;
  if (w == nullptr) return -ENOMEM;
  try {
    w->pattern = pattern;
  } catch (...) {
    delete w;
    return -ENOMEM;
  }
  w->ep = epoll_create1(EPOLL_CLOEXEC);
  w->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  if (w->ep < 0 || w->timer < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->timer, &ev) != 0) {
    const int err = -errno;
    fwevent_watch_close(w);
    return err;
  }
  const int rc = watch_connect(w);
  // No event bus yet, or eventsd mid-restart: the watch keeps trying (its fd wakes for it).
  if (rc < 0 && rc != -ENOENT && rc != -EPIPE) {
    fwevent_watch_close(w);
    return rc;
  }
  *out = w;
  return 0;
}

int fwevent_watch_fd(const fwevent_watch* w) { return w == nullptr ? -EFAULT : w->ep; }

int fwevent_watch_connected(const fwevent_watch* w) { return w != nullptr && w->ch >= 0 ? 1 : 0; }

int fwevent_watch_next(fwevent_watch* w, fwevent_event* out, int timeout_ms) {
  if (w == nullptr || out == nullptr) return -EFAULT;
  const int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
  while (true) {
    if (w->ch < 0) {
      uint64_t ticks;
      while (read(w->timer, &ticks, sizeof ticks) > 0) {
      }
      if (watch_connect(w) == 0) {
        ++w->gap;  // whatever was emitted while we were away is lost to us
        g_counters.gaps.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (w->ch >= 0) {
      const int rc = ipc_receive_message(uint32_t(w->ch), &w->msg, 0);
      if (rc >= 0) {
        g_counters.received.fetch_add(1, std::memory_order_relaxed);
        fwevent::Decoded d;
        if (!fwevent::decode(w->msg.type, w->msg.payload, w->msg.size, &d)) {
          g_counters.malformed.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        if (!fwevent::match(w->pattern, d.topic)) continue;
        try {
          w->topic.assign(d.topic);
          w->json.assign(d.json);
        } catch (...) {
          return -ENOMEM;
        }
        out->topic = w->topic.c_str();
        out->json = w->json.c_str();
        out->sender_pid = w->msg.sender;
        out->gap = w->gap;
        w->gap = 0;
        g_counters.delivered.fetch_add(1, std::memory_order_relaxed);
        return 0;
      }
      if (rc == -EBADMSG) {  // a slot reused under the read: skipped
        g_counters.malformed.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (rc == -ENOBUFS || rc == -EPIPE || rc == -EIO) {
        // Evicted (did not read for too long), eventsd gone, or a ring we cannot trust:
        // rejoin (now, or from the retry timer).
        watch_disconnect(w);
        if (watch_connect(w) == 0) {
          ++w->gap;
          g_counters.gaps.fetch_add(1, std::memory_order_relaxed);
        }
        continue;
      }
      if (rc != -EAGAIN) return rc;
    }
    if (timeout_ms == 0) return -EAGAIN;
    int wait = -1;
    if (timeout_ms > 0) {
      const int64_t left = deadline - now_ms();
      if (left <= 0) return -ETIMEDOUT;
      wait = int(left);
    }
    const int pr = wait_ep(w, wait);
    if (pr < 0 && errno == EINTR) return -EINTR;  // a signal: the caller decides whether to go on
    if (pr == 0 && timeout_ms > 0 && now_ms() >= deadline) return -ETIMEDOUT;
  }
}

void fwevent_watch_close(fwevent_watch* w) {
  if (w == nullptr) return;
  watch_disconnect(w);
  if (w->timer >= 0) close(w->timer);
  if (w->ep >= 0) close(w->ep);
  delete w;
}

}  // extern "C"

// ---------------------------------------------------------------- subscriptions

namespace {

struct Sub {
  int id;
  std::string pattern;
  fwevent_fn fn;
  void* ctx;
  bool dead;
};

// One per process: a watch on every topic, a thread that polls it and a stop eventfd, and
// the subscriptions. `mu` is held while callbacks run, so fwevent_unsubscribe() from
// another thread returns only after the callback in progress.
struct Dispatcher {
  pid_t pid = 0;
  std::mutex mu;
  std::vector<Sub> subs;
  int next_id = 1;
  fwevent_watch* watch = nullptr;
  int stop_fd = -1;
  pthread_t thread{};
  bool running = false;
};

std::mutex g_disp_mu;  // guards g_disp (never held while callbacks run)
Dispatcher* g_disp = nullptr;

// A forked child starts with no subscriptions: the parent's thread does not exist there and
// its ids are the parent's (the old state is leaked on purpose: its mutex may be held).
Dispatcher* dispatcher() {
  if (g_disp != nullptr && g_disp->pid != getpid()) g_disp = nullptr;
  if (g_disp == nullptr) {
    g_disp = new Dispatcher;
    g_disp->pid = getpid();
  }
  return g_disp;
}

thread_local bool t_dispatch_thread = false;

void* dispatch_main(void* arg) {
  auto* d = static_cast<Dispatcher*>(arg);
  t_dispatch_thread = true;
  const int wfd = fwevent_watch_fd(d->watch);
  while (true) {
    pollfd p[2] = {{wfd, POLLIN, 0}, {d->stop_fd, POLLIN, 0}};
    if (poll(p, 2, -1) < 0 && errno != EINTR) break;
    if (p[1].revents != 0) break;
    fwevent_event ev{};
    int rc;
    while ((rc = fwevent_watch_next(d->watch, &ev, 0)) == 0) {
      std::lock_guard<std::mutex> lk(d->mu);
      const size_t n = d->subs.size();  // subscriptions added by a callback start next event
      for (size_t i = 0; i < n; ++i) {
        Sub& s = d->subs[i];
        if (s.dead || !fwevent::match(s.pattern, ev.topic)) continue;
        const fwevent_fn fn = s.fn;
        void* ctx = s.ctx;
        fn(ctx, &ev);  // may append to subs (reallocation): s is not used after this
      }
      for (size_t i = 0; i < d->subs.size();) {
        if (d->subs[i].dead) {
          d->subs.erase(d->subs.begin() + long(i));
        } else {
          ++i;
        }
      }
    }
    if (rc != -EAGAIN) break;  // the watch itself failed (out of memory, closed descriptors)
  }
  return nullptr;
}

int start_dispatcher(Dispatcher* d) {
  int rc = fwevent_watch_open(">", &d->watch);
  if (rc < 0) return rc;
  d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (d->stop_fd < 0) {
    rc = -errno;
    fwevent_watch_close(d->watch);
    d->watch = nullptr;
    return rc;
  }
  // Every signal blocked in the library's thread: the application's signal handling
  // (a daemon's signalfd) never lands here.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = -pthread_create(&d->thread, nullptr, dispatch_main, d);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc < 0) {
    close(d->stop_fd);
    d->stop_fd = -1;
    fwevent_watch_close(d->watch);
    d->watch = nullptr;
    return rc;
  }
  d->running = true;
  return 0;
}

// Under g_disp_mu, never from the dispatch thread (it joins it).
void stop_dispatcher(Dispatcher* d) {
  const uint64_t one = 1;
  (void)!write(d->stop_fd, &one, sizeof one);
  pthread_join(d->thread, nullptr);
  close(d->stop_fd);
  d->stop_fd = -1;
  fwevent_watch_close(d->watch);
  d->watch = nullptr;
  d->running = false;
}

}  // namespace

extern "C" {

int fwevent_subscribe(const char* pattern, fwevent_fn fn, void* ctx) {
  if (fn == nullptr) {
    set_detail("callback: NULL");
    return -EINVAL;
  }
  if (fwevent_pattern_valid(pattern) != 1) return -EINVAL;
  try {
    if (t_dispatch_thread) {  // from a callback: we already hold d->mu
      Dispatcher* d = g_disp;
      const int id = d->next_id++;
      d->subs.push_back(Sub{id, pattern, fn, ctx, false});
      g_counters.subs.fetch_add(1, std::memory_order_relaxed);
      return id;
    }
    std::lock_guard<std::mutex> g(g_disp_mu);
    Dispatcher* d = dispatcher();
    if (!d->running) {
      if (int rc = start_dispatcher(d); rc < 0) return rc;
    }
    std::lock_guard<std::mutex> lk(d->mu);
    const int id = d->next_id++;
    d->subs.push_back(Sub{id, pattern, fn, ctx, false});
    g_counters.subs.fetch_add(1, std::memory_order_relaxed);
    return id;
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  }
}

int fwevent_unsubscribe(int id) {
  if (t_dispatch_thread) {  // from a callback: mark it; the dispatch loop erases it
    for (Sub& s : g_disp->subs) {
      if (s.id == id && !s.dead) {
        s.dead = true;
        g_counters.subs.fetch_sub(1, std::memory_order_relaxed);
        return 0;
      }
    }
    return -ENOENT;
  }
  std::lock_guard<std::mutex> g(g_disp_mu);
  if (g_disp == nullptr || g_disp->pid != getpid()) return -ENOENT;
  Dispatcher* d = g_disp;
  bool found = false, none_left = true;
  {
    std::lock_guard<std::mutex> lk(d->mu);  // waits for a callback in progress
    for (size_t i = 0; i < d->subs.size(); ++i) {
      if (d->subs[i].id == id && !d->subs[i].dead) {
        d->subs.erase(d->subs.begin() + long(i));
        found = true;
        break;
      }
    }
    for (const Sub& s : d->subs) none_left = none_left && s.dead;
  }
  if (!found) return -ENOENT;
  g_counters.subs.fetch_sub(1, std::memory_order_relaxed);
  // The last one: stop the thread and leave the channel, so an idle process holds nothing.
  if (none_left && d->running) {
    stop_dispatcher(d);
    d->subs.clear();
  }
  return 0;
}

void fwevent_get_stats(fwevent_stats* out) {
  if (out == nullptr) return;
  out->emitted = g_counters.emitted.load(std::memory_order_relaxed);
  out->emit_full = g_counters.emit_full.load(std::memory_order_relaxed);
  out->received = g_counters.received.load(std::memory_order_relaxed);
  out->delivered = g_counters.delivered.load(std::memory_order_relaxed);
  out->malformed = g_counters.malformed.load(std::memory_order_relaxed);
  out->gaps = g_counters.gaps.load(std::memory_order_relaxed);
  out->callback_subs = g_counters.subs.load(std::memory_order_relaxed);
}

const char* fwevent_last_error_detail(void) { return t_detail.c_str(); }

}  // extern "C"
