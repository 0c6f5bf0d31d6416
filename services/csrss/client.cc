// libcsrss_ipc: the client side. Calls go to the daemon with fwsvc_call(); console output
// comes back on a QUEUE channel per (process, console) that this library creates with
// mode 0600, so only the caller's uid and root can read it, and the daemon checks that the
// caller created it.
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "fwsvc.h"
#include "services/csrss/csrss_ipc.h"
#include "services/csrss/proto.h"

namespace {

constexpr int kCallTimeoutMs = 10000;
constexpr uint32_t kReaderBuffer = 1u << 20;  // 1 MiB ring per reader

struct Local {
  pid_t pid = 0;  // the process that made it (a forked child starts with none of its own)
  uint32_t ch = 0;
  std::string pending;  // the rest of a message larger than the caller's buffer
  size_t pos = 0;
  bool ended = false;
  bool gap = false;  // a gap met after data: reported by the next read
  uint64_t gap_bytes = 0;
  std::mutex read_mu;  // one reader at a time per console
};

std::mutex g_mu;
int g_service = -1;
pid_t g_service_pid = 0;  // the process that opened it (ids do not cross fork)
// Never destroyed: exit must not free state another thread may still use.
std::map<int, Local*>& g_local = *new std::map<int, Local*>;
std::atomic<uint32_t> g_seq{0};
std::string g_dir;  // FWIPC_RUNTIME_DIR when the ids above were made

// A process that points FWIPC_RUNTIME_DIR elsewhere gets another registry from the
// runtime, which forgets the old ids (their numbers are reused): forget ours too, without
// closing them. Called with g_mu held.
void check_dir_locked() {
  const char* d = std::getenv("FWIPC_RUNTIME_DIR");
  const std::string cur = d ? d : "";
  if (cur == g_dir) return;
  g_dir = cur;
  g_service = -1;
  for (auto& [con, l] : g_local) delete l;
  g_local.clear();
}

// The service channel: served by root, or by the caller's own uid (a csrss the user runs).
int service() {
  {
    std::lock_guard<std::mutex> lk(g_mu);
    check_dir_locked();
    if (g_service >= 0 && g_service_pid == ::getpid()) return g_service;
  }
  // Opened without g_mu held: the runtime takes its own locks (and holds them across fork),
  // and g_mu is never held while calling into it.
  int ch = fwsvc_open("csrss", 0, 0);
  if (ch == -EPERM && ::geteuid() != 0) ch = fwsvc_open("csrss", ::geteuid(), 0);
  if (ch == -ENOENT) return -ECONNREFUSED;  // no channel csrss: the daemon is not running
  if (ch < 0) return ch;
  int extra = -1;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    if (g_service >= 0 && g_service_pid == ::getpid()) {
      extra = ch;  // another thread opened it meanwhile
      ch = g_service;
    } else {
      g_service = ch, g_service_pid = ::getpid();
    }
  }
  if (extra >= 0) ipc_close_channel(uint32_t(extra));
  return ch;
}

int call(uint32_t method, const std::string& req, std::string* resp = nullptr, size_t cap = 0) {
  for (int attempt = 0;; attempt++) {
    const int ch = service();
    if (ch < 0) return ch;
    size_t got = 0;
    if (resp) resp->resize(cap);
    const int rc = fwsvc_call(uint32_t(ch), method, req.data(), req.size(), resp ? resp->data() : nullptr,
                              resp ? cap : 0, &got, kCallTimeoutMs);
    if (resp) resp->resize(rc >= 0 || rc == -EMSGSIZE ? std::min(got, cap) : 0);
    if (rc != -EPIPE || attempt > 0) return rc;
    // The csrss that served this id is gone (restarted, or another runtime directory):
    // open the channel again and try once more.
    bool close_it = false;
    {
      std::lock_guard<std::mutex> lk(g_mu);
      if (g_service == ch) close_it = g_service_pid == ::getpid(), g_service = -1;
    }
    if (close_it) ipc_close_channel(uint32_t(ch));
  }
}

uint64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

void pause_ms(int ms) {
  timespec ts{0, long(ms) * 1000000L};
  nanosleep(&ts, nullptr);
}

// A fresh output channel for this process: csrssc.PID.N.
int make_reader(std::string* name) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%d.%u", csrss::kReaderPrefix, int(::getpid()), g_seq.fetch_add(1) + 1);
  *name = buf;
  IPC_CHANNEL_OPTIONS o{};
  o.type = IPC_TYPE_QUEUE;
  o.buffer_size = kReaderBuffer;
  o.perm_mode = 0600;
  o.creator_mode = IPC_MODE_READ;
  return ipc_create_channel_opts(buf, &o);
}

void add_local(int con, int ch) {
  auto* l = new Local;
  l->pid = ::getpid();
  l->ch = uint32_t(ch);
  std::lock_guard<std::mutex> lk(g_mu);
  g_local[con] = l;
}

Local* find_local(int con) {
  std::lock_guard<std::mutex> lk(g_mu);
  check_dir_locked();
  auto it = g_local.find(con);
  if (it == g_local.end()) return nullptr;
  if (it->second->pid != ::getpid()) {  // the parent's, inherited across fork: not ours
    g_local.erase(it);
    return nullptr;
  }
  return it->second;
}

int copy_json(const std::string& body, int rc, char* json, size_t cap) {
  if (rc < 0) return rc;
  if (!json || body.size() + 1 > cap) return -EMSGSIZE;
  std::memcpy(json, body.data(), body.size());
  json[body.size()] = 0;
  return int(body.size());
}

int list_call(uint32_t method, const std::string& req, char* json, size_t cap, int* count = nullptr) {
  std::string body;
  // Ask for one byte more than the caller can take: a reply that does not fit is -EMSGSIZE.
  const int rc = call(method, req, &body, cap ? cap : 1);
  if (count) *count = rc;
  return copy_json(body, rc, json, cap);
}

int con_id(int con) { return con > 0 ? 0 : -ENOENT; }

}  // namespace

extern "C" {

int csrss_console_create(const char* const argv[], uint16_t rows, uint16_t cols) {
  if (!argv || !argv[0]) return -EINVAL;
  csrss::CreateReq r;
  r.rows = rows, r.cols = cols;
  for (size_t i = 0; argv[i]; i++) {
    if (i >= csrss::kMaxArgs) return -E2BIG;
    r.argv.emplace_back(argv[i]);
  }
  const int ch = make_reader(&r.channel);
  if (ch < 0) return ch;
  const int con = call(csrss::kConCreate, csrss::encode(r));
  if (con <= 0) {
    ipc_close_channel(uint32_t(ch));
    return con < 0 ? con : -EPROTO;
  }
  add_local(con, ch);
  return con;
}

int csrss_console_attach(int con) {
  if (int rc = con_id(con)) return rc;
  if (find_local(con)) return -EALREADY;
  csrss::AttachReq r;
  r.con = uint32_t(con);
  const int ch = make_reader(&r.channel);
  if (ch < 0) return ch;
  const int rc = call(csrss::kConAttach, csrss::encode(r));
  if (rc < 0) {
    ipc_close_channel(uint32_t(ch));
    return rc;
  }
  add_local(con, ch);
  return 0;
}

int csrss_console_detach(int con) {
  Local* l;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    auto it = g_local.find(con);
    if (it == g_local.end() || it->second->pid != ::getpid()) return -ENOTCONN;
    l = it->second;
    g_local.erase(it);
  }
  const int rc = call(csrss::kConDetach, csrss::encode(csrss::ConReq{uint32_t(con)}));
  ipc_close_channel(l->ch);
  delete l;
  return rc == -ENOENT ? 0 : rc;  // an ended console the daemon already forgot
}

int csrss_console_write(int con, const void* buf, size_t n) {
  if (int rc = con_id(con)) return rc;
  if (!buf && n) return -EFAULT;
  if (n > size_t(INT32_MAX)) n = size_t(INT32_MAX);
  const char* p = static_cast<const char*>(buf);
  size_t done = 0;
  uint64_t stalled_since = 0;
  int backoff = 1;
  do {
    const size_t k = std::min<size_t>(n - done, 65536);
    const int rc = call(csrss::kConWrite, csrss::encode_write(uint32_t(con), p + done, k));
    if (rc < 0) return done ? int(done) : rc;
    done += size_t(rc);
    if (rc > 0) {
      stalled_since = 0, backoff = 1;
      continue;
    }
    // The daemon's input buffer for this console is full: the program is not reading.
    if (!stalled_since) stalled_since = now_ms();
    if (now_ms() - stalled_since > 5000) return done ? int(done) : -EAGAIN;
    pause_ms(backoff);
    backoff = std::min(backoff * 2, 50);
  } while (done < n);
  return int(done);
}

ssize_t csrss_console_read_ex(int con, void* buf, size_t cap, int timeout_ms, uint64_t* lost_bytes) {
  Local* l = find_local(con);
  if (!l) return -ENOTCONN;
  if (!buf || !cap) return -EINVAL;
  std::lock_guard<std::mutex> lk(l->read_mu);
  char* out = static_cast<char*>(buf);
  size_t got = 0;
  if (l->pos < l->pending.size()) {
    got = std::min(cap, l->pending.size() - l->pos);
    std::memcpy(out, l->pending.data() + l->pos, got);
    l->pos += got;
    return ssize_t(got);
  }
  if (l->gap) {
    l->gap = false;
    if (lost_bytes) *lost_bytes = l->gap_bytes;
    return -ENOBUFS;
  }
  if (l->ended) return 0;
  char msg[IPC_MAX_PAYLOAD];
  int wait = timeout_ms;
  // Take messages while they fit (the first one may wait); stop before a gap or the end,
  // which are reported on their own.
  while (got < cap) {
    IPC_HEADER h;
    const int n = ipc_receive_header(l->ch, &h, msg, sizeof msg, wait);
    if (n < 0) {
      if (got) break;
      return n;
    }
    wait = 0;
    if (h.type == csrss::kOutData) {
      const size_t k = std::min(cap - got, size_t(n));
      std::memcpy(out + got, msg, k);
      got += k;
      if (k < size_t(n)) l->pending.assign(msg + k, size_t(n) - k), l->pos = 0;
      if (cap - got < IPC_MAX_PAYLOAD) break;
    } else if (h.type == csrss::kOutGap) {
      uint64_t lost = 0;
      if (n == 8) std::memcpy(&lost, msg, 8);
      if (got) {  // what came before the gap first
        l->gap = true, l->gap_bytes = lost;
        return ssize_t(got);
      }
      if (lost_bytes) *lost_bytes = lost;
      return -ENOBUFS;
    } else if (h.type == csrss::kOutEnd) {
      l->ended = true;
      break;
    }
  }
  return ssize_t(got);
}

ssize_t csrss_console_read(int con, void* buf, size_t cap, int timeout_ms) {
  return csrss_console_read_ex(con, buf, cap, timeout_ms, nullptr);
}

int csrss_console_fd(int con) {
  Local* l = find_local(con);
  return l ? ipc_channel_fd(l->ch) : -ENOTCONN;
}

int csrss_console_resize(int con, uint16_t rows, uint16_t cols) {
  if (int rc = con_id(con)) return rc;
  return call(csrss::kConResize, csrss::encode(csrss::ResizeReq{uint32_t(con), rows, cols}));
}

int csrss_console_wait(int con, int* exit_status, int timeout_ms) {
  if (int rc = con_id(con)) return rc;
  const uint64_t start = now_ms();
  int backoff = 1;
  for (;;) {
    const int rc = call(csrss::kConWait, csrss::encode(csrss::ConReq{uint32_t(con)}));
    if (rc >= 0) {
      if (exit_status) *exit_status = rc;
      return 0;
    }
    if (rc != -EAGAIN) return rc;
    if (timeout_ms >= 0 && now_ms() - start >= uint64_t(timeout_ms)) return -ETIMEDOUT;
    // The daemon answers at once (it never holds a call open): ask again, less often.
    int ms = backoff;
    if (timeout_ms >= 0) ms = int(std::min<uint64_t>(uint64_t(ms), uint64_t(timeout_ms) - (now_ms() - start) + 1));
    pause_ms(ms);
    backoff = std::min(backoff * 2, 20);
  }
}

int csrss_console_close(int con) {
  if (int rc = con_id(con)) return rc;
  return call(csrss::kConClose, csrss::encode(csrss::ConReq{uint32_t(con)}));
}

int csrss_console_list(char* json, size_t cap) { return list_call(csrss::kConList, std::string(), json, cap); }

int csrss_console_capture(int con, void* buf, size_t cap) {
  if (int rc = con_id(con)) return rc;
  std::string body;
  const int rc = call(csrss::kConCapture, csrss::encode(csrss::ConReq{uint32_t(con)}), &body, 1u << 20);
  if (rc < 0) return rc;
  // The newest bytes when the caller's buffer is smaller.
  const size_t k = std::min(cap, body.size());
  if (k) std::memcpy(buf, body.data() + body.size() - k, k);
  return int(k);
}

int csrss_window_create(const char* title, int x, int y, int w, int h) {
  csrss::WinCreateReq r;
  r.g = csrss::WinGeom{x, y, w, h};
  r.title = title ? title : "";
  return call(csrss::kWinCreate, csrss::encode(r));
}

int csrss_window_move(int id, int x, int y, int w, int h) {
  if (id <= 0) return -ENOENT;
  return call(csrss::kWinMove, csrss::encode(csrss::WinMoveReq{uint32_t(id), csrss::WinGeom{x, y, w, h}}));
}

int csrss_window_set_title(int id, const char* title) {
  if (id <= 0) return -ENOENT;
  csrss::WinTitleReq r;
  r.id = uint32_t(id);
  r.title = title ? title : "";
  return call(csrss::kWinTitle, csrss::encode(r));
}

int csrss_window_raise(int id) {
  if (id <= 0) return -ENOENT;
  return call(csrss::kWinRaise, csrss::encode(csrss::ConReq{uint32_t(id)}));
}

int csrss_window_destroy(int id) {
  if (id <= 0) return -ENOENT;
  return call(csrss::kWinDestroy, csrss::encode(csrss::ConReq{uint32_t(id)}));
}

int csrss_window_list(char* json, size_t cap) { return list_call(csrss::kWinList, std::string(), json, cap); }

int csrss_events_read(uint64_t after_seq, char* json, size_t cap) {
  int count = 0;
  const int rc = list_call(csrss::kEvents, csrss::encode(csrss::EventsReq{after_seq}), json, cap, &count);
  return rc < 0 ? rc : count;
}

}  // extern "C"
