// The ring's writer side: claiming positions (tail CAS under a bound computed from the
// reader cursors), filling and committing slots, batches and zero-copy loans.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "base/cpu.h"
#include "base/futex.h"
#include "base/time.h"
#include "transports/shm/membership.h"
#include "transports/shm/notify.h"
#include "transports/shm/ring.h"

namespace fwipc::shm {

uint64_t ShmRing::compute_limit(uint64_t tail) noexcept {
  uint64_t min = tail;
  // SYNC POINT READ: entry count
  const uint32_t n = std::min(hdr_->reader_count.load(std::memory_order_acquire), kMaxReaders);
  for (uint32_t i = 0; i < n; ++i) {
    const ReaderEntry& e = hdr_->readers[i];
    if ((e.state.load(std::memory_order_acquire) & kEntryActive) == 0) continue;  // SYNC POINT READ: entry state
    // SYNC POINT READ: cursor. Once we see cursor c, the reader has finished copying every
    // slot below c, so we may overwrite them.
    const uint64_t c = e.cursor.load(std::memory_order_acquire);
    // A live cursor is never more than N behind the tail (writers never lap it), and tail
    // only grows, so one behind the `tail` we read earlier is a scribbled entry. A cursor
    // past it may just be newer than our tail: ignoring it is conservative.
    if (c + seg_.slot_count() < tail) return kCorruptLimit;
    if (c < min) min = c;
  }
  const uint64_t limit = min + seg_.slot_count();
  // SYNC POINT WRITE: limit (and READ: limit, from a racing thread's CAS). Another thread
  // of this handle that claims under the bound must also see the cursor acquires behind it
  // (the slots' previous readers are done).
  uint64_t cur = limit_.load(std::memory_order_acquire);
  while (cur < limit &&
         !limit_.compare_exchange_weak(cur, limit, std::memory_order_acq_rel, std::memory_order_acquire)) {
  }
  return std::max(cur, limit);
}

int ShmRing::claim(uint64_t* out, uint32_t want, int64_t timeout_ns) noexcept {
  if (wme_ == nullptr) return -EBADF;
  // Both start when the ring is first found full, so a send with room reads no clock.
  bool found_full = false;
  Deadline deadline = Deadline::never();
  int64_t spin_until = 0;
  for (;;) {
    if (hdr_->closed.load(std::memory_order_relaxed)) return -EPIPE;
    if (bridge_epoch_moved()) return -EINTR;
    uint64_t pos = hdr_->tail.load(std::memory_order_relaxed);
    uint64_t limit = limit_.load(std::memory_order_acquire);  // SYNC POINT READ: limit
    if (pos >= limit) limit = compute_limit(pos);
    if (limit == kCorruptLimit) return -EIO;
    if (pos < limit) {
      // In flight before the claim can be seen (see recover_claim); undone by end_claim().
      wme_->inflight.fetch_add(1, std::memory_order_relaxed);
      // SYNC POINT WRITE: claim. Release orders the inflight increment before the claim.
      // The slot's reuse was ordered by the cursor acquire in compute_limit, and
      // publication is ordered by the commit word.
      const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(want, limit - pos));
      if (hdr_->tail.compare_exchange_weak(pos, pos + n, std::memory_order_release)) {
        *out = pos;
        return static_cast<int>(n);
      }
      wme_->inflight.fetch_sub(1, std::memory_order_relaxed);
      continue;
    }
    // Full: the slowest live reader holds us back. On an IPC_OVERFLOW_EVICT ring, not for
    // longer than the bound (a non-blocking send that retries counts as held back too).
    int64_t evict_due_ns = -1;
    if (evict_) {
      if (evict_stuck_readers(seg_, pos, monotonic_ns(), &evict_due_ns) > 0) continue;  // new bound
    }
    if (timeout_ns == 0) {  // do not wait
      hdr_->refused.fetch_add(1, std::memory_order_relaxed);
      return -EAGAIN;
    }
    const int64_t now = monotonic_ns();
    if (!found_full) {
      found_full = true;
      deadline = Deadline::after_ns(timeout_ns);
      spin_until = now + spin_ns();
    }
    if (deadline.expired()) {
      hdr_->refused.fetch_add(1, std::memory_order_relaxed);
      return -ETIMEDOUT;
    }
    if (now < spin_until) {
      for (int i = 0; i < 64; ++i) cpu_relax();
      continue;
    }
    int64_t slice = kLivenessSliceNs;
    if (!deadline.infinite()) slice = std::min(slice, deadline.remaining_ns());
    if (evict_due_ns > 0) slice = std::min(slice, evict_due_ns);
    if (sleep_for_space(pos, slice) == -ETIMEDOUT) reap_dead_entries(seg_);  // backstop for a registry that is down
  }
}

int ShmRing::sleep_for_space(uint64_t pos, int64_t slice_ns) noexcept {
  uint32_t slot = kSpaceSleepers;
  for (uint32_t i = 0; i < kSpaceSleepers && slot == kSpaceSleepers; ++i) {
    uint32_t zero = 0;
    // SYNC POINT READ: sleeper slot (acquires a slot freed by a release below or by release_sleeper).
    if (hdr_->space_sleeper[i].compare_exchange_strong(zero, pid_, std::memory_order_acq_rel)) slot = i;
  }
  if (slot == kSpaceSleepers) {
    // Every sleeper slot taken: wait without being woken, in short naps.
    const uint32_t v = hdr_->space_futex.load(std::memory_order_acquire);  // SYNC POINT READ: space futex
    return futex_wait(&hdr_->space_futex, v, std::min<int64_t>(slice_ns, 1'000'000));
  }
  const uint32_t v = hdr_->space_futex.load(std::memory_order_acquire);  // SYNC POINT READ: space futex
  // SYNC POINT STORE-LOAD: space sleep. We set our mask bit, then re-read the cursors; a
  // reader stores its cursor, fences, then reads the mask. Store then load on both sides
  // (Dekker), so seq_cst is required: one of us sees the other.
  hdr_->space_mask.fetch_or(1u << slot, std::memory_order_seq_cst);
  clear_pending(hdr_->space_pending);
  int rc = 0;
  if (pos >= compute_limit(pos)) rc = futex_wait(&hdr_->space_futex, v, slice_ns);
  hdr_->space_mask.fetch_and(~(1u << slot), std::memory_order_relaxed);
  hdr_->space_sleeper[slot].store(0, std::memory_order_release);  // SYNC POINT WRITE: sleeper slot
  return rc;
}

void ShmRing::fill(Slot* s, const MsgHeader& h, uint32_t sender) noexcept {
  put_header(s, h, sender);
  s->flags = 0;
}

void ShmRing::publish(uint64_t pos, Slot* s, uint32_t priority, uint64_t flag) noexcept {
  commit_slot(pos, s, priority, flag);
  end_claim();
}

void ShmRing::commit_slot(uint64_t pos, Slot* s, uint32_t priority, uint64_t flag) noexcept {
  // SYNC POINT WRITE: commit. The record written before it is visible to a reader that
  // acquires pos + 1 (read_slot).
  s->seq.store((pos + 1) | flag, std::memory_order_release);
  // SYNC POINT WRITE: prio_seq. Counted after the commit: a reader that sees the new count
  // also sees the message.
  if (priority != 0) hdr_->prio_seq.fetch_add(1, std::memory_order_release);
}

// After every slot of a claim is committed: one in-flight decrement and one wakeup check
// per claim, however many slots it covered.
void ShmRing::end_claim() noexcept {
  // SYNC POINT WRITE: inflight. After the commits: whoever sees 0 here also sees them
  // (recover_claim).
  wme_->inflight.fetch_sub(1, std::memory_order_release);
  // SYNC POINT STORE-LOAD: data sleep. We stored the commit and now read data_waiters; a
  // reader stores data_waiters and then re-checks the slot. Store then load on both sides
  // (Dekker): without a seq_cst fence both could miss each other.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (take_wakeup(hdr_->data_waiters.load(std::memory_order_relaxed) != 0, hdr_->wake_pending)) notify_readers(seg_);
}

int ShmRing::send(const MsgHeader& h, const void* payload, int64_t timeout_ns) noexcept {
  return send_as(pid_, h, payload, timeout_ns);
}

int ShmRing::send_as(uint32_t sender, const MsgHeader& h, const void* payload, int64_t timeout_ns) noexcept {
  if (h.size > kMaxPayload) return -EMSGSIZE;
  uint64_t pos;
  if (int rc = claim(&pos, 1, timeout_ns); rc < 0) return rc;
  Slot* s = seg_.slot(pos);
  fill(s, h, sender);
  std::memcpy(s->payload, payload, h.size);
  publish(pos, s, h.priority, 0);
  return static_cast<int>(h.size);
}

int ShmRing::send_batch(const MsgHeader* hdrs, const void* const* payloads, uint32_t n, int64_t timeout_ns) noexcept {
  for (uint32_t i = 0; i < n; ++i)
    if (hdrs[i].size > kMaxPayload) return -EMSGSIZE;  // nothing sent: all or nothing
  uint32_t sent = 0;
  while (sent < n) {
    uint64_t pos;
    const int got = claim(&pos, n - sent, timeout_ns);
    if (got < 0) return sent > 0 ? static_cast<int>(sent) : got;
    for (int k = 0; k < got; ++k, ++sent) {
      Slot* s = seg_.slot(pos + k);
      fill(s, hdrs[sent], pid_);
      std::memcpy(s->payload, payloads[sent], hdrs[sent].size);
      commit_slot(pos + k, s, hdrs[sent].priority, 0);
    }
    end_claim();
  }
  return static_cast<int>(sent);
}

int ShmRing::loan(Loan* out, int64_t timeout_ns) noexcept {
  uint64_t pos;
  if (int rc = claim(&pos, 1, timeout_ns); rc < 0) return rc;
  out->pos = pos;
  out->slot = seg_.slot(pos);
  return 0;
}

int ShmRing::commit(Loan* l, const MsgHeader& h) noexcept {
  if (!*l) return -EINVAL;
  if (h.size > kMaxPayload) {
    abandon(l);
    return -EMSGSIZE;
  }
  Slot* s = l->slot;
  fill(s, h, pid_);
  publish(l->pos, s, h.priority, 0);
  l->slot = nullptr;
  return static_cast<int>(h.size);
}

void ShmRing::abandon(Loan* l) noexcept {
  if (!*l) return;
  hdr_->abandoned.fetch_add(1, std::memory_order_relaxed);
  publish(l->pos, l->slot, 0, kAbandoned);
  l->slot = nullptr;
}

}  // namespace fwipc::shm
