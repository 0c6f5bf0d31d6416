// One-way throughput, 1 writer process to 1 reader process, side by side in one run:
// the bare batched ring (benchmarks/, the reference), the current ShmRing (layout v4,
// set up by hand as tests/ring_test.cc does, no registry) and the ring v2 core (wring.h,
// the reader on a read-only mapping). Both rings: plain send/receive, and batches
// (send_batch 32, consume 64; the visitor copies each payload out, as the bare ring's
// reader does), and 4 writer processes batching to one reader. Prints the median rates and the ratios to the bare ring
// at the end.
//   bazel run -c opt //transports/shm:wring_bench [-- --benchmark_filter=...]
//   FWIPC_BENCH_MSGS=N (default 2,000,000 per row)
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <string>
#include <vector>

#include "base/cpu.h"
#include "base/futex.h"
#include "base/proc.h"
#include "base/time.h"
#include "benchmarks/harness.h"
#include "transports/shm/membership.h"
#include "transports/shm/ring.h"
#include "transports/shm/wring.h"

namespace {

using fwipc::monotonic_ns;
using fwipc::MsgHeader;

uint64_t msgs() {
  const char* e = std::getenv("FWIPC_BENCH_MSGS");
  return e && *e ? std::strtoull(e, nullptr, 10) : 2'000'000;
}

// Each row runs this many times (FWIPC_BENCH_REPS, default 3); the table takes the median.
int reps() {
  const char* e = std::getenv("FWIPC_BENCH_REPS");
  return e && *e ? std::atoi(e) : 3;
}

constexpr uint32_t kBatch = 32;
constexpr uint32_t kConsume = 64;
constexpr int64_t kSpinNs = 50'000;  // both rings: spin this long before sleeping

void reap(pid_t p) {
  int st;
  ::waitpid(p, &st, 0);
}

// A writer child's whole life, for ShmRing and v2::RingWriter alike: waits for the go byte,
// sends n messages whose first 8 bytes are tag | sequence (plain, or kBatch at a time), exits.
template <class Writer>
[[noreturn]] void write_seq(Writer& w, int go, uint64_t n, uint32_t bytes, bool batch, uint64_t tag = 0) {
  char c;
  if (::read(go, &c, 1) != 1) ::_exit(2);
  static char bufs[kBatch][512];
  MsgHeader hs[kBatch];
  const void* ps[kBatch];
  for (uint64_t i = 0; i < n;) {
    if (batch) {
      const uint32_t k = uint32_t(std::min<uint64_t>(kBatch, n - i));
      for (uint32_t j = 0; j < k; ++j) {
        const uint64_t v = tag | (i + j);
        std::memcpy(bufs[j], &v, 8);
        hs[j] = MsgHeader{1, bytes, 0, 0, 0};
        ps[j] = bufs[j];
      }
      const int rc = w.send_batch(hs, ps, k, -1);
      if (rc <= 0) ::_exit(3);
      i += uint64_t(rc);
    } else {
      const uint64_t v = tag | i;
      std::memcpy(bufs[0], &v, 8);
      if (w.send(MsgHeader{1, bytes, 0, 0, 0}, bufs[0], -1) != int(bytes)) ::_exit(4);
      ++i;
    }
  }
  ::_exit(0);
}

// Forks `writers` children; child w closes go's write end and runs body(w), which exits
// (write_seq). Returns their PIDs.
template <class Body>
std::vector<pid_t> fork_writers(uint32_t writers, const int go[2], Body body) {
  std::vector<pid_t> kids;
  for (uint32_t w = 0; w < writers; ++w) {
    const pid_t child = ::fork();
    if (child == 0) {
      ::close(go[1]);
      body(w);
    }
    kids.push_back(child);
  }
  return kids;
}

uint64_t first_u64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// A batch consumer takes the bytes out of the ring, as the bare ring's reader does, then
// looks at the copy's tag.
uint64_t take(char* copy, const char* payload, uint32_t size) {
  std::memcpy(copy, payload, size);
  return first_u64(copy);
}

// The reader's side of a memfd: reopened O_RDONLY through /proc, so the mapping can never
// be made writable. MAP_FAILED if either step fails.
const void* map_read_only(int fd, uint64_t bytes) {
  const int ro = fwipc::reopen_read_only(fd);
  if (ro < 0) return MAP_FAILED;
  const void* m = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, ro, 0);
  ::close(ro);
  return m;
}

// A v2 reader found nothing: spin until spin_done() for a while, then sleep on the bell
// until ready(), the same waiting as ShmRing::receive. idle_since: when the spell began.
template <class SpinDone, class Ready>
void wait_idle(int64_t& idle_since, fwipc::shm::v2::ReaderSleep& sleeper, SpinDone spin_done, Ready ready) {
  const int64_t now = monotonic_ns();
  if (idle_since == 0) idle_since = now;
  if (now - idle_since < kSpinNs) {
    for (int i = 0; i < 64 && !spin_done(); ++i) fwipc::cpu_relax();
    return;
  }
  sleeper.sleep(ready, 100'000'000);
}

// ---------------------------------------------------------------- current ring (v4)

double current_ring(uint64_t n, uint32_t bytes, bool batch) {
  using namespace fwipc::shm;
  auto seg = Segment::create("wring-bench", 1024, ::getpid());  // 1024 x 576 B, as the suite's QUEUE rows
  if (!seg) return 0;
  uint32_t rst = 0, wst = 0;
  auto ri = join_reader(*seg, ::getpid(), 0, &rst);
  if (!ri) return 0;
  int go[2];
  if (::pipe(go) != 0) return 0;
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(go[1]);
    auto wi = join_writer(*seg, ::getpid(), 0, &wst);
    if (!wi) ::_exit(1);
    ShmRing w(std::move(seg.value()), Roles{-1, 0, int(*wi), wst}, ::getpid());
    write_seq(w, go[0], n, bytes, batch);
  }
  ::close(go[0]);
  ShmRing r(std::move(seg.value()), Roles{int(*ri), rst, -1, 0}, ::getpid());
  (void)!::write(go[1], "g", 1);
  ::close(go[1]);
  struct Ctx {
    uint64_t next = 0;
    bool bad = false;
    char copy[512];
  } ctx;
  int64_t t0 = 0;
  char buf[512];
  while (ctx.next < n) {
    if (batch) {
      const int rc = r.consume(
          kConsume,
          [](void* p, const MsgHeader* h, const void* payload) {
            auto* c = static_cast<Ctx*>(p);
            c->bad |= take(c->copy, static_cast<const char*>(payload), h->size) != c->next++;
          },
          &ctx, -1);
      if (rc <= 0) break;
    } else {
      MsgHeader h;
      if (r.receive(&h, buf, sizeof buf, -1) != int(bytes)) break;
      ctx.bad |= first_u64(buf) != ctx.next++;
    }
    if (t0 == 0) t0 = monotonic_ns();
  }
  const int64_t dt = monotonic_ns() - t0;
  reap(child);
  return !ctx.bad && ctx.next == n && dt > 0 ? double(n - 1) * 1e9 / double(dt) : 0;
}

// ---------------------------------------------------------------- ring v2 core

double v2_ring(uint64_t n, uint32_t bytes, bool batch, bool poll_tail) {
  using namespace fwipc::shm::v2;
  constexpr uint64_t kCap = 1u << 19;  // 512 KiB of records (the v4 row has 576 KiB of slots)
  const uint64_t rb = ring_bytes(kCap), pb = reader_page_bytes(1);
  const int ring_fd = ::memfd_create("wring-bench", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  const int page_fd = ::memfd_create("wring-bench-page", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (ring_fd < 0 || page_fd < 0 || ::ftruncate(ring_fd, off_t(rb)) != 0 || ::ftruncate(page_fd, off_t(pb)) != 0)
    return 0;
  ::fcntl(ring_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
  ::fcntl(page_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
  void* ring_rw = ::mmap(nullptr, rb, PROT_READ | PROT_WRITE, MAP_SHARED, ring_fd, 0);
  auto* page = static_cast<ReaderPage*>(::mmap(nullptr, pb, PROT_READ | PROT_WRITE, MAP_SHARED, page_fd, 0));
  void* bp = ::mmap(nullptr, 2 * sizeof(Bell), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (ring_rw == MAP_FAILED || page == MAP_FAILED || bp == MAP_FAILED) return 0;
  auto* bells = static_cast<Bell*>(bp);
  if (format_ring(ring_rw, rb, kCap, 0, 0, 1) != 0 || format_reader_page(page, pb, 1) != 0) return 0;
  int go[2];
  if (::pipe(go) != 0) return 0;
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(go[1]);
    ::munmap(page, pb);
    const auto* rp = static_cast<const ReaderPage*>(map_read_only(page_fd, pb));
    if (rp == MAP_FAILED) ::_exit(1);
    RingWriter w;
    if (w.attach(ring_rw, rb, &bells[0].word) != 0) ::_exit(1);
    const ReaderPort port{&rp->cursor[0], &rp->sleep, &bells[1].word};
    w.set_readers(&port, 1);
    write_seq(w, go[0], n, bytes, batch);
  }
  ::close(go[0]);
  ::munmap(ring_rw, rb);  // the reader keeps only a read-only mapping
  const void* ring_ro = map_read_only(ring_fd, rb);
  RingReader r;
  if (ring_ro == MAP_FAILED || r.attach(ring_ro, rb, uint32_t(child), &page->cursor[0], &bells[0].word) != 0) return 0;
  ReaderSleep sleeper(&page->sleep, &bells[1].word);
  (void)!::write(go[1], "g", 1);
  ::close(go[1]);
  uint64_t next = 0;
  bool bad = false;
  int64_t t0 = 0, idle_since = 0;
  char buf[512];
  while (next < n) {
    int rc;
    if (batch) {
      rc = r.consume(kConsume, [&](const RecordView& v) {
        bad |= take(buf, v.payload, v.hdr.size) != next++ || v.hdr.size != bytes;
      });
    } else {
      MsgHeader h;
      rc = r.read(&h, buf, sizeof buf);
      if (rc >= 0) bad |= first_u64(buf) != next++ || uint32_t(rc) != bytes;
    }
    if (rc >= 0) {
      if (t0 == 0) t0 = monotonic_ns();
      idle_since = 0;
      continue;
    }
    if (rc != -EAGAIN) break;
    wait_idle(
        idle_since, sleeper, [&] { return poll_tail ? r.tail_past() : r.ready(); }, [&] { return r.ready(); });
  }
  const int64_t dt = monotonic_ns() - t0;
  reap(child);
  ::munmap(const_cast<void*>(ring_ro), rb);
  ::munmap(page, pb);
  ::munmap(bp, 2 * sizeof(Bell));
  ::close(ring_fd);
  ::close(page_fd);
  return !bad && next == n && dt > 0 ? double(n - 1) * 1e9 / double(dt) : 0;
}

// ---------------------------------------------------------------- several writers, batched

// v4: `writers` processes share the one ring (tail CAS), the reader consumes.
double current_multi(uint64_t n, uint32_t bytes, uint32_t writers) {
  using namespace fwipc::shm;
  auto seg = Segment::create("wring-bench-multi", 1024, ::getpid());
  if (!seg) return 0;
  uint32_t rst = 0;
  auto ri = join_reader(*seg, ::getpid(), 0, &rst);
  if (!ri) return 0;
  int go[2];
  if (::pipe(go) != 0) return 0;
  const std::vector<pid_t> kids = fork_writers(writers, go, [&](uint32_t w) {
    uint32_t wst = 0;
    auto wi = join_writer(*seg, ::getpid(), 0, &wst);
    if (!wi) ::_exit(1);
    ShmRing wr(std::move(seg.value()), Roles{-1, 0, int(*wi), wst}, ::getpid());
    write_seq(wr, go[0], n / writers, bytes, true, uint64_t(w) << 48);
  });
  ::close(go[0]);
  ShmRing r(std::move(seg.value()), Roles{int(*ri), rst, -1, 0}, ::getpid());
  for (uint32_t w = 0; w < writers; ++w) (void)!::write(go[1], "g", 1);
  ::close(go[1]);
  struct Ctx {
    uint64_t got = 0;
    uint64_t next[16] = {};
    bool bad = false;
    char copy[512];
  } ctx;
  const uint64_t total = n / writers * writers;
  int64_t t0 = 0;
  while (ctx.got < total) {
    const int rc = r.consume(
        kConsume,
        [](void* p, const MsgHeader* h, const void* payload) {
          auto* c = static_cast<Ctx*>(p);
          const uint64_t tag = take(c->copy, static_cast<const char*>(payload), h->size);
          const uint64_t w = tag >> 48;
          c->bad |= w >= 16 || (tag & ((1ull << 48) - 1)) != c->next[w & 15]++;
          ++c->got;
        },
        &ctx, -1);
    if (rc <= 0) break;
    if (t0 == 0) t0 = monotonic_ns();
  }
  const int64_t dt = monotonic_ns() - t0;
  for (pid_t k : kids) reap(k);
  return !ctx.bad && ctx.got == total && dt > 0 ? double(total - 1) * 1e9 / double(dt) : 0;
}

// v2: a ring per writer process; the reader takes up to 64 from each ring in turn (the
// RingSet fast path, in place), polling the rings' tails while caught up.
double v2_multi(uint64_t n, uint32_t bytes, uint32_t writers) {
  using namespace fwipc::shm::v2;
  constexpr uint64_t kCap = 1u << 17;  // 128 KiB per writer
  const uint64_t rb = ring_bytes(kCap), pb = reader_page_bytes(writers);
  std::vector<int> ring_fd(writers);
  std::vector<void*> ring_rw(writers);
  for (uint32_t w = 0; w < writers; ++w) {
    ring_fd[w] = ::memfd_create("wring-bench", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (ring_fd[w] < 0 || ::ftruncate(ring_fd[w], off_t(rb)) != 0) return 0;
    ring_rw[w] = ::mmap(nullptr, rb, PROT_READ | PROT_WRITE, MAP_SHARED, ring_fd[w], 0);
    if (ring_rw[w] == MAP_FAILED || format_ring(ring_rw[w], rb, kCap, 0, w, 1) != 0) return 0;
  }
  const int page_fd = ::memfd_create("wring-bench-page", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (page_fd < 0 || ::ftruncate(page_fd, off_t(pb)) != 0) return 0;
  auto* page = static_cast<ReaderPage*>(::mmap(nullptr, pb, PROT_READ | PROT_WRITE, MAP_SHARED, page_fd, 0));
  void* bp = ::mmap(nullptr, (writers + 1) * sizeof(Bell), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED || bp == MAP_FAILED || format_reader_page(page, pb, writers) != 0) return 0;
  auto* bells = static_cast<Bell*>(bp);
  int go[2];
  if (::pipe(go) != 0) return 0;
  const std::vector<pid_t> kids = fork_writers(writers, go, [&](uint32_t w) {
    const auto* rp = page;  // the child only reads it
    RingWriter wr;
    if (wr.attach(ring_rw[w], rb, &bells[w].word) != 0) ::_exit(1);
    const ReaderPort port{&rp->cursor[w], &rp->sleep, &bells[writers].word};
    wr.set_readers(&port, 1);
    write_seq(wr, go[0], n / writers, bytes, true);
  });
  ::close(go[0]);
  std::vector<RingReader> rs(writers);
  for (uint32_t w = 0; w < writers; ++w) {
    ::munmap(ring_rw[w], rb);
    const void* m = map_read_only(ring_fd[w], rb);
    if (m == MAP_FAILED || rs[w].attach(m, rb, uint32_t(kids[w]), &page->cursor[w], &bells[w].word) != 0) return 0;
  }
  ReaderSleep sleeper(&page->sleep, &bells[writers].word);
  for (uint32_t w = 0; w < writers; ++w) (void)!::write(go[1], "g", 1);
  ::close(go[1]);
  const uint64_t total = n / writers * writers;
  std::vector<uint64_t> next(writers, 0);
  uint64_t got = 0;
  bool bad = false;
  int64_t t0 = 0, idle_since = 0;
  char buf[512];
  auto any = [&] {
    for (auto& r : rs)
      if (r.tail_past()) return true;
    return false;
  };
  while (got < total) {
    bool progress = false;
    for (uint32_t w = 0; w < writers; ++w) {
      const int rc =
          rs[w].consume(kConsume, [&](const RecordView& v) { bad |= take(buf, v.payload, v.hdr.size) != next[w]++; });
      if (rc > 0) {
        got += uint64_t(rc);
        progress = true;
      } else if (rc != -EAGAIN) {
        return 0;
      }
    }
    if (progress) {
      if (t0 == 0) t0 = monotonic_ns();
      idle_since = 0;
      continue;
    }
    wait_idle(idle_since, sleeper, any, any);
  }
  const int64_t dt = monotonic_ns() - t0;
  for (pid_t k : kids) reap(k);
  return !bad && got == total && dt > 0 ? double(total - 1) * 1e9 / double(dt) : 0;
}

double median(std::vector<double> v);

// ---------------------------------------------------------------- round trip, 64 B

// Two v2 rings (ping: we write, the peer reads; pong: the other way), both sides
// spinning, each reader on a read-only mapping. Between timed chunks the peer parks on a
// futex so the other rows have the CPU.
class V2PingPong {
 public:
  explicit V2PingPong(uint32_t bytes) : bytes_(bytes) {
    using namespace fwipc::shm::v2;
    for (int i = 0; i < 2; ++i) {
      fd_[i] = ::memfd_create("wring-rtt", MFD_CLOEXEC | MFD_ALLOW_SEALING);
      if (fd_[i] < 0 || ::ftruncate(fd_[i], off_t(kRb)) != 0) return;
      void* p = ::mmap(nullptr, kRb, PROT_READ | PROT_WRITE, MAP_SHARED, fd_[i], 0);
      if (p == MAP_FAILED || format_ring(p, kRb, kCap, 0, uint32_t(i), 1) != 0) return;
      ::munmap(p, kRb);
    }
    void* sh = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) return;
    sh_ = new (sh) Shared{};
    format_reader_page(&sh_->page[0], sizeof sh_->page[0], 1);
    format_reader_page(&sh_->page[1], sizeof sh_->page[1], 1);
    sh_->park.store(1);  // parked until timed(): it must not steal a CPU from the other rows
    peer_ = ::fork();
    if (peer_ == 0) ::_exit(serve(1, 0));  // writes pong, reads ping
    ok_ = attach(0, 1) == 0;               // writes ping, reads pong
    // The peer starts reading ping at its tail when it attaches: nothing is sent before.
    const int64_t until = monotonic_ns() + 10'000'000'000;
    while (ok_ && sh_->ready.load(std::memory_order_acquire) == 0)
      if (monotonic_ns() > until) ok_ = false;
  }
  ~V2PingPong() {
    if (sh_ != nullptr && peer_ > 0) {
      sh_->stop.store(1);
      sh_->park.store(0);
      fwipc::futex_wake_all(&sh_->park);
      reap(peer_);
    }
  }
  bool ok() const { return ok_; }
  void round_trip() {
    char buf[512] = {};
    std::memcpy(buf, &trips_, 8);
    w_.send(MsgHeader{1, bytes_, 0, 0, 0}, buf, -1);
    MsgHeader h;
    while (r_.read(&h, buf, sizeof buf) < 0) fwipc::cpu_relax();
    ++trips_;
  }
  std::vector<int64_t> timed(uint64_t n) {
    sh_->park.store(0, std::memory_order_release);
    fwipc::futex_wake_all(&sh_->park);
    round_trip();
    std::vector<int64_t> out;
    out.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      const int64_t t = monotonic_ns();
      round_trip();
      out.push_back(monotonic_ns() - t);
    }
    sh_->park.store(1, std::memory_order_release);
    return out;
  }

 private:
  static constexpr uint64_t kCap = 1u << 16;
  static constexpr uint64_t kRb = fwipc::shm::v2::ring_bytes(kCap);
  struct Shared {
    std::atomic<uint32_t> park{1}, stop{0}, ready{0};
    alignas(64) fwipc::shm::v2::Bell bells[4];       // ring 0, ring 1, reader of 0, reader of 1
    alignas(64) fwipc::shm::v2::ReaderPage page[2];  // [i]: the reader of ring i (1 cursor fits)
  };
  // We write ring `mine` and read ring `theirs`.
  int attach(int mine, int theirs) {
    using namespace fwipc::shm::v2;
    void* w = ::mmap(nullptr, kRb, PROT_READ | PROT_WRITE, MAP_SHARED, fd_[mine], 0);
    const void* r = map_read_only(fd_[theirs], kRb);
    if (w == MAP_FAILED || r == MAP_FAILED) return -1;
    if (w_.attach(w, kRb, &sh_->bells[mine].word) != 0) return -1;
    const ReaderPort port{&sh_->page[mine].cursor[0], &sh_->page[mine].sleep, &sh_->bells[2 + mine].word};
    w_.set_readers(&port, 1);
    return r_.attach(r, kRb, 0, &sh_->page[theirs].cursor[0], &sh_->bells[theirs].word);
  }
  int serve(int mine, int theirs) {
    if (attach(mine, theirs) != 0) return 1;
    sh_->ready.store(1, std::memory_order_release);
    char buf[512];
    MsgHeader h;
    while (sh_->stop.load(std::memory_order_relaxed) == 0) {
      if (sh_->park.load(std::memory_order_acquire) != 0) {
        fwipc::futex_wait(&sh_->park, 1, 100'000'000);
        continue;
      }
      for (int i = 0; i < 256; ++i) {
        const int rc = r_.read(&h, buf, sizeof buf);
        if (rc >= 0) {
          w_.send(h, buf, -1);
          i = 0;
        } else {
          fwipc::cpu_relax();
        }
      }
    }
    return 0;
  }

  uint32_t bytes_;
  int fd_[2] = {-1, -1};
  Shared* sh_ = nullptr;
  pid_t peer_ = -1;
  bool ok_ = false;
  fwipc::shm::v2::RingWriter w_;
  fwipc::shm::v2::RingReader r_;
  uint64_t trips_ = 0;
};

double p50(std::vector<int64_t> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return double(v[v.size() / 2]);
}

// Raw cache-line ping-pong, bare per-slot-sequence ring (benchmarks/), v2: interleaved in
// chunks; the ratio is the median over chunks of (row p50 / raw p50 of the same chunk).
void run_rtt() {
  const char* e = std::getenv("FWIPC_BENCH_TRIPS");
  const uint64_t n = e && *e ? std::strtoull(e, nullptr, 10) : 100'000;
  const uint64_t chunk = std::max<uint64_t>(n / 20, 1);
  fwipc::bench::RawPingPong raw;
  fwipc::bench::BareSeqPingPong bare(64);
  V2PingPong v2(64);
  if (!v2.ok()) {
    std::printf("rtt: v2 setup failed\n");
    return;
  }
  // Warm-up through timed(): each wakes its peer and parks it again afterwards.
  v2.timed(2000);
  raw.timed(2000);
  bare.timed(2000);
  std::vector<std::vector<int64_t>> s;
  fwipc::bench::interleave(n, chunk,
                           {[&](uint64_t k) { return raw.timed(k); }, [&](uint64_t k) { return bare.timed(k); },
                            [&](uint64_t k) { return v2.timed(k); }},
                           &s);
  auto ratio = [&](size_t row) {
    std::vector<double> r;
    for (size_t c = 0; c + chunk <= s[0].size() && c + chunk <= s[row].size(); c += chunk) {
      const double f = p50({s[0].begin() + long(c), s[0].begin() + long(c + chunk)});
      const double x = p50({s[row].begin() + long(c), s[row].begin() + long(c + chunk)});
      if (f > 0) r.push_back(x / f);
    }
    return median(r);
  };
  std::printf("\nround trip, 64 B, %llu trips per row in chunks of %llu\n", (unsigned long long)n,
              (unsigned long long)chunk);
  std::printf("| row | p50 ns | x raw (median over chunks) |\n|---|---|---|\n");
  const char* names[] = {"raw cache-line ping-pong", "bare per-slot-sequence ring (576 B slots)",
                         "v2 ring (96 B records)"};
  for (size_t i = 0; i < 3; ++i) std::printf("| %s | %.0f | %.2f |\n", names[i], p50(s[i]), i == 0 ? 1.0 : ratio(i));
}

// ---------------------------------------------------------------- rows

std::map<std::string, std::vector<double>> g_rates;  // "row/bytes" -> msgs/s of each repetition

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void report(benchmark::State& st, const char* row, double rate, uint64_t n) {
  if (rate <= 0) {
    st.SkipWithError("run failed");
    return;
  }
  st.SetIterationTime(double(n) / rate);
  st.counters["msgs_per_s"] = rate;
  st.counters["GB_per_s"] = rate * double(st.range(0)) / 1e9;
  g_rates[std::string(row) + "/" + std::to_string(st.range(0))].push_back(rate);
}

void BM_Bare(benchmark::State& st) {
  const uint64_t n = msgs() * 4;
  for (auto _ : st)
    report(st, "bare_ring_batched", fwipc::bench::bare_ring_throughput(n, uint32_t(st.range(0)), 32), n);
}
void BM_Current(benchmark::State& st, bool batch) {
  const uint64_t n = msgs();
  for (auto _ : st)
    report(st, batch ? "v4_ring_batch" : "v4_ring_plain", current_ring(n, uint32_t(st.range(0)), batch), n);
}
void BM_V2(benchmark::State& st, const char* row, bool batch, bool poll_tail) {
  const uint64_t n = msgs();
  for (auto _ : st) report(st, row, v2_ring(n, uint32_t(st.range(0)), batch, poll_tail), n);
}

void BM_CurrentMulti(benchmark::State& st) {
  const uint64_t n = msgs();
  for (auto _ : st) report(st, "v4_ring_batch_4w", current_multi(n, uint32_t(st.range(0)), 4), n / 4 * 4);
}
void BM_V2Multi(benchmark::State& st) {
  const uint64_t n = msgs();
  for (auto _ : st) report(st, "v2_ring_batch_4w", v2_multi(n, uint32_t(st.range(0)), 4), n / 4 * 4);
}

}  // namespace

int main(int argc, char** argv) {
  auto opts = [](benchmark::internal::Benchmark* b) {
    b->Arg(64)->Arg(512)->Iterations(1)->Repetitions(reps())->UseManualTime()->Unit(benchmark::kMillisecond);
  };
  opts(benchmark::RegisterBenchmark("tput/bare_ring_batched", BM_Bare));
  opts(benchmark::RegisterBenchmark("tput/v4_ring_plain", BM_Current, false));
  opts(benchmark::RegisterBenchmark("tput/v2_ring_plain", BM_V2, "v2_ring_plain", false, false));
  opts(benchmark::RegisterBenchmark("tput/v2_ring_plain_tailpoll", BM_V2, "v2_ring_plain_tailpoll", false, true));
  opts(benchmark::RegisterBenchmark("tput/v4_ring_batch", BM_Current, true));
  opts(benchmark::RegisterBenchmark("tput/v2_ring_batch", BM_V2, "v2_ring_batch", true, false));
  opts(benchmark::RegisterBenchmark("tput/v2_ring_batch_tailpoll", BM_V2, "v2_ring_batch_tailpoll", true, true));
  opts(benchmark::RegisterBenchmark("tput/v4_ring_batch_4w", BM_CurrentMulti));
  opts(benchmark::RegisterBenchmark("tput/v2_ring_batch_4w", BM_V2Multi));
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::printf("\nmedian of %d runs per row\n", reps());
  std::printf("| row | 64 B M msg/s | x bare | 512 B M msg/s | x bare |\n|---|---|---|---|---|\n");
  for (const char* row :
       {"bare_ring_batched", "v4_ring_plain", "v2_ring_plain", "v2_ring_plain_tailpoll", "v4_ring_batch",
        "v2_ring_batch", "v2_ring_batch_tailpoll", "v4_ring_batch_4w", "v2_ring_batch_4w"}) {
    std::printf("| %s |", row);
    for (int bytes : {64, 512}) {
      const double bare = median(g_rates[std::string("bare_ring_batched/") + std::to_string(bytes)]);
      const double r = median(g_rates[std::string(row) + "/" + std::to_string(bytes)]);
      std::printf(" %.1f | %.2f |", r / 1e6, bare > 0 ? r / bare : 0.0);
    }
    std::printf("\n");
  }
  if (const char* r = std::getenv("FWIPC_BENCH_RTT"); r == nullptr || std::strcmp(r, "0") != 0) run_rtt();
  return 0;
}
