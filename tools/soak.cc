// Soak: 4 writers and 4 readers per transport, with random SIGKILLs of both, checking that
// no committed message is lost or duplicated.
//
//   soak [--type queue|socket|pipe|all] [--messages N] [--seconds S] [--kill-ms MS]
//        [--other-uid UID]
//
// --other-uid (as root): the last writer and the last reader run as that uid, so on a
// QUEUE channel they go through the creator's bridge, and on every transport they are
// the kind of peer whose sender PID must be stamped by the runtime.
//
// This process creates the channel and is also a reader that is never killed: it is the
// complete record against which losses are counted. Writers and readers are child
// processes, SIGKILLed at random every --kill-ms and replaced (a replaced writer starts a
// new generation of sequence numbers). Each writer publishes, in shared memory, the
// sequence it is sending and how many sends returned success; a message counts as sent
// once its send returned. At the end:
//   lost        sent messages the complete reader never got, plus gaps any reader saw
//   duplicated  messages any reader got twice (or out of order)
//   abandoned   a killed writer's in-flight message that never arrived (allowed)
// Exit status 0 only if lost == duplicated == corrupt == 0 and no child failed.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "base/rundir.h"
#include "base/time.h"
#include "ipc.h"

namespace {

constexpr int kWriters = 4;
constexpr int kReaders = 4;
constexpr int kMaxGens = 4096;

struct WriterSlot {
  std::atomic<uint64_t> committed[kMaxGens];   // sends that returned success, per generation
  std::atomic<uint64_t> attempting[kMaxGens];  // seq + 1 of the send in progress
};

struct ReaderStats {
  std::atomic<uint64_t> received, duplicated, gaps, corrupt;
};

struct Shared {
  std::atomic<uint64_t> total_sent;
  std::atomic<uint32_t> stop;
  WriterSlot writers[kWriters];
  ReaderStats readers[kReaders + 1];  // [kReaders]: the complete reader
};

struct Record {
  uint32_t writer, gen;
  uint64_t seq;
  uint64_t check;
};

uint64_t check_of(const Record& r) { return (r.seq * 0x9E3779B97F4A7C15ull) ^ (uint64_t(r.writer) << 40) ^ r.gen; }

// Per reader: next expected seq of each (writer, generation).
struct Verifier {
  std::map<uint64_t, uint64_t> next;
  ReaderStats* st;
  bool from_start;  // joined before every writer: each generation must start at seq 0
  void take(const char* buf, int n) {
    Record r;
    if (n < int(sizeof r)) {
      st->corrupt.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    std::memcpy(&r, buf, sizeof r);
    if (r.writer >= kWriters || r.gen >= kMaxGens || r.check != check_of(r)) {
      st->corrupt.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    st->received.fetch_add(1, std::memory_order_relaxed);
    auto [it, first] = next.emplace(uint64_t(r.writer) << 32 | r.gen, from_start ? 0 : r.seq);
    if (r.seq < it->second)
      st->duplicated.fetch_add(1, std::memory_order_relaxed);
    else if (r.seq > it->second)
      st->gaps.fetch_add(r.seq - it->second, std::memory_order_relaxed);
    if (r.seq >= it->second) it->second = r.seq + 1;
  }
};

int writer_main(Shared* sh, const char* name, uint32_t w, uint32_t gen, uint64_t target) {
  const int id = ipc_open_channel(name, IPC_MODE_WRITE);
  if (id < 0) return 20;
  WriterSlot& slot = sh->writers[w];
  char buf[128];
  std::mt19937 rng(w * 7919 + gen);
  for (uint64_t seq = 0; sh->total_sent.load(std::memory_order_relaxed) < target && !sh->stop.load(); ++seq) {
    Record r{w, gen, seq, 0};
    r.check = check_of(r);
    std::memcpy(buf, &r, sizeof r);
    const uint32_t size = sizeof r + rng() % (sizeof buf - sizeof r);
    slot.attempting[gen].store(seq + 1, std::memory_order_relaxed);
    const int rc = ipc_send(uint32_t(id), buf, size, 1);
    if (rc != int(size)) return 21;
    slot.committed[gen].store(seq + 1, std::memory_order_release);
    sh->total_sent.fetch_add(1, std::memory_order_relaxed);
  }
  ipc_close_channel(uint32_t(id));
  return 0;
}

int reader_main(Shared* sh, const char* name, int idx) {
  const int id = ipc_open_channel(name, IPC_MODE_READ);
  if (id < 0) return 30;
  Verifier v{{}, &sh->readers[idx], false};  // starts where it joined
  IPC_MESSAGE m;
  while (!sh->stop.load(std::memory_order_relaxed)) {
    const int n = ipc_receive_message(uint32_t(id), &m, 20);
    if (n >= 0)
      v.take(m.payload, n);
    else if (n != -ETIMEDOUT && n != -EAGAIN)
      return 31;
  }
  return 0;
}

template <typename F>
pid_t fork_child(F fn, uid_t as_uid = 0) {
  const pid_t p = ::fork();
  if (p == 0) {
    if (as_uid != 0 && (::setgid(as_uid) != 0 || ::setuid(as_uid) != 0)) ::_exit(40);
    ::_exit(fn());
  }
  return p;
}

struct Totals {
  uint64_t sent = 0, delivered = 0, abandoned = 0, lost = 0, duplicated = 0, corrupt = 0, kills = 0;
  int child_failures = 0;
};

Totals soak_one(uint32_t type, const char* label, uint64_t target, int64_t seconds, int kill_ms, uid_t other) {
  Totals t;
  auto* sh =
      static_cast<Shared*>(::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (sh == MAP_FAILED) {
    t.child_failures = 1;
    return t;
  }
  std::string name = std::string("soak-") + label + "-" + std::to_string(::getpid());
  const int c = ipc_create_channel_ex(name.c_str(), type, 1024 * 576, other != 0 ? 0666 : 0660);
  // The last writer and the last reader run as `other` (0: as we do).
  auto uid_of_writer = [&](uint32_t w) { return w == kWriters - 1 ? other : 0; };
  auto uid_of_reader = [&](int r) { return r == kReaders - 1 ? other : 0; };
  if (c < 0) {
    std::fprintf(stderr, "soak: create %s: %s\n", label, ipc_strerror(c));
    t.child_failures = 1;
    return t;
  }
  uint32_t gens[kWriters] = {};
  pid_t writers[kWriters], readers[kReaders];
  for (int i = 0; i < kReaders; ++i)
    readers[i] = fork_child([&] { return reader_main(sh, name.c_str(), i); }, uid_of_reader(i));
  for (uint32_t w = 0; w < kWriters; ++w)
    writers[w] = fork_child([&] { return writer_main(sh, name.c_str(), w, 0, target); }, uid_of_writer(w));

  Verifier complete{{}, &sh->readers[kReaders], true};
  std::mt19937 rng(42);
  const int64_t start = fwipc::monotonic_ns();
  const int64_t deadline = seconds > 0 ? start + seconds * 1'000'000'000 : -1;
  int64_t next_kill = start + int64_t(kill_ms) * 1'000'000;
  int running_writers = kWriters;
  IPC_MESSAGE m;
  auto reap = [&](pid_t p, int st) {
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) return;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      std::fprintf(stderr, "soak: %s child %d failed (status %d)\n", label, p, st);
      ++t.child_failures;
    }
  };
  // Phase 1: traffic with kills until the writers are done (or the time is up).
  while (running_writers > 0) {
    for (int k = 0; k < 256; ++k) {
      const int n = ipc_receive_message(uint32_t(c), &m, k == 0 ? 5 : 0);
      if (n < 0) break;
      complete.take(m.payload, n);
    }
    const int64_t now = fwipc::monotonic_ns();
    if (deadline >= 0 && now >= deadline) sh->stop.store(1);
    if (kill_ms > 0 && now >= next_kill && !sh->stop.load()) {
      next_kill = now + int64_t(kill_ms) * 1'000'000;
      const int victim = int(rng() % (kWriters + kReaders));
      pid_t& p = victim < kWriters ? writers[victim] : readers[victim - kWriters];
      if (p > 0 && ::kill(p, SIGKILL) == 0) ++t.kills;
    }
    for (int i = 0; i < kWriters + kReaders; ++i) {
      const bool is_writer = i < kWriters;
      pid_t& p = is_writer ? writers[i] : readers[i - kWriters];
      int st;
      if (p <= 0 || ::waitpid(p, &st, WNOHANG) != p) continue;
      reap(p, st);
      const bool killed = WIFSIGNALED(st);
      p = -1;
      const bool more = sh->total_sent.load() < target && !sh->stop.load();
      if (is_writer && killed && more && gens[i] + 1 < kMaxGens) {
        const uint32_t w = uint32_t(i), g = ++gens[i];
        p = fork_child([&] { return writer_main(sh, name.c_str(), w, g, target); }, uid_of_writer(w));
      } else if (is_writer) {
        --running_writers;
      } else if (killed && !sh->stop.load()) {
        const int r = i - kWriters;
        p = fork_child([&] { return reader_main(sh, name.c_str(), r); }, uid_of_reader(r));
      }
    }
  }
  // Phase 2: drain what was sent (everything sent must arrive), then stop the readers.
  auto all_in = [&] {
    for (uint32_t w = 0; w < kWriters; ++w)
      for (uint32_t g = 0; g <= gens[w]; ++g) {
        auto it = complete.next.find(uint64_t(w) << 32 | g);
        const uint64_t got = it == complete.next.end() ? 0 : it->second;
        if (got < sh->writers[w].committed[g].load()) return false;
      }
    return true;
  };
  const int64_t drain_until = fwipc::monotonic_ns() + 10'000'000'000;
  while (!all_in() && fwipc::monotonic_ns() < drain_until) {
    const int n = ipc_receive_message(uint32_t(c), &m, 10);
    if (n >= 0) complete.take(m.payload, n);
  }
  sh->stop.store(1);
  // Readers keep the hub (SOCKET/PIPE) busy until they exit: keep serving while they do.
  for (pid_t& p : readers) {
    while (p > 0) {
      int st;
      if (::waitpid(p, &st, WNOHANG) == p) {
        reap(p, st);
        p = -1;
      } else if (ipc_receive_message(uint32_t(c), &m, 5) >= 0) {
        complete.take(m.payload, int(m.size));
      }
    }
  }
  const double secs = double(fwipc::monotonic_ns() - start) / 1e9;
  // Accounting against the complete reader (its gaps are counted as lost below too).
  for (uint32_t w = 0; w < kWriters; ++w)
    for (uint32_t g = 0; g <= gens[w]; ++g) {
      const uint64_t committed = sh->writers[w].committed[g].load();
      const uint64_t attempting = sh->writers[w].attempting[g].load();
      auto it = complete.next.find(uint64_t(w) << 32 | g);
      const uint64_t got = it == complete.next.end() ? 0 : it->second;
      t.sent += committed;
      if (got < committed) t.lost += committed - got;
      if (attempting > committed && got == committed) ++t.abandoned;  // killed mid-send
    }
  for (const ReaderStats& r : sh->readers) {
    t.duplicated += r.duplicated.load();
    t.lost += r.gaps.load();
    t.corrupt += r.corrupt.load();
  }
  t.delivered = sh->readers[kReaders].received.load();
  ipc_close_channel(uint32_t(c));
  const bool ok = t.lost == 0 && t.duplicated == 0 && t.corrupt == 0 && t.child_failures == 0;
  std::printf(
      "soak: %-6s%s sent=%llu delivered=%llu abandoned=%llu lost=%llu duplicated=%llu corrupt=%llu "
      "kills=%llu %.1fs (%.2f M msg/s) %s\n",
      label, other != 0 ? " (1 writer + 1 reader of another uid)" : "", (unsigned long long)t.sent,
      (unsigned long long)t.delivered, (unsigned long long)t.abandoned, (unsigned long long)t.lost,
      (unsigned long long)t.duplicated, (unsigned long long)t.corrupt, (unsigned long long)t.kills, secs,
      double(t.delivered) / secs / 1e6, ok ? "ok" : "FAILED");
  std::fflush(stdout);
  ::munmap(sh, sizeof(Shared));
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  std::string type = "all";
  int64_t messages = -1, seconds = 0;
  int kill_ms = 200;
  uid_t other = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--type" && v)
      type = v, ++i;
    else if (a == "--messages" && v)
      messages = std::strtoll(v, nullptr, 10), ++i;
    else if (a == "--seconds" && v)
      seconds = std::strtoll(v, nullptr, 10), ++i;
    else if (a == "--kill-ms" && v)
      kill_ms = std::atoi(v), ++i;
    else if (a == "--other-uid" && v)
      other = static_cast<uid_t>(std::strtoul(v, nullptr, 10)), ++i;
    else {
      std::fprintf(stderr,
                   "usage: soak [--type queue|socket|pipe|all] [--messages N] [--seconds S] [--kill-ms MS] "
                   "[--other-uid UID]\n");
      return 2;
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  // Children of another uid would otherwise pick their own default runtime directory.
  if (other != 0) ::setenv("FWIPC_RUNTIME_DIR", fwipc::runtime_dir().c_str(), 0);
  struct T {
    const char* label;
    uint32_t type;
    uint64_t default_messages;
  };
  const T all[] = {{"queue", IPC_TYPE_QUEUE, 100'000'000},
                   {"socket", IPC_TYPE_SOCKET, 1'000'000},
                   {"pipe", IPC_TYPE_PIPE, 1'000'000}};
  bool ok = true, any = false;
  for (const T& x : all) {
    if (type != "all" && type != x.label) continue;
    any = true;
    const uint64_t n = messages >= 0 ? uint64_t(messages) : x.default_messages;
    const Totals t = soak_one(x.type, x.label, n, seconds, kill_ms, other);
    ok = ok && t.lost == 0 && t.duplicated == 0 && t.corrupt == 0 && t.child_failures == 0;
  }
  if (!any) {
    std::fprintf(stderr, "soak: unknown --type %s\n", type.c_str());
    return 2;
  }
  return ok ? 0 : 1;
}
