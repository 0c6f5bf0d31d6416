// ipcctl: look at and tidy the channels of a runtime directory (FWIPC_RUNTIME_DIR).
//
//   ipcctl [--json] list                  every channel, its members and counters
//   ipcctl [--json] stat NAME [--interval MS] [--count N]
//                                          live rates, refreshed (N samples; 0: forever)
//   ipcctl [--json] tail NAME [--all] [--count N]
//                                          decode QUEUE messages as they pass, without a
//                                          cursor: other readers lose nothing, and a tail
//                                          that falls a lap behind says how much it missed.
//                                          --all starts at the oldest unread message
//   ipcctl [--json] clean                  remove socket files and FIFOs nothing uses
//
// Statistics from a QUEUE channel's segment need read permission on the channel. SOCKET
// and PIPE channels keep their counters in the creator's process: ipcctl shows their
// members, not depth or rates, and cannot tail them.
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/unixsock.h"
#include "base/time.h"
#include "base/proc.h"
#include "base/rundir.h"
#include "ipc.h"
#include "runtime/registry/protocol.h"
#include "runtime/registry/client.h"
#include "runtime/registry/stale_files.h"
#include "transports/shm/ring.h"
#include "transports/shm/slot_reader.h"

namespace {

using namespace fwipc;
namespace reg = fwipc::registry;

bool g_json = false;

// ---------------------------------------------------------------- registry queries

// ipcctl never starts a registry: with none running there is nothing to list.
registry::ClientOptions no_autostart() {
  registry::ClientOptions o;
  o.autostart = false;
  return o;
}

// Sends rq and receives one answer of `len` bytes into out, plus at most one descriptor.
int ask(registry::Client& c, const std::string& dir, const reg::Request& rq, void* out, size_t len, int* fd_out) {
  int fds[reg::kReplyFds];
  const int rc = c.call(dir, no_autostart(), rq, out, len, fds);
  if (rc < 0) return rc;
  *fd_out = fds[0];
  for (int i = 1; i < reg::kReplyFds; ++i)
    if (fds[i] >= 0) ::close(fds[i]);
  return 0;
}

struct Peer {
  uint32_t pid;
  bool alive;
  uint64_t lag = 0;  // readers: messages behind the tail
  bool reads = false, writes = false, creator = false;
};

struct Ring {  // counters read from a QUEUE segment
  uint64_t tail, depth, abandoned, refused;
  uint32_t slots;
  bool closed;
};

struct Info {
  reg::ChannelInfo raw;
  std::optional<Ring> ring;
  std::vector<Peer> readers, writers;
  uint32_t member_count;
  std::shared_ptr<shm::Segment> seg;
};

const char* type_name(uint32_t t) {
  return t == IPC_TYPE_QUEUE ? "QUEUE" : t == IPC_TYPE_SOCKET ? "SOCKET" : t == IPC_TYPE_PIPE ? "PIPE" : "?";
}
const char* transport_name(uint32_t t) { return t == 0 ? "shm" : t == 1 ? "socket" : t == 2 ? "pipe" : "?"; }

std::string owner_name(uint32_t uid) {
  const passwd* pw = ::getpwuid(uid);
  return pw ? pw->pw_name : std::to_string(uid);
}

Ring read_ring(const shm::Segment& seg, std::vector<Peer>* readers, std::vector<Peer>* writers) {
  const shm::SegmentHeader* h = seg.header();
  Ring r{};
  r.tail = h->tail.load(std::memory_order_acquire);
  r.abandoned = h->abandoned.load(std::memory_order_relaxed);
  r.refused = h->refused.load(std::memory_order_relaxed);
  r.slots = seg.slot_count();
  r.closed = h->closed.load(std::memory_order_relaxed) != 0;
  uint64_t min = r.tail;
  const uint32_t nr = std::min(h->reader_count.load(), shm::kMaxReaders);
  for (uint32_t i = 0; i < nr; ++i) {
    const shm::ReaderEntry& e = h->readers[i];
    if ((e.state.load() & shm::kEntryActive) == 0) continue;
    const uint64_t c = e.cursor.load(std::memory_order_acquire);
    const uint32_t pid = e.pid.load();
    Peer p{pid, process_alive(pid_t(pid), e.start_time), c <= r.tail ? r.tail - c : 0};
    p.reads = true;
    if (readers) readers->push_back(p);
    min = std::min(min, c);
  }
  const uint32_t nw = std::min(h->writer_count.load(), shm::kMaxWriters);
  for (uint32_t i = 0; i < nw && writers; ++i) {
    const shm::WriterEntry& e = h->writers[i];
    if ((e.state.load() & shm::kEntryActive) == 0) continue;
    Peer p{e.pid.load(), process_alive(pid_t(e.pid.load()), e.start_time)};
    p.writes = true;
    writers->push_back(p);
  }
  r.depth = r.tail - min;
  return r;
}

// Every channel the registry knows (none when no registry runs).
std::vector<Info> list_channels(const std::string& dir, int* err) {
  std::vector<Info> out;
  registry::Client conn;
  uint32_t cursor = 0;
  for (;;) {
    reg::Request rq{};
    rq.magic = reg::kProtoMagic;
    rq.op = static_cast<uint32_t>(reg::Op::kList);
    rq.handle = cursor;
    Info info{};
    int fd = -1;
    if (int rc = ask(conn, dir, rq, &info.raw, sizeof info.raw, &fd); rc < 0) {
      *err = rc;
      break;
    }
    if (info.raw.status < 0) break;
    info.raw.name[sizeof info.raw.name - 1] = '\0';
    info.member_count = info.raw.member_count;
    if (fd >= 0) {
      auto seg = shm::Segment::attach(fd);
      ::close(fd);
      if (seg) {
        info.seg = std::make_shared<shm::Segment>(std::move(seg.value()));
        info.ring = read_ring(*info.seg, &info.readers, &info.writers);
      }
    }
    for (uint32_t i = 0; i < std::min(info.raw.listed, reg::kInfoMembers); ++i) {
      const auto& m = info.raw.members[i];
      Peer p{m.pid, (m.flags & reg::kMemberAlive) != 0};
      p.reads = m.flags & reg::kMemberRead;
      p.writes = m.flags & reg::kMemberWrite;
      p.creator = m.flags & reg::kMemberCreator;
      const bool listed = std::any_of(info.writers.begin(), info.writers.end(), [&](const Peer& w) { return w.pid == p.pid; });
      if (!info.ring && p.reads) info.readers.push_back(p);
      // With a ring, its entries list readers and writers, but not writers of another uid,
      // whose frames the creator's bridge commits.
      if (p.writes && !p.creator && !listed) info.writers.push_back(p);
    }
    cursor = info.raw.channel + 1;
    out.push_back(std::move(info));
  }
  return out;
}

// ---------------------------------------------------------------- output

std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o + "\"";
}

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

uint32_t capacity_msgs(const Info& i) {
  if (i.ring) return i.ring->slots;
  auto s = shm::Segment::slots_for_capacity(i.raw.capacity);
  return s ? *s : 0;
}

// Prints rows as a table whose columns are as wide as their widest cell.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size(); ++c) {
      if (w.size() <= c) w.push_back(0);
      w[c] = std::max(w[c], r[c].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t c = 0; c < r.size(); ++c) {
      line += r[c];
      if (c + 1 < r.size()) line += std::string(w[c] - r[c].size() + 2, ' ');
    }
    std::puts(line.c_str());
  }
}

std::string opt_num(const std::optional<Ring>& r, uint64_t Ring::*f) { return r ? std::to_string((*r).*f) : "-"; }

int cmd_list(const std::string& dir) {
  int err = 0;
  const auto chans = list_channels(dir, &err);
  if (g_json) {
    std::string s = "[";
    for (const Info& i : chans) {
      if (s.size() > 1) s += ",";
      char mode[8];
      std::snprintf(mode, sizeof mode, "0%o", i.raw.mode);
      s += "{\"name\":" + json_str(i.raw.name) + ",\"type\":\"" + type_name(i.raw.type) + "\",\"transport\":\"" +
           transport_name(i.raw.transport) + "\",\"owner\":" + json_str(owner_name(i.raw.uid)) +
           ",\"uid\":" + std::to_string(i.raw.uid) + ",\"mode\":\"" + mode +
           "\",\"capacity\":" + std::to_string(capacity_msgs(i));
      if (i.ring) {
        s += ",\"depth\":" + std::to_string(i.ring->depth) + ",\"messages\":" + std::to_string(i.ring->tail) +
             ",\"drops\":" + std::to_string(i.ring->refused) + ",\"abandoned\":" + std::to_string(i.ring->abandoned);
      } else {
        s += ",\"depth\":null,\"messages\":null,\"drops\":null,\"abandoned\":null";
      }
      s += ",\"members\":" + std::to_string(i.member_count) + ",\"readers\":" + peers_json(i.readers, bool(i.ring)) +
           ",\"writers\":" + peers_json(i.writers, false) + "}";
    }
    std::puts((s + "]").c_str());
    return 0;
  }
  if (err < 0 && err != -ENOENT && err != -ECONNREFUSED) {
    std::fprintf(stderr, "ipcctl: registry in %s: %s\n", dir.c_str(), std::strerror(-err));
    return 1;
  }
  if (chans.empty()) {
    std::printf("no channels in %s%s\n", dir.c_str(), err < 0 ? " (no registry running)" : "");
    return 0;
  }
  std::vector<std::vector<std::string>> rows{{"NAME", "TYPE", "TRANSPORT", "OWNER", "MODE", "CAPACITY", "DEPTH",
                                              "MESSAGES", "DROPS", "ABANDONED", "READERS", "WRITERS"}};
  for (const Info& i : chans) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "0%o", i.raw.mode);
    rows.push_back({i.raw.name, type_name(i.raw.type), transport_name(i.raw.transport), owner_name(i.raw.uid), mode,
                    std::to_string(capacity_msgs(i)), opt_num(i.ring, &Ring::depth), opt_num(i.ring, &Ring::tail),
                    opt_num(i.ring, &Ring::refused), opt_num(i.ring, &Ring::abandoned), peers_text(i.readers),
                    peers_text(i.writers)});
  }
  print_table(rows);
  return 0;
}

// The QUEUE channel `name` with its segment mapped, or nothing (after saying why).
std::optional<Info> find_queue(const std::string& dir, const std::string& name, const char* needs) {
  int err = 0;
  for (Info& i : list_channels(dir, &err)) {
    if (name != i.raw.name) continue;
    if (i.seg) return std::move(i);
    std::fprintf(stderr, "ipcctl: %s: %s needs a QUEUE channel on shared memory that you may read\n", name.c_str(), needs);
    return std::nullopt;
  }
  std::fprintf(stderr, "ipcctl: no channel %s\n", name.c_str());
  return std::nullopt;
}

int cmd_stat(const std::string& dir, const std::string& name, int interval_ms, long count) {
  auto info = find_queue(dir, name, "stat");
  if (!info) return 1;
  Ring prev = read_ring(*info->seg, nullptr, nullptr);
  int64_t t0 = monotonic_ns();
  if (!g_json) std::printf("%-10s %12s %12s %10s %10s %10s %8s\n", "TIME(s)", "MSG/S", "MESSAGES", "DEPTH", "DROPS/S", "ABANDONED", "READERS");
  const int64_t start = t0;
  for (long n = 0; count == 0 || n < count; ++n) {
    ::usleep(useconds_t(interval_ms) * 1000);
    std::vector<Peer> readers;
    const Ring now = read_ring(*info->seg, &readers, nullptr);
    const int64_t t1 = monotonic_ns();
    const double dt = double(t1 - t0) / 1e9;
    const double rate = double(now.tail - prev.tail) / dt, drops = double(now.refused - prev.refused) / dt;
    const double at = double(t1 - start) / 1e9;
    if (g_json)
      std::printf("{\"name\":%s,\"t\":%.3f,\"msgs_per_s\":%.1f,\"messages\":%llu,\"depth\":%llu,\"drops_per_s\":%.1f,"
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

void print_message(uint64_t pos, const MsgHeader& h, const char* payload) {
  std::string text;
  const uint32_t shown = std::min<uint32_t>(h.size, 48);
  for (uint32_t i = 0; i < shown; ++i) {
    const unsigned char c = static_cast<unsigned char>(payload[i]);
    text += (c >= 32 && c < 127 && c != '"' && c != '\\') ? char(c) : '.';
  }
  if (g_json) {
    std::string hex;
    char b[3];
    for (uint32_t i = 0; i < h.size; ++i) {
      std::snprintf(b, sizeof b, "%02x", static_cast<unsigned char>(payload[i]));
      hex += b;
    }
    std::printf("{\"pos\":%llu,\"type\":%u,\"size\":%u,\"sender\":%u,\"receiver\":%u,\"priority\":%u,\"payload_hex\":\"%s\"}\n",
                (unsigned long long)pos, h.type, h.size, h.sender, h.receiver, h.priority, hex.c_str());
  } else {
    std::printf("%10llu  type=%-5u size=%-4u sender=%-7u receiver=%-7u prio=%-3u \"%s%s\"\n", (unsigned long long)pos,
                h.type, h.size, h.sender, h.receiver, h.priority, text.c_str(), h.size > shown ? "..." : "");
  }
  std::fflush(stdout);
}

volatile sig_atomic_t g_stop = 0;

// Follows the ring from its current tail without a cursor entry. A slot is only trusted
// if, after copying it, no writer can have claimed its next lap yet (tail <= pos + N):
// writers claim (tail CAS) before they write.
int cmd_tail(const std::string& dir, const std::string& name, long count, bool all) {
  auto info = find_queue(dir, name, "tail");
  if (!info) return 1;
  const shm::Segment& seg = *info->seg;
  const shm::SegmentHeader* h = seg.header();
  const uint32_t n = seg.slot_count();
  uint64_t pos = h->tail.load(std::memory_order_acquire);
  if (all) pos -= std::min(pos, read_ring(seg, nullptr, nullptr).depth);
  long shown = 0;
  int idle = 0;
  char payload[shm::kMaxPayload];
  while (!g_stop && (count == 0 || shown < count)) {
    const shm::SlotRead r = shm::read_slot(seg.slot(pos), pos);
    const shm::SlotState st = r.state;
    if (st == shm::SlotState::kEmpty) {
      if (h->closed.load(std::memory_order_relaxed) && h->tail.load() <= pos) break;
      // Yield first: on a busy ring a sleeping observer is lapped at once.
      if (++idle < 2000) ::sched_yield();
      else ::usleep(500);
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
        print_message(pos, mh, payload);
        ++shown;
      }
    }
    if (lapped) {
      const uint64_t t = h->tail.load(std::memory_order_acquire);
      const uint64_t resume = t > n / 2 ? t - n / 2 : 0;
      if (g_json) std::printf("{\"missed\":%llu}\n", (unsigned long long)(resume - pos));
      else std::printf("... %llu messages passed unseen (tail fell a lap behind)\n", (unsigned long long)(resume - pos));
      pos = resume;
      continue;
    }
    ++pos;
  }
  return 0;
}

int cmd_clean(const std::string& dir) {
  int removed;
  registry::Client conn;
  reg::Request rq{};
  rq.op = static_cast<uint32_t>(reg::Op::kClean);
  reg::Reply r{};
  int fd = -1;
  const int rc = ask(conn, dir, rq, &r, sizeof r, &fd);
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
  if (g_json) std::printf("{\"dir\":%s,\"removed\":%d}\n", json_str(dir).c_str(), removed);
  else std::printf("removed %d stale file%s from %s\n", removed, removed == 1 ? "" : "s", dir.c_str());
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: ipcctl [--json] list\n"
               "       ipcctl [--json] stat NAME [--interval MS] [--count N]\n"
               "       ipcctl [--json] tail NAME [--all] [--count N]\n"
               "       ipcctl [--json] clean\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args;
  int interval_ms = 1000;
  long count = 0;
  bool all = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") g_json = true;
    else if (a == "--all") all = true;
    else if (a == "--interval" && i + 1 < argc) interval_ms = std::max(10, std::atoi(argv[++i]));
    else if (a == "--count" && i + 1 < argc) count = std::atol(argv[++i]);
    else if (a == "-h" || a == "--help") return usage();
    else args.push_back(a);
  }
  if (args.empty()) return usage();
  struct sigaction sa{};
  sa.sa_handler = [](int) { g_stop = 1; };
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  const std::string dir = runtime_dir();
  if (args[0] == "list" && args.size() == 1) return cmd_list(dir);
  if (args[0] == "clean" && args.size() == 1) return cmd_clean(dir);
  if (args[0] == "stat" && args.size() == 2) return cmd_stat(dir, args[1], interval_ms, count);
  if (args[0] == "tail" && args.size() == 2) return cmd_tail(dir, args[1], count, all);
  return usage();
}
