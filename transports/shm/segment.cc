// The memfd segment: create (size, touch, seal, initialise the header) and attach
// (validate before trusting anything in it). See segment.h.
#include "transports/shm/segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <random>
#include <utility>

namespace fwipc::shm {

namespace {
uint32_t round_pow2(uint64_t v) {
  uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}
}  // namespace

Segment::Segment(Segment&& o) noexcept { *this = std::move(o); }

Segment& Segment::operator=(Segment&& o) noexcept {
  if (this != &o) {
    this->~Segment();
    hdr_ = std::exchange(o.hdr_, nullptr);
    slots_ = std::exchange(o.slots_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    slot_count_ = std::exchange(o.slot_count_, 0);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

Segment::~Segment() {
  if (hdr_ != nullptr) ::munmap(hdr_, bytes_);
  if (fd_ >= 0) ::close(fd_);
  hdr_ = nullptr;
  fd_ = -1;
}

Result<uint32_t> Segment::slots_for_capacity(uint32_t capacity_bytes) noexcept {
  if (capacity_bytes == 0) capacity_bytes = IPC_BUFFER_DEFAULT;
  if (capacity_bytes > IPC_BUFFER_MAX) return Result<uint32_t>::error(-EINVAL);
  const uint64_t want = (uint64_t(capacity_bytes) + kSlotBytes - 1) / kSlotBytes;
  return std::clamp(round_pow2(want), kMinSlots, kMaxSlots);
}

Result<Segment> Segment::create(const char* debug_name, uint32_t slot_count, pid_t creator,
                                uint32_t evict_after_ms) noexcept {
  using R = Result<Segment>;
  if (slot_count < kMinSlots || slot_count > kMaxSlots || (slot_count & (slot_count - 1)) != 0)
    return R::error(-EINVAL);
  const uint64_t bytes = segment_bytes(slot_count);
  char name[96];
  std::snprintf(name, sizeof name, "fwipc:%s", debug_name);
  const int fd = ::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return R::error(-errno);
  int rc = ::ftruncate(fd, static_cast<off_t>(bytes));
  if (rc == 0)
    rc = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  else
    rc = errno;
  // A sealed size means no peer can shrink the segment under us (no SIGBUS on access).
  if (rc == 0 && ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) rc = errno;
  void* p = rc == 0 ? ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
  if (p == MAP_FAILED) {
    if (rc == 0) rc = errno;
    ::close(fd);
    return R::error(-rc);
  }
  auto* h = static_cast<SegmentHeader*>(p);  // fallocate zero-filled it
  h->version = kLayoutVersion;
  h->header_bytes = sizeof(SegmentHeader);
  h->total_bytes = bytes;
  h->slot_count = slot_count;
  h->slot_bytes = kSlotBytes;
  h->max_readers = kMaxReaders;
  h->creator_pid = static_cast<uint32_t>(creator);
  h->overflow = evict_after_ms > 0 ? IPC_OVERFLOW_EVICT : IPC_OVERFLOW_BLOCK;
  h->evict_after_ms = evict_after_ms;
  std::random_device rd;
  h->instance_id = (uint64_t(rd()) << 32) | rd();
  // SYNC POINT WRITE: segment header. Publishes the initialised header to anyone who
  // later validates the magic.
  std::atomic_thread_fence(std::memory_order_release);
  h->magic = kMagic;
  Segment s;
  s.hdr_ = h;
  s.slots_ = reinterpret_cast<Slot*>(static_cast<char*>(p) + sizeof(SegmentHeader));
  s.bytes_ = bytes;
  s.slot_count_ = slot_count;
  s.fd_ = fd;
  return s;
}

Result<Segment> Segment::attach(int fd_in) noexcept {
  using R = Result<Segment>;
  struct stat st;
  if (::fstat(fd_in, &st) != 0) return R::error(-errno);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < sizeof(SegmentHeader)) return R::error(-EBADMSG);
  const int seals = ::fcntl(fd_in, F_GET_SEALS);
  if (seals < 0 || (seals & F_SEAL_SHRINK) == 0) return R::error(-EBADMSG);
  const int fd = ::fcntl(fd_in, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return R::error(-errno);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    const int e = errno;
    ::close(fd);
    return R::error(-e);
  }
  Segment s;  // owns fd and mapping from here on, so early returns clean up
  s.hdr_ = static_cast<SegmentHeader*>(p);
  s.bytes_ = size;
  s.fd_ = fd;
  const SegmentHeader* h = s.hdr_;
  const uint32_t n = h->slot_count;
  if (h->magic != kMagic || h->version != kLayoutVersion || h->header_bytes != sizeof(SegmentHeader) ||
      h->slot_bytes != kSlotBytes || h->max_readers != kMaxReaders || n < kMinSlots || n > kMaxSlots ||
      (n & (n - 1)) != 0 || h->total_bytes != segment_bytes(n) || size != segment_bytes(n)) {
    return R::error(-EBADMSG);
  }
  std::atomic_thread_fence(std::memory_order_acquire);  // SYNC POINT READ: segment header
  s.slots_ = reinterpret_cast<Slot*>(static_cast<char*>(p) + sizeof(SegmentHeader));
  s.slot_count_ = n;
  return s;
}

}  // namespace fwipc::shm
