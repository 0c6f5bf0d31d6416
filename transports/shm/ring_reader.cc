// The ring's reader side: the in-order fast path, the priority heap, consume (visiting
// slots in place), and waiting for data (spin, then futex sleep in slices behind a stalled
// claim).
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
#include "transports/shm/slot_reader.h"

namespace fwipc::shm {

// Priorities: while no message with priority != 0 has been published since we last
// looked (prio_seq unchanged) and the local heap is empty, the ring order is the delivery
// order and we read straight from the ring (the fast path). Otherwise we drain every
// committed message for us into a local heap ordered by (priority desc, position asc),
// releasing their slots, and deliver from the heap. The heap holds at most slot_count
// messages, so memory stays bounded.

void ShmRing::advance(uint64_t next) noexcept {
  cursor_ = next;
  // SYNC POINT WRITE: cursor. We are done with every slot below next.
  me_->cursor.store(next, std::memory_order_release);
  // SYNC POINT STORE-LOAD: space sleep. Cursor stored, now the mask is read; seq_cst fence
  // required (Dekker, see sleep_for_space).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (take_wakeup(hdr_->space_mask.load(std::memory_order_relaxed) != 0, hdr_->space_pending)) wake_writers(hdr_);
}

bool ShmRing::check_evicted() noexcept {
  if (!evict_ || me_ == nullptr) return false;
  if (evicted_) return true;
  // SYNC POINT READ: entry state (our own). The fence orders a slot copy made just before
  // ahead of this load: a copy that could have seen a writer reuse the slot after evicting
  // us is followed by seeing the eviction (the writer CASed the state before its claim).
  std::atomic_thread_fence(std::memory_order_acquire);
  if (me_->state.load(std::memory_order_acquire) == roles_.reader_state) return false;
  evicted_ = true;
  return true;
}

// Evicted: what we had already taken (the priority heap), then -ENOBUFS. The ring's slots
// past our cursor are the writers' again, so nothing more is read from it.
int ShmRing::evicted_receive(MsgHeader* hdr, void* buf, uint32_t cap) noexcept {
  if (!heap_.empty()) return take_from_heap(hdr, buf, cap);
  return -ENOBUFS;
}

bool ShmRing::data_ready() const noexcept {
  if (!heap_.empty()) return true;
  if (evict_ && (evicted_ || me_->state.load(std::memory_order_relaxed) != roles_.reader_state)) return true;
  if (hdr_->closed.load(std::memory_order_relaxed) || bridge_epoch_moved()) return true;
  // Skip and corrupt slots count as ready: try_receive moves past or reports them.
  // SYNC POINT READ: commit (the re-check of the data-sleep pair).
  return slot_state(seg_.slot(cursor_)->seq.load(std::memory_order_acquire), cursor_) != SlotState::kEmpty;
}

bool ShmRing::stalled_on_claim() const noexcept {
  // SYNC POINT READ: claim, then READ: commit.
  return heap_.empty() && hdr_->tail.load(std::memory_order_acquire) > cursor_ &&
         slot_state(seg_.slot(cursor_)->seq.load(std::memory_order_acquire), cursor_) == SlotState::kEmpty;
}

// A claim pending at our cursor for longer than a live writer needs to copy 512 bytes is
// worth a liveness check of the writers in flight (a few syscalls, so rate-limited).
void ShmRing::maybe_recover(int64_t now) noexcept {
  if (!stalled_on_claim()) {
    stall_pos_ = ~0ull;
    return;
  }
  if (stall_pos_ != cursor_) {
    stall_pos_ = cursor_;
    stall_since_ = now;
    return;
  }
  if (now - stall_since_ < kStallNs) return;
  stall_since_ = now;
  recover_claim(seg_, cursor_);
}

int ShmRing::drain_into_heap() noexcept {
  int got = 0;
  while (heap_.size() < seg_.slot_count()) {
    const uint64_t pos = cursor_;
    const SlotRead r = read_slot(seg_.slot(pos), pos);
    if (r.state == SlotState::kCorrupt) {
      if (check_evicted()) break;  // lapped after an eviction: not a corrupt ring
      return -EBADMSG;             // a writer lapped us: our entry was taken or forged
    }
    if (r.state == SlotState::kEmpty) break;
    if (r.state == SlotState::kSkip) {
      advance(pos + 1);
      continue;
    }
    Pending p;
    p.pos = pos;
    p.hdr = r.hdr;
    const bool mine = r.addressed_to(pid_);
    const bool bad = !r.size_ok();
    if (!r.copy_to(!bad && mine ? p.payload : nullptr)) return check_evicted() ? got : -EBADMSG;  // torn
    if (check_evicted()) break;  // the copy may be a reused slot's
    advance(pos + 1);
    if (bad) {
      ++corrupt_;
      continue;
    }
    if (!mine) continue;
    heap_.push_back(p);
    std::push_heap(heap_.begin(), heap_.end(), DeliveredLater{});
    ++got;
  }
  return got;
}

int ShmRing::take_from_heap(MsgHeader* hdr, void* buf, uint32_t cap) noexcept {
  const Pending& top = heap_.front();
  *hdr = top.hdr;
  if (top.hdr.size > cap) return -EMSGSIZE;
  std::memcpy(buf, top.payload, top.hdr.size);
  const int n = static_cast<int>(top.hdr.size);
  std::pop_heap(heap_.begin(), heap_.end(), DeliveredLater{});
  heap_.pop_back();
  return n;
}

int ShmRing::try_receive(MsgHeader* hdr, void* buf, uint32_t cap) noexcept {
  if (evict_ && check_evicted()) return evicted_receive(hdr, buf, cap);
  if (corrupt_ > 0) {
    --corrupt_;
    return -EBADMSG;
  }
  const uint64_t ps = hdr_->prio_seq.load(std::memory_order_acquire);  // SYNC POINT READ: prio_seq
  if (!heap_.empty() || ps != prio_seen_) {
    const int rc = drain_into_heap();
    if (rc < 0) return rc;
    if (evicted_) return evicted_receive(hdr, buf, cap);
    prio_seen_ = ps;
    if (!heap_.empty()) return take_from_heap(hdr, buf, cap);
    if (corrupt_ > 0) return try_receive(hdr, buf, cap);
  } else {
    for (;;) {
      const uint64_t pos = cursor_;
      const SlotRead r = read_slot(seg_.slot(pos), pos);
      if (r.state != SlotState::kReady) {
        if (r.state == SlotState::kCorrupt) return check_evicted() ? -ENOBUFS : -EBADMSG;
        if (r.state == SlotState::kEmpty) break;
        advance(pos + 1);  // kSkip
        continue;
      }
      const MsgHeader& h = r.hdr;
      const bool skip = !r.addressed_to(pid_);
      if (!skip && !r.size_ok()) {
        advance(pos + 1);
        return -EBADMSG;
      }
      if (!skip && h.size > cap) {
        *hdr = h;
        return -EMSGSIZE;  // kept: the cursor does not move
      }
      if (!r.copy_to(skip ? nullptr : buf)) return check_evicted() ? -ENOBUFS : -EBADMSG;  // reused while we copied
      if (!skip && evict_ && check_evicted()) return -ENOBUFS;  // the copy may be a reused slot's
      advance(pos + 1);
      if (skip) continue;
      *hdr = h;
      return static_cast<int>(h.size);
    }
  }
  const int rc = try_receive_closed();
  return rc == 0 ? try_receive(hdr, buf, cap) : rc;
}

// Nothing for us: -EAGAIN, or -EPIPE if the channel is closed, or 0 if a message slipped
// in (the closed flag is read after the ring: a message committed before close is never
// reported as -EPIPE).
int ShmRing::try_receive_closed() noexcept {
  if (!hdr_->closed.load(std::memory_order_acquire)) return -EAGAIN;  // SYNC POINT READ: closed
  // SYNC POINT READ: commit
  return slot_state(seg_.slot(cursor_)->seq.load(std::memory_order_acquire), cursor_) != SlotState::kEmpty ? 0 : -EPIPE;
}

int ShmRing::wait_for_data(const Deadline& deadline) noexcept {
  const int64_t budget = spin_ns();
  const int64_t spin_until = monotonic_ns() + budget;
  for (;;) {
    // With no spin budget, straight to the futex: one look, no polling.
    for (int i = 0; i < (budget > 0 ? 64 : 1); ++i) {
      if (data_ready()) return 0;
      if (budget > 0) cpu_relax();
    }
    const int64_t now = monotonic_ns();
    if (deadline.expired()) return -ETIMEDOUT;
    if (now < spin_until) continue;
    maybe_recover(now);
    // Behind a pending claim, sleep in slices: if its writer died, nobody will wake us.
    int64_t slice = stall_pos_ == cursor_ ? kStallSliceNs : -1;
    if (!deadline.infinite()) {
      const int64_t left = deadline.remaining_ns();
      slice = slice < 0 ? left : std::min(slice, left);
    }
    const uint32_t v = hdr_->data_futex.load(std::memory_order_acquire);  // SYNC POINT READ: data futex
    me_->sleeping.store(1, std::memory_order_relaxed);
    // SYNC POINT STORE-LOAD: data sleep. We count ourselves as waiting, then re-check the
    // slot (data_ready); end_claim stores the commit, then reads data_waiters. Store then
    // load on both sides (Dekker), so seq_cst stays.
    hdr_->data_waiters.fetch_add(1, std::memory_order_seq_cst);
    clear_pending(hdr_->wake_pending);
    int rc = 0;
    if (!data_ready()) rc = futex_wait(&hdr_->data_futex, v, slice);
    if (me_->sleeping.exchange(0, std::memory_order_acq_rel) == 1)
      hdr_->data_waiters.fetch_sub(1, std::memory_order_relaxed);
    if (rc == -ETIMEDOUT && deadline.expired()) return rc;
  }
}

// The waiting shared by receive() and consume(): attempt() until it finds something.
template <typename Attempt>
int ShmRing::receive_with(Attempt attempt, int64_t timeout_ns) noexcept {
  if (me_ == nullptr) return -EBADF;
  // A poll (timeout_ns == 0) returns below before any wait: it needs no deadline (nor a
  // clock read). Otherwise the bound starts at entry.
  const Deadline deadline = timeout_ns == 0 ? Deadline::never() : Deadline::after_ns(timeout_ns);
  for (;;) {
    int rc = attempt();
    if (rc != -EAGAIN) return rc;
    if (bridge_epoch_moved()) return -EINTR;
    if (notify_fd_ >= 0) {
      rearm_notify();
      rc = attempt();
      if (rc != -EAGAIN) return rc;
    }
    if (timeout_ns == 0) {
      maybe_recover(monotonic_ns());
      return -EAGAIN;
    }
    rc = wait_for_data(deadline);
    if (rc < 0) return rc;
  }
}

int ShmRing::receive(MsgHeader* hdr, void* buf, uint32_t cap, int64_t timeout_ns) noexcept {
  return receive_with([&] { return try_receive(hdr, buf, cap); }, timeout_ns);
}

int ShmRing::consume(uint32_t max, Visitor fn, void* ctx, int64_t timeout_ns) noexcept {
  if (max == 0) return -EINVAL;
  return receive_with([&] { return try_consume(max, fn, ctx); }, timeout_ns);
}

// Visits committed messages in place, then releases them with one cursor update: the
// writers cannot reuse a slot before our cursor passes it, so the payload is stable
// during the visit (short of a hostile peer, and sizes are checked before use).
int ShmRing::try_consume(uint32_t max, Visitor fn, void* ctx) noexcept {
  // SYNC POINT READ: prio_seq
  // An EVICT ring is always read through copies checked against our membership: a slot
  // visited in place could be reused under the visitor once we are evicted.
  if (evict_ || corrupt_ > 0 || !heap_.empty() || hdr_->prio_seq.load(std::memory_order_acquire) != prio_seen_) {
    // Priorities in play (or an EVICT ring): message by message through the ordered path,
    // up to max (the bridge feeds its readers this way).
    char buf[kMaxPayload];
    MsgHeader h;
    uint32_t got = 0;
    while (got < max) {
      const int rc = try_receive(&h, buf, sizeof buf);
      if (rc < 0) {
        if (got == 0) return rc;
        if (rc == -EBADMSG) ++corrupt_;  // reported by the next call, after what we visited
        break;
      }
      fn(ctx, &h, buf);
      ++got;
    }
    return static_cast<int>(got);
  }
  uint64_t pos = cursor_;
  uint32_t got = 0;
  int rc = 0;
  while (got < max) {
    const SlotRead r = read_slot(seg_.slot(pos), pos);
    if (r.state == SlotState::kEmpty) break;
    if (r.state == SlotState::kCorrupt) {
      if (got == 0) rc = -EBADMSG;
      break;
    }
    if (r.state == SlotState::kReady) {
      if (r.addressed_to(pid_)) {
        if (!r.size_ok()) {
          if (got == 0) {
            rc = -EBADMSG;
            ++pos;  // reported and passed over, as try_receive does
          }
          break;
        }
        fn(ctx, &r.hdr, r.payload());
        ++got;
      }
    }
    ++pos;
  }
  if (pos != cursor_) advance(pos);
  if (rc < 0) return rc;
  if (got > 0) return static_cast<int>(got);
  const int c = try_receive_closed();
  return c == 0 ? try_consume(max, fn, ctx) : c;
}

}  // namespace fwipc::shm
