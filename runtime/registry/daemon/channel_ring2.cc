// A QUEUE channel on ring v2 (RING-V2.md), as the registry sees it: the directory and
// bells made at create, a ring per writer and a page per reader made at open, the ops
// members use afterwards (kRingFd, kReaderReady, kEvict), and what a membership's end
// leaves behind (a dead writer's ring drains, then is freed once no reader holds it).
// Only this file writes the directory.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "base/futex.h"
#include "base/perm.h"
#include "base/proc.h"
#include "ipc.h"
#include "runtime/registry/daemon/server.h"
#include "transports/shm/wring.h"

namespace fwipc::registry {

namespace v2 = shm::v2;

bool sealed_for_writes(int fd) {
  const int s = ::fcntl(fd, F_GET_SEALS);
  return s >= 0 && (s & F_SEAL_FUTURE_WRITE) != 0;
}

namespace {

constexpr uint32_t kMaxRings = 1024;  // writer handles per channel (RING-V2.md section 8)
constexpr uint64_t kMaxRingBytes = 4u << 20;

void unmap(Ring2::Mem& m) {
  if (m.mem != nullptr) ::munmap(m.mem, m.bytes);
  if (m.fd >= 0) ::close(m.fd);
  m = Ring2::Mem{};
}

uint64_t page_round(uint64_t n) { return (n + 4095) & ~uint64_t(4095); }

// A zero-filled memfd of `bytes`, its size sealed (no mapping of it can ever fault),
// mapped read-write when `map`. 0 or -errno.
int make(const char* what, const std::string& name, uint64_t bytes, bool map, Ring2::Mem* out) {
  char n[96];
  std::snprintf(n, sizeof n, "fwipc-%s:%s", what, name.c_str());
  const int fd = ::memfd_create(n, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -errno;
  bytes = page_round(bytes);
  int rc = ::ftruncate(fd, off_t(bytes)) == 0 ? ::posix_fallocate(fd, 0, off_t(bytes)) : errno;
  if (rc == 0 && ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) rc = errno;
  void* p = nullptr;
  if (rc == 0 && map) {
    p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) rc = errno, p = nullptr;
  }
  if (rc != 0) {
    ::close(fd);
    return -rc;
  }
  *out = Ring2::Mem{fd, p, bytes, 0, false};
  return 0;
}

// Each writer's ring holds the channel's buffer_size in messages (ipc.h: slots of the
// largest message), so a writer may have as many unread as a v4 channel holds in all.
uint64_t ring_capacity(uint32_t slots) {
  const uint64_t want = std::min<uint64_t>(uint64_t(slots) * v2::kMaxRecord + 2 * v2::kRecAlign, kMaxRingBytes);
  uint64_t c = v2::kMinCapacity;
  while (c < want) c <<= 1;
  return c;
}

void ring_bell(Ring2& r, uint32_t i) {
  auto* b = static_cast<v2::Bell*>(r.bells.mem);
  if (b == nullptr || uint64_t(i + 1) * sizeof(v2::Bell) > r.bells.bytes) return;
  b[i].word.fetch_add(1, std::memory_order_release);
  futex_wake_all(&b[i].word);
}

// After a directory change: every reader re-reads it now rather than at its next slice.
void ring_readers(Ring2& r) {
  const auto* h = r.w.header();
  for (uint32_t i = 0; i < h->max_readers; ++i)
    if (r.pages[i].fd >= 0) ring_bell(r, h->max_rings + i);
}

void ring_writers(Ring2& r) {
  for (uint32_t i = 0; i < r.rings.size(); ++i)
    if (r.rings[i].fd >= 0) ring_bell(r, i);
}

}  // namespace

Ring2::~Ring2() {
  for (auto& m : rings) unmap(m);
  for (auto& m : pages) unmap(m);
  unmap(bells);
  unmap(dir);
}

int Server::create_ring2(Client& c, Channel& ch, uint32_t creator_mode, Membership& m) {
  auto r = std::make_unique<Ring2>();
  v2::DirParams p;
  std::random_device rd;
  p.instance_id = (uint64_t(rd()) << 32) | rd();
  p.overflow = ch.overflow;
  p.evict_after_ms = ch.overflow == IPC_OVERFLOW_EVICT ? ch.evict_after_ms : 0;
  p.creator_pid = uint32_t(c.cred.pid);
  p.max_rings = kMaxRings;
  p.max_readers = v2::kMaxDirReaders;
  auto slots = shm::Segment::slots_for_capacity(ch.capacity);
  p.ring_records = slots ? *slots : shm::kDefaultSlots;
  p.ring_capacity = uint32_t(ring_capacity(p.ring_records));
  int rc = make("dir", ch.name, v2::directory_bytes(p.max_rings, p.max_readers), true, &r->dir);
  if (rc == 0) rc = v2::DirWriter::format(r->dir.mem, r->dir.bytes, p);
  if (rc == 0) rc = r->w.attach(r->dir.mem, r->dir.bytes);
  // Ours alone to write: sealed after our mapping, so no member's reopen can write it.
  if (rc == 0 && ::fcntl(r->dir.fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) != 0) rc = -errno;
  if (rc == 0) rc = make("bells", ch.name, v2::bells_bytes(p.max_rings, p.max_readers), true, &r->bells);
  if (rc < 0) return 1;  // no memfd or memory: a socket channel instead
  r->rings.resize(p.max_rings);
  r->pages.resize(p.max_readers);
  ch.v2 = std::move(r);
  // A pure writer has no page (it never holds anyone back), a pure reader no ring.
  return open_ring2(c, ch, creator_mode & IPC_MODE_READ, creator_mode & IPC_MODE_WRITE, m);
}

int Server::open_ring2(Client& c, Channel& ch, bool want_read, bool want_write, Membership& m) {
  Ring2& r = *ch.v2;
  const v2::DirHeader* h = r.w.header();
  if (h->closed.load(std::memory_order_relaxed)) return -EPIPE;
  const int dir_ro = reopen_read_only(r.dir.fd);
  if (dir_ro < 0) return dir_ro;
  pass(dir_ro, true);
  pass(r.bells.fd, false);
  // A process's writers on one channel share its ring, so what it sends through any of
  // its ids keeps its order (its runtime shares the writer too, by ring index).
  const Membership* mine = nullptr;
  for (const auto& [h, other] : c.members)
    if (other.ch == &ch && other.writer_index >= 0) mine = &other;
  if (want_write && mine != nullptr) {
    Ring2::Mem& x = r.rings[mine->writer_index];
    ++x.users;
    m.writer_index = mine->writer_index;
    m.ring_state = mine->ring_state;
    m.writer_state = mine->writer_state;
    pass(x.fd, false);
  } else if (want_write) {
    uint64_t st = 0;
    const int idx = r.w.add_ring(uint32_t(c.cred.pid), c.cred.uid, c.start_time, &st);
    if (idx < 0) return idx;
    Ring2::Mem ring;
    int rc = make("ring", ch.name, v2::ring_bytes(h->ring_capacity), true, &ring);
    if (rc == 0)
      rc = v2::format_ring(ring.mem, ring.bytes, h->ring_capacity, uint32_t(c.cred.pid), uint32_t(idx), h->instance_id);
    if (rc < 0) {
      unmap(ring);
      r.w.free_ring(uint32_t(idx), st);
      return rc;
    }
    ::munmap(ring.mem, ring.bytes);  // the writer's to write from now on
    ring.mem = nullptr;
    ring.state = st;
    ring.users = 1;
    r.rings[idx] = ring;
    // Every reader reads the new ring from its first record: its writer has not got the
    // descriptor yet, so a cursor of 0 is its tail, and the writer counts these cursors
    // from its first bound.
    for (auto& pg : r.pages)
      if (pg.mem != nullptr) static_cast<v2::ReaderPage*>(pg.mem)->cursor[idx].store(0, std::memory_order_release);
    m.writer_index = idx;
    m.ring_state = st;
    m.writer_state = uint32_t(st);
    pass(ring.fd, false);
  }
  if (want_read) {
    uint64_t st = 0;
    const int idx = r.w.add_reader(uint32_t(c.cred.pid), c.cred.uid, c.start_time, &st);
    Ring2::Mem page;
    int rc = idx;
    if (idx >= 0) rc = make("rdr", ch.name, v2::reader_page_bytes(h->max_rings), true, &page);
    if (rc >= 0) rc = v2::format_reader_page(page.mem, page.bytes, h->max_rings);
    if (rc < 0) {
      unmap(page);
      if (idx >= 0) r.w.free_reader(uint32_t(idx), st);
      if (m.writer_index >= 0 && --r.rings[m.writer_index].users == 0) {
        r.w.free_ring(uint32_t(m.writer_index), m.ring_state);
        unmap(r.rings[m.writer_index]);
      }
      m.writer_index = -1;
      return rc;
    }
    page.state = st;
    r.pages[idx] = page;
    m.reader_index = idx;
    m.page_state = st;
    m.reader_state = uint32_t(st);
    pass(page.fd, false);
  }
  return 0;
}

Reply Server::ring2_op(Client& c, const Request& rq) {
  Reply rep{};
  rep.reader_index = rep.writer_index = -1;
  auto it = c.members.find(rq.handle);
  if (it == c.members.end()) {
    rep.status = -EBADF;
    return rep;
  }
  Membership& m = it->second;
  if (m.ch->v2 == nullptr) {
    rep.status = -EOPNOTSUPP;
    return rep;
  }
  Ring2& r = *m.ch->v2;
  Ring2Args a;
  static_assert(sizeof a <= sizeof rq.name);
  std::memcpy(&a, rq.name, sizeof a);
  const v2::DirHeader* h = r.w.header();
  auto fail = [&](int e) {
    rep.status = e;
    return rep;
  };
  switch (static_cast<Op>(rq.op)) {
    case Op::kRingFd: {
      // Rings to readers, pages to writers: nobody else has a use for them.
      const bool ring = a.kind == kRing2Ring;
      if (ring ? m.reader_index < 0 : m.writer_index < 0) return fail(-EPERM);
      if (a.index >= (ring ? h->max_rings : h->max_readers)) return fail(-EINVAL);
      const Ring2::Mem& x = ring ? r.rings[a.index] : r.pages[a.index];
      const v2::EntryView e = ring ? r.w.ring(a.index) : r.w.reader(a.index);
      if (x.fd < 0 || e.state != a.state) return fail(-ESTALE);
      // Until its owner sealed it, someone could still map it writable: not passed yet.
      if (!sealed_for_writes(x.fd)) return fail(-EAGAIN);
      const int ro = reopen_read_only(x.fd);
      if (ro < 0) return fail(ro);
      pass(ro, true);
      return fail(0);
    }
    case Op::kReaderReady: {
      if (m.reader_index < 0 || a.index != uint32_t(m.reader_index) || a.state != m.page_state) return fail(-ESTALE);
      if (!sealed_for_writes(r.pages[a.index].fd)) return fail(-EPERM);  // writers would map a page others can write
      uint64_t st = m.page_state;
      if (int rc = r.w.activate_reader(a.index, &st); rc < 0) return fail(rc);
      m.page_state = st;
      r.pages[a.index].state = st;
      ring_writers(r);
      return fail(0);
    }
    case Op::kEvict: {
      // The asker's own ring; the reader still at the cursor the asker saw holding it.
      if (m.writer_index < 0 || h->overflow != IPC_OVERFLOW_EVICT) return fail(-EPERM);
      if (a.index >= h->max_readers || r.pages[a.index].mem == nullptr) return fail(-ESTALE);
      const auto* pg = static_cast<const v2::ReaderPage*>(r.pages[a.index].mem);
      if (pg->cursor[m.writer_index].load(std::memory_order_acquire) != a.cursor) return fail(-ESTALE);
      if (int rc = r.w.evict_reader(a.index, a.state); rc < 0) return fail(rc);
      // The entry's state moved (active -> evicted): release_ring2 frees it by this one,
      // else the entry stayed taken for good and every eviction cost a reader slot.
      r.pages[a.index].state = r.w.reader(a.index).state;
      ring_bell(r, h->max_rings + a.index);
      ring_writers(r);
      return fail(0);
    }
    default: return fail(-EOPNOTSUPP);
  }
}

void Server::release_ring2(Membership& m) {
  Ring2& r = *m.ch->v2;
  if (m.reader_index >= 0) {
    r.w.free_reader(uint32_t(m.reader_index), r.pages[m.reader_index].state);
    unmap(r.pages[m.reader_index]);
    m.reader_index = -1;
    ring_writers(r);  // a writer it held re-reads the directory now
  }
  if (m.writer_index >= 0 && --r.rings[m.writer_index].users > 0) m.writer_index = -1;  // its process writes on
  if (m.writer_index >= 0) {
    // What it committed is still delivered: the ring drains, then goes (settle_rings).
    r.w.drain_ring(uint32_t(m.writer_index), m.ring_state);
    r.rings[m.writer_index].draining = true;
    r.rings[m.writer_index].state = r.w.ring(uint32_t(m.writer_index)).state;
    m.writer_index = -1;
    ring_readers(r);
    ticking_ = true;
  }
  settle_rings(*m.ch);
}

// A draining ring is freed once every reader has let go of it (its cursor word detached:
// it found the ring drained, or never attached it) or is gone.
bool Server::settle_rings(Channel& ch) {
  Ring2& r = *ch.v2;
  bool left = false;
  for (uint32_t i = 0; i < r.rings.size(); ++i) {
    Ring2::Mem& x = r.rings[i];
    if (x.fd < 0 || !x.draining) continue;
    bool held = false;
    for (uint32_t j = 0; j < r.pages.size(); ++j) {
      const Ring2::Mem& pg = r.pages[j];
      // An evicted reader reads no ring again (it only drains its heap): it holds none.
      if (pg.mem == nullptr || r.w.reader(j).status() == v2::kEvicted) continue;
      if (static_cast<const v2::ReaderPage*>(pg.mem)->cursor[i].load(std::memory_order_acquire) != v2::kDetached)
        held = true;
    }
    if (held) {
      left = true;
      continue;
    }
    r.w.free_ring(i, x.state);
    unmap(x);
  }
  return left;
}

uint64_t Server::ring2_bytes(const Channel& ch, bool want_read, bool want_write) {
  const v2::DirHeader* h = ch.v2->w.header();
  return (want_write ? page_round(v2::ring_bytes(h->ring_capacity)) : 0) +
         (want_read ? page_round(v2::reader_page_bytes(h->max_rings)) : 0);
}

void Server::close_ring2(Channel& ch) {
  ch.v2->w.close();
  ring_readers(*ch.v2);
  ring_writers(*ch.v2);
}

}  // namespace fwipc::registry
