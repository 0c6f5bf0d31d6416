#include "benchmarks/harness.h"
#include "benchmarks/timing.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <ctime>
#include <functional>
#include <numeric>
#include <thread>

#include "base/cpu.h"
#include "base/futex.h"
#include "base/time.h"
#include "fwipc/channel.hpp"
#include "ipc.h"
#include "concurrentqueue.h"
#include "readerwriterqueue.h"

namespace fwipc::bench {
namespace {

constexpr uint32_t kStopType = 0xdeadu;

int64_t now_ns() { return monotonic_ns(); }

void reap(int pid) {
  if (pid <= 0) return;
  int st;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}

int wait_byte(int fd) {
  char b;
  return ::read(fd, &b, 1) == 1 ? 0 : -1;
}

}  // namespace

void interleave(uint64_t total, uint64_t chunk, const std::vector<std::function<std::vector<int64_t>(uint64_t)>>& rows,
                std::vector<std::vector<int64_t>>* out) {
  out->assign(rows.size(), {});
  for (uint64_t done = 0; done < total; done += chunk) {
    for (size_t r = 0; r < rows.size(); ++r) {
      auto s = rows[r](std::min(chunk, total - done));
      (*out)[r].insert((*out)[r].end(), s.begin(), s.end());
    }
  }
}

Percentiles percentiles(std::vector<int64_t> s) {
  Percentiles p;
  if (s.empty()) return p;
  std::sort(s.begin(), s.end());
  auto at = [&](double q) { return double(s[std::min(s.size() - 1, size_t(q * double(s.size())))]); };
  p.p50_ns = at(0.50);
  p.p99_ns = at(0.99);
  p.p999_ns = at(0.999);
  p.max_ns = double(s.back());
  p.mean_ns = double(std::accumulate(s.begin(), s.end(), int64_t{0})) / double(s.size());
  return p;
}

// ---- QUEUE ping-pong

namespace {
// The zero-copy echo peer: consume in place, answer through a loan.
void echo_zero_copy(Channel& in, Channel& out) {
  for (bool stop = false; !stop;) {
    const int rc = in.consume(
        [&](const MsgHeader& h, std::span<const std::byte> p) {
          if (h.type == kStopType) {
            stop = true;
            return;
          }
          auto l = out.loan();
          if (!l.ok()) {
            stop = true;
            return;
          }
          std::memcpy(l->payload().data(), p.data(), p.size());
          stop = l->commit(uint32_t(p.size()), h.type) < 0;
        },
        1, -1);
    if (rc < 0) break;
  }
}
}  // namespace

QueuePingPong::QueuePingPong(const std::string& prefix, uint32_t bytes, uint32_t type, bool zero_copy)
    : bytes_(bytes), zero_copy_(zero_copy) {
  const std::string ping = prefix + ".ping", pong = prefix + ".pong";
  pong_ = ipc_create_channel(pong.c_str(), type, 64 * 576);
  if (pong_ < 0) return;
  int sync[2];
  if (::pipe(sync) != 0) return;
  peer_ = ::fork();
  if (peer_ == 0) {
    ::close(sync[0]);
    const int in = ipc_create_channel(ping.c_str(), type, 64 * 576);
    const int out = ipc_open_channel(pong.c_str(), IPC_MODE_WRITE);
    const char ok = (in >= 0 && out >= 0) ? 1 : 0;
    (void)!::write(sync[1], &ok, 1);
    if (!ok) ::_exit(1);
    if (zero_copy) {
      auto cin = Channel::adopt(in), cout = Channel::adopt(out);
      echo_zero_copy(cin, cout);
      ::_exit(0);
    }
    IPC_MESSAGE m;
    for (;;) {
      const int n = ipc_receive_message(uint32_t(in), &m, -1);
      if (n < 0 || m.type == kStopType) break;
      if (ipc_send(uint32_t(out), m.payload, uint32_t(n), m.type) != n) break;
    }
    ::_exit(0);
  }
  ::close(sync[1]);
  char ok = 0;
  if (::read(sync[0], &ok, 1) != 1 || !ok) {
    ::close(sync[0]);
    return;
  }
  ::close(sync[0]);
  ping_ = ipc_open_channel(ping.c_str(), IPC_MODE_WRITE);
}

QueuePingPong::~QueuePingPong() {
  if (ping_ >= 0) {
    (void)ipc_send(uint32_t(ping_), buf_, 0, kStopType);
    ipc_close_channel(uint32_t(ping_));
  } else if (peer_ > 0) {
    ::kill(peer_, SIGKILL);
  }
  reap(peer_);
  if (pong_ >= 0) ipc_close_channel(uint32_t(pong_));
}

bool QueuePingPong::round_trip() {
  if (zero_copy_) {
    // Borrowed views of our ids: released, not closed, at the end of the trip.
    auto ping = Channel::adopt(ping_), pong = Channel::adopt(pong_);
    bool ok = false;
    if (auto l = ping.loan(); l.ok()) {
      std::memcpy(l->payload().data(), buf_, bytes_);
      ok = l->commit(bytes_, 1) == int(bytes_) &&
           pong.consume([&](const MsgHeader& h, std::span<const std::byte> p) {
             std::memcpy(buf_, p.data(), p.size());
             ok = h.size == bytes_;
           }, 1, -1) == 1 && ok;
    }
    (void)ping.release();
    (void)pong.release();
    return ok;
  }
  if (ipc_send(uint32_t(ping_), buf_, bytes_, 1) != int(bytes_)) return false;
  return ipc_receive(uint32_t(pong_), buf_, sizeof buf_) == int(bytes_);
}

std::vector<int64_t> QueuePingPong::timed(uint64_t n) {
  if (!round_trip()) return {};  // wakes a sleeping peer off the timed path
  return time_trips(n, [this] { return round_trip(); });
}

// ---- raw cache-line ping-pong
//
// The peer spins on one shared cache line and echoes. So that it does not steal a core
// while other rows run, it sleeps on a futex after 200 us without a ping; the first ping of
// a chunk (or one not answered within 1 ms) wakes it. The timed trips never make a syscall.

constexpr uint32_t kPark = 0xfffffffeu;

struct alignas(64) RawPingPong::Line {
  std::atomic<uint32_t> v;
};

RawPingPong::RawPingPong() {
  void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  line_ = static_cast<Line*>(p);
  line_->v.store(0);
  peer_ = ::fork();
  if (peer_ == 0) {
    // Echo: wait for an odd value, answer with the next even one; 0xffffffff stops;
    // kPark means "sleep now", so an idle floor peer steals no core from the next row.
    uint32_t expect = 1;
    for (;;) {
      uint32_t v;
      int64_t t0 = now_ns();
      int spins = 0;
      while ((v = line_->v.load(std::memory_order_acquire)) != expect) {
        if (v == ~0u) ::_exit(0);
        if (v == kPark) {
          futex_wait(&line_->v, kPark, 100'000'000);
          continue;
        }
        cpu_relax();
        if (++spins % 1024 == 0 && now_ns() - t0 > 200'000) {
          futex_wait(&line_->v, v, 100'000'000);
          t0 = now_ns();
        }
      }
      line_->v.store(expect + 1, std::memory_order_release);
      expect += 2;
    }
  }
}

RawPingPong::~RawPingPong() {
  line_->v.store(~0u, std::memory_order_release);
  futex_wake_all(&line_->v);
  reap(peer_);
  ::munmap(line_, 4096);
}

void RawPingPong::round_trip() {
  const uint32_t want = uint32_t(seq_ += 2);
  line_->v.store(want - 1, std::memory_order_release);
  int spins = 0;
  while (line_->v.load(std::memory_order_acquire) != want) {
    cpu_relax();
    if (++spins == 4096) futex_wake_all(&line_->v);  // the peer fell asleep: off the timed path
  }
}

std::vector<int64_t> RawPingPong::timed(uint64_t n) {
  futex_wake_all(&line_->v);
  round_trip();  // the peer is awake and spinning before the first timed trip
  auto out = time_trips(n, [this] {
    round_trip();
    return true;
  });
  line_->v.store(kPark, std::memory_order_release);
  return out;
}

// ---- bare per-slot-sequence rings

namespace {
constexpr uint64_t kBareSlots = 64;

struct alignas(64) BareSlot {
  std::atomic<uint64_t> seq;  // position + 1 once written
  uint32_t size;
  uint32_t type;
  char header_rest[16];
  char payload[544];  // the channel's slot size: a 64 B payload spans two lines
};
static_assert(sizeof(BareSlot) == 576);
}  // namespace

struct BareSeqPingPong::Shared {
  BareSlot ping[kBareSlots];
  BareSlot pong[kBareSlots];
  alignas(64) std::atomic<uint32_t> stop;
  alignas(64) std::atomic<uint32_t> doorbell;  // wakes a parked peer (see RawPingPong)
};

namespace {
void bare_put(BareSlot* ring, uint64_t pos, const char* p, uint32_t n) {
  BareSlot& s = ring[pos % kBareSlots];
  s.size = n;
  s.type = 1;
  std::memcpy(s.payload, p, std::min<uint32_t>(n, sizeof s.payload));
  s.seq.store(pos + 1, std::memory_order_release);
}

// Spins until slot pos is written; copies it out. False if told to stop. With a doorbell,
// parks on it after 200 us idle so it steals no core while other rows run.
bool bare_get(BareSlot* ring, uint64_t pos, char* out, const std::atomic<uint32_t>& stop,
              std::atomic<uint32_t>* doorbell) {
  BareSlot& s = ring[pos % kBareSlots];
  int64_t t0 = now_ns();
  for (uint32_t i = 0; s.seq.load(std::memory_order_acquire) != pos + 1; ++i) {
    cpu_relax();
    if ((i & 1023) != 1023) continue;
    if (stop.load(std::memory_order_relaxed)) return false;
    if (doorbell != nullptr && now_ns() - t0 > 200'000) {
      const uint32_t v = doorbell->load(std::memory_order_acquire);
      if (s.seq.load(std::memory_order_acquire) != pos + 1) futex_wait(doorbell, v, 100'000'000);
      t0 = now_ns();
    }
  }
  std::memcpy(out, s.payload, std::min<uint32_t>(s.size, sizeof s.payload));
  return true;
}
}  // namespace

BareSeqPingPong::BareSeqPingPong(uint32_t bytes) : bytes_(std::min<uint32_t>(bytes, 512)) {
  void* p = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  sh_ = static_cast<Shared*>(p);
  peer_ = ::fork();
  if (peer_ == 0) {
    char buf[512];
    for (uint64_t pos = 0; bare_get(sh_->ping, pos, buf, sh_->stop, &sh_->doorbell); ++pos)
      bare_put(sh_->pong, pos, buf, bytes_);
    ::_exit(0);
  }
}

BareSeqPingPong::~BareSeqPingPong() {
  sh_->stop.store(1);
  sh_->doorbell.fetch_add(1);
  futex_wake_all(&sh_->doorbell);
  reap(peer_);
  ::munmap(sh_, sizeof(Shared));
}

void BareSeqPingPong::round_trip() {
  char buf[512] = {};
  bare_put(sh_->ping, pos_, buf, bytes_);
  bare_get(sh_->pong, pos_, buf, sh_->stop, nullptr);
  ++pos_;
}

std::vector<int64_t> BareSeqPingPong::timed(uint64_t n) {
  sh_->doorbell.fetch_add(1, std::memory_order_release);
  futex_wake_all(&sh_->doorbell);
  round_trip();  // the peer is awake and spinning before the first timed trip
  return time_trips(n, [this] {
    round_trip();
    return true;
  });
}

// ---- one-way throughput

double queue_throughput(const std::string& name, uint64_t n, uint32_t bytes, uint32_t type, int writers, Path path) {
  auto in = Channel::create(name.c_str(), type, 1024 * 576);
  if (!in.ok()) return 0;
  int sync[2];
  if (::pipe(sync) != 0) return 0;
  std::vector<pid_t> peers;
  for (int w = 0; w < writers; ++w) {
    const uint64_t mine = n / uint64_t(writers) + (uint64_t(w) < n % uint64_t(writers) ? 1 : 0);
    const pid_t peer = ::fork();
    if (peer == 0) {
      ::close(sync[1]);
      auto ch = Channel::open(name.c_str(), IPC_MODE_WRITE);
      if (!ch.ok() || wait_byte(sync[0]) != 0) ::_exit(1);
      constexpr uint64_t kBatch = 32;
      static std::byte bufs[kBatch][512];
      Channel::OutMessage msgs[kBatch];
      for (uint64_t i = 0; i < mine;) {
        if (path == Path::kBatch) {
          const uint64_t k = std::min(kBatch, mine - i);
          for (uint64_t j = 0; j < k; ++j) {
            const uint64_t seq = i + j;
            std::memcpy(bufs[j], &seq, sizeof seq);
            msgs[j] = {{bufs[j], bytes}, 1};
          }
          const int rc = ch->send_batch({msgs, k});
          if (rc <= 0) ::_exit(4);
          i += uint64_t(rc);
        } else if (path == Path::kZeroCopy) {
          auto loan = ch->loan();
          if (!loan.ok()) ::_exit(2);
          std::memcpy(loan->payload().data(), &i, sizeof i);
          if (loan->commit(bytes, 1) != int(bytes)) ::_exit(3);
          ++i;
        } else {
          std::memcpy(bufs[0], &i, sizeof i);
          if (ch->send({bufs[0], bytes}, 1) != int(bytes)) ::_exit(2);
          ++i;
        }
      }
      ::_exit(0);
    }
    peers.push_back(peer);
  }
  ::close(sync[0]);
  for (int w = 0; w < writers; ++w) (void)!::write(sync[1], "g", 1);
  char buf[512];
  int64_t t0 = 0;
  uint64_t got = 0;
  if (path == Path::kPlain) {
    for (; got < n; ++got) {
      if (ipc_receive(uint32_t(in->id()), buf, sizeof buf) != int(bytes)) break;
      if (got == 0) t0 = now_ns();
    }
  } else {
    bool bad = false;
    while (got < n && !bad) {
      const int rc = in->consume([&](const MsgHeader& h, std::span<const std::byte>) { bad |= h.size != bytes; }, 64);
      if (rc <= 0) break;
      if (got == 0) t0 = now_ns();
      got += uint64_t(rc);
    }
    if (bad) got = 0;
  }
  const int64_t dt = now_ns() - t0;
  ::close(sync[1]);
  for (pid_t p : peers) reap(p);
  in->reset();
  return got == n && dt > 0 ? double(n - 1) * 1e9 / double(dt) : 0;
}

namespace {

// Design: the producer owns tail, the consumer owns head; each keeps a cached copy of the
// other's index and re-reads it only when the cached one says full/empty. Both publish
// their index every `batch` records (and when they would otherwise wait).
struct alignas(64) BareRing {
  alignas(64) std::atomic<uint64_t> head;
  alignas(64) std::atomic<uint64_t> tail;
  alignas(64) char records[1];
};

}  // namespace

double bare_ring_throughput(uint64_t n, uint32_t rec, uint32_t batch) {
  constexpr uint64_t kSlots = 4096;
  const size_t bytes = offsetof(BareRing, records) + kSlots * rec;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 0;
  auto* r = static_cast<BareRing*>(p);
  r->head.store(0);
  r->tail.store(0);
  const pid_t peer = ::fork();
  if (peer == 0) {
    char src[512] = {};
    uint64_t tail = 0, head_cache = 0, published = 0;
    while (tail < n) {
      if (tail - head_cache == kSlots) {
        r->tail.store(tail, std::memory_order_release);  // publish before waiting
        published = tail;
        while (tail - (head_cache = r->head.load(std::memory_order_acquire)) == kSlots) cpu_relax();
      }
      std::memcpy(src, &tail, sizeof tail);
      std::memcpy(r->records + (tail % kSlots) * rec, src, rec);
      ++tail;
      if (tail - published >= batch) {
        r->tail.store(tail, std::memory_order_release);  // SYNC POINT WRITE: records below tail
        published = tail;
      }
    }
    r->tail.store(tail, std::memory_order_release);
    ::_exit(0);
  }
  char dst[512];
  uint64_t head = 0, tail_cache = 0, published = 0;
  int64_t t0 = 0;
  bool ok = true;
  while (head < n) {
    if (head == tail_cache) {
      r->head.store(head, std::memory_order_release);
      published = head;
      while ((tail_cache = r->tail.load(std::memory_order_acquire)) == head) cpu_relax();  // SYNC POINT READ
    }
    std::memcpy(dst, r->records + (head % kSlots) * rec, rec);
    uint64_t v;
    std::memcpy(&v, dst, sizeof v);
    ok = ok && v == head;
    if (head == 0) t0 = now_ns();
    ++head;
    if (head - published >= batch) {
      r->head.store(head, std::memory_order_release);
      published = head;
    }
  }
  const int64_t dt = now_ns() - t0;
  reap(peer);
  ::munmap(p, bytes);
  return ok && dt > 0 ? double(n - 1) * 1e9 / double(dt) : 0;
}

double moodycamel_throughput(uint64_t n, uint32_t bytes, int producers) {
  struct Msg {
    char data[512];
  };
  std::atomic<bool> go{false};
  const uint64_t per = n / uint64_t(producers);
  const uint64_t total = per * uint64_t(producers);
  int64_t t0 = 0, t1 = 0;
  auto consume = [&](auto& q) {
    Msg m;
    for (uint64_t got = 0; got < total;) {
      if (q.try_dequeue(m)) {
        if (got++ == 0) t0 = now_ns();
      }
    }
    t1 = now_ns();
  };
  std::vector<std::thread> threads;
  if (producers == 1) {
    moodycamel::ReaderWriterQueue<Msg> q(4096);
    threads.emplace_back([&] {
      Msg m{};
      while (!go.load()) {
      }
      for (uint64_t i = 0; i < per; ++i) {
        std::memcpy(m.data, &i, std::min<size_t>(bytes, sizeof i));
        while (!q.try_enqueue(m)) cpu_relax();
      }
    });
    go = true;
    consume(q);
  } else {
    // Blocks sized per producer: with a shared pool one explicit producer can own every
    // block and starve the other, since try_enqueue never allocates.
    moodycamel::ConcurrentQueue<Msg> q(4096, size_t(producers), 0);
    for (int p = 0; p < producers; ++p) {
      threads.emplace_back([&] {
        moodycamel::ProducerToken tok(q);
        Msg m{};
        while (!go.load()) {
        }
        for (uint64_t i = 0; i < per; ++i) {
          std::memcpy(m.data, &i, std::min<size_t>(bytes, sizeof i));
          while (!q.try_enqueue(tok, m)) cpu_relax();
        }
      });
    }
    go = true;
    consume(q);
  }
  for (auto& t : threads) t.join();
  return t1 > t0 ? double(total - 1) * 1e9 / double(t1 - t0) : 0;
}

}  // namespace fwipc::bench
