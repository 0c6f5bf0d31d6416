// Round-trip rows: QUEUE ping-pong through the API, the raw cache-line floor, and the
// bare per-slot-sequence ring the QUEUE rows are calibrated against.
#include "benchmarks/harness.h"
#include "benchmarks/harness_util.h"
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
#include "concurrentqueue.h"
#include "fwipc/channel.hpp"
#include "ipc.h"
#include "readerwriterqueue.h"

namespace fwipc::bench {

using namespace util;  // NOLINT: the harness files share these

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

QueuePingPong::QueuePingPong(const std::string& prefix, uint32_t bytes, uint32_t type, bool zero_copy,
                             uint32_t peer_uid)
    : bytes_(bytes), zero_copy_(zero_copy) {
  const std::string ping = prefix + ".ping", pong = prefix + ".pong";
  const uint32_t perm = peer_uid != 0 ? 0666 : 0660;
  pong_ = ipc_create_channel_ex(pong.c_str(), type, 64 * 576, perm);
  if (pong_ < 0) return;
  int sync[2];
  if (::pipe(sync) != 0) return;
  peer_ = ::fork();
  if (peer_ == 0) {
    ::close(sync[0]);
    if (peer_uid != 0 && (::setgid(peer_uid) != 0 || ::setuid(peer_uid) != 0)) ::_exit(1);
    const int in = ipc_create_channel_ex(ping.c_str(), type, 64 * 576, perm);
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
           pong.consume(
               [&](const MsgHeader& h, std::span<const std::byte> p) {
                 std::memcpy(buf_, p.data(), p.size());
                 ok = h.size == bytes_;
               },
               1, -1) == 1 &&
           ok;
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

}  // namespace fwipc::bench
