// The shared-memory segment of a QUEUE channel. This is an ABI between processes that may
// run different builds: fixed-width fields, offsets instead of pointers, every offset
// checked at compile time, a magic and a layout version in the header.
//
// Design (who writes what):
//   header.tail        all writers, CAS: claims ring positions (monotonic 64-bit).
//   slot.seq           the writer that claimed the slot: position + 1, stored with release
//                      after the record (the commit word). Readers acquire it. Whoever
//                      finds the claim's owner dead CASes it to (position + 1) | kAbandoned.
//   writer.inflight    that writer only: > 0 from before its tail CAS until after its
//                      commit. A claimed, uncommitted slot while no live writer is in flight
//                      belongs to a dead writer (see recover_claim in ring.cc).
//   reader.cursor      that reader only: next position it will read. Writers acquire it to
//                      find free slots (slot p is free once every active cursor > p - N).
//   reader.state       the registry (join/leave); a reader never frees itself by hand.
//   data_futex/waiters sleeping or fd-armed readers; writers wake only when waiters != 0,
//                      and only the writer that flips wake_pending 0 -> 1 (every reader
//                      clears it before its last check ahead of sleeping or arming), so a
//                      burst costs one wakeup syscall, not one per message.
//                      A reader counted as sleeping also sets its entry's `sleeping`, so
//                      whoever releases a dead reader's entry can take its count back.
//   space_futex/mask   writers blocked on a full ring, one bit per sleeper slot whose PID
//                      is in space_sleeper; readers wake only when the mask != 0. The
//                      registry clears a dead client's slot.
//   bridge_epoch       the registry, when a process of another uid opens the channel: the
//                      creator's runtime then serves it over a socket (transports/bridge).
// Only processes of the channel owner's uid (and root) ever map the segment.
// Positions are 64-bit and never wrap in practice, so a commit word is never ambiguous.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "transports/message.h"

namespace fwipc::shm {

inline constexpr uint64_t kMagic = 0x474e5243'50495746ULL;  // "FWIPCRNG" little-endian
inline constexpr uint32_t kLayoutVersion = 3;
inline constexpr size_t kCacheLine = 64;
inline constexpr uint32_t kMaxReaders = 64;
inline constexpr uint32_t kMaxWriters = 64;
inline constexpr uint32_t kMaxPayload = kMaxPayloadBytes;  // IPC_MAX_PAYLOAD; the Slot asserts pin it
inline constexpr uint32_t kSlotBytes = 576;  // 32-byte header + 512 payload, 9 cache lines
inline constexpr uint32_t kMinSlots = 16;
inline constexpr uint32_t kSpaceSleepers = 16;
inline constexpr uint32_t kMaxSlots = 1u << 19;

// Commit word of a slot that readers pass over: a loan given back, or the claim of a
// writer that died before committing. Positions never reach 2^63.
inline constexpr uint64_t kAbandoned = 1ull << 63;

enum class SlotState { kEmpty, kReady, kSkip, kCorrupt };

// What the commit word `seq` says about position pos. Anything from a later lap means
// the slot was reused under us (our cursor entry was taken or forged).
inline SlotState slot_state(uint64_t seq, uint64_t pos) noexcept {
  if (seq == pos + 1) return SlotState::kReady;
  if (seq == ((pos + 1) | kAbandoned)) return SlotState::kSkip;
  if ((seq & ~kAbandoned) > pos + 1) return SlotState::kCorrupt;
  return SlotState::kEmpty;
}

struct Slot {
  std::atomic<uint64_t> seq;  // commit word: position + 1 when published
  uint32_t type;
  uint32_t size;
  uint32_t sender;
  uint32_t receiver;
  uint32_t priority;
  uint32_t flags;  // reserved, 0
  char payload[kMaxPayload];
  char pad_[kSlotBytes - 32 - kMaxPayload];
};

// Reader state word: low bit active, the rest a generation bumped on every join/leave so a
// stale owner can tell its entry was taken from it.
inline constexpr uint32_t kReaderActive = 1u;

// The state word after a join (active) or a leave: a new generation either way.
inline constexpr uint32_t next_state(uint32_t st, bool active) noexcept {
  return ((st >> 1) + 1) << 1 | (active ? kReaderActive : 0u);
}

struct alignas(kCacheLine) ReaderEntry {
  std::atomic<uint64_t> cursor;  // written by its reader (release); read by writers (acquire)
  std::atomic<uint32_t> state;   // written by the registry
  std::atomic<uint32_t> pid;
  std::atomic<uint32_t> armed;   // 1: reader waits on its notify socket; writer CASes to 0
  std::atomic<uint32_t> sleeping;  // 1 while counted in data_waiters by a futex sleep
  uint64_t start_time;           // reader's process start time (PID reuse guard)
  char pad_[kCacheLine - 32];
};

// Writer state word: the same active bit and generation scheme as readers.
struct alignas(kCacheLine) WriterEntry {
  std::atomic<uint32_t> state;     // written by the registry
  std::atomic<uint32_t> pid;
  std::atomic<uint32_t> inflight;  // claims between tail CAS and commit (see above)
  uint32_t reserved;
  uint64_t start_time;             // PID reuse guard
  char pad_[kCacheLine - 24];
};

struct SegmentHeader {
  // Line 0: written once at creation, read-only afterwards.
  uint64_t magic;
  uint32_t version;
  uint32_t header_bytes;  // offset of slot 0
  uint64_t total_bytes;
  uint32_t slot_count;  // power of two
  uint32_t slot_bytes;
  uint32_t max_readers;
  uint32_t creator_pid;
  uint64_t instance_id;  // random per segment; names the readers' notify sockets
  char pad0_[kCacheLine - 48];
  // Line 1: claimed positions.
  alignas(kCacheLine) std::atomic<uint64_t> tail;
  char pad1_[kCacheLine - 8];
  // Line 2: count of priority != 0 messages ever published (read-mostly).
  alignas(kCacheLine) std::atomic<uint64_t> prio_seq;
  char pad2_[kCacheLine - 8];
  // Line 3: reader wakeups.
  alignas(kCacheLine) std::atomic<uint32_t> data_futex;
  std::atomic<uint32_t> data_waiters;  // sleeping + fd-armed readers
  std::atomic<uint32_t> wake_pending;  // 1: a wakeup was sent since the last reader went to sleep
  char pad3_[kCacheLine - 12];
  // Line 4: writer wakeups.
  alignas(kCacheLine) std::atomic<uint32_t> space_futex;
  std::atomic<uint32_t> space_mask;  // bit i: space_sleeper[i] is blocked
  std::atomic<uint32_t> space_pending;  // as wake_pending, for writers
  char pad4_[kCacheLine - 12];
  // Line 5: lifecycle (read-mostly).
  alignas(kCacheLine) std::atomic<uint32_t> closed;  // creator gone: sends fail with -EPIPE
  std::atomic<uint32_t> reader_count;  // scan bounds: highest entry ever used + 1
  std::atomic<uint32_t> writer_count;
  std::atomic<uint32_t> bridge_epoch;  // the registry: members of another uid joined (see Bridge)
  std::atomic<uint64_t> abandoned;  // slots skipped: loans given back, dead writers' claims
  std::atomic<uint64_t> refused;    // sends that found the ring full (-EAGAIN, -ETIMEDOUT)
  char pad5_[kCacheLine - 32];
  // Line 6: PIDs of writers blocked on a full ring (0: free slot).
  alignas(kCacheLine) std::atomic<uint32_t> space_sleeper[kSpaceSleepers];
  ReaderEntry readers[kMaxReaders];
  WriterEntry writers[kMaxWriters];
};

static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(sizeof(Slot) == kSlotBytes);
static_assert(offsetof(Slot, type) == 8 && offsetof(Slot, flags) == 28);
static_assert(sizeof(WriterEntry) == kCacheLine);
static_assert(offsetof(WriterEntry, start_time) == 16);
static_assert(offsetof(Slot, payload) == 32);
static_assert(sizeof(ReaderEntry) == kCacheLine);
static_assert(offsetof(ReaderEntry, sleeping) == 20 && offsetof(ReaderEntry, start_time) == 24);
static_assert(offsetof(SegmentHeader, instance_id) == 40);
static_assert(offsetof(SegmentHeader, tail) == 1 * kCacheLine);
static_assert(offsetof(SegmentHeader, prio_seq) == 2 * kCacheLine);
static_assert(offsetof(SegmentHeader, data_futex) == 3 * kCacheLine);
static_assert(offsetof(SegmentHeader, space_futex) == 4 * kCacheLine);
static_assert(offsetof(SegmentHeader, closed) == 5 * kCacheLine);
static_assert(offsetof(SegmentHeader, abandoned) == 5 * kCacheLine + 16);
static_assert(offsetof(SegmentHeader, refused) == 5 * kCacheLine + 24);
static_assert(offsetof(SegmentHeader, space_sleeper) == 6 * kCacheLine);
static_assert(sizeof(SegmentHeader::space_sleeper) == kCacheLine);
static_assert(offsetof(SegmentHeader, readers) == 7 * kCacheLine);
static_assert(offsetof(SegmentHeader, writers) == (7 + kMaxReaders) * kCacheLine);
static_assert(sizeof(SegmentHeader) == (7 + kMaxReaders + kMaxWriters) * kCacheLine);
static_assert(sizeof(SegmentHeader) % kCacheLine == 0);

inline constexpr uint64_t segment_bytes(uint32_t slot_count) {
  return sizeof(SegmentHeader) + uint64_t(slot_count) * kSlotBytes;
}

}  // namespace fwipc::shm
