// Waking the other side (private to //transports/shm:ring): futex words for sleepers,
// abstract-namespace datagram pings for readers that wait on their notify descriptor, and
// wake batching so a burst costs one wakeup syscall. Implemented in notify.cc.
#pragma once

#include <atomic>
#include <cstdint>

#include "base/futex.h"
#include "transports/shm/layout.h"
#include "transports/shm/segment.h"

namespace fwipc::shm {

// Wakes readers sleeping on the futex and pings fd-armed readers.
void notify_readers(const Segment& seg) noexcept;

// Takes an fd-armed reader out of the waiter count. Exactly one caller wins the 1 -> 0 step
// (the reader itself, a writer that pings it, or whoever releases its entry).
bool disarm(SegmentHeader* h, ReaderEntry& e) noexcept;

// Makes reader idx's notify socket readable. EAGAIN (a ping already queued) and
// ECONNREFUSED (reader gone) need nothing more. Sends from one process-wide unbound
// datagram socket, opened at first use and never closed (it is inherited across fork).
void ping(const SegmentHeader* h, uint32_t idx, uint32_t state) noexcept;

// Wake batching (see wake_pending in layout.h): true for the one caller that flips pending
// 0 -> 1 while someone waits; it issues the wakeup, everyone else skips the syscall.
// SYNC POINT STORE-LOAD: wake batching. The exchange is seq_cst: it must be ordered with
// the sleeper's clear-then-recheck in clear_pending() (store then load on both sides).
inline bool take_wakeup(bool someone_waits, std::atomic<uint32_t>& pending) noexcept {
  return someone_waits && pending.load(std::memory_order_relaxed) == 0 &&
         pending.exchange(1, std::memory_order_seq_cst) == 0;
}

// The sleeper's side of take_wakeup(), before its last check ahead of sleeping.
// SYNC POINT STORE-LOAD: wake batching. Either the waker's exchange sees our 0 and wakes
// (its futex increment is ordered after our read of the futex value), or our re-check
// after this fence sees what it published. Store then load: seq_cst store and fence.
inline void clear_pending(std::atomic<uint32_t>& pending) noexcept {
  pending.store(0, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

inline void wake_writers(SegmentHeader* h) noexcept {
  h->space_futex.fetch_add(1, std::memory_order_release);  // SYNC POINT WRITE: space futex
  futex_wake_all(&h->space_futex);
}

}  // namespace fwipc::shm
