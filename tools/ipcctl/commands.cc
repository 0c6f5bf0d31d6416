// The commands: list (the registry's channels with their ring counters), stat (rates
// sampled from one ring), tail (messages decoded as they pass, without a cursor) and clean
// (stale socket files and FIFOs), and quota (per-uid usage against limits).
#include "tools/ipcctl/commands.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "base/time.h"
#include "runtime/registry/client.h"
#include "runtime/registry/protocol.h"
#include "runtime/registry/stale_files.h"
#include "tools/ipcctl/output.h"
#include "tools/ipcctl/view.h"
#include "transports/shm/slot_reader.h"

namespace fwipc::ipcctl {

namespace reg = fwipc::registry;

namespace {

volatile sig_atomic_t g_stop = 0;

std::string peers_text(const std::vector<Peer>& ps) {
  if (ps.empty()) return "-";
  std::string s;
  for (const Peer& p : ps) {
    if (!s.empty()) s += ",";
    s += std::to_string(p.pid);
    if (!p.alive) s += "(dead)";
  }
  return s;
}

std::string peers_json(const std::vector<Peer>& ps, bool lag) {
  std::string s = "[";
  for (const Peer& p : ps) {
    if (s.size() > 1) s += ",";
    s += "{\"pid\":" + std::to_string(p.pid) + ",\"alive\":" + (p.alive ? "true" : "false");
    if (lag) s += ",\"lag\":" + std::to_string(p.lag);
    s += "}";
  }
  return s + "]";
}

std::string opt_num(const std::optional<RingStats>& r, uint64_t RingStats::*f) {
  return r ? std::to_string((*r).*f) : "-";
}

std::string mode_text(uint32_t mode) {
  char s[16];
  std::snprintf(s, sizeof s, "0%o", mode);
  return s;
}

const char* overflow_name(uint32_t o) { return o == IPC_OVERFLOW_EVICT ? "evict" : "block"; }

std::string num_or(const std::optional<uint64_t>& v, const char* none) { return v ? std::to_string(*v) : none; }

// The creator's queues (stats page): null when we may not read the channel or it has none.
std::string queues_json(const ChannelView& c) {
  if (!c.queues) return "null";
  const stats::Snapshot& q = *c.queues;
  const int64_t age = q.updated_ns == 0 ? -1 : (monotonic_ns() - int64_t(q.updated_ns)) / 1'000'000;
  return "{\"publisher\":" + std::to_string(q.publisher_pid) +
         ",\"age_ms\":" + (age < 0 ? std::string("null") : std::to_string(age)) +
         ",\"frames\":" + std::to_string(q.queued_frames) + ",\"bytes\":" + std::to_string(q.queued_bytes) +
         ",\"high_water\":" + std::to_string(q.high_water) + ",\"bound\":" + std::to_string(q.queue_bound) +
         ",\"held_back\":" + (q.held_back ? "true" : "false") +
         ",\"held_back_times\":" + std::to_string(q.held_back_times) + ",\"evictions\":" + std::to_string(q.evictions) +
         ",\"dropped_peers\":" + std::to_string(q.dropped_peers) + ",\"peers\":" + std::to_string(q.peers) +
         ",\"peers_bound\":" + std::to_string(q.peers_bound) + ",\"callers\":" + std::to_string(q.callers) +
         ",\"callers_bound\":" + std::to_string(q.callers_bound) +
         ",\"callers_refused\":" + std::to_string(q.callers_refused) +
         ",\"replies_dropped\":" + std::to_string(q.replies_dropped) + "}";
}

std::string channel_json(const ChannelView& c) {
  std::string s = "{\"name\":" + json_str(c.raw.name) + ",\"type\":\"" + type_name(c.raw.type) + "\",\"transport\":\"" +
                  transport_name(c.raw.transport) + "\",\"owner\":" + json_str(owner_name(c.raw.uid)) +
                  ",\"uid\":" + std::to_string(c.raw.uid) + ",\"mode\":\"" + mode_text(c.raw.mode) +
                  "\",\"capacity\":" + std::to_string(capacity_msgs(c)) + ",\"overflow\":\"" +
                  overflow_name(c.raw.overflow) + "\"";
  if (c.ring) {
    s += ",\"depth\":" + std::to_string(c.ring->depth) + ",\"messages\":" + std::to_string(c.ring->tail) +
         ",\"drops\":" + std::to_string(c.ring->refused) + ",\"abandoned\":" + std::to_string(c.ring->abandoned) +
         ",\"messages_exact\":" + (c.ring->messages_exact ? "true" : "false");
  } else {
    s += ",\"depth\":null,\"messages\":null,\"drops\":null,\"abandoned\":null,\"messages_exact\":null";
  }
  s += std::string(",\"layout\":") + (c.v2 ? "\"ring2\"" : c.seg ? "\"v4\"" : "null");
  s += ",\"evictions\":" + num_or(evictions_of(c), "null");
  return s + ",\"members\":" + std::to_string(c.member_count) + ",\"readers\":" + peers_json(c.readers, bool(c.ring)) +
         ",\"writers\":" + peers_json(c.writers, false) + ",\"queues\":" + queues_json(c) + "}";
}

// The QUEUE channel `name` with its segment mapped, or nothing (after saying why).
std::optional<ChannelView> find_queue(const std::string& dir, const std::string& name, const char* needs) {
  int err = 0;
  for (ChannelView& c : list_channels(dir, &err)) {
    if (name != c.raw.name) continue;
    if (c.seg || c.v2) return std::move(c);
    std::fprintf(stderr, "ipcctl: %s: %s needs a QUEUE channel on shared memory that you may read\n", name.c_str(),
                 needs);
    return std::nullopt;
  }
  std::fprintf(stderr, "ipcctl: no channel %s\n", name.c_str());
  return std::nullopt;
}

void print_message(bool json, uint64_t pos, const MsgHeader& h, const char* payload) {
  if (json) {
    std::string hex;
    char b[3];
    for (uint32_t i = 0; i < h.size; ++i) {
      std::snprintf(b, sizeof b, "%02x", static_cast<unsigned char>(payload[i]));
      hex += b;
    }
    std::printf(
        "{\"pos\":%llu,\"type\":%u,\"size\":%u,\"sender\":%u,\"receiver\":%u,\"priority\":%u,"
        "\"payload_hex\":\"%s\"}\n",
        (unsigned long long)pos, h.type, h.size, h.sender, h.receiver, h.priority, hex.c_str());
  } else {
    std::string text;
    const uint32_t shown = std::min<uint32_t>(h.size, 48);
    for (uint32_t i = 0; i < shown; ++i) {
      const auto c = static_cast<unsigned char>(payload[i]);
      text += (c >= 32 && c < 127 && c != '"' && c != '\\') ? char(c) : '.';
    }
    std::printf("%10llu  type=%-5u size=%-4u sender=%-7u receiver=%-7u prio=%-3u \"%s%s\"\n", (unsigned long long)pos,
                h.type, h.size, h.sender, h.receiver, h.priority, text.c_str(), h.size > shown ? "..." : "");
  }
  std::fflush(stdout);
}

// Ring v2: one writer's ring followed by a reader of our own over its read-only mapping.
// Its cursor is a local word no writer ever sees, and it stays guarded (RingReader::
// attach_at): every copy is checked afterwards against the record's own commit word, and
// a lapped ring restarts at its tail.
struct Followed {
  const Ring2Observer::Ring* ring = nullptr;  // the observer's; dropped before it is
  std::atomic<uint64_t> cursor{0};
  std::atomic<uint32_t> bell{0};
  shm::v2::RingReader rd;
  bool corrupt = false;
  // Starts at start (a record boundary within a lap of the tail), else at the tail.
  bool attach(uint64_t start) {
    return rd.attach_at(ring->map.mem, ring->map.bytes, ring->pid, &cursor, &bell, start, ~0ull) == 0;
  }
};

void print_missed(bool json, const Ring2Observer::Ring& r, uint64_t bytes) {
  if (json)
    std::printf("{\"missed_bytes\":%llu,\"sender\":%u}\n", (unsigned long long)bytes, r.pid);
  else
    std::printf("... %llu bytes of messages from %u passed unseen (its ring came round a lap)\n",
                (unsigned long long)bytes, r.pid);
  std::fflush(stdout);
}

// Follows every ring of a ring v2 channel from its tail (--all: from the slowest reader's
// cursor), rings that appear later from their first record, and prints each message as
// the layout 4 tail does, its sender the directory's PID for the ring.
int tail_ring2(const std::string& dir, Ring2Observer& obs, const Options& o) {
  namespace v2 = shm::v2;
  reg::Client conn;
  std::map<uint32_t, std::unique_ptr<Followed>> rings;
  bool first = true;
  // After every refresh: follow new rings, drop those the observer unmapped.
  auto sync = [&]() {
    for (auto it = rings.begin(); it != rings.end();) {
      auto r = obs.rings().find(it->first);
      if (r == obs.rings().end() || r->second.get() != it->second->ring)
        it = rings.erase(it);
      else
        ++it;
    }
    for (const auto& [idx, r] : obs.rings()) {
      if (rings.count(idx)) continue;
      auto f = std::make_unique<Followed>();
      f->ring = r.get();
      uint64_t start = 0;  // a ring that came after us: all of it is new
      if (first) {
        start = r->tail();
        if (o.all)
          for (const auto& [pi, c] : obs.cursors_of(*r, start)) start = std::min(start, c);
      }
      if (f->attach(start)) rings[idx] = std::move(f);
    }
    first = false;
  };
  sync();
  const uint64_t slack = v2::kMaxRecord + v2::kRecAlign;  // what one send writes past the tail
  long shown = 0;
  int idle = 0;
  uint64_t gen = obs.dir().gen();
  int64_t next_refresh = monotonic_ns() + 200'000'000;
  char payload[v2::kMaxPayload];
  while (!g_stop && (o.count == 0 || shown < o.count)) {
    bool any = false;
    for (auto& [idx, fp] : rings) {
      Followed& f = *fp;
      const Ring2Observer::Ring& r = *f.ring;
      for (uint32_t turn = 0; !f.corrupt && turn < 64 && (o.count == 0 || shown < o.count); ++turn) {
        const uint64_t pos0 = f.rd.cursor(), laps0 = f.rd.lapped();
        v2::RecordView v;
        const v2::Peek p = f.rd.peek(&v);
        if (f.rd.lapped() != laps0) print_missed(o.json, r, (p == v2::Peek::kReady ? v.pos : f.rd.cursor()) - pos0);
        if (p == v2::Peek::kEmpty) break;
        if (p == v2::Peek::kCorrupt) {
          f.corrupt = true;
          if (o.json)
            std::printf("{\"corrupt\":%u}\n", r.pid);
          else
            std::printf("... the ring of %u breaks the record format: no longer followed\n", r.pid);
          std::fflush(stdout);
          break;
        }
        std::memcpy(payload, v.payload, v.hdr.size);  // peek checked size <= kMaxPayload
        // Overwritten meanwhile: its commit word changed (intact), or the writer's tail
        // came near enough round that its next record may lie over this one.
        const uint64_t t = r.tail();
        if (!f.rd.intact(v) || t == v2::kDetached || t + slack > v.pos + r.cap) {
          const uint64_t now = r.tail();
          if (now == v2::kDetached || !f.attach(v2::kDetached)) {  // at the tail
            f.corrupt = true;
            break;
          }
          print_missed(o.json, r, f.rd.cursor() > v.pos ? f.rd.cursor() - v.pos : 0);
          continue;
        }
        print_message(o.json, v.pos, v.hdr, payload);
        ++shown;
        any = true;
        f.rd.advance(v);
      }
    }
    // New writers (and freed rings): at once when the directory moved, and now and then
    // for a ring its writer had not sealed yet when we asked (the registry passes none
    // before). Busy or not: one busy writer must not hide the others.
    const int64_t now = monotonic_ns();
    if (obs.dir().gen() != gen || now >= next_refresh) {
      gen = obs.dir().gen();
      next_refresh = now + 200'000'000;
      (void)obs.refresh(conn, dir);  // failing: the rings already mapped are followed
      sync();
    }
    if (any) {
      idle = 0;
      continue;
    }
    if (obs.dir().closed()) {
      bool drained = true;
      for (auto& [idx, f] : rings)
        if (!f->corrupt && f->rd.cursor() < f->ring->tail() && f->ring->tail() != v2::kDetached) drained = false;
      if (drained) break;
    }
    // Yield first: on a busy ring a sleeping observer is lapped at once.
    if (++idle < 2000)
      ::sched_yield();
    else
      ::usleep(500);
  }
  return 0;
}

// A byte count for people: 1536 -> 1.5K, binary units.
std::string bytes_text(uint64_t v) {
  const char* units = "KMGTPE";
  if (v < 1024) return std::to_string(v);
  double d = double(v);
  int u = -1;
  while (d >= 1024 && u < 5) {
    d /= 1024;
    ++u;
  }
  char s[32];
  std::snprintf(s, sizeof s, d < 10 ? "%.1f%c" : "%.0f%c", d, units[u]);
  return s;
}

std::string used_of(const reg::QuotaInfo& q, uint32_t k) {
  const auto text = [k](uint64_t v) { return k == reg::kQuotaBytes ? bytes_text(v) : std::to_string(v); };
  return text(q.used[k]) + "/" + (q.limit[k] == reg::kQuotaUnlimited ? "-" : text(q.limit[k]));
}

std::string quota_json(const reg::QuotaInfo& q) {
  constexpr const char* keys[reg::kQuotaKeys] = {"channels", "bytes", "connections", "memberships"};
  const bool total = q.uid == reg::kQuotaTotalUid;
  std::string s = "{";
  if (!total)
    s += "\"uid\":" + std::to_string(q.uid) + ",\"user\":" + json_str(owner_name(q.uid)) +
         ",\"root\":" + ((q.flags & reg::kQuotaRoot) ? "true" : "false") +
         ",\"reserved_owner\":" + ((q.flags & reg::kQuotaReserved) ? "true" : "false") + ",";
  for (uint32_t k = 0; k < reg::kQuotaKeys; ++k)
    s += std::string("\"") + keys[k] + "\":{\"used\":" + std::to_string(q.used[k]) +
         ",\"limit\":" + (q.limit[k] == reg::kQuotaUnlimited ? "null" : std::to_string(q.limit[k])) + "},";
  s += "\"refused\":" + std::to_string(q.refused);
  if (total)
    s += ",\"headroom\":" + std::to_string(q.headroom) + ",\"refused_pending\":" + std::to_string(q.pending) +
         ",\"pipe_keepers\":" + std::to_string(q.keepers);
  return s + "}";
}

}  // namespace

void stop_on_signals() {
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = 1; };
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

int cmd_list(const std::string& dir, const Options& o) {
  int err = 0;
  const auto chans = list_channels(dir, &err);
  // No registry running is not an error: it means no channels.
  if (err < 0 && err != -ENOENT && err != -ECONNREFUSED) {
    std::fprintf(stderr, "ipcctl: registry in %s: %s\n", dir.c_str(), std::strerror(-err));
    return 1;
  }
  if (o.json) {
    std::string s = "[";
    for (const ChannelView& c : chans) s += (s.size() > 1 ? "," : "") + channel_json(c);
    std::puts((s + "]").c_str());
    return 0;
  }
  if (chans.empty()) {
    std::printf("no channels in %s%s\n", dir.c_str(), err < 0 ? " (no registry running)" : "");
    return 0;
  }
  std::vector<std::vector<std::string>> rows{{"NAME", "TYPE", "TRANSPORT", "OWNER", "MODE", "CAPACITY", "OVERFLOW",
                                              "DEPTH", "MESSAGES", "DROPS", "ABANDONED", "EVICTIONS", "QUEUED",
                                              "READERS", "WRITERS"}};
  for (const ChannelView& c : chans) {
    rows.push_back({c.raw.name, type_name(c.raw.type), transport_name(c.raw.transport), owner_name(c.raw.uid),
                    mode_text(c.raw.mode), std::to_string(capacity_msgs(c)), overflow_name(c.raw.overflow),
                    opt_num(c.ring, &RingStats::depth),
                    (c.ring && !c.ring->messages_exact ? "~" : "") + opt_num(c.ring, &RingStats::tail),
                    opt_num(c.ring, &RingStats::refused), opt_num(c.ring, &RingStats::abandoned),
                    num_or(evictions_of(c), "-"), c.queues ? std::to_string(c.queues->queued_frames) : "-",
                    peers_text(c.readers), peers_text(c.writers)});
  }
  print_table(rows);
  return 0;
}

int cmd_stats(const std::string& dir, const std::string& name, const Options& o) {
  int err = 0;
  for (const ChannelView& c : list_channels(dir, &err)) {
    if (name != c.raw.name) continue;
    if (o.json) {
      std::printf("{\"name\":%s,\"type\":\"%s\",\"overflow\":\"%s\",\"evictions\":%s,\"queues\":%s}\n",
                  json_str(c.raw.name).c_str(), type_name(c.raw.type), overflow_name(c.raw.overflow),
                  num_or(evictions_of(c), "null").c_str(), queues_json(c).c_str());
      return 0;
    }
    if (!c.queues) {
      std::fprintf(stderr, "ipcctl: %s: no queue counters (you may not read it, or its creator has none)\n",
                   name.c_str());
      return 1;
    }
    const stats::Snapshot& q = *c.queues;
    const int64_t age = q.updated_ns == 0 ? -1 : (monotonic_ns() - int64_t(q.updated_ns)) / 1'000'000;
    std::vector<std::vector<std::string>> rows{{"COUNTER", "VALUE"}};
    auto row = [&](const char* k, std::string v) { rows.push_back({k, std::move(v)}); };
    row("publisher", std::to_string(q.publisher_pid));
    row("age_ms", age < 0 ? "-" : std::to_string(age));
    row("overflow", overflow_name(c.raw.overflow));
    row("evictions", num_or(evictions_of(c), "-"));
    row("queued_frames", std::to_string(q.queued_frames));
    row("queued_bytes", bytes_text(q.queued_bytes));
    row("high_water", std::to_string(q.high_water) + "/" + std::to_string(q.queue_bound));
    row("held_back", q.held_back ? "yes" : "no");
    row("held_back_times", std::to_string(q.held_back_times));
    row("dropped_peers", std::to_string(q.dropped_peers));
    row("peers", std::to_string(q.peers) + "/" + std::to_string(q.peers_bound));
    row("callers", std::to_string(q.callers) + "/" + std::to_string(q.callers_bound));
    row("callers_refused", std::to_string(q.callers_refused));
    row("replies_dropped", std::to_string(q.replies_dropped));
    print_table(rows);
    return 0;
  }
  if (err < 0 && err != -ENOENT && err != -ECONNREFUSED) {
    std::fprintf(stderr, "ipcctl: registry in %s: %s\n", dir.c_str(), std::strerror(-err));
    return 1;
  }
  std::fprintf(stderr, "ipcctl: no channel %s\n", name.c_str());
  return 1;
}

int cmd_stat(const std::string& dir, const std::string& name, const Options& o) {
  auto info = find_queue(dir, name, "stat");
  if (!info) return 1;
  reg::Client conn;  // ring v2: new rings and readers are asked for at every sample
  auto sample = [&](std::vector<Peer>* readers) {
    if (info->seg) return read_ring(*info->seg, readers, nullptr);
    (void)info->v2->refresh(conn, dir);  // failing: the rings already mapped are sampled
    return info->v2->stats(readers, nullptr);
  };
  RingStats prev = sample(nullptr);
  int64_t t0 = monotonic_ns();
  const int64_t start = t0;
  if (!o.json)
    std::printf("%-10s %12s %12s %10s %10s %10s %8s\n", "TIME(s)", "MSG/S", "MESSAGES", "DEPTH", "DROPS/S", "ABANDONED",
                "READERS");
  for (long n = 0; !g_stop && (o.count == 0 || n < o.count); ++n) {
    ::usleep(useconds_t(o.interval_ms) * 1000);
    if (g_stop) break;  // a sample cut short by the signal would show a meaningless rate
    std::vector<Peer> readers;
    const RingStats now = sample(&readers);
    const int64_t t1 = monotonic_ns();
    const double dt = double(t1 - t0) / 1e9;
    // Ring v2: a drained ring that is freed takes its messages out of the sum; never a
    // negative rate for it.
    const double rate = double(now.tail > prev.tail ? now.tail - prev.tail : 0) / dt,
                 drops = double(now.refused > prev.refused ? now.refused - prev.refused : 0) / dt;
    const double at = double(t1 - start) / 1e9;
    if (o.json)
      std::printf(
          "{\"name\":%s,\"t\":%.3f,\"msgs_per_s\":%.1f,\"messages\":%llu,\"depth\":%llu,\"drops_per_s\":%.1f,"
          "\"abandoned\":%llu,\"readers\":%zu,\"closed\":%s}\n",
          json_str(name).c_str(), at, rate, (unsigned long long)now.tail, (unsigned long long)now.depth, drops,
          (unsigned long long)now.abandoned, readers.size(), now.closed ? "true" : "false");
    else
      std::printf("%-10.1f %12.0f %12llu %10llu %10.0f %10llu %8zu%s\n", at, rate, (unsigned long long)now.tail,
                  (unsigned long long)now.depth, drops, (unsigned long long)now.abandoned, readers.size(),
                  now.closed ? "  (closed)" : "");
    std::fflush(stdout);
    prev = now;
    t0 = t1;
    if (now.closed) break;
  }
  return 0;
}

// Follows the ring from its current tail without a cursor entry, so writers never wait for
// it and no reader loses a message to it. The price: nothing stops a writer from reusing a
// slot while we copy it. A copy is only trusted if, afterwards, no writer can have claimed
// the slot's next lap yet (tail <= pos + N), because writers claim (tail CAS) before they
// write.
int cmd_tail(const std::string& dir, const std::string& name, const Options& o) {
  auto info = find_queue(dir, name, "tail");
  if (!info) return 1;
  if (info->v2) return tail_ring2(dir, *info->v2, o);
  const shm::Segment& seg = *info->seg;
  const shm::SegmentHeader* h = seg.header();
  const uint32_t n = seg.slot_count();
  uint64_t pos = h->tail.load(std::memory_order_acquire);
  if (o.all) pos -= std::min(pos, read_ring(seg, nullptr, nullptr).depth);
  long shown = 0;
  int idle = 0;
  char payload[shm::kMaxPayload];
  while (!g_stop && (o.count == 0 || shown < o.count)) {
    const shm::SlotRead r = shm::read_slot(seg.slot(pos), pos);
    const shm::SlotState st = r.state;
    if (st == shm::SlotState::kEmpty) {
      // Relaxed: closed only ends the loop, and the tail is only compared: neither
      // publishes data we read (read_slot acquires the commit word itself).
      if (h->closed.load(std::memory_order_relaxed) && h->tail.load(std::memory_order_relaxed) <= pos) break;
      // Yield first: on a busy ring a sleeping observer is lapped at once.
      if (++idle < 2000)
        ::sched_yield();
      else
        ::usleep(500);
      continue;
    }
    idle = 0;
    bool lapped = st == shm::SlotState::kCorrupt;
    if (st == shm::SlotState::kReady) {
      const MsgHeader& mh = r.hdr;
      // Without a cursor entry, only the tail tells whether the slot was reused meanwhile.
      (void)r.copy_to(r.size_ok() ? payload : nullptr);
      lapped = h->tail.load(std::memory_order_acquire) > pos + n;
      if (!lapped && mh.size <= shm::kMaxPayload) {
        print_message(o.json, pos, mh, payload);
        ++shown;
      }
    }
    if (lapped) {
      // Resume half a lap behind the tail: far enough back to see messages, far enough
      // ahead not to be lapped again at once.
      const uint64_t t = h->tail.load(std::memory_order_acquire);
      const uint64_t resume = t > n / 2 ? t - n / 2 : 0;
      if (o.json)
        std::printf("{\"missed\":%llu}\n", (unsigned long long)(resume - pos));
      else
        std::printf("... %llu messages passed unseen (tail fell a lap behind)\n", (unsigned long long)(resume - pos));
      pos = resume;
      continue;
    }
    ++pos;
  }
  return 0;
}

int cmd_clean(const std::string& dir, const Options& o) {
  int removed;
  reg::Client conn;
  reg::Reply r{};
  int fd = -1;
  const int rc = ask_registry(conn, dir, reg::Op::kClean, 0, &r, sizeof r, &fd);
  if (fd >= 0) ::close(fd);
  if (rc != -ECONNREFUSED && rc != -ENOENT) {
    removed = rc < 0 ? rc : r.status;
  } else {
    // No registry: hold its lock so none starts while we remove what a crash left.
    const std::string lock = dir + "/" + reg::kLockName;
    const int lfd = ::open(lock.c_str(), O_RDWR | O_CLOEXEC);
    if (lfd >= 0 && ::flock(lfd, LOCK_EX | LOCK_NB) != 0) {
      ::close(lfd);
      std::fprintf(stderr, "ipcctl: a registry holds %s but does not answer\n", lock.c_str());
      return 1;
    }
    removed = reg::remove_stale_files(dir, {});
    if (removed >= 0) ::unlink((dir + "/" + reg::kSocketName).c_str());
    if (lfd >= 0) ::close(lfd);
  }
  if (removed < 0) {
    std::fprintf(stderr, "ipcctl: clean %s: %s\n", dir.c_str(), std::strerror(-removed));
    return 1;
  }
  if (o.json)
    std::printf("{\"dir\":%s,\"removed\":%d}\n", json_str(dir).c_str(), removed);
  else
    std::printf("removed %d stale file%s from %s\n", removed, removed == 1 ? "" : "s", dir.c_str());
  return 0;
}

int cmd_quota(const std::string& dir, const Options& o) {
  std::vector<reg::QuotaInfo> rows;
  std::optional<reg::QuotaInfo> total;
  reg::Client conn;
  int err = 0;
  for (uint64_t next = 0; next <= reg::kQuotaTotalUid && !total;) {
    reg::QuotaInfo q{};
    int fd = -1;
    err = ask_registry(conn, dir, reg::Op::kQuota, uint32_t(next), &q, sizeof q, &fd);
    if (fd >= 0) ::close(fd);
    if (err == 0) err = q.status;
    if (err < 0) break;
    if (q.uid == reg::kQuotaTotalUid)
      total = q;
    else
      rows.push_back(q);
    next = uint64_t(q.uid) + 1;
  }
  // -ENOENT: past the last row, or no runtime directory; -ECONNREFUSED: no registry.
  const bool none = (err == -ENOENT || err == -ECONNREFUSED) && rows.empty() && !total;
  if (err == -ENOENT || err == -ECONNREFUSED) err = 0;
  if (err < 0) {
    std::fprintf(stderr, "ipcctl: registry in %s: %s\n", dir.c_str(), std::strerror(-err));
    return 1;
  }
  if (o.json) {
    std::string s = "{\"dir\":" + json_str(dir) + ",\"uids\":[";
    for (size_t i = 0; i < rows.size(); ++i) s += (i ? "," : "") + quota_json(rows[i]);
    s += "],\"total\":" + (total ? quota_json(*total) : std::string("null")) + "}";
    std::puts(s.c_str());
    return 0;
  }
  if (none) {
    std::printf("no registry running in %s\n", dir.c_str());
    return 0;
  }
  std::vector<std::vector<std::string>> table{
      {"UID", "USER", "CHANNELS", "BYTES", "CONNECTIONS", "MEMBERSHIPS", "REFUSED"}};
  for (const reg::QuotaInfo& q : rows) {
    std::string user = owner_name(q.uid);
    if (q.flags & reg::kQuotaRoot)
      user += " (unlimited)";
    else if (q.flags & reg::kQuotaReserved)
      user += " (reserved)";
    table.push_back({std::to_string(q.uid), user, used_of(q, reg::kQuotaChannels), used_of(q, reg::kQuotaBytes),
                     used_of(q, reg::kQuotaConnections), used_of(q, reg::kQuotaMemberships),
                     std::to_string(q.refused)});
  }
  if (total)
    table.push_back({"total", "(registry)", used_of(*total, reg::kQuotaChannels), used_of(*total, reg::kQuotaBytes),
                     used_of(*total, reg::kQuotaConnections), used_of(*total, reg::kQuotaMemberships),
                     std::to_string(total->refused)});
  print_table(table);
  if (total)
    std::printf("the last %u channels and connections are kept for root and the owners of reserved names\n",
                total->headroom);
  return 0;
}

}  // namespace fwipc::ipcctl
