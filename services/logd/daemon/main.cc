// logd: the system log daemon. Takes records on the runtime channel `logd` (one-way
// messages, PROTOCOL.md) and syslog(3) datagrams on --syslog-socket, stamps pid, uid and
// comm itself, rate-limits per sender, and hands records to the writer thread.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

#include "fwevent.h"
#include "fwsvc.h"
#include "nlohmann/json.hpp"
#include "services/logd/daemon/writer.h"
#include "services/logd/syslog_parse.h"
#include "services/logd/text.h"
#include "services/logd/wire.h"

namespace logd {
namespace {

constexpr char kUsage[] = R"(usage: logd --log-dir DIR [options]

logd is the system log daemon of FreeWorld IPC. It serves the runtime channel `logd`
(reachable at $FWIPC_RUNTIME_DIR/logd.sock for every uid) and writes every record it
receives to DIR/logd.log as JSON Lines: seq, ts (RFC 3339 UTC, microseconds), level, tag,
msg, and pid, uid, comm, which logd takes from the kernel and /proc, never from the
client. logctl queries it.

options:
  --log-dir DIR             where logd.log and its rotations live (created if missing)
  --max-bytes N             rotate logd.log once it would grow past N bytes (default
                            16777216); suffixes K, M, G (binary)
  --keep K                  rotated files kept, logd.log.1 (newest) .. logd.log.K
                            (default 5)
  --stderr                  also print every record to standard error
  --rate-limit BURST/SECONDS
                            per sending process: BURST records at once, refilled over
                            SECONDS (default 200000/10); records past it are counted and
                            reported as "suppressed N records from PID"; 0/0 disables
  --fsync never|interval|always
                            never (the kernel writes back), interval (fdatasync at most
                            every second), always (fdatasync before a record counts as
                            written, which logd_flush() waits for). Default never
  --syslog-socket PATH      also take syslog(3)/logger(1) datagrams (RFC 3164 and 5424) on
                            the datagram socket PATH (/dev/log when logd is the system
                            log), with the sender's pid and uid from SO_PASSCRED
  --ring-bytes N            capacity of the channel's shared-memory ring (default 4M)
  --no-events               do not log the events security.>, system.> and error.> of the
                            event bus (by default each becomes a record: tag = the first
                            segment, event = the topic, data = its JSON, level notice,
                            info and err, pid = the emitter's)
  --index N                 newest records kept in memory for queries (default 100000)
  -h, --help                this text

signals: SIGHUP reopens DIR/logd.log (after logrotate moved it); SIGTERM and SIGINT stop
taking records, write everything received and exit 0.

environment: FWIPC_RUNTIME_DIR (the runtime directory; see the runtime's README).
exit status: 0 after SIGTERM/SIGINT, 1 when it cannot start (the reason on stderr),
2 for a usage error.
)";

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
int64_t mono_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool parse_size(const char* s, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s || *s == '-') return false;
  uint64_t mul = 1;
  if (*end == 'K' || *end == 'k')
    mul = 1024, ++end;
  else if (*end == 'M' || *end == 'm')
    mul = 1024 * 1024, ++end;
  else if (*end == 'G' || *end == 'g')
    mul = 1024ull * 1024 * 1024, ++end;
  if (*end != '\0') return false;
  *out = v * mul;
  return true;
}

struct Options {
  WriterOptions writer;
  double burst = 200000, per_seconds = 10;
  std::string syslog_socket;
  uint64_t ring_bytes = 4u << 20;
  bool events = true;
};

// What logd knows about one sending process.
struct Sender {
  int64_t uid = -1;
  std::string comm;
  bool hello = false;
  uint64_t received = 0;  // whole records on the channel since the last HELLO
  uint64_t last_seq = 0;  // of the last of them passed to the writer
  double tokens = 0;
  int64_t refill_ms = 0;
  uint64_t suppressed = 0;
  int64_t active_ms = 0;
  // A record in fragments.
  bool partial = false;
  int partial_level = 0;
  std::string partial_tag, partial_text;
  uint32_t partial_total = 0;
  int64_t partial_ms = 0;
};

struct Counters {
  uint64_t messages = 0, records = 0, rejected = 0, truncated = 0, suppressed = 0, syslog = 0, syslog_errors = 0,
           utf8_repaired = 0, events = 0, senders_evicted = 0, bad_level = 0, backpressure_waits = 0;
};

class Daemon {
 public:
  explicit Daemon(const Options& o) : opts_(o) {}
  int run();

 private:
  static void on_message(void* ctx, const IPC_MESSAGE* msg) { static_cast<Daemon*>(ctx)->take(*msg); }
  static void on_hello(void* ctx, const fwsvc_request* req) { static_cast<Daemon*>(ctx)->hello(req); }
  static void on_flush(void* ctx, const fwsvc_request* req) { static_cast<Daemon*>(ctx)->flush(req); }
  static void on_query(void* ctx, const fwsvc_request* req) { static_cast<Daemon*>(ctx)->query(req); }
  static void on_stats(void* ctx, const fwsvc_request* req) { static_cast<Daemon*>(ctx)->stats(req); }
  static void on_syslog(void* ctx, int, uint32_t) { static_cast<Daemon*>(ctx)->read_syslog(256); }
  static void on_tick(void* ctx) { static_cast<Daemon*>(ctx)->tick(); }
  static void on_reload(void* ctx) {
    Record r;
    r.control = Record::kReopen;
    static_cast<Daemon*>(ctx)->writer_.push(std::move(r));
  }

  Sender& sender(int32_t pid, bool* fresh = nullptr);
  void learn(int32_t pid, Sender& s);
  void take(const IPC_MESSAGE& msg);
  void complete(int32_t pid, Sender& s, int level, std::string_view tag, std::string_view text, bool counted);
  bool admit(int32_t pid, Sender& s);
  void emit(int32_t pid, Sender* s, int level, std::string_view tag, std::string_view text, std::string extra = {});
  void report_suppressed(int32_t pid, Sender& s);
  void drain_channel();
  void read_syslog(int max);
  int open_syslog(std::string* detail);
  void hello(const fwsvc_request* req);
  void flush(const fwsvc_request* req);
  void query(const fwsvc_request* req);
  void stats(const fwsvc_request* req);
  void tick();
  int watch_events(std::string* detail);
  void read_events(fwevent_watch* w);
  struct Watch {
    Daemon* d;
    fwevent_watch* w;
  };
  static void on_events(void* ctx, int, uint32_t) {
    auto* w = static_cast<Watch*>(ctx);
    w->d->read_events(w->w);
  }
  std::vector<Watch> watches_;
  void throttle();

  Options opts_;
  Writer writer_;
  fwsvc_loop* loop_ = nullptr;
  fwsvc_service* svc_ = nullptr;
  int channel_ = -1;
  int syslog_fd_ = -1;
  uint64_t seq_ = 1;
  std::unordered_map<int32_t, Sender> senders_;
  Counters c_;
};

constexpr size_t kMaxSenders = 16384;
constexpr size_t kMaxPartials = 1024;
constexpr int64_t kPartialTimeoutMs = 5000;
constexpr uint64_t kMaxBacklog = 1u << 20;  // records waiting for the writer

bool read_small(const std::string& path, std::string* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n < 0) return false;
  out->assign(buf, static_cast<size_t>(n));
  return true;
}

void Daemon::learn(int32_t pid, Sender& s) {
  std::string comm, status;
  if (read_small("/proc/" + std::to_string(pid) + "/comm", &comm)) {
    while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    s.comm.clear();
    append_utf8_repaired(s.comm, comm);
  }
  if (read_small("/proc/" + std::to_string(pid) + "/status", &status)) {
    const size_t at = status.find("\nUid:\t");
    if (at != std::string::npos) s.uid = strtoll(status.c_str() + at + 6, nullptr, 10);
  }
}

Sender& Daemon::sender(int32_t pid, bool* fresh) {
  auto it = senders_.find(pid);
  if (it != senders_.end()) {
    if (fresh) *fresh = false;
    return it->second;
  }
  if (senders_.size() >= kMaxSenders) {
    // Forget the idle half: processes that are gone, mostly (bounded, and O(n) rarely).
    const int64_t now = mono_ms();
    std::vector<std::pair<int64_t, int32_t>> idle;
    for (auto& [p, s] : senders_)
      if (!s.partial && s.suppressed == 0) idle.emplace_back(now - s.active_ms, p);
    std::sort(idle.rbegin(), idle.rend());
    for (size_t i = 0; i < idle.size() / 2 + 1 && i < idle.size(); ++i) senders_.erase(idle[i].second);
    c_.senders_evicted += idle.size() / 2 + 1;
  }
  Sender& s = senders_[pid];
  s.tokens = opts_.burst;
  s.refill_ms = mono_ms();
  learn(pid, s);
  if (fresh) *fresh = true;
  return s;
}

// Token bucket per sender; a record past it is counted, never written.
bool Daemon::admit(int32_t pid, Sender& s) {
  if (opts_.burst <= 0) return true;
  const int64_t now = mono_ms();
  s.tokens += static_cast<double>(now - s.refill_ms) * opts_.burst / (opts_.per_seconds * 1000.0);
  if (s.tokens > opts_.burst) s.tokens = opts_.burst;
  s.refill_ms = now;
  if (s.tokens < 1.0) {
    ++s.suppressed;
    ++c_.suppressed;
    return false;
  }
  s.tokens -= 1.0;
  if (s.suppressed > 0) report_suppressed(pid, s);
  return true;
}

void Daemon::report_suppressed(int32_t pid, Sender& s) {
  char text[160];
  snprintf(text, sizeof text, "suppressed %llu records from %d (%s)", static_cast<unsigned long long>(s.suppressed),
           pid, s.comm.empty() ? "?" : s.comm.c_str());
  s.suppressed = 0;
  emit(getpid(), nullptr, 4, "logd", text);
}

// One record to the writer; s == nullptr: logd's own.
void Daemon::emit(int32_t pid, Sender* s, int level, std::string_view tag, std::string_view text, std::string extra) {
  Record r;
  r.seq = seq_++;
  r.ts_us = now_us();
  r.level = level;
  r.pid = pid;
  r.tag = sanitize_tag(tag);
  c_.utf8_repaired += append_utf8_repaired(r.msg, text);
  if (s != nullptr) {
    r.uid = s->uid;
    r.comm = s->comm;
    s->last_seq = r.seq;
  } else {
    r.uid = static_cast<int64_t>(getuid());
    r.comm = "logd";
  }
  r.extra = std::move(extra);
  ++c_.records;
  writer_.push(std::move(r));
}

void Daemon::complete(int32_t pid, Sender& s, int level, std::string_view tag, std::string_view text, bool counted) {
  if (counted) ++s.received;
  if (!admit(pid, s)) return;
  emit(pid, &s, level, tag, text);
}

void Daemon::take(const IPC_MESSAGE& msg) {
  ++c_.messages;
  Piece p;
  if (msg.type != kRecordType || !decode(msg.payload, msg.size, &p)) {
    ++c_.rejected;
    return;
  }
  const auto pid = static_cast<int32_t>(msg.sender);
  Sender& s = sender(pid);
  s.active_ms = mono_ms();
  int level = p.h.level;
  if (level > 7) {
    level = 7;
    ++c_.bad_level;
  }
  if ((p.h.kind == kWhole || p.h.kind == kFirst) && s.partial) {
    ++c_.truncated;  // a new record before the last one was complete
    s.partial = false;
  }
  switch (p.h.kind) {
    case kWhole: complete(pid, s, level, p.tag, p.text, true); break;
    case kFirst: {
      size_t partials = 0;
      for (auto& [_, o] : senders_) partials += o.partial;
      if (partials >= kMaxPartials) {
        ++c_.rejected;
        break;
      }
      s.partial = true;
      s.partial_level = level;
      s.partial_tag.assign(p.tag);
      s.partial_text.assign(p.text);
      s.partial_total = p.h.total;
      s.partial_ms = s.active_ms;
      break;
    }
    default:
      if (!s.partial || p.h.offset != s.partial_text.size() || p.h.total != s.partial_total) {
        ++c_.rejected;
        if (s.partial) ++c_.truncated;
        s.partial = false;
        break;
      }
      s.partial_text.append(p.text);
      if (p.h.kind == kLast) {
        s.partial = false;
        complete(pid, s, s.partial_level, s.partial_tag, s.partial_text, true);
        s.partial_text.clear();
        s.partial_text.shrink_to_fit();
      }
  }
  throttle();
}

// A writer far behind (a very slow disk): stop taking records until it catches up, so
// the channel fills and clients queue locally instead of logd growing without bound.
void Daemon::throttle() {
  while (writer_.backlog() > kMaxBacklog) {
    ++c_.backpressure_waits;
    writer_.wait_written(writer_.written_seq() + 1, 100);
  }
}

void Daemon::drain_channel() {
  for (;;) {
    IPC_MESSAGE msg;
    if (ipc_receive_message(static_cast<uint32_t>(channel_), &msg, 0) < 0) return;
    take(msg);
  }
}

void Daemon::hello(const fwsvc_request* req) {
  const auto pid = static_cast<int32_t>(req->sender_pid);
  Sender& s = sender(pid);
  learn(pid, s);  // the caller is alive and blocked in this call: /proc is its own
  s.hello = true;
  s.received = 0;
  s.last_seq = 0;
  s.partial = false;
  s.active_ms = mono_ms();
  std::string body = "{\"pid\":" + std::to_string(pid) + ",\"uid\":" + std::to_string(s.uid) + ",\"comm\":";
  append_json_string(body, s.comm);
  body += "}";
  fwsvc_reply(req, 0, body.data(), body.size());
}

void Daemon::flush(const fwsvc_request* req) {
  uint64_t sent = 0;
  if (req->body_len != sizeof sent) {
    fwsvc_reply(req, -EINVAL, nullptr, 0);
    return;
  }
  std::memcpy(&sent, req->body, sizeof sent);
  const auto pid = static_cast<int32_t>(req->sender_pid);
  const int64_t deadline = mono_ms() + 200;
  drain_channel();
  auto it = senders_.find(pid);
  if (it == senders_.end() || !it->second.hello) {
    fwsvc_reply(req, -ESRCH, nullptr, 0);
    return;
  }
  // Records sent through the bridge (another uid) may still be on their way to the ring.
  const int fd = ipc_channel_fd(static_cast<uint32_t>(channel_));
  while (it->second.received < sent && mono_ms() < deadline) {
    struct pollfd pfd = {fd, POLLIN, 0};
    poll(&pfd, 1, static_cast<int>(deadline - mono_ms()));
    drain_channel();
    it = senders_.find(pid);
    if (it == senders_.end()) break;
  }
  if (it == senders_.end() || it->second.received < sent) {
    fwsvc_reply(req, -EAGAIN, nullptr, 0);
    return;
  }
  const uint64_t want = it->second.last_seq;
  const int64_t left = deadline - mono_ms();
  const bool ok = writer_.written_seq() >= want || writer_.wait_written(want, left > 0 ? static_cast<int>(left) : 0);
  fwsvc_reply(req, ok ? 0 : -EAGAIN, nullptr, 0);
}

void Daemon::query(const fwsvc_request* req) {
  Filter f;
  auto fail = [&](const std::string& why) { fwsvc_reply(req, -EINVAL, why.data(), why.size()); };
  if (req->body_len > 0) {
    auto j =
        nlohmann::json::parse(std::string_view(static_cast<const char*>(req->body), req->body_len), nullptr, false);
    if (!j.is_object()) return fail("query: the request is not a JSON object");
    if (j.contains("n")) {
      if (!j["n"].is_number_unsigned() || j["n"].get<uint64_t>() > 100000) return fail("query: n: 0..100000");
      f.n = j["n"].get<size_t>();
    }
    if (j.contains("level")) {
      const int l = j["level"].is_string() ? level_from_name(j["level"].get<std::string>()) : -1;
      if (l < 0) return fail("query: level: one of emerg alert crit err warning notice info debug");
      f.max_level = l;
    }
    if (j.contains("tag")) {
      if (!j["tag"].is_string()) return fail("query: tag: a string");
      f.tag_prefix = j["tag"].get<std::string>();
    }
    if (j.contains("pid")) {
      if (!j["pid"].is_number_integer()) return fail("query: pid: a number");
      f.pid = j["pid"].get<int64_t>();
    }
    if (j.contains("since")) {
      if (!j["since"].is_string() || !parse_rfc3339_us(j["since"].get<std::string>(), &f.since_us))
        return fail("query: since: an RFC 3339 time such as 2026-11-25T20:00:00Z");
    }
    if (j.contains("after_seq")) {
      if (!j["after_seq"].is_number_unsigned()) return fail("query: after_seq: a number");
      f.after_seq = j["after_seq"].get<uint64_t>();
    }
  }
  const auto lines = writer_.query(f, (4u << 20) - 64);
  std::string body;
  for (const auto& l : lines) {
    body += l;
    body += '\n';
  }
  fwsvc_reply(req, static_cast<int32_t>(lines.size()), body.data(), body.size());
}

void Daemon::stats(const fwsvc_request* req) {
  const auto w = writer_.counters();
  fwsvc_stats ss{};
  fwsvc_service_stats(svc_, &ss);
  nlohmann::json j = {{"messages", c_.messages},
                      {"records", c_.records},
                      {"rejected", c_.rejected},
                      {"truncated", c_.truncated},
                      {"suppressed", c_.suppressed},
                      {"bad_level", c_.bad_level},
                      {"utf8_repaired", c_.utf8_repaired},
                      {"syslog", c_.syslog},
                      {"syslog_errors", c_.syslog_errors},
                      {"events", c_.events},
                      {"senders", senders_.size()},
                      {"senders_evicted", c_.senders_evicted},
                      {"backlog", writer_.backlog()},
                      {"backpressure_waits", c_.backpressure_waits},
                      {"written_seq", writer_.written_seq()},
                      {"lines", w.lines},
                      {"bytes", w.bytes},
                      {"rotations", w.rotations},
                      {"write_errors", w.write_errors},
                      {"reopens", w.reopens},
                      {"syncs", w.syncs},
                      {"calls", ss.calls},
                      {"malformed_calls", ss.malformed}};
  const std::string body = j.dump();
  fwsvc_reply(req, 0, body.data(), body.size());
}

int Daemon::open_syslog(std::string* detail) {
  const std::string& path = opts_.syslog_socket;
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    *detail = "--syslog-socket " + path + ": path too long";
    return -ENAMETOOLONG;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  syslog_fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1, rcvbuf = 4 << 20;
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());  // a stale socket of ours
  if (syslog_fd_ < 0 || setsockopt(syslog_fd_, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0 ||
      bind(syslog_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || chmod(path.c_str(), 0666) != 0) {
    const int e = errno;
    *detail = "--syslog-socket " + path + ": " + strerror(e);
    return -e;
  }
  setsockopt(syslog_fd_, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
  return fwsvc_loop_add_fd(loop_, syslog_fd_, FWSVC_EVENT_IN, on_syslog, this);
}

void Daemon::read_syslog(int max) {
  static char buf[8192 + 1];
  for (int i = 0; i < max; ++i) {
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = {buf, sizeof buf - 1};
    struct msghdr mh = {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    const ssize_t n = recvmsg(syslog_fd_, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) ++c_.syslog_errors;
      return;
    }
    struct ucred cred = {0, static_cast<uid_t>(-1), static_cast<gid_t>(-1)};
    bool have = false;
    for (struct cmsghdr* cm = CMSG_FIRSTHDR(&mh); cm != nullptr; cm = CMSG_NXTHDR(&mh, cm)) {
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS && cm->cmsg_len >= CMSG_LEN(sizeof cred)) {
        std::memcpy(&cred, CMSG_DATA(cm), sizeof cred);
        have = true;
      }
    }
    if (!have || cred.pid <= 0) {
      ++c_.syslog_errors;
      continue;
    }
    ++c_.syslog;
    const SyslogMessage m = parse_syslog(std::string_view(buf, static_cast<size_t>(n)));
    Sender& s = sender(cred.pid);
    s.active_ms = mono_ms();
    s.uid = cred.uid;  // the kernel's word beats /proc's for this datagram
    if (!admit(cred.pid, s)) continue;
    std::string extra = ",\"facility\":\"";
    extra += facility_name(m.facility);
    extra += "\"";
    emit(cred.pid, &s, m.severity, m.tag.empty() ? std::string_view("syslog") : m.tag, m.msg, std::move(extra));
    throttle();
  }
}

// The event bus: security.>, system.> and error.> become records (watches, no thread:
// they wait for eventsd by themselves when it is not running yet).
int Daemon::watch_events(std::string* detail) {
  watches_.reserve(3);
  for (const char* pattern : {"security.>", "system.>", "error.>"}) {
    fwevent_watch* w = nullptr;
    const int rc = fwevent_watch_open(pattern, &w);
    if (rc < 0) {
      *detail = std::string("events ") + pattern + ": " + ipc_strerror(rc);
      return rc;
    }
    watches_.push_back(Watch{this, w});
  }
  for (auto& w : watches_) {
    const int rc = fwsvc_loop_add_fd(loop_, fwevent_watch_fd(w.w), FWSVC_EVENT_IN, on_events, &w);
    if (rc < 0) {
      *detail = std::string("events: ") + ipc_strerror(rc);
      return rc;
    }
  }
  return 0;
}

void Daemon::read_events(fwevent_watch* w) {
  for (int i = 0; i < 256; ++i) {
    fwevent_event ev;
    if (fwevent_watch_next(w, &ev, 0) != 0) return;
    ++c_.events;
    const std::string_view topic(ev.topic);
    const std::string_view first = topic.substr(0, topic.find('.'));
    const int level = first == "error" ? 3 : first == "security" ? 5 : 6;
    // The bus checked the JSON; dumping it again guarantees valid UTF-8 in the file.
    const auto data = nlohmann::json::parse(ev.json, nullptr, false);
    std::string extra = ",\"event\":";
    append_json_string(extra, topic);
    extra += ",\"data\":";
    extra += data.is_discarded() ? "null" : data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (ev.gap > 0) extra += ",\"gap\":" + std::to_string(ev.gap);
    const auto pid = static_cast<int32_t>(ev.sender_pid);
    Sender& s = sender(pid);
    s.active_ms = mono_ms();
    if (!admit(pid, s)) continue;
    emit(pid, &s, level, first, topic, std::move(extra));
    throttle();
  }
}

// Once a second: reassemblies that stalled, suppression reports for quiet senders.
void Daemon::tick() {
  const int64_t now = mono_ms();
  for (auto& [pid, s] : senders_) {
    if (s.partial && now - s.partial_ms > kPartialTimeoutMs) {
      s.partial = false;
      s.partial_text.clear();
      ++c_.truncated;
    }
    if (s.suppressed > 0 && opts_.burst > 0) {
      s.tokens += static_cast<double>(now - s.refill_ms) * opts_.burst / (opts_.per_seconds * 1000.0);
      if (s.tokens > opts_.burst) s.tokens = opts_.burst;
      s.refill_ms = now;
      if (s.tokens >= 1.0) report_suppressed(pid, s);
    }
  }
}

int Daemon::run() {
  std::string detail;
  int rc = writer_.open(opts_.writer, &detail);
  if (rc != 0) {
    fprintf(stderr, "logd: %s\n", detail.c_str());
    return 1;
  }
  seq_ = writer_.next_seq();
  rc = fwsvc_loop_new(&loop_);  // before any thread: SIGTERM/SIGINT/SIGHUP go to the loop
  if (rc != 0) {
    fprintf(stderr, "logd: event loop: %s\n", ipc_strerror(rc));
    return 1;
  }
  fwsvc_options so;
  fwsvc_options_init(&so);
  so.type = IPC_TYPE_QUEUE;
  so.buffer_size = static_cast<uint32_t>(opts_.ring_bytes);
  so.perm_mode = 0662;  // every uid may send and call; only logd's uid reads
  so.max_body_bytes = 4u << 20;
  so.max_transfers = 64;
  rc = fwsvc_service_new(loop_, "logd", &so, &svc_);
  if (rc != 0) {
    fprintf(stderr, "logd: channel logd in %s: %s%s%s\n",
            getenv("FWIPC_RUNTIME_DIR") ? getenv("FWIPC_RUNTIME_DIR") : "the default runtime directory",
            ipc_strerror(rc), *ipc_last_error_detail() ? ": " : "", ipc_last_error_detail());
    fwsvc_loop_free(loop_);
    return 1;
  }
  channel_ = fwsvc_service_channel(svc_);
  fwsvc_service_on_message(svc_, on_message, this);
  fwsvc_service_add_method(svc_, kHello, on_hello, this);
  fwsvc_service_add_method(svc_, kFlush, on_flush, this);
  fwsvc_service_add_method(svc_, kQuery, on_query, this);
  fwsvc_service_add_method(svc_, kStats, on_stats, this);
  fwsvc_loop_on_reload(loop_, on_reload, this);
  fwsvc_loop_add_timer(loop_, 1000, 1, on_tick, this);
  if (!opts_.syslog_socket.empty() && (rc = open_syslog(&detail)) != 0) {
    fprintf(stderr, "logd: %s\n", detail.c_str());
    fwsvc_service_free(svc_);
    fwsvc_loop_free(loop_);
    return 1;
  }
  if (opts_.events && (rc = watch_events(&detail)) != 0) {
    fprintf(stderr, "logd: %s\n", detail.c_str());
    return 1;
  }
  writer_.start();
  // The registry the runtime may have auto-started was spawned without NOTIFY_SOCKET:
  // this READY=1 is the only one our service manager gets.
  fwsvc_notify("READY=1");
  rc = fwsvc_loop_run(loop_);
  // SIGTERM: everything already received goes to the file before exiting.
  drain_channel();
  if (syslog_fd_ >= 0) read_syslog(1 << 20);
  writer_.stop();
  fwsvc_service_free(svc_);
  for (auto& w : watches_) {
    fwsvc_loop_remove_fd(loop_, fwevent_watch_fd(w.w));
    fwevent_watch_close(w.w);
  }
  if (syslog_fd_ >= 0) {
    close(syslog_fd_);
    unlink(opts_.syslog_socket.c_str());
  }
  fwsvc_loop_free(loop_);
  if (rc != 0) {
    fprintf(stderr, "logd: %s\n", ipc_strerror(rc));
    return 1;
  }
  return 0;
}

int usage_error(const std::string& what) {
  fprintf(stderr, "logd: %s (logd --help)\n", what.c_str());
  return 2;
}

int main_(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char** v) {
      if (i + 1 >= argc) return false;
      *v = argv[++i];
      return true;
    };
    const char* v = nullptr;
    if (a == "-h" || a == "--help") {
      fputs(kUsage, stdout);
      return 0;
    } else if (a == "--stderr") {
      o.writer.mirror_stderr = true;
    } else if (a == "--no-events") {
      o.events = false;
    } else if (a == "--log-dir") {
      if (!value(&v) || *v == '\0') return usage_error("--log-dir needs a directory");
      o.writer.dir = v;
    } else if (a == "--max-bytes") {
      if (!value(&v) || !parse_size(v, &o.writer.max_bytes) || o.writer.max_bytes < 4096)
        return usage_error("--max-bytes needs a size of at least 4096 bytes");
    } else if (a == "--keep") {
      uint64_t k = 0;
      if (!value(&v) || !parse_size(v, &k) || k > 1000) return usage_error("--keep needs a count 0..1000");
      o.writer.keep = static_cast<int>(k);
    } else if (a == "--index") {
      uint64_t k = 0;
      if (!value(&v) || !parse_size(v, &k) || k < 1 || k > 10000000)
        return usage_error("--index needs a count 1..10000000");
      o.writer.index_records = k;
    } else if (a == "--ring-bytes") {
      if (!value(&v) || !parse_size(v, &o.ring_bytes) || o.ring_bytes < IPC_BUFFER_MIN || o.ring_bytes > IPC_BUFFER_MAX)
        return usage_error("--ring-bytes needs a size between 9216 and 256M");
    } else if (a == "--rate-limit") {
      double b = 0, s = 0;
      char extra = 0;
      if (!value(&v) || sscanf(v, "%lf/%lf%c", &b, &s, &extra) != 2 || b < 0 || s < 0 || (b > 0) != (s > 0))
        return usage_error("--rate-limit needs BURST/SECONDS, e.g. 10000/30 (0/0 disables)");
      o.burst = b, o.per_seconds = s;
    } else if (a == "--fsync") {
      if (!value(&v)) return usage_error("--fsync needs never, interval or always");
      const std::string m = v;
      if (m == "never")
        o.writer.sync = SyncMode::kNever;
      else if (m == "interval")
        o.writer.sync = SyncMode::kInterval;
      else if (m == "always")
        o.writer.sync = SyncMode::kAlways;
      else
        return usage_error("--fsync: '" + m + "' is not never, interval or always");
    } else if (a == "--syslog-socket") {
      if (!value(&v) || *v == '\0') return usage_error("--syslog-socket needs a path");
      o.syslog_socket = v;
    } else {
      return usage_error("unknown argument '" + a + "'");
    }
  }
  if (o.writer.dir.empty()) return usage_error("--log-dir DIR is required");
  Daemon d(o);
  return d.run();
}

}  // namespace
}  // namespace logd

int main(int argc, char** argv) { return logd::main_(argc, argv); }
