// The memfd segment of a QUEUE channel: creating, sealing, validating and mapping it. What
// lives inside is layout.h; who may change it is membership.h (registry) and ring.h (clients).
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "fwipc/types.hpp"
#include "transports/shm/layout.h"

namespace fwipc::shm {

// A mapped segment. Owns the mapping and the descriptor.
class Segment {
 public:
  Segment() = default;
  Segment(Segment&& o) noexcept;
  Segment& operator=(Segment&& o) noexcept;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  // Rounds capacity_bytes to a power-of-two slot count within [kMinSlots, kMaxSlots].
  static Result<uint32_t> slots_for_capacity(uint32_t capacity_bytes) noexcept;
  // Creates, touches (posix_fallocate: no space is an error now, not a SIGBUS later) and
  // seals a new segment. evict_after_ms > 0: IPC_OVERFLOW_EVICT with that bound (a reader
  // that holds every writer back that long without taking a message is evicted).
  static Result<Segment> create(const char* debug_name, uint32_t slot_count, pid_t creator,
                                uint32_t evict_after_ms = 0) noexcept;
  // Maps fd (duplicated) after validating magic, version, sizes and seals. -EBADMSG if not
  // a segment of this layout.
  static Result<Segment> attach(int fd) noexcept;

  SegmentHeader* header() const noexcept { return hdr_; }
  int fd() const noexcept { return fd_; }
  uint32_t slot_count() const noexcept { return slot_count_; }
  Slot* slot(uint64_t pos) const noexcept { return slots_ + (pos & (slot_count_ - 1)); }

 private:
  SegmentHeader* hdr_ = nullptr;
  Slot* slots_ = nullptr;
  uint64_t bytes_ = 0;
  uint32_t slot_count_ = 0;  // local copy: never re-read from shared memory
  int fd_ = -1;
};

}  // namespace fwipc::shm
