// A channel's queue counters, visible outside its creator's process (issue 19: every
// bounded queue a client can make a daemon grow has a bound and a counter). A SOCKET or
// PIPE channel's hub, a QUEUE channel's bridge and the NAME.call server keep their queues
// in the creator's process; the creator's runtime publishes their counters in one small
// page that the registry makes at creation (a sealed memfd), hands to the creator
// read-write, and to observers (ipcctl) read-only. The registry never maps it.
//
// Who writes what: the creator's runtime, every field, with relaxed stores (numbers for
// display: no two need to agree); the hub at most every kPublishNs while it works and once
// more after it stops, the call server on every change. Observers validate size, seals and
// magic before they map, and treat every value as untrusted numbers.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace fwipc::stats {

inline constexpr uint64_t kMagic = 0x41545343'50495746ULL;  // "FWIPCSTA" little-endian
inline constexpr uint32_t kVersion = 1;
inline constexpr size_t kPageBytes = 4096;
inline constexpr int64_t kPublishNs = 100'000'000;  // a busy hub republishes at most this often

struct Page {
  uint64_t magic;  // written by the registry, once, before it passes the page on
  uint32_t version;
  uint32_t reserved0;
  std::atomic<uint64_t> publisher_pid;  // the creator's runtime, at its first publication
  std::atomic<uint64_t> updated_ns;     // CLOCK_MONOTONIC of the last publication (0: never)
  // The hub: relay queues of SOCKET/PIPE readers and of a QUEUE channel's bridged readers
  // (other uids), the creator's inbox, the bridge's queue of frames for the ring.
  std::atomic<uint64_t> queued_frames;    // now
  std::atomic<uint64_t> queued_bytes;     // memory they hold now
  std::atomic<uint64_t> high_water;       // the longest single queue ever, in frames
  std::atomic<uint64_t> queue_bound;      // frames one queue may hold (its bound)
  std::atomic<uint64_t> held_back;        // 1 while the hub stops reading writers (a queue is full)
  std::atomic<uint64_t> held_back_times;  // how often it started to
  std::atomic<uint64_t> evictions;        // readers evicted (SOCKET/PIPE; QUEUE: the ring counts)
  std::atomic<uint64_t> dropped_peers;    // connections dropped for malformed frames or failed writes
  std::atomic<uint64_t> peers;            // connections and FIFOs served now
  std::atomic<uint64_t> peers_bound;      // most it serves at once
  // NAME.call (request/reply): caller connections held, refused past the bound, replies
  // dropped because a caller did not read.
  std::atomic<uint64_t> callers;
  std::atomic<uint64_t> callers_bound;
  std::atomic<uint64_t> callers_refused;
  std::atomic<uint64_t> replies_dropped;
};
static_assert(sizeof(Page) <= kPageBytes);
static_assert(offsetof(Page, publisher_pid) == 16 && offsetof(Page, replies_dropped) == 136 && sizeof(Page) == 144,
              "the stats page is an ABI between processes: bump kVersion when it changes");

// Registry: a new page (magic and version set), sealed against shrinking and growing.
// The descriptor, or -errno.
int create_page(const char* debug_name) noexcept;

// A mapped page. Writable for the creator's runtime; read-only for observers.
class Mapping {
 public:
  // Validates (regular file of exactly kPageBytes, sealed against shrinking, magic,
  // version) and maps fd (not taken: the caller closes it). null if it does not check out.
  static std::unique_ptr<Mapping> map(int fd, bool writable) noexcept;
  ~Mapping();
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  Page* page() const noexcept { return page_; }

 private:
  explicit Mapping(Page* p) noexcept : page_(p) {}
  Page* page_;
};

// One relaxed look at a page, for display.
struct Snapshot {
  uint64_t publisher_pid, updated_ns;
  uint64_t queued_frames, queued_bytes, high_water, queue_bound, held_back, held_back_times, evictions, dropped_peers,
      peers, peers_bound;
  uint64_t callers, callers_bound, callers_refused, replies_dropped;
};
Snapshot read(const Page& p) noexcept;

}  // namespace fwipc::stats
