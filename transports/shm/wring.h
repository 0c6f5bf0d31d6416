// Ring v2 core (see RING-V2.md): a single-writer ring of compact variable-length records
// over a caller-provided memory region. The writer maps its ring read-write; readers map
// it read-only (a descriptor reopened O_RDONLY through /proc/self/fd, the memfd sealed
// F_SEAL_FUTURE_WRITE) and keep their cursors in a page only they write. Nothing here
// is wired into the runtime yet: this is the component the v2 transport is built from.
//
// Who writes what:
//   RingHeader line 0   the ring's creator (the registry), once, before magic (release
//                       fence); read-only afterwards. Readers and the writer copy what they
//                       need at attach and never re-read it.
//   RingHeader line 1   the writer: tail (end of the last committed record).
//   RingHeader line 2   the writer: space_sleep (odd while it sleeps for space, below);
//                       bound_gen, bound_epoch (the join handshake, see RingHeader).
//                       tail is stored once per send or batch, after its records.
//   records             the writer. Record at position p (a byte position, 64-bit, never
//                       wraps) lives at offset p mod capacity; its first word is the commit
//                       word: the record's exact end (p + kRecHeader + size), stored with
//                       release after the rest of the record. A word <= p is a record of an
//                       earlier lap or a pre-cleared word: not yet written. kPad: the rest
//                       of the lap is padding (the word then holds the lap's end).
//                       Before committing a record the writer clears the word where the next
//                       record will start, so a reader never takes a stale payload byte from
//                       an earlier lap for a commit word.
//   reader cursor       one 64-bit word per ring in the reader's own page (ReaderPage):
//                       the position the reader will read next; the writer only loads it
//                       (acquire) to find free space. Records below it are the writer's.
//   reader sleep word   in the reader's page: odd while the reader sleeps or is about to.
//   bells               futex words in a page every member may write (Bells): the only
//                       memory written by more than one process. Wakers fetch_add and
//                       FUTEX_WAKE; a sleeper waits on the value it read before its last
//                       check. A futex word only its sleeper writes loses wakeups (a
//                       FUTEX_WAKE between the sleeper's check and its wait finds nobody
//                       and changes nothing), hence this page. Scribbling it costs
//                       wakeups, never messages; sleepers sleep in bounded slices.
//
// Every index a reader takes from shared memory is a local copy checked before use
// (capacity, commit word, pad end); a record is never followed past the mapping.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/membarrier.h"
#include "ipc.h"
#include "transports/message.h"

namespace fwipc::shm::v2 {

inline constexpr uint64_t kRingMagic = 0x32524e5743504946ULL;  // "FIPCWNR2" little-endian
inline constexpr uint32_t kRingVersion = 2;
inline constexpr uint32_t kRecHeader = 24;  // commit word, type, receiver, priority, flags
inline constexpr uint32_t kRecAlign = 32;   // a 64 B message: 96 B, always 2 cache lines
inline constexpr uint32_t kMaxPayload = kMaxPayloadBytes;
inline constexpr uint32_t kMaxRecord = (kRecHeader + kMaxPayload + kRecAlign - 1) / kRecAlign * kRecAlign;  // 544
inline constexpr uint64_t kMinCapacity = 4096;
inline constexpr uint64_t kMaxCapacity = 1ull << 26;
inline constexpr uint64_t kPad = 1ull << 63;
inline constexpr uint64_t kEndMask = (1ull << 62) - 1;  // bit 62 reserved: a commit word with it is corrupt
inline constexpr uint64_t kDetached = ~0ull;            // a cursor word no writer waits for

inline constexpr uint64_t rec_bytes(uint32_t size) noexcept {
  return (uint64_t(kRecHeader) + size + kRecAlign - 1) & ~uint64_t(kRecAlign - 1);
}

struct Record {
  std::atomic<uint64_t> commit;  // exact end of this record, or kPad | lap end
  uint32_t type;
  uint32_t receiver;
  uint32_t priority;
  uint32_t flags;  // reserved, 0
  // payload follows (size = end - position - kRecHeader)
};

struct RingHeader {
  // Line 0: written once by the creator.
  uint64_t magic;
  uint32_t version;
  uint32_t header_bytes;  // offset of the records
  uint64_t capacity;      // bytes of records, a power of two
  uint32_t writer_pid;    // informational (ipcctl); readers take the sender from the directory
  uint32_t ring_index;    // in the channel directory
  uint64_t instance_id;   // the channel's
  char pad0_[64 - 40];
  // Line 1: the writer's, written per send or batch.
  alignas(64) std::atomic<uint64_t> tail;  // per send or batch (release)
  char pad1_[64 - 8];
  // Line 2: the writer's, written only around a sleep for space. Readers load it after
  // every cursor publication: it must not share a line with the per-send words.
  alignas(64) std::atomic<uint32_t> space_sleep;  // odd: the writer sleeps on its bell for space
  uint32_t pad2a_;
  // Join handshake (RingReader::attach_at): the directory generation of the reader set
  // the writer's bounds count, stored when it changes, then bound_epoch, bumped by every
  // bound computation before it loads the cursors (seq_cst). A reader that stored its
  // cursor, then read epoch e, is held by every bound with epoch > e once bound_gen has
  // reached the generation at which it joined.
  std::atomic<uint64_t> bound_gen;
  std::atomic<uint64_t> bound_epoch;
  // Records with priority != 0 committed (release), loaded by readers on every receive:
  // here, with the rarely written words, not beside the per-record tail.
  std::atomic<uint64_t> prio_seq;
  // Sends that found the ring full (-EAGAIN, -ETIMEDOUT), the writer's count (relaxed),
  // summed over a channel's rings by ipcctl as DROPS (RING-V2.md section 2). On this line:
  // a send is refused only after the bound ran out, never on the per-send path.
  std::atomic<uint64_t> refused;
  char pad2_[64 - 40];
};

// A reader's own page: its sleep word, then one cursor per ring index. Writers map it
// read-only. 8 cursors share a line: the reader writes them, writers only read them when
// their cached bound runs out.
struct ReaderPage {
  uint64_t magic;
  uint32_t version;
  uint32_t rings;  // cursor words that follow
  // Which page this is, so a restarted registry can tell a process's pages apart when it
  // takes them from its descriptor table (set by the registry at format).
  uint64_t instance_id;  // the channel's
  uint32_t reader_index;
  alignas(64) std::atomic<uint32_t> sleep;  // odd while sleeping
  std::atomic<uint32_t> armed;              // 1: sleeping on its notify descriptor (writers also ping)
  // != 0: some ring of ours is guarded (RingReader::attach_at): its writer's bounds then
  // start a new bound_epoch, so the guard can end. Set before the cursor store it is for.
  std::atomic<uint32_t> guarded;
  char pad1_[52];
  std::atomic<uint64_t> cursor[1];  // [rings]
};

inline constexpr uint64_t reader_page_bytes(uint32_t rings) noexcept {
  return offsetof(ReaderPage, cursor) + uint64_t(rings) * sizeof(uint64_t);
}

// One futex word per line, so a waker touches only its sleeper's line.
struct alignas(64) Bell {
  std::atomic<uint32_t> word;
  char pad_[60];
};

// ---------------------------------------------------------------- the ABI, pinned
#define FWIPC_V2_FIELD(T, f, off, size)                                                              \
  static_assert(offsetof(T, f) == (off), "offsetof(" #T ", " #f ") != " #off ": bump kRingVersion"); \
  static_assert(sizeof(T::f) == (size), "sizeof(" #T "::" #f ") != " #size ": bump kRingVersion")
static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<uint32_t>::is_always_lock_free);
static_assert(kMaxRecord == 544 && rec_bytes(64) == 96 && rec_bytes(0) == 32 && rec_bytes(8) == 32);
static_assert(sizeof(Record) == kRecHeader);
FWIPC_V2_FIELD(Record, commit, 0, 8);
FWIPC_V2_FIELD(Record, type, 8, 4);
FWIPC_V2_FIELD(Record, receiver, 12, 4);
FWIPC_V2_FIELD(Record, priority, 16, 4);
FWIPC_V2_FIELD(Record, flags, 20, 4);
static_assert(sizeof(RingHeader) == 192);
FWIPC_V2_FIELD(RingHeader, magic, 0, 8);
FWIPC_V2_FIELD(RingHeader, version, 8, 4);
FWIPC_V2_FIELD(RingHeader, header_bytes, 12, 4);
FWIPC_V2_FIELD(RingHeader, capacity, 16, 8);
FWIPC_V2_FIELD(RingHeader, writer_pid, 24, 4);
FWIPC_V2_FIELD(RingHeader, ring_index, 28, 4);
FWIPC_V2_FIELD(RingHeader, instance_id, 32, 8);
FWIPC_V2_FIELD(RingHeader, tail, 64, 8);
FWIPC_V2_FIELD(RingHeader, space_sleep, 128, 4);
FWIPC_V2_FIELD(RingHeader, bound_gen, 136, 8);
FWIPC_V2_FIELD(RingHeader, bound_epoch, 144, 8);
FWIPC_V2_FIELD(RingHeader, prio_seq, 152, 8);
FWIPC_V2_FIELD(RingHeader, refused, 160, 8);
FWIPC_V2_FIELD(ReaderPage, magic, 0, 8);
FWIPC_V2_FIELD(ReaderPage, version, 8, 4);
FWIPC_V2_FIELD(ReaderPage, rings, 12, 4);
FWIPC_V2_FIELD(ReaderPage, instance_id, 16, 8);
FWIPC_V2_FIELD(ReaderPage, reader_index, 24, 4);
FWIPC_V2_FIELD(ReaderPage, sleep, 64, 4);
FWIPC_V2_FIELD(ReaderPage, armed, 68, 4);
FWIPC_V2_FIELD(ReaderPage, guarded, 72, 4);
FWIPC_V2_FIELD(ReaderPage, cursor, 128, 8);
static_assert(sizeof(Bell) == 64);
#undef FWIPC_V2_FIELD

inline constexpr uint64_t ring_bytes(uint64_t capacity) noexcept { return sizeof(RingHeader) + capacity; }

// Initialises a zero-filled region of ring_bytes(capacity) (the creator's job).
// -EINVAL: capacity not a power of two in [kMinCapacity, kMaxCapacity] or bytes too small.
int format_ring(void* mem, uint64_t bytes, uint64_t capacity, uint32_t writer_pid, uint32_t ring_index,
                uint64_t instance_id) noexcept;
// Whether memfd fd holds ring ring_index of the channel with instance_id, by its header
// (a process may hold rings of several channels of one name, and several of one channel).
bool is_ring_of(int fd, uint64_t instance_id, uint32_t ring_index) noexcept;
// Initialises a zero-filled reader page for `rings` cursors, all kDetached.
int format_reader_page(void* mem, uint64_t bytes, uint32_t rings, uint64_t instance_id = 0,
                       uint32_t reader_index = 0) noexcept;

// How a writer sees one reader: its cursor for this ring and its sleep word (the
// reader's page, mapped read-only), and its bell.
struct ReaderPort {
  const std::atomic<uint64_t>* cursor = nullptr;
  const std::atomic<uint32_t>* sleep = nullptr;
  std::atomic<uint32_t>* bell = nullptr;
  const std::atomic<uint32_t>* armed = nullptr;    // optional: ping (set_ping) when set
  const std::atomic<uint32_t>* guarded = nullptr;  // optional: the reader waits for an epoch
};

// A zero-copy loan: kMaxPayload bytes inside the ring, reserved until commit or abandon.
struct WLoan {
  uint64_t pos = 0;
  char* data = nullptr;
  explicit operator bool() const noexcept { return data != nullptr; }
};

// The writer's side. One thread at a time per ring (the runtime serialises a handle's
// sending threads); the ring is its writer's alone, so claiming is a local add.
class RingWriter {
 public:
  // Validates the header of a formatted ring mapped read-write. -EBADMSG if not a ring
  // of this layout (or bytes disagree with it).
  int attach(void* mem, uint64_t bytes, std::atomic<uint32_t>* own_bell) noexcept;
  // The readers that hold this ring back and get woken. Replaces the previous set. gen:
  // the directory generation this set reflects, published in bound_gen with the next bound.
  void set_readers(const ReaderPort* ports, uint32_t n, uint64_t gen = 0);
  // Called for reader port i woken while armed on its notify descriptor (after the bell).
  // At most n records unread by some reader (0: bytes alone bound the writer): the
  // channel's buffer_size counts messages (ipc.h), whatever their size.
  void set_max_records(uint32_t n);
  using PingFn = void (*)(void* ctx, uint32_t port) noexcept;
  void set_ping(PingFn fn, void* ctx) noexcept { ping_ = fn, ping_ctx_ = ctx; }

  // Returns the payload size, or -EMSGSIZE, -EAGAIN (no room, timeout_ns == 0),
  // -ETIMEDOUT. timeout_ns < 0: wait for room as long as it takes.
  int send(const MsgHeader& h, const void* payload, int64_t timeout_ns) noexcept;
  // As many as fit (at least one, waiting as send does); one tail store and one wakeup
  // check for the lot. Returns how many were sent or -errno if none.
  int send_batch(const MsgHeader* hdrs, const void* const* payloads, uint32_t n, int64_t timeout_ns) noexcept;
  int loan(WLoan* out, int64_t timeout_ns) noexcept;
  // Publishes h.size bytes of the loan (-EMSGSIZE and abandoned if too large).
  int commit(WLoan* l, const MsgHeader& h) noexcept;
  // Gives the loan back: nothing was published, so there is nothing for readers to skip.
  void abandon(WLoan* l) noexcept { l->data = nullptr; }

  uint64_t tail() const noexcept { return tail_; }
  uint64_t capacity() const noexcept { return cap_; }
  uint64_t ignored_cursors() const noexcept { return ignored_; }  // impossible cursor words seen
  uint64_t wakeups() const noexcept { return wakeups_; }
  // A send given up for want of room (ipcctl's DROPS), counted by the caller that gives up.
  void count_refused() noexcept { hdr_->refused.fetch_add(1, std::memory_order_relaxed); }
  // The reader port whose cursor set the last bound (-1: none), and that cursor.
  int holder() const noexcept { return holder_; }
  uint64_t holder_cursor() const noexcept { return holder_cursor_; }

  static constexpr int64_t kSpinNs = 50'000;
  static constexpr int64_t kSleepSliceNs = 100'000'000;  // a lost or scribbled bell costs at most this

 private:
  // Makes room for a record of `rec` bytes at tail_ (plus the next record's commit word),
  // padding to the lap's end first if it does not fit before it.
  int reserve(uint64_t rec, int64_t timeout_ns) noexcept;
  bool room(uint64_t end) noexcept;
  uint64_t compute_limit() noexcept;
  int wait_for_space(uint64_t end, int64_t timeout_ns) noexcept;
  Record* at(uint64_t pos) const noexcept { return reinterpret_cast<Record*>(base_ + (pos & mask_)); }
  void put(uint64_t pos, const MsgHeader& h, const void* payload) noexcept;
  // Clears the next word, commits (or, with defer, keeps the commit for end_send()).
  void finish(uint64_t pos, const MsgHeader& h, bool defer = false) noexcept;
  void end_send() noexcept;  // the deferred commit, tail, wakeups

  RingHeader* hdr_ = nullptr;
  char* base_ = nullptr;
  uint64_t cap_ = 0, mask_ = 0;
  uint64_t tail_ = 0;
  // A batch's first commit, stored last (end_send): a reader waiting on it takes the whole
  // batch at once instead of pulling each record's line while we write the next.
  uint64_t deferred_pos_ = 0, deferred_word_ = 0;
  uint64_t limit_ = 0;  // cached bound: positions below it are free
  std::atomic<uint32_t>* bell_ = nullptr;
  std::vector<ReaderPort> readers_;
  std::vector<uint32_t> woken_;  // the sleep word we last woke each reader for
  uint64_t ignored_ = 0, wakeups_ = 0;
  uint32_t space_gen_ = 0;
  uint64_t set_gen_ = 0, published_gen_ = 0, epoch_ = 0;
  int holder_ = -1;
  uint64_t holder_cursor_ = 0;
  uint64_t min_cursor_ = 0;     // of the last bound
  // set_max_records: the end of record k at ends_[k & ends_mask_]; records below read_ are
  // known read by every reader, sent_ counts all. A power-of-two ring of plain stores: the
  // per-record cost is one store, and a full window is freed by a sequential scan.
  uint32_t max_records_ = 0;
  uint64_t sent_ = 0, read_ = 0, ends_mask_ = 0;
  std::vector<uint64_t> ends_;
  bool records_room() noexcept;
  PingFn ping_ = nullptr;
  void* ping_ctx_ = nullptr;
};

// A record as the reader found it: every field a local copy, checked.
struct RecordView {
  uint64_t pos;
  uint64_t next;
  MsgHeader hdr;        // sender: the ring's writer as given to attach, never read from the ring
  const char* payload;  // hdr.size bytes inside the mapping
};

enum class Peek { kReady, kEmpty, kCorrupt };

// The reader's side of one writer's ring, mapped read-only.
class RingReader {
 public:
  // mem/bytes: the mapping (bytes from the reader's own fstat, never the header's word).
  // sender: the ring's writer as the registry's directory says (the ring's own
  // writer_pid word is its writer's to rewrite, so it is never trusted). cursor: this
  // ring's word in the reader's own page; writer_bell: how to wake the writer when it
  // sleeps for space. Starts at the writer's current tail.
  int attach(const void* mem, uint64_t bytes, uint32_t sender, std::atomic<uint64_t>* cursor,
             std::atomic<uint32_t>* writer_bell) noexcept;
  // As attach, starting at `start` when it is a record boundary no later than the tail and
  // within a lap of it (a cursor the registry set before the ring's writer began), else at
  // the tail. guard_gen > 0: the writer may not count this reader yet; until the ring's
  // bound_gen reaches guard_gen every record is checked against the tail (a lapped
  // reader restarts at the tail, counted in lapped()) instead of being taken for corrupt.
  int attach_at(const void* mem, uint64_t bytes, uint32_t sender, std::atomic<uint64_t>* cursor,
                std::atomic<uint32_t>* writer_bell, uint64_t start, uint64_t guard_gen) noexcept;
  // After copying v's payload: false if the writer may have overwritten it meanwhile (only
  // while guarded; the copy must then be dropped and peek() called again).
  bool intact(const RecordView& v) noexcept {
    return guard_gen_ == 0 || !overrun(v.pos, v.pos + kRecHeader + v.hdr.size);
  }
  bool guarded() const noexcept { return guard_gen_ != 0; }
  // Raises the generation a guarded reader waits for (a joining reader learns the one it
  // was activated at after attaching its rings).
  void set_guard_gen(uint64_t g) noexcept {
    if (guard_gen_ != 0 && g > guard_gen_) guard_gen_ = g;
  }
  uint64_t lapped() const noexcept { return lapped_; }
  // Readable end of what the writer committed (RingHeader.tail, acquire).
  uint64_t writer_tail() const noexcept { return hdr_->tail.load(std::memory_order_acquire); }
  // The record at the cursor (pads passed). kCorrupt is sticky: the ring is then never
  // read again (its writer broke the format; other rings are unaffected). Inline: it runs
  // once per message, and an unguarded reader needs only peek_lap.
  Peek peek(RecordView* v) noexcept {
    if (guard_gen_ != 0) return peek_guarded(v);
    const Peek p = peek_lap(v);
    if (p == Peek::kCorrupt) corrupt_ = true;
    return p;
  }
  // Local move past v (call publish() to let the writer reuse the space).
  void advance(const RecordView& v) noexcept { pos_ = v.next; }
  // Stores the cursor (release) and wakes the writer if it sleeps for space.
  void publish() noexcept;
  // peek + copy + advance + publish. Returns size, -EAGAIN, -EBADMSG (corrupt), -EMSGSIZE
  // (hdr filled, record kept).
  int read(MsgHeader* hdr, void* buf, uint32_t cap) noexcept;
  // Visits up to max records in place, then publishes once. Returns how many, or
  // -EAGAIN / -EBADMSG if none.
  template <typename Fn>
  int consume(uint32_t max, Fn&& fn) noexcept {
    uint32_t got = 0;
    RecordView v;
    Peek p = Peek::kEmpty;
    while (got < max && (p = peek(&v)) == Peek::kReady) {
      fn(v);
      advance(v);
      ++got;
    }
    if (got > 0) publish();
    if (got == 0) return p == Peek::kCorrupt ? -EBADMSG : -EAGAIN;
    return static_cast<int>(got);
  }
  // A cheap look: is a record (or corruption) waiting at the cursor?
  bool ready() noexcept;
  // Has the writer published (RingHeader.tail, stored once per send or batch) past our
  // cursor? A caught-up reader that polls this instead of the next commit word leaves
  // the record lines alone while the writer fills them.
  bool tail_past() const noexcept { return hdr_->tail.load(std::memory_order_relaxed) > pos_; }
  bool corrupt() const noexcept { return corrupt_; }
  uint64_t cursor() const noexcept { return pos_; }
  uint64_t prio_seq() const noexcept { return hdr_->prio_seq.load(std::memory_order_acquire); }
  uint32_t writer_pid() const noexcept { return pid_; }

 private:
  const RingHeader* hdr_ = nullptr;
  const char* base_ = nullptr;
  uint64_t cap_ = 0, mask_ = 0;
  uint64_t pos_ = 0;
  uint32_t pid_ = 0;
  bool corrupt_ = false;
  std::atomic<uint64_t>* cursor_ = nullptr;
  std::atomic<uint32_t>* writer_bell_ = nullptr;
  uint32_t woken_ = 0;        // the writer's space_sleep word we last woke it for
  uint64_t guard_gen_ = 0;    // > 0: guarded until bound_gen >= this ...
  uint64_t guard_epoch_ = 0;  // ... and bound_epoch > this
  uint64_t lapped_ = 0;
  // Guarded: may the writer have overwritten the record at pos (whose commit word was
  // `word`, 0 if it was not a record)? Then restarts at the tail. Clears the guard once the
  // writer's bounds count us.
  bool overrun(uint64_t pos, uint64_t word) noexcept;
  Peek peek_guarded(RecordView* v) noexcept;
  // peek without the guard; the pad at a lap's end out of line.
  Peek peek_lap(RecordView* v) noexcept {
    if (corrupt_) return Peek::kCorrupt;
    const uint64_t off = pos_ & mask_;  // 32-aligned, so a whole Record fits below cap_
    const Record* r = reinterpret_cast<const Record*>(base_ + off);
    // SYNC POINT READ: commit. Seeing the end makes the record visible.
    const uint64_t w = r->commit.load(std::memory_order_acquire);
    if (w & kPad) [[unlikely]]
      return peek_pad(v, w, off);
    return take(v, r, w, off);
  }
  Peek peek_pad(RecordView* v, uint64_t w, uint64_t off) noexcept;
  // The record r at offset off whose commit word is w, checked.
  Peek take(RecordView* v, const Record* r, uint64_t w, uint64_t off) noexcept {
    if ((w & ~kEndMask) != 0) return Peek::kCorrupt;
    if (w <= pos_) return Peek::kEmpty;  // an earlier lap's word, or cleared
    const uint64_t n = w - pos_;
    if (n < kRecHeader || n > kRecHeader + kMaxPayload) return Peek::kCorrupt;
    const uint32_t size = static_cast<uint32_t>(n - kRecHeader);
    const uint64_t rec = rec_bytes(size);
    if (off + rec > cap_) return Peek::kCorrupt;  // a writer pads instead
    v->pos = pos_;
    v->next = pos_ + rec;
    v->hdr.type = r->type;
    v->hdr.size = size;
    v->hdr.sender = pid_;
    v->hdr.receiver = r->receiver;
    v->hdr.priority = r->priority;
    v->payload = reinterpret_cast<const char*>(r) + kRecHeader;
    return Peek::kReady;
  }
};

// A reader's sleep across all its rings: the sleep word in its page, its bell.
class ReaderSleep {
 public:
  ReaderSleep(std::atomic<uint32_t>* sleep_word, std::atomic<uint32_t>* bell) noexcept
      : sleep_(sleep_word), bell_(bell) {}
  // Sleeps until `any_ready()` (called after announcing the sleep) or a bell, at most
  // slice_ns. Returns 0 (woken or ready) or -ETIMEDOUT.
  template <typename Ready>
  int sleep(Ready any_ready, int64_t slice_ns) noexcept {
    disarm();
    const uint32_t v = bell_->load(std::memory_order_acquire);
    // SYNC POINT STORE-LOAD: data sleep. We store odd, then re-check the rings; a writer
    // stores its commit, then loads our sleep word (Dekker; we pay for both sides:
    // base/membarrier.h, the writer's side is RingWriter::end_send).
    sleep_->store(++gen_, std::memory_order_seq_cst);  // odd: asleep
    heavy_fence();
    int rc = 0;
    if (!any_ready()) rc = wait(v, slice_ns);
    sleep_->store(++gen_, std::memory_order_relaxed);  // even: awake
    return rc;
  }
  // For a reader that waits on its notify descriptor instead: announced asleep (writers
  // wake it once per arm), until disarm() or the next sleep().
  void arm() noexcept {
    if ((gen_ & 1u) != 0) ++gen_;  // a new sleep value: every writer wakes it again
    // SYNC POINT STORE-LOAD: data sleep (the caller re-checks its rings after this).
    sleep_->store(++gen_, std::memory_order_seq_cst);
    heavy_fence();
  }
  void disarm() noexcept {
    if ((gen_ & 1u) != 0) sleep_->store(++gen_, std::memory_order_relaxed);
  }

 private:
  int wait(uint32_t v, int64_t slice_ns) noexcept;
  std::atomic<uint32_t>* sleep_;
  std::atomic<uint32_t>* bell_;
  uint32_t gen_ = 0;  // even: awake; the page starts at 0
};

}  // namespace fwipc::shm::v2

namespace fwipc::shm::v2 {

// A reader's merge of several writers' rings (RING-V2.md section 5). Round robin, a
// batch per turn, while no priority != 0 message is in play: one writer cannot starve
// another. Once a ring's prio_seq moves, everything committed is drained into a bounded
// local heap ordered by (priority desc, arrival asc), arrival being the order of the
// drain: a sender's equal-priority messages keep their order. Records addressed to
// another PID are passed over. One thread.
class RingSet {
 public:
  static constexpr uint32_t kTurn = 64;  // records taken from one ring before the next
  RingSet(uint32_t self_pid, uint32_t heap_max = 4096) : self_(self_pid), heap_max_(heap_max) {}
  // Adds an attached reader (not owned) under ring index idx; replaces one there.
  void add(uint32_t idx, RingReader* r);
  void remove(uint32_t idx);
  // The next message in delivery order: size, -EAGAIN, -EMSGSIZE (hdr filled, kept), or
  // -EBADMSG once for each ring found corrupt (corrupt_ring() names the last; the ring
  // is then left out).
  int receive(MsgHeader* hdr, void* buf, uint32_t cap);
  // Visits up to max messages for us in delivery order, in place where no priority is in
  // play and the ring is not guarded (else copies), publishing each ring's cursor once.
  // Returns how many, or -EAGAIN / -EBADMSG as receive.
  template <typename Fn>
  int consume(uint32_t max, Fn&& fn);
  // Anything (or a corruption to report) waiting?
  bool ready();
  // The next message already taken into the heap, reading no ring (an evicted reader's
  // last ones): size, -EAGAIN if none, -EMSGSIZE (hdr filled, kept).
  int take_queued(MsgHeader* hdr, void* buf, uint32_t cap);
  int corrupt_ring() const noexcept { return corrupt_idx_; }
  size_t queued() const noexcept { return heap_.size(); }

 private:
  struct Slot {
    uint32_t idx;
    RingReader* r;
    uint64_t prio_seen;
  };
  struct Pending {
    MsgHeader hdr;
    uint64_t arrival;
    std::vector<char> payload;
  };
  bool mine(const MsgHeader& h) const noexcept { return h.receiver == 0 || h.receiver == self_; }
  bool priorities_moved() noexcept;
  int drain();  // into the heap; -EBADMSG if a ring turned corrupt
  int report_corrupt(size_t i);

  uint32_t self_;
  uint32_t heap_max_;
  std::vector<Slot> rings_;
  size_t next_ = 0;     // round robin position
  uint32_t taken_ = 0;  // from rings_[next_] this turn
  std::vector<Pending> heap_;
  uint64_t arrivals_ = 0;
  int corrupt_idx_ = -1;
};

template <typename Fn>
int RingSet::consume(uint32_t max, Fn&& fn) {
  uint32_t got = 0;
  char buf[kMaxPayload];
  MsgHeader h;
  // The heap, or a guarded ring next: copies, one by one.
  auto copied = [&]() {
    const int rc = receive(&h, buf, sizeof buf);
    if (rc >= 0) fn(h, buf), ++got;
    return rc;
  };
  if (!heap_.empty() || priorities_moved()) {
    while (got < max && copied() >= 0) {
    }
    return got > 0 ? int(got) : copied();
  }
  for (size_t tried = 0; tried <= rings_.size() && !rings_.empty() && got < max; ++tried) {
    if (next_ >= rings_.size()) next_ = 0;
    RingReader* r = rings_[next_].r;
    if (r->guarded()) {
      if (copied() < 0) break;
      continue;
    }
    RecordView v;
    Peek p = Peek::kEmpty;
    uint32_t turn = 0;
    while (got < max && turn < kTurn && (p = r->peek(&v)) == Peek::kReady) {
      if (mine(v.hdr)) fn(v.hdr, v.payload), ++got, ++turn;
      r->advance(v);
    }
    r->publish();
    if (p == Peek::kCorrupt) {
      if (got > 0) return int(got);  // reported on the next call
      return report_corrupt(next_);
    }
    taken_ = 0;
    ++next_;
  }
  return got > 0 ? int(got) : -EAGAIN;
}

}  // namespace fwipc::shm::v2
