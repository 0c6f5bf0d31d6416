// Ring v2 core: formatting, the writer (reserve, pad, commit, wake) and the reader
// (checked peek, cursor publication, waking a writer that sleeps for space). See wring.h.
#include "transports/shm/wring.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/cpu.h"
#include "base/futex.h"
#include "base/membarrier.h"
#include "base/time.h"

namespace fwipc::shm::v2 {

namespace {
bool capacity_ok(uint64_t c) noexcept { return c >= kMinCapacity && c <= kMaxCapacity && (c & (c - 1)) == 0; }
}  // namespace

int format_ring(void* mem, uint64_t bytes, uint64_t capacity, uint32_t writer_pid, uint32_t ring_index,
                uint64_t instance_id) noexcept {
  if (mem == nullptr || !capacity_ok(capacity) || bytes < ring_bytes(capacity)) return -EINVAL;
  auto* h = static_cast<RingHeader*>(mem);
  h->version = kRingVersion;
  h->header_bytes = sizeof(RingHeader);
  h->capacity = capacity;
  h->writer_pid = writer_pid;
  h->ring_index = ring_index;
  h->instance_id = instance_id;
  h->tail.store(0, std::memory_order_relaxed);
  h->prio_seq.store(0, std::memory_order_relaxed);
  h->space_sleep.store(0, std::memory_order_relaxed);
  h->bound_gen.store(0, std::memory_order_relaxed);
  h->bound_epoch.store(0, std::memory_order_relaxed);
  reinterpret_cast<Record*>(static_cast<char*>(mem) + sizeof(RingHeader))->commit.store(0, std::memory_order_relaxed);
  // SYNC POINT WRITE: ring header. Whoever validates the magic sees the rest.
  std::atomic_thread_fence(std::memory_order_release);
  h->magic = kRingMagic;
  return 0;
}

bool is_ring_of(int fd, uint64_t instance_id, uint32_t ring_index) noexcept {
  RingHeader h;
  return ::pread(fd, &h, sizeof h, 0) == ssize_t(sizeof h) && h.instance_id == instance_id &&
         h.ring_index == ring_index;
}

int format_reader_page(void* mem, uint64_t bytes, uint32_t rings, uint64_t instance_id,
                       uint32_t reader_index) noexcept {
  if (mem == nullptr || rings == 0 || bytes < reader_page_bytes(rings)) return -EINVAL;
  auto* p = static_cast<ReaderPage*>(mem);
  p->version = kRingVersion;
  p->rings = rings;
  p->instance_id = instance_id;
  p->reader_index = reader_index;
  p->sleep.store(0, std::memory_order_relaxed);
  p->armed.store(0, std::memory_order_relaxed);
  p->guarded.store(0, std::memory_order_relaxed);
  for (uint32_t i = 0; i < rings; ++i) p->cursor[i].store(kDetached, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);  // SYNC POINT WRITE: reader page
  p->magic = kRingMagic;
  return 0;
}

// ---------------------------------------------------------------- writer

int RingWriter::attach(void* mem, uint64_t bytes, std::atomic<uint32_t>* own_bell) noexcept {
  if (mem == nullptr || own_bell == nullptr || bytes < sizeof(RingHeader)) return -EINVAL;
  register_fences();  // before our first send: sleepers' barriers must reach us
  auto* h = static_cast<RingHeader*>(mem);
  const uint64_t cap = h->capacity;
  if (h->magic != kRingMagic || h->version != kRingVersion || h->header_bytes != sizeof(RingHeader) ||
      !capacity_ok(cap) || bytes < ring_bytes(cap))
    return -EBADMSG;
  std::atomic_thread_fence(std::memory_order_acquire);  // SYNC POINT READ: ring header
  const uint64_t tail = h->tail.load(std::memory_order_relaxed);
  if (tail % kRecAlign != 0) return -EBADMSG;
  hdr_ = h;
  base_ = static_cast<char*>(mem) + sizeof(RingHeader);
  cap_ = cap;
  mask_ = cap - 1;
  tail_ = tail;  // a restarted writer continues where the last one committed
  limit_ = 0;
  bell_ = own_bell;
  space_gen_ = h->space_sleep.load(std::memory_order_relaxed) & ~1u;
  published_gen_ = h->bound_gen.load(std::memory_order_relaxed);
  epoch_ = h->bound_epoch.load(std::memory_order_relaxed);
  return 0;
}

void RingWriter::set_readers(const ReaderPort* ports, uint32_t n, uint64_t gen) {
  readers_.assign(ports, ports + n);
  woken_.assign(n, 0);
  set_gen_ = gen;
  limit_ = 0;  // a new reader may hold us back from now on
}

uint64_t RingWriter::compute_limit() noexcept {
  bool handshake = set_gen_ != published_gen_;
  if (handshake) {
    hdr_->bound_gen.store(set_gen_, std::memory_order_release);
    published_gen_ = set_gen_;
  }
  // A new epoch only when a reader waits for one (its page's `guarded` word): the line it
  // is on is loaded by readers on every receive, and a writer blocked on a full ring
  // computes bounds in a loop.
  for (size_t i = 0; i < readers_.size() && !handshake; ++i)
    handshake = readers_[i].guarded != nullptr && readers_[i].guarded->load(std::memory_order_relaxed) != 0;
  if (handshake) {
    // SYNC POINT STORE-LOAD: join handshake. A joining reader stores its cursor, then
    // loads the epoch; we store the epoch, then load the cursors (seq_cst on both sides):
    // a bound whose epoch it did not see counts its cursor.
    hdr_->bound_epoch.store(++epoch_, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  uint64_t min = tail_;
  holder_ = -1;
  for (size_t i = 0; i < readers_.size(); ++i) {
    const ReaderPort& r = readers_[i];
    // SYNC POINT READ: cursor. Once we see c, the reader is done with every record below
    // c: we may overwrite them.
    const uint64_t c = r.cursor->load(std::memory_order_acquire);
    if (c == kDetached) continue;
    // A reader's cursor is never past our tail nor more than a lap behind it: any other
    // value is a reader lying about itself. It does not hold us back (only its own reads
    // suffer).
    if (c > tail_ || tail_ - c > cap_) {
      ++ignored_;
      continue;
    }
    if (c < min || holder_ < 0) holder_ = int(i), holder_cursor_ = c;
    min = std::min(min, c);
  }
  min_cursor_ = min;
  return min + cap_;
}

void RingWriter::set_max_records(uint32_t n) {
  max_records_ = n;
  uint64_t size = 1;
  while (n != 0 && size < n) size <<= 1;
  ends_.assign(n != 0 ? size : 0, 0);
  ends_mask_ = size - 1;
  sent_ = read_ = 0;
}

// Forgets the records every reader has passed; whether one more fits.
bool RingWriter::records_room() noexcept {
  limit_ = compute_limit();
  while (read_ < sent_ && ends_[read_ & ends_mask_] <= min_cursor_) ++read_;
  return sent_ - read_ < max_records_;
}

bool RingWriter::room(uint64_t end) noexcept {
  if (sent_ - read_ >= max_records_ && max_records_ != 0 && !records_room()) return false;
  if (end <= limit_) return true;
  limit_ = compute_limit();
  return end <= limit_;
}

int RingWriter::wait_for_space(uint64_t end, int64_t timeout_ns) noexcept {
  if (timeout_ns == 0) return -EAGAIN;
  const Deadline deadline = Deadline::after_ns(timeout_ns);
  const int64_t spin_until = monotonic_ns() + kSpinNs;
  // While we wait, readers must learn what we committed so far (a batch in progress).
  end_send();
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (room(end)) return 0;
      cpu_relax();
    }
    const int64_t now = monotonic_ns();
    if (deadline.expired()) return -ETIMEDOUT;
    if (now < spin_until) continue;
    int64_t slice = kSleepSliceNs;
    if (!deadline.infinite()) slice = std::min(slice, deadline.remaining_ns());
    const uint32_t v = bell_->load(std::memory_order_acquire);
    // SYNC POINT STORE-LOAD: space sleep. We store odd, then re-read the cursors; a reader
    // stores its cursor, then loads our word (Dekker; we pay for both sides:
    // base/membarrier.h, the reader's side is RingReader::publish).
    hdr_->space_sleep.store(++space_gen_, std::memory_order_seq_cst);
    heavy_fence();
    if (!room(end)) futex_wait(bell_, v, slice);
    hdr_->space_sleep.store(++space_gen_, std::memory_order_relaxed);
  }
}

int RingWriter::reserve(uint64_t rec, int64_t timeout_ns) noexcept {
  const uint64_t off = tail_ & mask_;
  // The record, and the next record's commit word (cleared before we commit).
  if (off + rec <= cap_) {
    const uint64_t end = tail_ + rec + kRecAlign;
    return room(end) ? 0 : wait_for_space(end, timeout_ns);
  }
  // Pad to the lap's end, then the record at offset 0: make room for both first.
  const uint64_t lap_end = (tail_ | mask_) + 1;
  const uint64_t end = lap_end + rec + kRecAlign;
  if (!room(end)) {
    const int rc = wait_for_space(end, timeout_ns);
    if (rc < 0) return rc;
  }
  at(lap_end)->commit.store(0, std::memory_order_relaxed);
  // SYNC POINT WRITE: commit (pad). Orders the cleared word at lap_end before it.
  at(tail_)->commit.store(kPad | lap_end, std::memory_order_release);
  tail_ = lap_end;
  return 0;
}

void RingWriter::put(uint64_t pos, const MsgHeader& h, const void* payload) noexcept {
  Record* r = at(pos);
  r->type = h.type;
  r->receiver = h.receiver;
  r->priority = h.priority;
  r->flags = 0;
  if (payload != nullptr) std::memcpy(reinterpret_cast<char*>(r) + kRecHeader, payload, h.size);
}

void RingWriter::finish(uint64_t pos, const MsgHeader& h, bool defer) noexcept {
  const uint64_t next = pos + rec_bytes(h.size);
  // The next record's commit word held payload bytes of an earlier lap: cleared before
  // the commit below lets a reader reach it.
  at(next)->commit.store(0, std::memory_order_relaxed);
  if (defer) {  // end_send() commits it, after every later record of the batch
    deferred_pos_ = pos;
    deferred_word_ = pos + kRecHeader + h.size;
  } else {
    // SYNC POINT WRITE: commit. The record (and the cleared word) are visible to a reader
    // that acquires this word.
    at(pos)->commit.store(pos + kRecHeader + h.size, std::memory_order_release);
  }
  if (h.priority != 0)  // SYNC POINT WRITE: prio_seq, after the commit it counts
    hdr_->prio_seq.store(hdr_->prio_seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  tail_ = next;
  if (max_records_ != 0) ends_[sent_++ & ends_mask_] = next;  // room() made sure one more fits
}

void RingWriter::end_send() noexcept {
  if (deferred_word_ != 0) {
    // SYNC POINT WRITE: commit (deferred). Releases this record and every later one of the
    // batch (each committed already, unreachable until a reader passes this one).
    at(deferred_pos_)->commit.store(deferred_word_, std::memory_order_release);
    deferred_word_ = 0;
  }
  hdr_->tail.store(tail_, std::memory_order_release);  // SYNC POINT WRITE: tail (joiners start here)
  // SYNC POINT STORE-LOAD: data sleep, the hot side (ReaderSleep::sleep pays for it).
  light_fence();
  for (size_t i = 0; i < readers_.size(); ++i) {
    const uint32_t s = readers_[i].sleep->load(std::memory_order_relaxed);
    if ((s & 1u) == 0 || s == woken_[i]) continue;  // awake, or already woken for this sleep
    woken_[i] = s;
    readers_[i].bell->fetch_add(1, std::memory_order_release);  // SYNC POINT WRITE: bell
    futex_wake_all(readers_[i].bell);
    if (ping_ != nullptr && readers_[i].armed != nullptr && readers_[i].armed->load(std::memory_order_relaxed) != 0)
      ping_(ping_ctx_, uint32_t(i));
    ++wakeups_;
  }
}

int RingWriter::send(const MsgHeader& h, const void* payload, int64_t timeout_ns) noexcept {
  if (h.size > kMaxPayload) return -EMSGSIZE;
  if (int rc = reserve(rec_bytes(h.size), timeout_ns); rc < 0) return rc;
  const uint64_t pos = tail_;
  put(pos, h, payload);
  finish(pos, h);
  end_send();
  return static_cast<int>(h.size);
}

int RingWriter::send_batch(const MsgHeader* hdrs, const void* const* payloads, uint32_t n,
                           int64_t timeout_ns) noexcept {
  bool prio = false;
  uint64_t total = 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (hdrs[i].size > kMaxPayload) return -EMSGSIZE;  // all or nothing
    prio |= hdrs[i].priority != 0;
    total += rec_bytes(hdrs[i].size);
  }
  // The whole batch before the lap's end and under the cached bounds: one check for all of
  // it (as layout 4 claims its slots at once), else one per record.
  const bool fits = (tail_ & mask_) + total <= cap_ && tail_ + total + kRecAlign <= limit_ &&
                    (max_records_ == 0 || sent_ - read_ + n <= max_records_);
  uint32_t sent = 0;
  for (; sent < n; ++sent) {
    // The first waits as send() does; the rest only while the caller's bound allows too
    // (a wait publishes what came before it: end_send()).
    if (int rc = fits ? 0 : reserve(rec_bytes(hdrs[sent].size), timeout_ns); rc < 0) {
      if (sent == 0) return rc;
      break;
    }
    const uint64_t pos = tail_;
    put(pos, hdrs[sent], payloads[sent]);
    // The first commit waits for the batch's end, unless priorities are in it: prio_seq
    // must not count a record readers cannot reach yet.
    finish(pos, hdrs[sent], sent == 0 && n > 1 && !prio);
  }
  end_send();
  return static_cast<int>(sent);
}

int RingWriter::loan(WLoan* out, int64_t timeout_ns) noexcept {
  if (int rc = reserve(kMaxRecord, timeout_ns); rc < 0) return rc;
  out->pos = tail_;
  out->data = reinterpret_cast<char*>(at(tail_)) + kRecHeader;
  return 0;
}

int RingWriter::commit(WLoan* l, const MsgHeader& h) noexcept {
  if (!*l || l->pos != tail_) return -EINVAL;  // not the outstanding loan
  if (h.size > kMaxPayload) {
    abandon(l);
    return -EMSGSIZE;
  }
  put(l->pos, h, nullptr);
  finish(l->pos, h);
  end_send();
  l->data = nullptr;
  return static_cast<int>(h.size);
}

// ---------------------------------------------------------------- reader

int RingReader::attach(const void* mem, uint64_t bytes, uint32_t sender, std::atomic<uint64_t>* cursor,
                       std::atomic<uint32_t>* writer_bell) noexcept {
  return attach_at(mem, bytes, sender, cursor, writer_bell, kDetached, 0);
}

int RingReader::attach_at(const void* mem, uint64_t bytes, uint32_t sender, std::atomic<uint64_t>* cursor,
                          std::atomic<uint32_t>* writer_bell, uint64_t start, uint64_t guard_gen) noexcept {
  if (mem == nullptr || cursor == nullptr || writer_bell == nullptr) return -EINVAL;
  if (bytes < sizeof(RingHeader)) return -EBADMSG;
  register_fences();  // before our first cursor publication (see RingWriter::attach)
  const auto* h = static_cast<const RingHeader*>(mem);
  // Local copies, checked once: the writer may rewrite line 0 at any time.
  const uint64_t magic = h->magic;
  const uint32_t version = h->version, header_bytes = h->header_bytes;
  const uint64_t cap = h->capacity;
  if (magic != kRingMagic || version != kRingVersion || header_bytes != sizeof(RingHeader) || !capacity_ok(cap) ||
      bytes < ring_bytes(cap))
    return -EBADMSG;
  std::atomic_thread_fence(std::memory_order_acquire);            // SYNC POINT READ: ring header
  const uint64_t tail = h->tail.load(std::memory_order_acquire);  // SYNC POINT READ: tail
  if (tail % kRecAlign != 0) return -EBADMSG;
  hdr_ = h;
  base_ = static_cast<const char*>(mem) + sizeof(RingHeader);
  cap_ = cap;
  mask_ = cap - 1;
  pid_ = sender;
  // A start the registry set (before this ring's writer began) is kept when it is a record
  // boundary the writer has not lapped; anything else starts at the tail.
  pos_ = start != kDetached && start % kRecAlign == 0 && start <= tail && tail - start <= cap ? start : tail;
  corrupt_ = false;
  cursor_ = cursor;
  writer_bell_ = writer_bell;
  woken_ = 0;
  lapped_ = 0;
  guard_gen_ = guard_gen;
  // SYNC POINT STORE-LOAD: join handshake (see RingWriter::compute_limit).
  cursor_->store(pos_, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  guard_epoch_ = h->bound_epoch.load(std::memory_order_relaxed);
  return 0;
}

bool RingReader::overrun(uint64_t pos, uint64_t word) noexcept {
  // SYNC POINT READ: commit word, after the copy (a seqlock's reader).
  std::atomic_thread_fence(std::memory_order_acquire);
  const bool counted = hdr_->bound_gen.load(std::memory_order_acquire) >= guard_gen_ &&
                       hdr_->bound_epoch.load(std::memory_order_acquire) > guard_epoch_;
  // A writer that came round to our record again rewrote or cleared its commit word
  // first: it writes in order, and the record starts with it.
  if (word != 0 &&
      reinterpret_cast<const Record*>(base_ + (pos & mask_))->commit.load(std::memory_order_acquire) == word) {
    if (counted) guard_gen_ = 0;  // its bounds hold us from now on
    return false;
  }
  // Lapped (or what looked like corruption while the writer did not count us yet): restart
  // at the tail, published so the writer's next bound holds us there.
  const uint64_t tail = hdr_->tail.load(std::memory_order_acquire);
  ++lapped_;
  if (tail % kRecAlign != 0 || tail < pos_) {
    corrupt_ = true;
    return true;
  }
  pos_ = tail;
  publish();
  guard_epoch_ = hdr_->bound_epoch.load(std::memory_order_acquire);
  return true;
}

Peek RingReader::peek_guarded(RecordView* v) noexcept {
  // A guarded reader that was lapped restarts at the tail; a writer that laps it over and
  // over (or lies about its tail) ends up reported corrupt.
  for (int restarts = 0; !corrupt_ && restarts < 4; ++restarts) {
    const Peek p = peek_lap(v);
    if (p == Peek::kCorrupt && guard_gen_ != 0 && !corrupt_ && overrun(pos_, 0)) continue;
    if (p == Peek::kReady && guard_gen_ != 0 && overrun(v->pos, v->pos + kRecHeader + v->hdr.size)) continue;
    if (p == Peek::kCorrupt) corrupt_ = true;
    return p;
  }
  corrupt_ = true;
  return Peek::kCorrupt;
}

Peek RingReader::peek_pad(RecordView* v, uint64_t w, uint64_t off) noexcept {
  // A pad: the rest of the lap, then a record at offset 0 (never a second pad: a writer
  // never pads a whole lap).
  const uint64_t lap_end = (pos_ | mask_) + 1;
  if ((w & ~kPad) != lap_end || off == 0) return Peek::kCorrupt;
  pos_ = lap_end;
  const Record* r = reinterpret_cast<const Record*>(base_);
  // SYNC POINT READ: commit (the record after the pad).
  const uint64_t w0 = r->commit.load(std::memory_order_acquire);
  if (w0 & kPad) return Peek::kCorrupt;
  return take(v, r, w0, 0);
}

bool RingReader::ready() noexcept {
  RecordView v;
  return peek(&v) != Peek::kEmpty;
}

void RingReader::publish() noexcept {
  // SYNC POINT WRITE: cursor. We are done with every record below it.
  cursor_->store(pos_, std::memory_order_release);
  // SYNC POINT STORE-LOAD: space sleep, the hot side (RingWriter::wait_for_space pays).
  light_fence();
  const uint32_t s = hdr_->space_sleep.load(std::memory_order_relaxed);
  if ((s & 1u) == 0 || s == woken_) return;
  woken_ = s;
  writer_bell_->fetch_add(1, std::memory_order_release);  // SYNC POINT WRITE: bell
  futex_wake_all(writer_bell_);
}

int RingReader::read(MsgHeader* hdr, void* buf, uint32_t cap) noexcept {
  RecordView v;
  switch (peek(&v)) {
    case Peek::kEmpty: return -EAGAIN;
    case Peek::kCorrupt: return -EBADMSG;
    case Peek::kReady: break;
  }
  *hdr = v.hdr;
  if (v.hdr.size > cap) return -EMSGSIZE;
  std::memcpy(buf, v.payload, v.hdr.size);
  if (!intact(v)) return -EAGAIN;  // lapped while guarded: restarted at the tail
  advance(v);
  publish();
  return static_cast<int>(v.hdr.size);
}

int ReaderSleep::wait(uint32_t v, int64_t slice_ns) noexcept { return futex_wait(bell_, v, slice_ns); }

}  // namespace fwipc::shm::v2

namespace fwipc::shm::v2 {

namespace {
// std heap comparator: true if a is delivered after b.
bool later(uint32_t pa, uint64_t aa, uint32_t pb, uint64_t ab) noexcept { return pa != pb ? pa < pb : aa > ab; }
}  // namespace

void RingSet::add(uint32_t idx, RingReader* r) {
  remove(idx);
  // Records with priorities may already wait in it: if it ever had any, the first
  // receive orders what is there through the heap.
  const uint64_t seq = r->prio_seq();
  rings_.push_back(Slot{idx, r, seq != 0 ? seq - 1 : 0});
}

void RingSet::remove(uint32_t idx) {
  for (size_t i = 0; i < rings_.size(); ++i) {
    if (rings_[i].idx != idx) continue;
    rings_.erase(rings_.begin() + long(i));
    if (next_ >= rings_.size()) next_ = 0;
    taken_ = 0;
    return;
  }
}

int RingSet::report_corrupt(size_t i) {
  corrupt_idx_ = int(rings_[i].idx);
  remove(rings_[i].idx);
  return -EBADMSG;
}

bool RingSet::priorities_moved() noexcept {
  for (const Slot& s : rings_)
    if (s.r->prio_seq() != s.prio_seen) return true;
  return false;
}

int RingSet::drain() {
  for (size_t i = 0; i < rings_.size(); ++i) {
    Slot& s = rings_[i];
    s.prio_seen = s.r->prio_seq();  // before the records it counts (acquire)
    RecordView v;
    Peek p;
    while (heap_.size() < heap_max_ && (p = s.r->peek(&v)) == Peek::kReady) {
      if (mine(v.hdr)) {
        Pending m{v.hdr, 0, std::vector<char>(v.payload, v.payload + v.hdr.size)};
        if (!s.r->intact(v)) continue;  // lapped while guarded: restarted at the tail
        m.arrival = arrivals_++;
        heap_.push_back(std::move(m));
        std::push_heap(heap_.begin(), heap_.end(), [](const Pending& a, const Pending& b) {
          return later(a.hdr.priority, a.arrival, b.hdr.priority, b.arrival);
        });
      }
      s.r->advance(v);
    }
    s.r->publish();
    if (s.r->corrupt()) return report_corrupt(i);
  }
  return 0;
}

int RingSet::receive(MsgHeader* hdr, void* buf, uint32_t cap) {
  if (!heap_.empty() || priorities_moved()) {
    if (int rc = drain(); rc < 0) return rc;
    if (!heap_.empty()) return take_queued(hdr, buf, cap);
  }
  // Fast path: round robin, kTurn records per ring per turn.
  for (size_t tried = 0; tried <= rings_.size() && !rings_.empty(); ++tried) {
    if (next_ >= rings_.size()) next_ = 0;
    RingReader* r = rings_[next_].r;
    RecordView v;
    Peek p;
    bool passed = false;
    while ((p = r->peek(&v)) == Peek::kReady) {
      if (!mine(v.hdr)) {  // unicast to someone else
        r->advance(v);
        passed = true;
        continue;
      }
      *hdr = v.hdr;
      if (v.hdr.size > cap) {
        if (passed) r->publish();
        return -EMSGSIZE;  // kept
      }
      std::memcpy(buf, v.payload, v.hdr.size);
      if (!r->intact(v)) continue;  // lapped while guarded: restarted at the tail
      r->advance(v);
      r->publish();
      if (++taken_ >= kTurn) {
        taken_ = 0;
        ++next_;
      }
      return int(v.hdr.size);
    }
    if (passed) r->publish();
    if (p == Peek::kCorrupt) return report_corrupt(next_);
    taken_ = 0;
    ++next_;
  }
  return -EAGAIN;
}

int RingSet::take_queued(MsgHeader* hdr, void* buf, uint32_t cap) {
  if (heap_.empty()) return -EAGAIN;
  const Pending& top = heap_.front();
  *hdr = top.hdr;
  if (top.hdr.size > cap) return -EMSGSIZE;
  std::memcpy(buf, top.payload.data(), top.hdr.size);
  std::pop_heap(heap_.begin(), heap_.end(), [](const Pending& a, const Pending& b) {
    return later(a.hdr.priority, a.arrival, b.hdr.priority, b.arrival);
  });
  heap_.pop_back();
  return int(hdr->size);
}

bool RingSet::ready() {
  if (!heap_.empty()) return true;
  // The next commit words, not the writers' tails: a round trip then moves one line, not
  // two (polling tails made batches 1.5x faster here and round trips 1.2x slower).
  for (const Slot& s : rings_)
    if (s.r->ready()) return true;
  return false;
}

}  // namespace fwipc::shm::v2
