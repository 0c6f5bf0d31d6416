// The shared-memory segment of a QUEUE channel: the data, and nothing else (creating and
// mapping it is segment.h). This is an ABI between processes that may run different
// builds: fixed-width fields, offsets instead of pointers, the offset and size of every
// field and the size of every struct asserted at the end of this file, a magic and a
// layout version in the header (checked by Segment::attach).
//
// Design (who writes what):
//   header line 0      the creator, once, before it stores magic (after a release fence);
//                      read-only afterwards. instance_id names the readers' notify sockets.
//   header.tail        all writers, CAS: claims ring positions (monotonic 64-bit).
//   slot record        the writer that claimed the slot, between its claim and its commit.
//   slot.seq           the claimer: position + 1, stored with release after the record (the
//                      commit word), or (position + 1) | kAbandoned for a loan given back.
//                      Readers acquire it. Whoever finds the claim's owner dead CASes it to
//                      (position + 1) | kAbandoned (recovery, in membership.cc).
//   header.prio_seq    every writer, after committing a message with priority != 0
//                      (release): a reader whose last seen value moved leaves its in-order
//                      fast path for the priority heap.
//   writer.inflight    that writer only: > 0 from before its tail CAS until after its
//                      commit. A claimed, uncommitted slot while no live writer is in flight
//                      belongs to a dead writer (see recover_claim in membership.cc).
//   reader.cursor      that reader only: next position it will read. Writers acquire it to
//                      find free slots (slot p is free once every active cursor > p - N).
//                      The joiner sets the first value.
//   entry.state        reader and writer entries: changed only by CAS from the membership
//   (pid, start_time)  word seen (join: the joiner first fills pid and start_time). The
//                      registry joins and releases; a client releases its own entries only
//                      when the registry that knew them is gone (runtime/core.cc close), and
//                      a writer blocked on a full ring frees dead processes' entries when no
//                      registry does (reap_dead_entries). A reader never frees itself else.
//   reader_count,      whoever joins an entry raises it to the entry's index + 1; never
//   writer_count       lowered (scan bounds for everyone who walks the entries).
//   data_futex/waiters sleeping or fd-armed readers; writers wake only when waiters != 0,
//                      and only the writer that flips wake_pending 0 -> 1 (every reader
//                      clears it before its last check ahead of sleeping or arming), so a
//                      burst costs one wakeup syscall, not one per message.
//                      A reader counted as sleeping also sets its entry's `sleeping` (and
//                      `armed` while it waits on its notify socket), so whoever releases a
//                      dead reader's entry can take its count back; exactly one party wins
//                      each 1 -> 0 step.
//   space_futex/mask   writers blocked on a full ring, one bit per sleeper slot whose PID
//   space_sleeper[]    is in space_sleeper (the writer CASes 0 -> its PID, clears it on
//   space_pending      waking); readers wake only when the mask != 0, batched by
//                      space_pending as data wakeups are by wake_pending. The registry
//                      clears a dead client's slot (release_sleeper).
//   closed             0 -> 1 once, by whoever closes for the creator (the registry, or the
//                      creator's runtime when the registry is gone); never cleared.
//   bridge_epoch       the registry, when a process of another uid opens the channel: the
//                      creator's runtime then serves it over a socket (transports/bridge).
//   abandoned          statistics (relaxed increments): slots passed over (a loan given
//   refused            back, a dead writer's claim), and sends that found the ring full.
//   evictions          (relaxed increments) readers evicted under IPC_OVERFLOW_EVICT.
//   overflow,          header line 0 (the creator, once): IPC_OVERFLOW_EVICT and its bound.
//   evict_after_ms
//   reader.lag_stamp   any writer that finds the ring full because of this reader (CAS):
//                      (low 32 bits of the cursor it saw << 32) | (CLOCK_MONOTONIC ms, low
//                      32 bits) when first seen holding the ring full at that cursor; 0:
//                      never. A stamp at the reader's current cursor older than
//                      evict_after_ms means the reader has held every writer back that
//                      long without taking a message: a writer then CASes its state word
//                      from active to evicted (same generation, kEntryEvicted), which no
//                      writer waits for and no joiner takes, until the registry (close,
//                      death) or a reaper frees it. The reader notices the changed word.
// Only processes of the channel owner's uid (and root) ever map the segment.
// Positions are 64-bit and never wrap in practice, so a commit word is never ambiguous.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ipc.h"
#include "transports/message.h"

namespace fwipc::shm {

inline constexpr uint64_t kMagic = 0x474e5243'50495746ULL;  // "FWIPCRNG" little-endian
inline constexpr uint32_t kLayoutVersion = 4;
inline constexpr size_t kCacheLine = 64;
inline constexpr uint32_t kMaxReaders = 64;
inline constexpr uint32_t kMaxWriters = 64;
inline constexpr uint32_t kMaxPayload = kMaxPayloadBytes;  // IPC_MAX_PAYLOAD; the Slot asserts pin it
inline constexpr uint32_t kSlotBytes = IPC_SLOT_BYTES;     // 32-byte header + 512 payload, 9 cache lines
inline constexpr uint32_t kMinSlots = 16;
inline constexpr uint32_t kDefaultSlots = 256;  // buffer_size 0 (IPC_BUFFER_DEFAULT)
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

// Entry state word (reader and writer entries): bit 0 active, bit 1 evicted (readers of
// an IPC_OVERFLOW_EVICT ring: dropped by a writer, not yet freed), the rest a generation
// bumped on every join/leave so a stale owner can tell its entry was taken from it.
inline constexpr uint32_t kEntryActive = 1u;
inline constexpr uint32_t kEntryEvicted = 2u;
inline constexpr uint32_t kEntryInUse = kEntryActive | kEntryEvicted;  // not free for a joiner

// The state word after a join (active) or a leave: a new generation either way.
inline constexpr uint32_t next_state(uint32_t st, bool active) noexcept {
  return ((st >> 2) + 1) << 2 | (active ? kEntryActive : 0u);
}
// The word of an active membership `st` once evicted: same generation, so the registry
// that holds `st` still recognises (and frees) it.
inline constexpr uint32_t evicted_state(uint32_t st) noexcept { return (st & ~kEntryInUse) | kEntryEvicted; }

struct alignas(kCacheLine) ReaderEntry {
  std::atomic<uint64_t> cursor;  // written by its reader (release); read by writers (acquire)
  std::atomic<uint32_t> state;   // written by the registry
  std::atomic<uint32_t> pid;
  std::atomic<uint32_t> armed;      // 1: reader waits on its notify socket; writer CASes to 0
  std::atomic<uint32_t> sleeping;   // 1 while counted in data_waiters by a futex sleep
  uint64_t start_time;              // reader's process start time (PID reuse guard)
  std::atomic<uint64_t> lag_stamp;  // IPC_OVERFLOW_EVICT: (cursor seen, ms) by writers held back
  char pad_[kCacheLine - 40];
};

// Writer entry: the same state word (kEntryActive, generation) as readers.
struct alignas(kCacheLine) WriterEntry {
  std::atomic<uint32_t> state;  // written by the registry
  std::atomic<uint32_t> pid;
  std::atomic<uint32_t> inflight;  // claims between tail CAS and commit (see above)
  uint32_t reserved;
  uint64_t start_time;  // PID reuse guard
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
  uint64_t instance_id;     // random per segment; names the readers' notify sockets
  uint32_t overflow;        // IPC_OVERFLOW_*
  uint32_t evict_after_ms;  // IPC_OVERFLOW_EVICT's bound (> 0 when overflow is EVICT)
  char pad0_[kCacheLine - 56];
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
  std::atomic<uint32_t> space_mask;     // bit i: space_sleeper[i] is blocked
  std::atomic<uint32_t> space_pending;  // as wake_pending, for writers
  char pad4_[kCacheLine - 12];
  // Line 5: lifecycle (read-mostly).
  alignas(kCacheLine) std::atomic<uint32_t> closed;  // creator gone: sends fail with -EPIPE
  std::atomic<uint32_t> reader_count;                // scan bounds: highest entry ever used + 1
  std::atomic<uint32_t> writer_count;
  std::atomic<uint32_t> bridge_epoch;  // the registry: members of another uid joined (see Bridge)
  std::atomic<uint64_t> abandoned;     // slots skipped: loans given back, dead writers' claims
  std::atomic<uint64_t> refused;       // sends that found the ring full (-EAGAIN, -ETIMEDOUT)
  std::atomic<uint64_t> evictions;     // readers evicted (IPC_OVERFLOW_EVICT)
  char pad5_[kCacheLine - 40];
  // Line 6: PIDs of writers blocked on a full ring (0: free slot).
  alignas(kCacheLine) std::atomic<uint32_t> space_sleeper[kSpaceSleepers];
  ReaderEntry readers[kMaxReaders];
  WriterEntry writers[kMaxWriters];
};

// ---------------------------------------------------------------- the ABI, pinned
// One line per field (Aeron style): a failure names the field. Changing any of these is a
// new layout: bump kLayoutVersion.
#define FWIPC_ASSERT_FIELD(T, f, off, size)                                                          \
  static_assert(offsetof(T, f) == (off),                                                             \
                "offsetof(" #T ", " #f ") != " #off ": shared layout changed, bump kLayoutVersion"); \
  static_assert(sizeof(T::f) == (size),                                                              \
                "sizeof(" #T "::" #f ") != " #size ": shared layout changed, bump kLayoutVersion")
#define FWIPC_ASSERT_SIZE(T, size) \
  static_assert(sizeof(T) == (size), "sizeof(" #T ") != " #size ": shared layout changed, bump kLayoutVersion")

static_assert(std::atomic<uint64_t>::is_always_lock_free);  // atomics in shared memory
static_assert(std::atomic<uint32_t>::is_always_lock_free);  // must not hide a lock
static_assert(kMaxPayload == 512 && kSlotBytes == 576 && kMaxReaders == 64 && kMaxWriters == 64 &&
              kSpaceSleepers == 16 && kCacheLine == 64);

FWIPC_ASSERT_SIZE(Slot, 576);
FWIPC_ASSERT_FIELD(Slot, seq, 0, 8);
FWIPC_ASSERT_FIELD(Slot, type, 8, 4);
FWIPC_ASSERT_FIELD(Slot, size, 12, 4);
FWIPC_ASSERT_FIELD(Slot, sender, 16, 4);
FWIPC_ASSERT_FIELD(Slot, receiver, 20, 4);
FWIPC_ASSERT_FIELD(Slot, priority, 24, 4);
FWIPC_ASSERT_FIELD(Slot, flags, 28, 4);
FWIPC_ASSERT_FIELD(Slot, payload, 32, 512);
FWIPC_ASSERT_FIELD(Slot, pad_, 544, 32);

FWIPC_ASSERT_SIZE(ReaderEntry, 64);
FWIPC_ASSERT_FIELD(ReaderEntry, cursor, 0, 8);
FWIPC_ASSERT_FIELD(ReaderEntry, state, 8, 4);
FWIPC_ASSERT_FIELD(ReaderEntry, pid, 12, 4);
FWIPC_ASSERT_FIELD(ReaderEntry, armed, 16, 4);
FWIPC_ASSERT_FIELD(ReaderEntry, sleeping, 20, 4);
FWIPC_ASSERT_FIELD(ReaderEntry, start_time, 24, 8);
FWIPC_ASSERT_FIELD(ReaderEntry, lag_stamp, 32, 8);
FWIPC_ASSERT_FIELD(ReaderEntry, pad_, 40, 24);

FWIPC_ASSERT_SIZE(WriterEntry, 64);
FWIPC_ASSERT_FIELD(WriterEntry, state, 0, 4);
FWIPC_ASSERT_FIELD(WriterEntry, pid, 4, 4);
FWIPC_ASSERT_FIELD(WriterEntry, inflight, 8, 4);
FWIPC_ASSERT_FIELD(WriterEntry, reserved, 12, 4);
FWIPC_ASSERT_FIELD(WriterEntry, start_time, 16, 8);
FWIPC_ASSERT_FIELD(WriterEntry, pad_, 24, 40);

FWIPC_ASSERT_SIZE(SegmentHeader, 8640);  // 7 header lines + 64 reader + 64 writer entries
// Line 0: written once at creation.
FWIPC_ASSERT_FIELD(SegmentHeader, magic, 0, 8);
FWIPC_ASSERT_FIELD(SegmentHeader, version, 8, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, header_bytes, 12, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, total_bytes, 16, 8);
FWIPC_ASSERT_FIELD(SegmentHeader, slot_count, 24, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, slot_bytes, 28, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, max_readers, 32, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, creator_pid, 36, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, instance_id, 40, 8);
FWIPC_ASSERT_FIELD(SegmentHeader, overflow, 48, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, evict_after_ms, 52, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, pad0_, 56, 8);
// Line 1: claims.
FWIPC_ASSERT_FIELD(SegmentHeader, tail, 64, 8);
FWIPC_ASSERT_FIELD(SegmentHeader, pad1_, 72, 56);
// Line 2: priority count.
FWIPC_ASSERT_FIELD(SegmentHeader, prio_seq, 128, 8);
FWIPC_ASSERT_FIELD(SegmentHeader, pad2_, 136, 56);
// Line 3: reader wakeups.
FWIPC_ASSERT_FIELD(SegmentHeader, data_futex, 192, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, data_waiters, 196, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, wake_pending, 200, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, pad3_, 204, 52);
// Line 4: writer wakeups.
FWIPC_ASSERT_FIELD(SegmentHeader, space_futex, 256, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, space_mask, 260, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, space_pending, 264, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, pad4_, 268, 52);
// Line 5: lifecycle and statistics.
FWIPC_ASSERT_FIELD(SegmentHeader, closed, 320, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, reader_count, 324, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, writer_count, 328, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, bridge_epoch, 332, 4);
FWIPC_ASSERT_FIELD(SegmentHeader, abandoned, 336, 8);
FWIPC_ASSERT_FIELD(SegmentHeader, refused, 344, 8);
FWIPC_ASSERT_FIELD(SegmentHeader, evictions, 352, 8);
FWIPC_ASSERT_FIELD(SegmentHeader, pad5_, 360, 24);
// Line 6 and the entry tables.
FWIPC_ASSERT_FIELD(SegmentHeader, space_sleeper, 384, 64);
FWIPC_ASSERT_FIELD(SegmentHeader, readers, 448, 4096);
FWIPC_ASSERT_FIELD(SegmentHeader, writers, 4544, 4096);

#undef FWIPC_ASSERT_FIELD
#undef FWIPC_ASSERT_SIZE

inline constexpr uint64_t segment_bytes(uint32_t slot_count) {
  return sizeof(SegmentHeader) + uint64_t(slot_count) * kSlotBytes;
}

}  // namespace fwipc::shm
