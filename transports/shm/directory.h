// Ring v2 channel directory (RING-V2.md section 2): which ring index belongs to which
// writer PID, which reader index to which reader, and the channel-wide words. One sealed
// memfd per channel; the registry alone maps it read-write (its process is
// single-threaded: the mutators below are plain release stores), every member maps it
// read-only. The sender of every record is the `pid` of the ring entry it came through,
// so no member can forge it.
//
// Who writes what:
//   line 0        the registry, once, before magic (release fence).
//   line 1        the registry: closed (0 -> 1 once), gen (bumped, release, after every
//                 change to an entry, so a member that sees gen move re-reads the tables).
//   entries       the registry. An entry's fields are written while its state says free,
//                 then state is stored (release); a member copies state (acquire), the
//                 fields, then state again: equal words mean a consistent copy.
// Members never trust a word of it beyond what they checked: counts against the mapping
// size from their own fstat, indexes against the counts.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace fwipc::shm::v2 {

inline constexpr uint64_t kDirMagic = 0x32524944'43504946ULL;  // "FIPCDIR2" little-endian
inline constexpr uint32_t kDirVersion = 1;
inline constexpr uint32_t kMaxRings = 4096;     // writer handles per channel
inline constexpr uint32_t kMaxDirReaders = 64;  // reader handles per channel

// Entry state word: generation << 8 | status. The generation is bumped whenever an entry
// is taken, so a (index, state) pair names one membership for its whole life.
enum EntryStatus : uint32_t {
  kFree = 0,
  kActive = 1,    // ring: its writer may write, readers read it. reader: writers count its cursor
  kDraining = 2,  // ring: its writer is gone; readers take what was committed, then drop it
  kJoining = 3,   // reader: page made, cursors being set; writers do not count it yet
  kEvicted = 4,   // reader: IPC_OVERFLOW_EVICT took it; writers do not count it
};
inline constexpr uint32_t entry_status(uint64_t state) noexcept { return uint32_t(state & 0xff); }

struct DirHeader {
  // Line 0: the registry, once.
  uint64_t magic;
  uint32_t version;
  uint32_t header_bytes;  // offset of the ring table
  uint64_t instance_id;   // random per channel; names the readers' notify sockets
  uint32_t overflow;      // IPC_OVERFLOW_*
  uint32_t evict_after_ms;
  uint32_t creator_pid;
  uint32_t max_rings;      // RingEntry count, <= kMaxRings
  uint32_t max_readers;    // ReaderEntry count, <= kMaxDirReaders
  uint32_t ring_capacity;  // bytes of records of each writer's ring
  uint32_t ring_records;   // messages a writer may have unread (the channel's buffer_size in
                           // messages, as ipc.h counts it); 0: only the bytes bound it
  char pad0_[64 - 52];
  // Line 1: the registry, on every change.
  alignas(64) std::atomic<uint32_t> closed;
  uint32_t pad1a_;
  std::atomic<uint64_t> gen;
  std::atomic<uint64_t> evictions;  // readers evicted (IPC_OVERFLOW_EVICT), ever
  char pad1_[64 - 24];
};

struct RingEntry {
  std::atomic<uint64_t> state;  // generation << 8 | EntryStatus
  uint32_t pid;                 // the sender of every record in this ring
  uint32_t uid;
  uint64_t start_time;  // of pid (base/proc.h), against PID reuse
  uint64_t capacity;    // bytes of records
};

struct DirReaderEntry {
  std::atomic<uint64_t> state;
  uint32_t pid;
  uint32_t uid;
  uint64_t start_time;
  uint64_t reserved;
};

static_assert(sizeof(DirHeader) == 128 && sizeof(RingEntry) == 32 && sizeof(DirReaderEntry) == 32);
static_assert(offsetof(DirHeader, magic) == 0 && offsetof(DirHeader, version) == 8);
static_assert(offsetof(DirHeader, header_bytes) == 12 && offsetof(DirHeader, instance_id) == 16);
static_assert(offsetof(DirHeader, overflow) == 24 && offsetof(DirHeader, evict_after_ms) == 28);
static_assert(offsetof(DirHeader, creator_pid) == 32 && offsetof(DirHeader, max_rings) == 36);
static_assert(offsetof(DirHeader, max_readers) == 40 && offsetof(DirHeader, ring_capacity) == 44);
static_assert(offsetof(DirHeader, ring_records) == 48);
static_assert(offsetof(DirHeader, closed) == 64 && offsetof(DirHeader, gen) == 72);
static_assert(offsetof(DirHeader, evictions) == 80);
static_assert(offsetof(RingEntry, state) == 0 && offsetof(RingEntry, pid) == 8 && offsetof(RingEntry, uid) == 12);
static_assert(offsetof(RingEntry, start_time) == 16 && offsetof(RingEntry, capacity) == 24);
static_assert(offsetof(DirReaderEntry, state) == 0 && offsetof(DirReaderEntry, pid) == 8);
static_assert(offsetof(DirReaderEntry, uid) == 12 && offsetof(DirReaderEntry, start_time) == 16);

inline constexpr uint64_t directory_bytes(uint32_t max_rings, uint32_t max_readers) noexcept {
  return sizeof(DirHeader) + uint64_t(max_rings) * sizeof(RingEntry) + uint64_t(max_readers) * sizeof(DirReaderEntry);
}
// The memfd name of a channel's KIND ("dir", "bells", "ring", "rdr"): what the registry
// names it at make, and what a restarted registry, or a member while none answers, looks
// for in a holder's descriptor table (/proc/PID/fd).
inline std::string memfd_name(const char* kind, const std::string& channel) {
  return std::string("fwipc-") + kind + ":" + channel;
}

// The bells page: one Bell (wring.h) per ring, then one per reader.
inline constexpr uint64_t bells_bytes(uint32_t max_rings, uint32_t max_readers) noexcept {
  return 64ull * (uint64_t(max_rings) + max_readers);
}

struct DirParams {
  uint64_t instance_id = 0;
  uint32_t overflow = 0;
  uint32_t evict_after_ms = 0;
  uint32_t creator_pid = 0;
  uint32_t max_rings = 0;
  uint32_t max_readers = 0;
  uint32_t ring_capacity = 0;  // a valid ring capacity (wring.h: power of two, >= kMinCapacity)
  uint32_t ring_records = 0;
};

// A consistent copy of one entry.
struct EntryView {
  uint64_t state = 0;
  uint32_t pid = 0;
  uint32_t uid = 0;
  uint64_t start_time = 0;
  uint64_t capacity = 0;  // rings only
  uint32_t status() const noexcept { return entry_status(state); }
};

// The registry's handle on a directory mapped read-write. Single-threaded.
class DirWriter {
 public:
  // Formats a zero-filled region of directory_bytes(p.max_rings, p.max_readers).
  // -EINVAL: counts 0 or over the maxima, capacity invalid, bytes too small.
  static int format(void* mem, uint64_t bytes, const DirParams& p) noexcept;
  // A formatted directory (validated as DirReader::attach does).
  int attach(void* mem, uint64_t bytes) noexcept;

  // Takes a free ring entry for pid (status kActive). Returns its index, or -ENOSPC.
  // *state: the entry's new state word.
  int add_ring(uint32_t pid, uint32_t uid, uint64_t start_time, uint64_t* state) noexcept;
  // Takes a free reader entry (status kJoining). Index or -ENOSPC.
  int add_reader(uint32_t pid, uint32_t uid, uint64_t start_time, uint64_t* state) noexcept;
  // kJoining -> kActive; -ESTALE if the entry no longer holds `state`. *state updated.
  int activate_reader(uint32_t idx, uint64_t* state) noexcept;
  // kActive -> kEvicted (same generation); -ESTALE if not `state`.
  int evict_reader(uint32_t idx, uint64_t state) noexcept;
  // kActive -> kDraining; -ESTALE if not `state`.
  int drain_ring(uint32_t idx, uint64_t state) noexcept;
  // -> kFree (the generation stays, the next add bumps it); -ESTALE if not `state`.
  int free_ring(uint32_t idx, uint64_t state) noexcept;
  int free_reader(uint32_t idx, uint64_t state) noexcept;
  void close() noexcept;

  const DirHeader* header() const noexcept { return hdr_; }
  EntryView ring(uint32_t idx) const noexcept;
  EntryView reader(uint32_t idx) const noexcept;

 private:
  void bump() noexcept;
  DirHeader* hdr_ = nullptr;
  RingEntry* rings_ = nullptr;
  DirReaderEntry* readers_ = nullptr;
};

// A member's read-only view. Every count is checked against the mapping at attach and
// copied; every index is checked against the copies.
class DirReader {
 public:
  // mem/bytes: the mapping (bytes from the member's own fstat). -EBADMSG: not a
  // directory of this layout, or counts the mapping cannot hold.
  int attach(const void* mem, uint64_t bytes) noexcept;
  uint64_t gen() const noexcept { return hdr_->gen.load(std::memory_order_acquire); }
  bool closed() const noexcept { return hdr_->closed.load(std::memory_order_acquire) != 0; }
  uint64_t evictions() const noexcept { return hdr_->evictions.load(std::memory_order_relaxed); }
  // false if idx is out of range or no consistent copy could be taken (the registry kept
  // changing the entry; retry after the next gen).
  bool ring(uint32_t idx, EntryView* out) const noexcept;
  bool reader(uint32_t idx, EntryView* out) const noexcept;

  uint32_t max_rings() const noexcept { return max_rings_; }
  uint32_t max_readers() const noexcept { return max_readers_; }
  uint64_t ring_capacity() const noexcept { return ring_capacity_; }
  uint32_t ring_records() const noexcept { return ring_records_; }
  uint64_t instance_id() const noexcept { return instance_id_; }
  uint32_t overflow() const noexcept { return overflow_; }
  uint32_t evict_after_ms() const noexcept { return evict_after_ms_; }
  uint32_t creator_pid() const noexcept { return creator_pid_; }

 private:
  const DirHeader* hdr_ = nullptr;
  const RingEntry* rings_ = nullptr;
  const DirReaderEntry* readers_ = nullptr;
  uint32_t max_rings_ = 0, max_readers_ = 0;
  uint64_t ring_capacity_ = 0, instance_id_ = 0;
  uint32_t ring_records_ = 0;
  uint32_t overflow_ = 0, evict_after_ms_ = 0, creator_pid_ = 0;
};

}  // namespace fwipc::shm::v2
