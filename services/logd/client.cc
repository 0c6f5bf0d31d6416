// logd's client library (logd_ipc.h). A record goes straight into logd's channel when the
// local queue is empty and the non-blocking send succeeds (the common case: a vsnprintf,
// an uncontended mutex and a ring write). Otherwise it waits in a bounded queue that one
// background thread, started on first need, drains in order with blocking sends and
// reconnects to a restarted logd. Order is kept because nothing is sent directly while a
// record is queued or in flight.
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fwsvc.h"
#include "logd_ipc.h"
#include "services/logd/wire.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kHelloTimeoutMs = 500;
constexpr int kExitDrainMs = 1000;

struct Pending {
  int level;
  std::string tag, text;
  size_t next = 0;  // messages of it already in logd's channel
  bool report = false;
  size_t bytes() const { return tag.size() + text.size() + 64; }
};

struct Client {
  std::mutex mu;
  std::condition_variable wake;     // the drainer: work, or a new connection
  std::condition_variable drained;  // flushers and exit: the queue is empty
  pid_t pid = 0;                    // the process this state belongs to (0: none yet)
  int ch = -1;                      // non-blocking id, for direct sends and calls
  int ch_block = -1;                // blocking id, the drainer's alone
  int users = 0;                    // flushers calling on ch outside the lock
  std::vector<int> retired;         // ids to close once users == 0
  bool tried = false;               // this process attempted its first connection
  bool connecting = false;
  uint64_t sent = 0;  // whole records in logd's channel since the last HELLO
  std::deque<Pending> q;
  size_t q_bytes = 0, q_debug = 0;
  bool inflight = false;
  bool report_queued = false;
  uint64_t unreported = 0;
  bool thread_started = false;
  uint32_t limit_records = 8192, limit_bytes = 8u << 20;
  std::atomic<int> min_level{LOGD_DEBUG};
  logd_client_stats st{};
};

Client* g_client = nullptr;
std::once_flag g_once;

void reset_for_child() {
  Client& c = *g_client;
  c.pid = 0;
  c.ch = c.ch_block = -1;  // the parent's ids are not usable here (-EBADF); never closed
  c.users = 0;
  c.retired.clear();
  c.tried = c.connecting = false;
  c.sent = 0;
  c.q.clear();
  c.q_bytes = c.q_debug = 0;
  c.inflight = c.report_queued = false;
  c.unreported = 0;
  c.thread_started = false;
  c.st = logd_client_stats{};
}

void at_exit();

Client& client() {
  std::call_once(g_once, [] {
    g_client = new Client;  // never freed: the drainer may still run while the process exits
    pthread_atfork([] { g_client->mu.lock(); }, [] { g_client->mu.unlock(); },
                   [] {
                     g_client->mu.unlock();
                     reset_for_child();
                   });
    atexit(at_exit);
  });
  return *g_client;
}

// Closes ids nobody uses. Lock held.
void close_retired(Client& c) {
  if (c.users != 0) return;
  for (int id : c.retired) ipc_close_channel(static_cast<uint32_t>(id));
  c.retired.clear();
}

// logd went away: its ids go, and a record it got only part of is sent whole again.
void drop_connection(Client& c) {
  if (c.ch >= 0) c.retired.push_back(c.ch);
  if (c.ch_block >= 0) c.retired.push_back(c.ch_block);
  c.ch = c.ch_block = -1;
  for (auto& p : c.q) p.next = 0;
  close_retired(c);
}

// Opens logd's channel, checks who serves it and says HELLO (logd reads our comm and uid
// while we wait). Called without the lock.
int connect_now(Client& c, int timeout_ms) {
  const int ch = ipc_open_channel("logd", IPC_MODE_WRITE | IPC_MODE_NONBLOCK);
  if (ch < 0) return ch;
  IPC_CHANNEL_INFO info;
  int rc = ipc_channel_info(static_cast<uint32_t>(ch), &info);
  // logd runs as root, or (a private runtime directory) as this very user.
  if (rc == 0 && info.owner_uid != 0 && info.owner_uid != geteuid()) rc = -EPERM;
  char resp[1024];
  size_t got = 0;
  if (rc == 0)
    rc = fwsvc_call(static_cast<uint32_t>(ch), logd::kHello, nullptr, 0, resp, sizeof resp, &got, timeout_ms);
  int chb = -1;
  if (rc >= 0) rc = chb = ipc_open_channel("logd", IPC_MODE_WRITE);
  if (rc < 0) {
    ipc_close_channel(static_cast<uint32_t>(ch));
    return rc;
  }
  std::lock_guard<std::mutex> lock(c.mu);
  drop_connection(c);
  c.ch = ch;
  c.ch_block = chb;
  c.sent = 0;
  ++c.st.reconnects;
  return 0;
}

void drain_loop();

void start_drainer(Client& c) {
  if (c.thread_started) return;
  c.thread_started = true;
  std::thread(drain_loop).detach();  // lives as long as the process
}

// Makes room for p, dropping debug records first. Lock held. False: p is dropped.
bool make_room(Client& c, const Pending& p) {
  auto fits = [&] { return c.q.size() < c.limit_records && c.q_bytes + p.bytes() <= c.limit_bytes; };
  while (!fits()) {
    if (p.level == LOGD_DEBUG || c.q_debug == 0) return false;
    for (auto it = c.q.begin(); it != c.q.end(); ++it) {
      if (it->level == LOGD_DEBUG && it->next == 0 && !it->report) {
        c.q_bytes -= it->bytes();
        --c.q_debug;
        c.q.erase(it);
        ++c.unreported;
        ++c.st.dropped;
        break;
      }
    }
  }
  return true;
}

void push_pending(Client& c, Pending&& p) {
  c.q_bytes += p.bytes();
  if (p.level == LOGD_DEBUG && !p.report) ++c.q_debug;
  c.q.push_back(std::move(p));
}

Pending pop_front(Client& c) {
  Pending p = std::move(c.q.front());
  c.q.pop_front();
  c.q_bytes -= p.bytes();
  if (p.level == LOGD_DEBUG && !p.report) --c.q_debug;
  return p;
}

void drain_loop() {
  Client& c = *g_client;
  std::unique_lock<std::mutex> lock(c.mu);
  int backoff_ms = 20;
  for (;;) {
    c.wake.wait(lock, [&] { return !c.q.empty(); });
    if (c.ch < 0) {
      if (c.connecting) {
        c.wake.wait_for(lock, std::chrono::milliseconds(backoff_ms));
        continue;
      }
      c.connecting = true;
      lock.unlock();
      const int rc = connect_now(c, kHelloTimeoutMs * 2);
      lock.lock();
      c.connecting = false;
      if (rc < 0) {
        // Nothing announces a new logd: try again, less often the longer it stays away.
        c.wake.wait_for(lock, std::chrono::milliseconds(backoff_ms));
        backoff_ms = std::min(backoff_ms * 2, 500);
        continue;
      }
      backoff_ms = 20;
    }
    Pending p = pop_front(c);
    c.inflight = true;
    const int chb = c.ch_block;
    lock.unlock();
    size_t k = 0;
    int err = 0;
    logd::encode(p.level, p.tag, p.text, [&](const void* buf, size_t len) {
      if (k < p.next) return ++k, true;
      const int rc = ipc_send(static_cast<uint32_t>(chb), buf, static_cast<uint32_t>(len), logd::kRecordType);
      if (rc < 0) return err = rc, false;
      p.next = ++k;
      return true;
    });
    lock.lock();
    c.inflight = false;
    if (err == 0) {
      ++c.sent;
      if (p.report) {
        c.report_queued = false;
      }
      if (c.unreported > 0 && !c.report_queued) {
        // logd takes records again: tell it what was lost, after what was queued before.
        Pending r{LOGD_WARNING, "logd", "dropped " + std::to_string(c.unreported) + " records", 0, true};
        c.st.reported += c.unreported;
        c.unreported = 0;
        c.report_queued = true;
        push_pending(c, std::move(r));
      }
    } else {
      // logd went away (-EPIPE) or the id broke: the record goes back to the front.
      c.q_bytes += p.bytes();
      if (p.level == LOGD_DEBUG && !p.report) ++c.q_debug;
      c.q.push_front(std::move(p));
      drop_connection(c);
    }
    if (c.q.empty()) c.drained.notify_all();
  }
}

void at_exit() {
  // Records still queued get a bounded chance to reach logd before the process is gone.
  Client& c = *g_client;
  std::unique_lock<std::mutex> lock(c.mu);
  if (c.pid != getpid() || !c.thread_started) return;
  c.drained.wait_for(lock, std::chrono::milliseconds(kExitDrainMs), [&] { return c.q.empty() && !c.inflight; });
}

int log_text(int level, const char* tag, const char* text, size_t len) {
  Client& c = client();
  std::unique_lock<std::mutex> lock(c.mu);
  if (c.pid == 0) c.pid = getpid();
  if (!c.tried) {
    // The first record of this process: say HELLO first, so that logd knows our comm and
    // uid even if we exit right after.
    c.tried = true;
    c.connecting = true;
    lock.unlock();
    connect_now(c, kHelloTimeoutMs);
    lock.lock();
    c.connecting = false;
  }
  const std::string_view t(tag), body(text, len);
  size_t done = 0;
  if (c.ch >= 0 && c.q.empty() && !c.inflight) {
    int err = 0;
    logd::encode(level, t, body, [&](const void* buf, size_t n) {
      const int rc = ipc_send(static_cast<uint32_t>(c.ch), buf, static_cast<uint32_t>(n), logd::kRecordType);
      if (rc < 0) return err = rc, false;
      ++done;
      return true;
    });
    if (err == 0) {
      ++c.sent;
      ++c.st.direct;
      ++c.st.logged;
      return 0;
    }
    if (err != -EAGAIN) {
      drop_connection(c);  // logd is gone; a new one gets the whole record
      done = 0;
    }
  }
  Pending p{level, std::string(t), std::string(body), done, false};
  if (done == 0 && !make_room(c, p)) {
    ++c.st.dropped;
    ++c.unreported;
    start_drainer(c);
    c.wake.notify_one();
    return -ENOBUFS;
  }
  push_pending(c, std::move(p));  // part-sent records always fit: the rest must follow
  ++c.st.queued;
  ++c.st.logged;
  start_drainer(c);
  c.wake.notify_one();
  return 0;
}

}  // namespace

extern "C" {

int logd_vlog(int level, const char* tag, const char* fmt, va_list ap) {
  if (tag == nullptr || fmt == nullptr || level < 0 || level > 7) return -EINVAL;
  if (level > client().min_level.load(std::memory_order_relaxed)) return 0;
  char stack[1024];
  va_list again;
  va_copy(again, ap);
  const int n = vsnprintf(stack, sizeof stack, fmt, ap);
  if (n < 0) {
    va_end(again);
    return -EINVAL;
  }
  if (static_cast<size_t>(n) < sizeof stack) {
    va_end(again);
    return log_text(level, tag, stack, static_cast<size_t>(n));
  }
  std::string big(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(big.data(), big.size(), fmt, again);
  va_end(again);
  big.resize(static_cast<size_t>(n));
  if (big.size() > LOGD_MAX_TEXT) {
    static constexpr char kMark[] = " [truncated]";
    size_t cut = LOGD_MAX_TEXT - (sizeof kMark - 1);
    // Back up to the start of a UTF-8 sequence, so the cut never splits a character.
    while (cut > 0 && (static_cast<unsigned char>(big[cut]) & 0xC0) == 0x80) --cut;
    big.resize(cut);
    big += kMark;
  }
  return log_text(level, tag, big.data(), big.size());
}

int logd_log(int level, const char* tag, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const int rc = logd_vlog(level, tag, fmt, ap);
  va_end(ap);
  return rc;
}

#define LOGD_LEVEL_FN(name, level)                  \
  int name(const char* tag, const char* fmt, ...) { \
    va_list ap;                                     \
    va_start(ap, fmt);                              \
    const int rc = logd_vlog(level, tag, fmt, ap);  \
    va_end(ap);                                     \
    return rc;                                      \
  }
LOGD_LEVEL_FN(logd_debug, LOGD_DEBUG)
LOGD_LEVEL_FN(logd_info, LOGD_INFO)
LOGD_LEVEL_FN(logd_notice, LOGD_NOTICE)
LOGD_LEVEL_FN(logd_warn, LOGD_WARNING)
LOGD_LEVEL_FN(logd_error, LOGD_ERR)
LOGD_LEVEL_FN(logd_crit, LOGD_CRIT)

int logd_set_level(int level) {
  if (level < 0 || level > 7) return -EINVAL;
  return client().min_level.exchange(level);
}

int logd_set_queue_limit(uint32_t records, uint32_t bytes) {
  if (records == 0 || bytes < 4096) return -EINVAL;
  Client& c = client();
  std::lock_guard<std::mutex> lock(c.mu);
  c.limit_records = records;
  c.limit_bytes = bytes;
  return 0;
}

int logd_stats(logd_client_stats* out) {
  if (out == nullptr) return -EFAULT;
  Client& c = client();
  std::lock_guard<std::mutex> lock(c.mu);
  *out = c.st;
  out->queue_records = static_cast<uint32_t>(c.q.size());
  out->queue_bytes = static_cast<uint32_t>(c.q_bytes);
  return 0;
}

int logd_flush(int timeout_ms) {
  Client& c = client();
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
  auto left_ms = [&]() -> int {
    if (timeout_ms < 0) return -1;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
  };
  std::unique_lock<std::mutex> lock(c.mu);
  if (c.pid == 0 || c.st.logged == 0) return 0;  // nothing logged by this process
  auto idle = [&] { return c.q.empty() && !c.inflight && c.unreported == 0; };
  if (!idle()) {
    start_drainer(c);
    c.wake.notify_one();
    if (timeout_ms < 0)
      c.drained.wait(lock, idle);
    else if (!c.drained.wait_until(lock, deadline, idle))
      return -ETIMEDOUT;
  }
  if (c.ch < 0) return -EPIPE;  // what was sent went to a logd that is gone
  const uint64_t sent = c.sent;
  const int ch = c.ch;
  ++c.users;
  lock.unlock();
  int rc;
  for (;;) {
    size_t got = 0;
    const int left = left_ms();
    rc = fwsvc_call(static_cast<uint32_t>(ch), logd::kFlush, &sent, sizeof sent, nullptr, 0, &got,
                    left < 0 ? 5000 : left);
    if (rc != -EAGAIN && !(rc == -ETIMEDOUT && timeout_ms < 0)) break;
    if (timeout_ms >= 0 && left_ms() == 0) {
      rc = -ETIMEDOUT;
      break;
    }
  }
  lock.lock();
  --c.users;
  close_retired(c);
  if (rc == -ESRCH || rc == -EPIPE) return -EPIPE;
  return rc < 0 ? rc : 0;
}

}  // extern "C"
