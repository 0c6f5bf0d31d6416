// Membership and recovery: the registry's side of the segment (iceoryx's "roudi" side).
// See membership.h.
#include "transports/shm/membership.h"

#include <algorithm>
#include <atomic>
#include <cerrno>

#include "base/futex.h"
#include "base/proc.h"
#include "transports/shm/notify.h"

namespace fwipc::shm {

// ---------------------------------------------------------------- joining and leaving

namespace {
// Takes the first free entry for pid: prepare(e) sets the entry's own fields before the
// state CAS publishes it; the scan bound `count` covers it afterwards.
template <typename Entry, size_t N, typename Prepare>
Result<uint32_t> join_entry(Entry (&entries)[N], std::atomic<uint32_t>& count, pid_t pid, uint64_t start_time,
                            uint32_t* state_out, Prepare prepare) noexcept {
  for (uint32_t i = 0; i < N; ++i) {
    Entry& e = entries[i];
    uint32_t st = e.state.load(std::memory_order_acquire);  // SYNC POINT READ: entry state
    if (st & kEntryInUse) continue;                         // active, or evicted and not yet freed
    e.pid.store(static_cast<uint32_t>(pid), std::memory_order_relaxed);
    e.start_time = start_time;
    prepare(e);
    const uint32_t next = next_state(st, true);
    // SYNC POINT WRITE: entry state (publishes pid, start_time and prepare()'s fields).
    // seq_cst, not just release: it is the store half of the join's store-then-load (see
    // SYNC POINT STORE-LOAD: join, in join_reader).
    if (!e.state.compare_exchange_strong(st, next, std::memory_order_seq_cst)) continue;
    // SYNC POINT WRITE: entry count. seq_cst for the same store-then-load as the state CAS.
    if (count.load(std::memory_order_relaxed) < i + 1) count.store(i + 1, std::memory_order_seq_cst);
    *state_out = next;
    return i;
  }
  return Result<uint32_t>::error(-EUSERS);
}

// Frees entries[idx] if it still holds membership `state`, active or evicted.
template <typename Entry, size_t N>
bool leave_entry(Entry (&entries)[N], uint32_t idx, uint32_t state) noexcept {
  if (idx >= N) return false;
  // SYNC POINT WRITE: entry state. acq_rel is enough: a writer blocked on this reader is
  // woken through the space futex afterwards (release_reader), whose bump orders this CAS
  // before its re-scan; nobody pairs a store-then-load against a leave.
  for (const uint32_t from : {state, evicted_state(state)}) {
    uint32_t expect = from;
    if (entries[idx].state.compare_exchange_strong(expect, next_state(state, false), std::memory_order_acq_rel))
      return true;
  }
  return false;
}
}  // namespace

Result<uint32_t> join_reader(const Segment& seg, pid_t pid, uint64_t start_time, uint32_t* state_out) noexcept {
  SegmentHeader* h = seg.header();
  auto idx = join_entry(h->readers, h->reader_count, pid, start_time, state_out, [h](ReaderEntry& e) {
    // Provisional cursor first: any writer that sees the entry active sees a cursor no
    // greater than the final one, so its bound is conservative. Relaxed load: t1 below is
    // read later by this thread, so coherence alone makes it >= this value.
    e.cursor.store(h->tail.load(std::memory_order_relaxed), std::memory_order_relaxed);
    e.armed.store(0, std::memory_order_relaxed);
    e.sleeping.store(0, std::memory_order_relaxed);
    e.lag_stamp.store(0, std::memory_order_relaxed);
  });
  if (!idx) return idx;
  // SYNC POINT STORE-LOAD: join. The state CAS (store) is seq_cst, and so is this tail
  // load, so both stay seq_cst. A writer that computed its bound without seeing us read
  // the cursors before our CAS, so its bound is <= (min cursor then) + N <= (tail now) + N:
  // it cannot lap position t1.
  const uint64_t t1 = h->tail.load(std::memory_order_seq_cst);
  // SYNC POINT WRITE: cursor. Release is all the writers' acquire needs; left seq_cst (once
  // per join, registry side) as the last step of the sequence above, not weakened without
  // a proof.
  h->readers[*idx].cursor.store(t1, std::memory_order_seq_cst);
  return idx;
}

bool release_reader(const Segment& seg, uint32_t idx, uint32_t state) noexcept {
  SegmentHeader* h = seg.header();
  if (!leave_entry(h->readers, idx, state)) return false;
  // Take back what a reader that died asleep or armed still counts as waiting, or every
  // later send would pay for a wakeup syscall.
  ReaderEntry& e = h->readers[idx];
  disarm(h, e);
  if (e.sleeping.exchange(0, std::memory_order_acq_rel) == 1) h->data_waiters.fetch_sub(1, std::memory_order_relaxed);
  wake_writers(h);
  return true;
}

Result<uint32_t> join_writer(const Segment& seg, pid_t pid, uint64_t start_time, uint32_t* state_out) noexcept {
  SegmentHeader* h = seg.header();
  return join_entry(h->writers, h->writer_count, pid, start_time, state_out,
                    [](WriterEntry& e) { e.inflight.store(0, std::memory_order_relaxed); });
}

bool release_writer(const Segment& seg, uint32_t idx, uint32_t state) noexcept {
  return leave_entry(seg.header()->writers, idx, state);
}

void close_channel(const Segment& seg) noexcept {
  SegmentHeader* h = seg.header();
  // SYNC POINT WRITE: closed. Release, not seq_cst: sleepers are woken by the futex bumps
  // below (a futex wait on the old value returns at once), and a reader that sees closed
  // must see what the closer saw committed (try_receive_closed).
  h->closed.store(1, std::memory_order_release);
  notify_readers(seg);
  wake_writers(h);
}

void poke_bridge(const Segment& seg) noexcept {
  // SYNC POINT WRITE: bridge epoch. Release, not seq_cst: as for closed, the futex bumps
  // below do the waking.
  seg.header()->bridge_epoch.fetch_add(1, std::memory_order_release);
  notify_readers(seg);
  wake_writers(seg.header());
}

// ---------------------------------------------------------------- eviction
//
// IPC_OVERFLOW_EVICT. Only a writer that finds the ring full looks: each reader whose
// cursor c holds it back (c + N <= tail) gets a lag stamp (c, now) the first time it is
// seen there; a reader still at the stamped cursor evict_after_ms later has held every
// writer back that long without taking a single message (the ring has been full since:
// tail never goes back), and is evicted. A reader that takes anything moves its cursor and
// so voids its stamp: a slow reader holds writers to its pace, a stuck (or stopped) one
// for at most the bound. Time is CLOCK_MONOTONIC, one clock for every process.

namespace {
constexpr uint64_t lag_stamp(uint64_t cursor, int64_t now_ns) noexcept {
  const uint32_t ms = static_cast<uint32_t>(now_ns / 1'000'000);
  return (uint64_t(uint32_t(cursor)) << 32) | (ms == 0 ? 1u : ms);  // never 0 (= no stamp)
}
}  // namespace

bool evict_reader(const Segment& seg, uint32_t idx, uint32_t state) noexcept {
  SegmentHeader* h = seg.header();
  if (idx >= kMaxReaders || (state & kEntryActive) == 0) return false;
  ReaderEntry& e = h->readers[idx];
  uint32_t expect = state;
  // SYNC POINT WRITE: entry state (evicted). seq_cst as the join's CAS: writers that see
  // it evicted stop counting its cursor (compute_limit acquires the state word).
  if (!e.state.compare_exchange_strong(expect, evicted_state(state), std::memory_order_seq_cst)) return false;
  h->evictions.fetch_add(1, std::memory_order_relaxed);
  // Wake it, whichever way it waits: its notify socket is named by the active word.
  if (disarm(h, e)) ping(h, idx, state);
  if (e.sleeping.exchange(0, std::memory_order_acq_rel) == 1) h->data_waiters.fetch_sub(1, std::memory_order_relaxed);
  h->data_futex.fetch_add(1, std::memory_order_release);  // SYNC POINT WRITE: data futex
  futex_wake_all(&h->data_futex);
  return true;
}

int evict_stuck_readers(const Segment& seg, uint64_t tail, int64_t now_ns, int64_t* due_ns) noexcept {
  SegmentHeader* h = seg.header();
  *due_ns = -1;
  const uint32_t bound = h->evict_after_ms;
  if (h->overflow != IPC_OVERFLOW_EVICT || bound == 0) return 0;
  const uint32_t now_ms = static_cast<uint32_t>(now_ns / 1'000'000);
  int evicted = 0;
  const uint32_t n = std::min(h->reader_count.load(std::memory_order_acquire), kMaxReaders);
  for (uint32_t i = 0; i < n; ++i) {
    ReaderEntry& e = h->readers[i];
    const uint32_t st = e.state.load(std::memory_order_acquire);  // SYNC POINT READ: entry state
    if ((st & kEntryActive) == 0) continue;
    const uint64_t c = e.cursor.load(std::memory_order_acquire);  // SYNC POINT READ: cursor
    if (c + seg.slot_count() > tail) continue;                    // not what holds us back
    uint64_t stamp = e.lag_stamp.load(std::memory_order_relaxed);
    if (stamp == 0 || uint32_t(stamp >> 32) != uint32_t(c)) {
      // First seen holding the ring full at c. Relaxed: only writers read it, and a lost
      // race leaves a stamp of about the same time.
      e.lag_stamp.compare_exchange_strong(stamp, lag_stamp(c, now_ns), std::memory_order_relaxed);
      const int64_t d = int64_t(bound) * 1'000'000 + 1'000'000;
      if (*due_ns < 0 || d < *due_ns) *due_ns = d;
      continue;
    }
    const uint32_t held_ms = now_ms - uint32_t(stamp);  // modulo 2^32: bound < 2^31
    if (held_ms > bound) {
      if (evict_reader(seg, i, st)) ++evicted;
      continue;
    }
    const int64_t d = int64_t(bound - held_ms) * 1'000'000 + 1'000'000;
    if (*due_ns < 0 || d < *due_ns) *due_ns = d;
  }
  if (evicted > 0) wake_writers(h);  // the other blocked writers' bound moved too
  return evicted;
}

// ---------------------------------------------------------------- recovery
//
// A writer that dies between its claim (tail CAS) and its commit leaves a slot whose commit
// word never reaches pos + 1, and every reader stops there. Detection is by liveness, never
// by elapsed time: each writer entry counts its claims in flight (inflight > 0 from before
// its tail CAS until after its commit), so a claimed, uncommitted position while no live
// writer is in flight (pid and start time checked, so a reused PID does not count) can
// only be a dead writer's; while any live writer is in flight we wait, since it may be the
// claimer. recover_claim() unblocks it by CASing the commit word from the value it saw to
// (pos + 1) | kAbandoned (a commit that raced in is never overwritten), counts it in
// `abandoned` and wakes the readers, which pass over it as a skip record. It is called by
// the registry when a writer's connection drops (recover_stalled), by a reader stalled at
// its cursor for kStallNs (ShmRing::maybe_recover), and by a writer blocked on a full ring
// once per liveness slice in case the registry is down (reap_dead_entries, which also
// frees dead members' entries). release_sleeper() clears a writer that died asleep.

bool recover_claim(const Segment& seg, uint64_t pos) noexcept {
  SegmentHeader* h = seg.header();
  Slot* s = seg.slot(pos);
  uint64_t seq = s->seq.load(std::memory_order_acquire);  // SYNC POINT READ: commit
  if (slot_state(seq, pos) != SlotState::kEmpty) return true;
  // SYNC POINT READ: claim. The tail CAS is a release and every later RMW of tail continues
  // its release sequence, so seeing tail > pos makes the claimer's inflight increment
  // (sequenced before its CAS) visible below.
  if (h->tail.load(std::memory_order_acquire) <= pos) return false;  // not claimed yet
  // SYNC POINT READ: entry count
  const uint32_t n = std::min(h->writer_count.load(std::memory_order_acquire), kMaxWriters);
  for (uint32_t i = 0; i < n; ++i) {
    const WriterEntry& e = h->writers[i];
    if ((e.state.load(std::memory_order_acquire) & kEntryActive) == 0) continue;  // SYNC POINT READ: entry state
    // SYNC POINT READ: inflight. inflight == 0 means any commit of this writer is visible
    // to the CAS of seq below.
    if (e.inflight.load(std::memory_order_acquire) == 0) continue;
    if (process_alive(static_cast<pid_t>(e.pid.load(std::memory_order_relaxed)), e.start_time)) return false;
  }
  // No live writer is between claim and commit, so nobody will ever commit pos: its claimer
  // died (or its entry was already released). Only a CAS from the value we saw, so a commit
  // that raced in is never overwritten.
  if (s->seq.compare_exchange_strong(seq, (pos + 1) | kAbandoned, std::memory_order_acq_rel)) {
    h->abandoned.fetch_add(1, std::memory_order_relaxed);
    notify_readers(seg);  // sleeping and fd-armed readers behind the claim
  }
  return true;
}

int recover_stalled(const Segment& seg) noexcept {
  SegmentHeader* h = seg.header();
  int recovered = 0;
  const uint32_t n = std::min(h->reader_count.load(std::memory_order_acquire), kMaxReaders);
  for (uint32_t i = 0; i < n; ++i) {
    const ReaderEntry& e = h->readers[i];
    if ((e.state.load(std::memory_order_acquire) & kEntryActive) == 0) continue;  // SYNC POINT READ: entry state
    const uint64_t c = e.cursor.load(std::memory_order_acquire);                  // SYNC POINT READ: cursor
    const uint64_t before = seg.slot(c)->seq.load(std::memory_order_acquire);     // SYNC POINT READ: commit
    if (slot_state(before, c) == SlotState::kEmpty && recover_claim(seg, c) &&
        slot_state(seg.slot(c)->seq.load(std::memory_order_acquire), c) == SlotState::kSkip)
      ++recovered;
  }
  return recovered;
}

void release_sleeper(const Segment& seg, pid_t pid) noexcept {
  SegmentHeader* h = seg.header();
  for (uint32_t i = 0; i < kSpaceSleepers; ++i) {
    uint32_t p = static_cast<uint32_t>(pid);
    if (p == 0 || h->space_sleeper[i].load(std::memory_order_relaxed) != p) continue;
    // Relaxed: the release CAS that frees the slot orders this clear before any next
    // sleeper's bit (it acquires the slot first), and readers only ever over-wake.
    h->space_mask.fetch_and(~(1u << i), std::memory_order_relaxed);
    h->space_sleeper[i].compare_exchange_strong(p, 0, std::memory_order_acq_rel);  // SYNC POINT WRITE: sleeper slot
  }
}

namespace {
// Frees the entries (readers or writers) whose process is gone.
template <typename Entry, typename Release>
void reap(const Segment& seg, Entry* entries, uint32_t count, Release release) {
  for (uint32_t i = 0; i < count; ++i) {
    Entry& e = entries[i];
    const uint32_t st = e.state.load(std::memory_order_acquire);  // SYNC POINT READ: entry state
    if ((st & kEntryInUse) == 0) continue;
    if (!process_alive(static_cast<pid_t>(e.pid.load(std::memory_order_relaxed)), e.start_time)) release(seg, i, st);
  }
}
}  // namespace

void reap_dead_entries(const Segment& seg) noexcept {
  // Dead writers' claims first: they may be what holds the slowest reader back.
  recover_stalled(seg);
  SegmentHeader* h = seg.header();
  reap(seg, h->readers, std::min(h->reader_count.load(std::memory_order_acquire), kMaxReaders), release_reader);
  reap(seg, h->writers, std::min(h->writer_count.load(std::memory_order_acquire), kMaxWriters), release_writer);
}

}  // namespace fwipc::shm
