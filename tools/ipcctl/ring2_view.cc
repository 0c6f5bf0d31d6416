// ipcctl's observer of a ring v2 channel: the directory, every ring and reader page mapped
// read-only, the counters counted record by record. See ring2_view.h.
#include "tools/ipcctl/ring2_view.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/proc.h"
#include "runtime/registry/protocol.h"
#include "tools/ipcctl/view.h"

namespace fwipc::ipcctl {

namespace reg = fwipc::registry;
namespace v2 = fwipc::shm::v2;

RoMap::~RoMap() {
  if (mem != nullptr) ::munmap(const_cast<void*>(mem), bytes);
}

int RoMap::map(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return -errno;
  if (st.st_size <= 0) return -EBADMSG;
  void* p = ::mmap(nullptr, uint64_t(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return -errno;
  mem = p;
  bytes = uint64_t(st.st_size);
  return 0;
}

namespace {

bool capacity_ok(uint64_t c) { return c >= v2::kMinCapacity && c <= v2::kMaxCapacity && (c & (c - 1)) == 0; }

// Line 0 of a ring, every word read once: its capacity if it is a ring of this layout the
// mapping holds, else 0.
uint64_t ring_capacity(const RoMap& m) {
  if (m.bytes < sizeof(v2::RingHeader)) return 0;
  const auto* h = static_cast<const v2::RingHeader*>(m.mem);
  const uint64_t magic = __atomic_load_n(&h->magic, __ATOMIC_RELAXED);
  const uint32_t version = __atomic_load_n(&h->version, __ATOMIC_RELAXED);
  const uint32_t header_bytes = __atomic_load_n(&h->header_bytes, __ATOMIC_RELAXED);
  const uint64_t cap = __atomic_load_n(&h->capacity, __ATOMIC_RELAXED);
  if (magic != v2::kRingMagic || version != v2::kRingVersion || header_bytes != sizeof(v2::RingHeader) ||
      !capacity_ok(cap) || m.bytes < v2::ring_bytes(cap))
    return 0;
  return cap;
}

// A reader page's cursor count, bounded by what the mapping holds; 0 if not a page.
uint32_t page_rings(const RoMap& m) {
  if (m.bytes < v2::reader_page_bytes(1)) return 0;
  const auto* p = static_cast<const v2::ReaderPage*>(m.mem);
  if (__atomic_load_n(&p->magic, __ATOMIC_RELAXED) != v2::kRingMagic ||
      __atomic_load_n(&p->version, __ATOMIC_RELAXED) != v2::kRingVersion)
    return 0;
  const uint64_t fit = (m.bytes - offsetof(v2::ReaderPage, cursor)) / sizeof(uint64_t);
  return uint32_t(std::min<uint64_t>(__atomic_load_n(&p->rings, __ATOMIC_RELAXED), fit));
}

}  // namespace

uint64_t Ring2Observer::Ring::tail() const {
  // SYNC POINT READ: ring tail. The records below it are committed.
  const uint64_t t = hdr()->tail.load(std::memory_order_acquire);
  return t % v2::kRecAlign == 0 ? t : v2::kDetached;
}

uint64_t Ring2Observer::Page::cursor(uint32_t ring) const {
  if (ring >= rings) return v2::kDetached;
  // Relaxed: only compared and counted from; the records themselves are checked when walked.
  return static_cast<const v2::ReaderPage*>(map.mem)->cursor[ring].load(std::memory_order_relaxed);
}

std::unique_ptr<Ring2Observer> Ring2Observer::open(int dir_fd, uint32_t channel) {
  auto o = std::unique_ptr<Ring2Observer>(new Ring2Observer());
  o->channel_ = channel;
  const int rc = o->dir_map_.map(dir_fd);
  ::close(dir_fd);
  if (rc < 0 || o->dir_.attach(o->dir_map_.mem, o->dir_map_.bytes) < 0) return nullptr;
  return o;
}

int Ring2Observer::ask(reg::Client& conn, const std::string& dir, uint32_t kind, uint32_t first, reg::ObserveInfo* out,
                       int* fds) {
  reg::ClientOptions o;
  o.autostart = false;  // an observer never starts a registry
  reg::Request rq{};
  rq.op = static_cast<uint32_t>(reg::Op::kObserve);
  rq.handle = channel_;
  reg::Ring2Args a{};
  a.index = first;
  a.kind = kind;
  std::memcpy(rq.name, &a, sizeof a);
  const int rc = conn.call(dir, o, rq, out, sizeof *out, fds);
  if (rc < 0) return rc;
  return out->status;
}

// Asks for the entries of `want` (index -> the state the directory showed) and maps those
// that come with that state.
int Ring2Observer::fetch(reg::Client& conn, const std::string& dir, uint32_t kind,
                         const std::map<uint32_t, uint64_t>& want) {
  auto next = want.begin();
  // Each answer moves `next` past at least one index, or ends the walk.
  while (next != want.end()) {
    reg::ObserveInfo info{};
    int fds[reg::kReplyFds];
    const int rc = ask(conn, dir, kind, next->first, &info, fds);
    if (rc < 0) {
      for (int f : fds)
        if (f >= 0) ::close(f);
      return rc;
    }
    const uint32_t n = std::min<uint32_t>(info.count, reg::kReplyFds);
    for (uint32_t i = 0; i < uint32_t(reg::kReplyFds); ++i) {
      const int fd = fds[i];
      if (fd < 0) continue;
      auto w = i < n ? want.find(info.index[i]) : want.end();
      // Generations, not whole states: a ring may have gone from active to draining since.
      if (w != want.end() && w->second >> 8 == info.state[i] >> 8) {
        if (kind == reg::kRing2Ring) {
          auto r = std::make_unique<Ring>();
          v2::EntryView e;
          if (r->map.map(fd) == 0 && (r->cap = ring_capacity(r->map)) != 0 && dir_.ring(w->first, &e) &&
              e.state >> 8 == w->second >> 8) {
            r->idx = w->first;
            r->state = e.state;
            r->pid = e.pid;
            r->start_time = e.start_time;
            rings_[r->idx] = std::move(r);
          }
        } else {
          auto p = std::make_unique<Page>();
          if (p->map.map(fd) == 0 && (p->rings = page_rings(p->map)) != 0) {
            p->idx = w->first;
            p->state = w->second;
            pages_[p->idx] = std::move(p);
          }
        }
      }
      ::close(fd);
    }
    if (info.next >= info.table || info.next <= next->first) break;
    next = want.lower_bound(info.next);
  }
  return 0;
}

int Ring2Observer::refresh(reg::Client& conn, const std::string& dir) {
  std::map<uint32_t, uint64_t> want_rings, want_pages;
  for (uint32_t i = 0; i < dir_.max_rings(); ++i) {
    v2::EntryView e;
    if (!dir_.ring(i, &e)) continue;  // changing under us: the next refresh
    const bool live = e.status() == v2::kActive || e.status() == v2::kDraining;
    // The same generation is the same ring (active -> draining); another is a new writer's.
    auto it = rings_.find(i);
    if (it != rings_.end() && live && it->second->state >> 8 == e.state >> 8) {
      it->second->state = e.state;
      continue;
    }
    if (it != rings_.end()) rings_.erase(it);
    if (live) want_rings[i] = e.state;
  }
  for (uint32_t i = 0; i < dir_.max_readers(); ++i) {
    v2::EntryView e;
    if (!dir_.reader(i, &e)) continue;
    // Joining readers' cursors hold nobody yet, evicted ones' no longer.
    const bool live = e.status() == v2::kActive;
    auto it = pages_.find(i);
    if (it != pages_.end() && live && it->second->state >> 8 == e.state >> 8) {
      it->second->state = e.state;
      continue;
    }
    if (it != pages_.end()) pages_.erase(it);
    if (live) want_pages[i] = e.state;
  }
  int rc = want_rings.empty() ? 0 : fetch(conn, dir, reg::kRing2Ring, want_rings);
  if (rc == 0 && !want_pages.empty()) rc = fetch(conn, dir, reg::kRing2Page, want_pages);
  return rc;
}

std::vector<std::pair<uint32_t, uint64_t>> Ring2Observer::cursors_of(const Ring& r, uint64_t tail) const {
  std::vector<std::pair<uint32_t, uint64_t>> out;
  for (const auto& [i, p] : pages_) {
    const uint64_t c = p->cursor(r.idx);  // read once: the reader keeps moving it
    // As a writer judges them (RingWriter::compute_limit): anything else holds nobody.
    if (c != v2::kDetached && c <= tail && tail - c <= r.cap) out.emplace_back(i, c);
  }
  return out;
}

uint64_t count_records(const Ring2Observer::Ring& r, uint64_t from, uint64_t tail, const std::vector<uint64_t>& at,
                       std::vector<uint64_t>* ordinal, bool* whole) {
  ordinal->assign(at.size(), 0);
  *whole = true;
  std::atomic<uint64_t> cursor{0};  // ours alone: the writer never sees it
  std::atomic<uint32_t> bell{0};
  v2::RingReader rd;
  // Guarded for good (no bound_gen reaches ~0): every record is checked against its own
  // commit word after it was read, and a lapped walk restarts at the tail (lapped()).
  if (from > tail || rd.attach_at(r.map.mem, r.map.bytes, r.pid, &cursor, &bell, from, ~0ull) < 0 ||
      rd.cursor() != from) {
    *whole = false;
    return 0;
  }
  uint64_t n = 0;
  size_t k = 0;  // next position of `at` to place
  // At most one record per kRecAlign bytes, plus the pads: a writer lying about its tail
  // cannot keep us here.
  for (uint64_t steps = (tail - from) / v2::kRecAlign + 2; rd.cursor() < tail && steps > 0; --steps) {
    v2::RecordView v;
    const v2::Peek p = rd.peek(&v);
    // Passed a pad up to the tail: everything below it was counted.
    if (rd.lapped() == 0 && (p == v2::Peek::kReady ? v.pos >= tail : p == v2::Peek::kEmpty && rd.cursor() >= tail))
      break;
    // Gone (cleared, lapped: restarted at the tail) or a record across the tail: the
    // writer came round while we walked.
    if (p != v2::Peek::kReady || rd.lapped() != 0 || v.next > tail) {
      *whole = false;
      break;
    }
    while (k < at.size() && at[k] <= v.pos) (*ordinal)[k++] = n;
    ++n;
    rd.advance(v);
  }
  while (k < at.size()) (*ordinal)[k++] = n;
  return n;
}

namespace {

// The oldest record boundary of a wrapped ring that is still there, so that the average
// record size behind an estimate is taken over about a lap, not over the few records of
// the current lap: the lap before `lap` still holds records from just past the current
// lap's tail on, and a position there whose chain of commit words ends exactly at `lap`
// (the pad's word, or a record's end) is taken for one: commit words are absolute
// positions, so payload bytes that chain exactly to `lap` are not plausible, and the walk
// that counts from it checks every record again. `lap` itself when none is found.
uint64_t oldest_boundary(const Ring2Observer::Ring& r, uint64_t tail, uint64_t lap) {
  if (lap < r.cap) return lap;
  const char* base = static_cast<const char*>(r.map.mem) + sizeof(v2::RingHeader);
  const uint64_t mask = r.cap - 1;
  // Past what the current lap overwrote, and what one send may be writing beyond the tail.
  const uint64_t first =
      lap - r.cap + ((tail - lap + v2::kMaxRecord + 2 * v2::kRecAlign) & ~uint64_t(v2::kRecAlign - 1));
  // A record is at most kMaxRecord long: one of these starts one.
  for (uint64_t p = first; p < first + v2::kMaxRecord + v2::kRecAlign && p < lap; p += v2::kRecAlign) {
    uint64_t q = p;
    for (uint64_t steps = r.cap / v2::kRecAlign + 1; q < lap && steps > 0; --steps) {
      const auto* rec = reinterpret_cast<const v2::Record*>(base + (q & mask));
      const uint64_t w = rec->commit.load(std::memory_order_relaxed);
      if (w & v2::kPad) {
        if ((w & ~v2::kPad) == lap && (q & mask) != 0) q = lap;
        break;
      }
      if ((w & ~v2::kEndMask) != 0 || w < q + v2::kRecHeader || w - q > v2::kRecHeader + v2::kMaxPayload) break;
      q += v2::rec_bytes(uint32_t(w - q - v2::kRecHeader));
    }
    if (q == lap) return p;
  }
  return lap;
}

}  // namespace

RingStats Ring2Observer::stats(std::vector<Peer>* readers, std::vector<Peer>* writers) const {
  RingStats s{};
  s.messages_exact = true;
  std::map<uint32_t, uint64_t> lag;  // by reader index
  uint64_t min_depth_total = 0;
  for (const auto& [idx, r] : rings_) {
    const uint64_t tail = r->tail();
    if (tail == v2::kDetached) continue;  // its writer broke the format: readers stop reading it too
    s.refused += r->hdr()->refused.load(std::memory_order_relaxed);
    const auto pc = cursors_of(*r, tail);
    std::vector<uint64_t> cur;
    for (const auto& [pi, c] : pc) cur.push_back(c);
    std::sort(cur.begin(), cur.end());
    // Where to count from: the start while the ring has never wrapped (every record is
    // still there), else the oldest boundary still there (about a lap back) or the
    // slowest cursor.
    const uint64_t lap = tail & ~(r->cap - 1);
    uint64_t from = tail <= r->cap ? 0 : oldest_boundary(*r, tail, lap);
    if (!cur.empty()) from = std::min(from, cur.front());
    std::vector<uint64_t> ord;
    bool whole = true;
    const uint64_t n = count_records(*r, from, tail, cur, &ord, &whole);
    if (!cur.empty()) min_depth_total += n - ord.front();
    for (const auto& [pi, c] : pc) {
      const size_t at = size_t(std::lower_bound(cur.begin(), cur.end(), c) - cur.begin());  // c is in cur
      lag[pi] += n - ord[at];
    }
    if (from == 0 && whole) {
      s.tail += n;
    } else {
      // Bytes before `from` were overwritten: counted at the average record size seen
      // (a 64 B message's when none was), and said to be an estimate.
      const uint64_t avg = n > 0 ? std::max<uint64_t>((tail - from) / n, v2::kRecAlign) : v2::rec_bytes(64);
      s.tail += n + from / avg;
      s.messages_exact = false;
    }
  }
  s.depth = min_depth_total;
  s.slots = dir_.ring_records() != 0 ? dir_.ring_records() : uint32_t(dir_.ring_capacity() / v2::kMaxRecord);
  s.closed = dir_.closed();
  s.evictions = dir_.evictions();
  s.abandoned = 0;  // ring v2 has nothing to abandon: a loan given back publishes nothing
  for (uint32_t i = 0; i < dir_.max_readers() && readers; ++i) {
    v2::EntryView e;
    if (!dir_.reader(i, &e) || e.status() != v2::kActive) continue;
    Peer p{e.pid, process_alive(pid_t(e.pid), e.start_time)};
    auto l = lag.find(i);
    p.lag = l != lag.end() ? l->second : 0;
    p.reads = true;
    readers->push_back(p);
  }
  for (uint32_t i = 0; i < dir_.max_rings() && writers; ++i) {
    v2::EntryView e;
    if (!dir_.ring(i, &e) || e.status() != v2::kActive) continue;
    Peer p{e.pid, process_alive(pid_t(e.pid), e.start_time)};
    p.writes = true;
    writers->push_back(p);
  }
  return s;
}

}  // namespace fwipc::ipcctl
