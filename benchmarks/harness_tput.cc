// One-way throughput rows: QUEUE through each API path, the bare batched ring, and
// moodycamel queues in one process.
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
    // Blocks sized per producer, and enqueue (which allocates a block when a producer has
    // none free): with try_enqueue, which never allocates, 4 producers on 2 vCPUs starved
    // one another for good (a `./dev bench` ran for 15 minutes on that row).
    moodycamel::ConcurrentQueue<Msg> q(4096, size_t(producers), 0);
    for (int p = 0; p < producers; ++p) {
      threads.emplace_back([&] {
        moodycamel::ProducerToken tok(q);
        Msg m{};
        while (!go.load()) {
        }
        for (uint64_t i = 0; i < per; ++i) {
          std::memcpy(m.data, &i, std::min<size_t>(bytes, sizeof i));
          while (!q.enqueue(tok, m)) cpu_relax();  // false only when out of memory
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
