#include "transports/shm/ring.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include "base/cpu.h"
#include "base/futex.h"
#include "base/time.h"
#include "base/proc.h"

namespace fwipc::shm {

static_assert(kMaxPayload == kMaxPayloadBytes);
namespace {

constexpr int64_t kLivenessSliceNs = 100'000'000;  // blocked writers re-check reader liveness
constexpr int64_t kStallSliceNs = 5'000'000;       // readers behind a pending claim re-check it
constexpr uint64_t kCorruptLimit = 0;              // compute_limit: a reader entry is impossible

uint32_t round_pow2(uint64_t v) {
  uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

// Abstract-namespace datagram address of reader idx's notify socket. Abstract names need
// no cleanup: they vanish with the socket.
socklen_t notify_addr(const SegmentHeader* h, uint32_t idx, uint32_t state, sockaddr_un* a) {
  std::memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  const int n = std::snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "fwipc/%016llx/%u/%u",
                              static_cast<unsigned long long>(h->instance_id), idx, state);
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
}

int sender_socket() {
  static int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return fd;
}

// Takes an fd-armed reader out of the waiter count. Exactly one caller wins the 1 -> 0 step
// (the reader itself, a writer that pings it, or whoever releases its entry).
bool disarm(SegmentHeader* h, ReaderEntry& e) {
  uint32_t one = 1;
  if (e.armed.load(std::memory_order_relaxed) == 0 ||
      !e.armed.compare_exchange_strong(one, 0, std::memory_order_acq_rel))
    return false;
  h->data_waiters.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

// Makes reader idx's notify socket readable. EAGAIN (a ping already queued) and
// ECONNREFUSED (reader gone) need nothing more.
void ping(const SegmentHeader* h, uint32_t idx, uint32_t state) {
  sockaddr_un a;
  const socklen_t len = notify_addr(h, idx, state, &a);
  const char b = 1;
  (void)::sendto(sender_socket(), &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&a), len);
}

// Wake batching (see wake_pending in layout.h): true for the one caller that flips pending
// 0 -> 1 while someone waits; it issues the wakeup, everyone else skips the syscall.
bool take_wakeup(bool someone_waits, std::atomic<uint32_t>& pending) {
  return someone_waits && pending.load(std::memory_order_relaxed) == 0 &&
         pending.exchange(1, std::memory_order_seq_cst) == 0;
}

// The sleeper's side of take_wakeup(), before its last check ahead of sleeping.
// SYNC POINT (wake batching): pairs with the fence and the exchange in take_wakeup(). Either
// the waker sees 0 and wakes (its futex increment is ordered after our read of the futex
// value), or our re-check after this fence sees what it published.
void clear_pending(std::atomic<uint32_t>& pending) {
  pending.store(0, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

void wake_writers(SegmentHeader* h) {
  h->space_futex.fetch_add(1, std::memory_order_release);
  futex_wake_all(&h->space_futex);
}

}  // namespace

// ---------------------------------------------------------------- Segment

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

Result<Segment> Segment::create(const char* debug_name, uint32_t slot_count, pid_t creator) noexcept {
  using R = Result<Segment>;
  if (slot_count < kMinSlots || slot_count > kMaxSlots || (slot_count & (slot_count - 1)) != 0)
    return R::error(-EINVAL);
  const uint64_t bytes = segment_bytes(slot_count);
  char name[96];
  std::snprintf(name, sizeof name, "fwipc:%s", debug_name);
  const int fd = ::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return R::error(-errno);
  int rc = ::ftruncate(fd, static_cast<off_t>(bytes));
  if (rc == 0) rc = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  else rc = errno;
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
  std::random_device rd;
  h->instance_id = (uint64_t(rd()) << 32) | rd();
  // Publishes the initialised header to anyone who later validates the magic.
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
  std::atomic_thread_fence(std::memory_order_acquire);
  s.slots_ = reinterpret_cast<Slot*>(static_cast<char*>(p) + sizeof(SegmentHeader));
  s.slot_count_ = n;
  return s;
}

// ---------------------------------------------------------------- membership (registry)

namespace {
// Takes the first free entry for pid: prepare(e) sets the entry's own fields before the
// state CAS publishes it; the scan bound `count` covers it afterwards.
template <typename Entry, size_t N, typename Prepare>
Result<uint32_t> join_entry(Entry (&entries)[N], std::atomic<uint32_t>& count, pid_t pid, uint64_t start_time,
                            uint32_t* state_out, Prepare prepare) noexcept {
  for (uint32_t i = 0; i < N; ++i) {
    Entry& e = entries[i];
    uint32_t st = e.state.load(std::memory_order_acquire);
    if (st & kReaderActive) continue;
    e.pid.store(static_cast<uint32_t>(pid), std::memory_order_relaxed);
    e.start_time = start_time;
    prepare(e);
    const uint32_t next = next_state(st, true);
    if (!e.state.compare_exchange_strong(st, next, std::memory_order_seq_cst)) continue;
    if (count.load(std::memory_order_relaxed) < i + 1) count.store(i + 1, std::memory_order_seq_cst);
    *state_out = next;
    return i;
  }
  return Result<uint32_t>::error(-EUSERS);
}

// Frees entries[idx] if it still holds membership `state`.
template <typename Entry, size_t N>
bool leave_entry(Entry (&entries)[N], uint32_t idx, uint32_t state) noexcept {
  if (idx >= N) return false;
  uint32_t expect = state;
  return entries[idx].state.compare_exchange_strong(expect, next_state(state, false), std::memory_order_seq_cst);
}
}  // namespace

Result<uint32_t> join_reader(const Segment& seg, pid_t pid, uint64_t start_time, uint32_t* state_out) noexcept {
  SegmentHeader* h = seg.header();
  auto idx = join_entry(h->readers, h->reader_count, pid, start_time, state_out, [h](ReaderEntry& e) {
    // Provisional cursor first: any writer that sees the entry active sees a cursor no
    // greater than the final one, so its bound is conservative.
    e.cursor.store(h->tail.load(std::memory_order_seq_cst), std::memory_order_relaxed);
    e.armed.store(0, std::memory_order_relaxed);
    e.sleeping.store(0, std::memory_order_relaxed);
  });
  if (!idx) return idx;
  // SYNC POINT (join): the state CAS is seq_cst, and so is this tail load. A writer that
  // computed its bound without seeing us read the cursors before our CAS, so its bound is
  // <= (min cursor then) + N <= (tail now) + N: it cannot lap position t1.
  const uint64_t t1 = h->tail.load(std::memory_order_seq_cst);
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

bool recover_claim(const Segment& seg, uint64_t pos) noexcept {
  SegmentHeader* h = seg.header();
  Slot* s = seg.slot(pos);
  uint64_t seq = s->seq.load(std::memory_order_acquire);
  if (slot_state(seq, pos) != SlotState::kEmpty) return true;
  // SYNC POINT READ (claim): the tail CAS is a release and every later RMW of tail continues
  // its release sequence, so seeing tail > pos makes the claimer's inflight increment
  // (sequenced before its CAS) visible below.
  if (h->tail.load(std::memory_order_acquire) <= pos) return false;  // not claimed yet
  const uint32_t n = std::min(h->writer_count.load(std::memory_order_acquire), kMaxWriters);
  for (uint32_t i = 0; i < n; ++i) {
    const WriterEntry& e = h->writers[i];
    if ((e.state.load(std::memory_order_acquire) & kReaderActive) == 0) continue;
    // Pairs with the release decrement after the commit: inflight == 0 means any commit of
    // this writer is visible to the re-read of seq below.
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
    if ((e.state.load(std::memory_order_acquire) & kReaderActive) == 0) continue;
    const uint64_t c = e.cursor.load(std::memory_order_acquire);
    const uint64_t before = seg.slot(c)->seq.load(std::memory_order_acquire);
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
    h->space_mask.fetch_and(~(1u << i), std::memory_order_seq_cst);
    h->space_sleeper[i].compare_exchange_strong(p, 0, std::memory_order_acq_rel);
  }
}

void close_channel(const Segment& seg) noexcept {
  SegmentHeader* h = seg.header();
  h->closed.store(1, std::memory_order_seq_cst);
  notify_readers(seg);
  wake_writers(h);
}

void poke_bridge(const Segment& seg) noexcept {
  seg.header()->bridge_epoch.fetch_add(1, std::memory_order_seq_cst);
  notify_readers(seg);
  wake_writers(seg.header());
}

void notify_readers(const Segment& seg) noexcept {
  SegmentHeader* h = seg.header();
  h->data_futex.fetch_add(1, std::memory_order_release);
  futex_wake_all(&h->data_futex);
  const uint32_t n = std::min(h->reader_count.load(std::memory_order_acquire), kMaxReaders);
  for (uint32_t i = 0; i < n; ++i) {
    ReaderEntry& e = h->readers[i];
    if (disarm(h, e)) ping(h, i, e.state.load(std::memory_order_acquire));
  }
}

// ---------------------------------------------------------------- ShmRing

namespace {
std::atomic<int64_t>& spin_budget() {
  static std::atomic<int64_t> v{[] {
    const char* s = std::getenv("FWIPC_SPIN_NS");
    return s && *s ? std::strtoll(s, nullptr, 10) : int64_t{50'000};
  }()};
  return v;
}
}  // namespace

int64_t ShmRing::spin_ns() noexcept { return spin_budget().load(std::memory_order_relaxed); }

void ShmRing::set_spin_ns(int64_t ns) noexcept { spin_budget().store(ns, std::memory_order_relaxed); }

ShmRing::ShmRing(Segment seg, Roles roles, pid_t self) noexcept
    : seg_(std::move(seg)), hdr_(seg_.header()), roles_(roles), pid_(static_cast<uint32_t>(self)) {
  if (roles_.reader_index >= int(kMaxReaders)) roles_.reader_index = -1;
  if (roles_.writer_index >= int(kMaxWriters)) roles_.writer_index = -1;
  if (roles_.writer_index >= 0) wme_ = &hdr_->writers[roles_.writer_index];
  if (roles_.reader_index >= 0) {
    me_ = &hdr_->readers[roles_.reader_index];
    cursor_ = me_->cursor.load(std::memory_order_acquire);
    prio_seen_ = hdr_->prio_seq.load(std::memory_order_acquire);
  }
}

ShmRing::~ShmRing() {
  if (me_ != nullptr) disarm(hdr_, *me_);
  if (notify_fd_ >= 0) ::close(notify_fd_);
}

// ---- writing

uint64_t ShmRing::compute_limit(uint64_t tail) noexcept {
  uint64_t min = tail;
  const uint32_t n = std::min(hdr_->reader_count.load(std::memory_order_acquire), kMaxReaders);
  for (uint32_t i = 0; i < n; ++i) {
    const ReaderEntry& e = hdr_->readers[i];
    if ((e.state.load(std::memory_order_acquire) & kReaderActive) == 0) continue;
    // SYNC POINT READ (cursor): pairs with the reader's release store in advance(); once we
    // see cursor c, the reader has finished copying every slot below c.
    const uint64_t c = e.cursor.load(std::memory_order_acquire);
    // A live cursor is never more than N behind the tail (writers never lap it), and tail
    // only grows, so one behind the `tail` we read earlier is a scribbled entry. A cursor
    // past it may just be newer than our tail: ignoring it is conservative.
    if (c + seg_.slot_count() < tail) return kCorruptLimit;
    if (c < min) min = c;
  }
  const uint64_t limit = min + seg_.slot_count();
  // Release/acquire on the cached bound: another thread of this handle that claims under
  // it must also see the cursor acquires behind it (the slots' previous readers are done).
  uint64_t cur = limit_.load(std::memory_order_acquire);
  while (cur < limit &&
         !limit_.compare_exchange_weak(cur, limit, std::memory_order_acq_rel, std::memory_order_acquire)) {
  }
  return std::max(cur, limit);
}

namespace {
// Frees the entries (readers or writers) whose process is gone.
template <typename Entry, typename Release>
void reap(const Segment& seg, Entry* entries, uint32_t count, Release release) {
  for (uint32_t i = 0; i < count; ++i) {
    Entry& e = entries[i];
    const uint32_t st = e.state.load(std::memory_order_acquire);
    if ((st & kReaderActive) == 0) continue;
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

int ShmRing::claim(uint64_t* out, uint32_t want, int64_t timeout_ns) noexcept {
  if (wme_ == nullptr) return -EBADF;
  int64_t deadline = -1;
  int64_t spin_until = -1;
  for (;;) {
    if (hdr_->closed.load(std::memory_order_relaxed)) return -EPIPE;
    if (bridge_epoch_moved()) return -EINTR;
    uint64_t pos = hdr_->tail.load(std::memory_order_relaxed);
    uint64_t limit = limit_.load(std::memory_order_acquire);  // see compute_limit
    if (pos >= limit) limit = compute_limit(pos);
    if (limit == kCorruptLimit) return -EIO;
    if (pos < limit) {
      // In flight before the claim can be seen (see recover_claim); undone by publish().
      wme_->inflight.fetch_add(1, std::memory_order_relaxed);
      // SYNC POINT WRITE (claim): release orders the inflight increment before the claim.
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
    // Full: the slowest live reader holds us back.
    const int64_t now = timeout_ns == 0 ? 0 : monotonic_ns();
    if (deadline < 0 && timeout_ns > 0) deadline = now + timeout_ns;
    if (timeout_ns == 0 || (deadline >= 0 && now >= deadline)) {
      hdr_->refused.fetch_add(1, std::memory_order_relaxed);
      return timeout_ns == 0 ? -EAGAIN : -ETIMEDOUT;
    }
    if (spin_until < 0) spin_until = now + spin_ns();
    if (now < spin_until) {
      for (int i = 0; i < 64; ++i) cpu_relax();
      continue;
    }
    int64_t slice = kLivenessSliceNs;
    if (deadline >= 0) slice = std::min(slice, std::max<int64_t>(deadline - now, 0));
    if (sleep_for_space(pos, slice) == -ETIMEDOUT) reap_dead_entries(seg_);  // backstop for a registry that is down
  }
}

int ShmRing::sleep_for_space(uint64_t pos, int64_t slice_ns) noexcept {
  uint32_t slot = kSpaceSleepers;
  for (uint32_t i = 0; i < kSpaceSleepers && slot == kSpaceSleepers; ++i) {
    uint32_t zero = 0;
    if (hdr_->space_sleeper[i].compare_exchange_strong(zero, pid_, std::memory_order_acq_rel)) slot = i;
  }
  if (slot == kSpaceSleepers) {
    // Every sleeper slot taken: wait without being woken, in short naps.
    const uint32_t v = hdr_->space_futex.load(std::memory_order_acquire);
    return futex_wait(&hdr_->space_futex, v, std::min<int64_t>(slice_ns, 1'000'000));
  }
  const uint32_t v = hdr_->space_futex.load(std::memory_order_acquire);
  // SYNC POINT (space sleep): seq_cst mask update, then re-read the cursors; a reader
  // advances its cursor, fences, then reads the mask. One of us sees the other.
  hdr_->space_mask.fetch_or(1u << slot, std::memory_order_seq_cst);
  clear_pending(hdr_->space_pending);
  int rc = 0;
  if (pos >= compute_limit(pos)) rc = futex_wait(&hdr_->space_futex, v, slice_ns);
  hdr_->space_mask.fetch_and(~(1u << slot), std::memory_order_relaxed);
  hdr_->space_sleeper[slot].store(0, std::memory_order_release);
  return rc;
}

void ShmRing::fill(Slot* s, const MsgHeader& h, uint32_t sender) noexcept {
  s->type = h.type;
  s->size = h.size;
  s->sender = sender;
  s->receiver = h.receiver;
  s->priority = h.priority;
  s->flags = 0;
}

void ShmRing::publish(uint64_t pos, Slot* s, uint32_t priority, uint64_t flag) noexcept {
  commit_slot(pos, s, priority, flag);
  end_claim();
}

void ShmRing::commit_slot(uint64_t pos, Slot* s, uint32_t priority, uint64_t flag) noexcept {
  // SYNC POINT WRITE (commit): pairs with the reader's acquire of seq in try_receive.
  s->seq.store((pos + 1) | flag, std::memory_order_release);
  // Counted after the commit: a reader that sees the new count also sees the message.
  if (priority != 0) hdr_->prio_seq.fetch_add(1, std::memory_order_release);
}

// After every slot of a claim is committed: one in-flight decrement and one wakeup check
// per claim, however many slots it covered.
void ShmRing::end_claim() noexcept {
  // After the commits: whoever sees 0 here also sees them (recover_claim).
  wme_->inflight.fetch_sub(1, std::memory_order_release);
  // SYNC POINT (data sleep): store-load barrier against a reader that registers as waiter
  // and then re-checks the slot; without it both could miss each other.
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

// ---- reading
//
// Priorities: while no message with priority != 0 has been published since we last
// looked (prio_seq unchanged) and the local heap is empty, the ring order is the delivery
// order and we read straight from the ring (the fast path). Otherwise we drain every
// committed message for us into a local heap ordered by (priority desc, position asc),
// releasing their slots, and deliver from the heap. The heap holds at most slot_count
// messages, so memory stays bounded.

void ShmRing::advance(uint64_t next) noexcept {
  cursor_ = next;
  // SYNC POINT WRITE (cursor): pairs with the writer's acquire in compute_limit.
  me_->cursor.store(next, std::memory_order_release);
  // SYNC POINT (space sleep): see claim(); a store-load barrier before reading waiters.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (take_wakeup(hdr_->space_mask.load(std::memory_order_relaxed) != 0, hdr_->space_pending)) wake_writers(hdr_);
}

void ShmRing::watch_bridge_epoch(bool on) noexcept {
  epoch_seen_.store(hdr_->bridge_epoch.load(std::memory_order_acquire), std::memory_order_relaxed);
  watch_epoch_.store(on, std::memory_order_relaxed);
}

bool ShmRing::bridge_epoch_moved() const noexcept {
  return watch_epoch_.load(std::memory_order_relaxed) &&
         hdr_->bridge_epoch.load(std::memory_order_relaxed) != epoch_seen_.load(std::memory_order_relaxed);
}

bool ShmRing::data_ready() const noexcept {
  if (!heap_.empty()) return true;
  if (hdr_->closed.load(std::memory_order_relaxed) || bridge_epoch_moved()) return true;
  // Skip and corrupt slots count as ready: try_receive moves past or reports them.
  return slot_state(seg_.slot(cursor_)->seq.load(std::memory_order_acquire), cursor_) != SlotState::kEmpty;
}

bool ShmRing::stalled_on_claim() const noexcept {
  return heap_.empty() && hdr_->tail.load(std::memory_order_acquire) > cursor_ &&
         slot_state(seg_.slot(cursor_)->seq.load(std::memory_order_acquire), cursor_) == SlotState::kEmpty;
}

// A claim pending at our cursor for longer than a live writer needs to copy 512 bytes is
// worth a liveness check of the writers in flight (a few syscalls, so rate-limited).
void ShmRing::maybe_recover(int64_t now) noexcept {
  constexpr int64_t kStallNs = 2'000'000;
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

namespace {
struct HeapLess {
  template <typename P>
  bool operator()(const P& a, const P& b) const noexcept {
    return delivered_later(a.hdr.priority, a.pos, b.hdr.priority, b.pos);
  }
};
}  // namespace

int ShmRing::drain_into_heap() noexcept {
  int got = 0;
  while (heap_.size() < seg_.slot_count()) {
    const uint64_t pos = cursor_;
    const Slot* s = seg_.slot(pos);
    const SlotState st = slot_state(s->seq.load(std::memory_order_acquire), pos);
    if (st == SlotState::kCorrupt) return -EBADMSG;  // a writer lapped us: our entry was taken or forged
    if (st == SlotState::kEmpty) break;
    if (st == SlotState::kSkip) {
      advance(pos + 1);
      continue;
    }
    Pending p;
    p.pos = pos;
    p.hdr = MsgHeader{s->type, s->size, s->sender, s->receiver, s->priority};
    const bool mine = p.hdr.receiver == 0 || p.hdr.receiver == pid_;
    const bool bad = p.hdr.size > kMaxPayload;
    if (!bad && mine) std::memcpy(p.payload, s->payload, p.hdr.size);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s->seq.load(std::memory_order_relaxed) != pos + 1) return -EBADMSG;  // torn
    advance(pos + 1);
    if (bad) {
      ++corrupt_;
      continue;
    }
    if (!mine) continue;
    heap_.push_back(p);
    std::push_heap(heap_.begin(), heap_.end(), HeapLess{});
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
  std::pop_heap(heap_.begin(), heap_.end(), HeapLess{});
  heap_.pop_back();
  return n;
}

int ShmRing::try_receive(MsgHeader* hdr, void* buf, uint32_t cap) noexcept {
  if (corrupt_ > 0) {
    --corrupt_;
    return -EBADMSG;
  }
  const uint64_t ps = hdr_->prio_seq.load(std::memory_order_acquire);
  if (!heap_.empty() || ps != prio_seen_) {
    const int rc = drain_into_heap();
    if (rc < 0) return rc;
    prio_seen_ = ps;
    if (!heap_.empty()) return take_from_heap(hdr, buf, cap);
    if (corrupt_ > 0) return try_receive(hdr, buf, cap);
  } else {
    for (;;) {
      const uint64_t pos = cursor_;
      const Slot* s = seg_.slot(pos);
      // SYNC POINT READ (commit): pairs with the release store in publish().
      const SlotState st = slot_state(s->seq.load(std::memory_order_acquire), pos);
      if (st != SlotState::kReady) {
        if (st == SlotState::kCorrupt) return -EBADMSG;
        if (st == SlotState::kEmpty) break;
        advance(pos + 1);  // kSkip
        continue;
      }
      const MsgHeader h{s->type, s->size, s->sender, s->receiver, s->priority};
      const bool skip = h.receiver != 0 && h.receiver != pid_;
      if (!skip && h.size > kMaxPayload) {
        advance(pos + 1);
        return -EBADMSG;
      }
      if (!skip && h.size > cap) {
        *hdr = h;
        return -EMSGSIZE;  // kept: the cursor does not move
      }
      if (!skip) std::memcpy(buf, s->payload, h.size);
      // Seqlock-style re-check: the slot was not reused while we copied.
      std::atomic_thread_fence(std::memory_order_acquire);
      if (s->seq.load(std::memory_order_relaxed) != pos + 1) return -EBADMSG;
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
  if (!hdr_->closed.load(std::memory_order_acquire)) return -EAGAIN;
  return slot_state(seg_.slot(cursor_)->seq.load(std::memory_order_acquire), cursor_) != SlotState::kEmpty ? 0 : -EPIPE;
}

int ShmRing::wait_for_data(int64_t deadline) noexcept {
  const int64_t budget = spin_ns();
  const int64_t spin_until = monotonic_ns() + budget;
  for (;;) {
    // With no spin budget, straight to the futex: one look, no polling.
    for (int i = 0; i < (budget > 0 ? 64 : 1); ++i) {
      if (data_ready()) return 0;
      if (budget > 0) cpu_relax();
    }
    const int64_t now = monotonic_ns();
    if (deadline >= 0 && now >= deadline) return -ETIMEDOUT;
    if (now < spin_until) continue;
    maybe_recover(now);
    // Behind a pending claim, sleep in slices: if its writer died, nobody will wake us.
    int64_t slice = stall_pos_ == cursor_ ? kStallSliceNs : -1;
    if (deadline >= 0) slice = slice < 0 ? deadline - now : std::min(slice, deadline - now);
    const uint32_t v = hdr_->data_futex.load(std::memory_order_acquire);
    me_->sleeping.store(1, std::memory_order_relaxed);
    // SYNC POINT (data sleep): pairs with the fence in publish().
    hdr_->data_waiters.fetch_add(1, std::memory_order_seq_cst);
    clear_pending(hdr_->wake_pending);
    int rc = 0;
    if (!data_ready()) rc = futex_wait(&hdr_->data_futex, v, slice);
    if (me_->sleeping.exchange(0, std::memory_order_acq_rel) == 1)
      hdr_->data_waiters.fetch_sub(1, std::memory_order_relaxed);
    if (rc == -ETIMEDOUT && deadline >= 0 && monotonic_ns() >= deadline) return rc;
  }
}

// The waiting shared by receive() and consume(): attempt() until it finds something.
template <typename Attempt>
int ShmRing::receive_with(Attempt attempt, int64_t timeout_ns) noexcept {
  if (me_ == nullptr) return -EBADF;
  const int64_t deadline = timeout_ns > 0 ? monotonic_ns() + timeout_ns : -1;
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
  if (corrupt_ > 0 || !heap_.empty() || hdr_->prio_seq.load(std::memory_order_acquire) != prio_seen_) {
    // Priorities in play: one message at a time through the ordered path.
    char buf[kMaxPayload];
    MsgHeader h;
    const int rc = try_receive(&h, buf, sizeof buf);
    if (rc >= 0) fn(ctx, h, buf);
    return rc < 0 ? rc : 1;
  }
  uint64_t pos = cursor_;
  uint32_t got = 0;
  int rc = 0;
  while (got < max) {
    const Slot* s = seg_.slot(pos);
    const SlotState st = slot_state(s->seq.load(std::memory_order_acquire), pos);
    if (st == SlotState::kEmpty) break;
    if (st == SlotState::kCorrupt) {
      if (got == 0) rc = -EBADMSG;
      break;
    }
    if (st == SlotState::kReady) {
      const MsgHeader h{s->type, s->size, s->sender, s->receiver, s->priority};
      if (h.receiver == 0 || h.receiver == pid_) {
        if (h.size > kMaxPayload) {
          if (got == 0) {
            rc = -EBADMSG;
            ++pos;  // reported and passed over, as try_receive does
          }
          break;
        }
        fn(ctx, h, s->payload);
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

// ---- pollable descriptor
//
// Invariant: while a message waits for this reader, either the notify socket holds a ping
// or the reader is armed (a writer will ping on its next commit). A receive that finds the
// ring empty drains the pings and re-arms; if data raced in meanwhile it pings itself.

void ShmRing::rearm_notify() noexcept {
  char b[64];
  while (::recv(notify_fd_, b, sizeof b, MSG_DONTWAIT) > 0) {
  }
  uint32_t zero = 0;
  if (me_->armed.compare_exchange_strong(zero, 1, std::memory_order_seq_cst))
    hdr_->data_waiters.fetch_add(1, std::memory_order_seq_cst);
  clear_pending(hdr_->wake_pending);
  if (data_ready() && disarm(hdr_, *me_)) ping(hdr_, static_cast<uint32_t>(roles_.reader_index), roles_.reader_state);
}

void ShmRing::forget_after_fork() noexcept {
  me_ = nullptr;  // the entries are the parent's: the destructor must not disarm them
  wme_ = nullptr;
}

int ShmRing::notify_fd() noexcept {
  if (me_ == nullptr) return -EBADF;
  if (notify_fd_ >= 0) return notify_fd_;
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  sockaddr_un a;
  const socklen_t len = notify_addr(hdr_, static_cast<uint32_t>(roles_.reader_index), roles_.reader_state, &a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0) {
    const int e = errno;
    ::close(fd);
    return -e;
  }
  notify_fd_ = fd;
  rearm_notify();
  return notify_fd_;
}

}  // namespace fwipc::shm
