// A QUEUE channel on ring v2 (RING-V2.md), as the registry sees it: the directory and
// bells made at create, a ring per writer and a page per reader made at open, the ops
// members use afterwards (kRingFd, kReaderReady, kEvict), and what a membership's end
// leaves behind (a dead writer's ring drains, then is freed once no reader holds it).
// Only this file writes the directory.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
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
  const int fd = ::memfd_create(v2::memfd_name(what, name).c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
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
  // Ours alone to write, and a restarted registry's, which takes it from a member's
  // descriptor table (adopt_ring2): mode 0600 (a memfd is made 0777), so no member of
  // another uid can reopen it writable through /proc. Sealing it against writes would keep
  // the next registry out too; a member of our own uid could ptrace us anyway.
  if (rc == 0 && ::fchmod(r->dir.fd, 0600) != 0) rc = -errno;
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
    // Its reader's and ours alone to write, a restarted registry included (writers get it
    // read-only): mode 0600, owned by the reader's uid, so no writer of another uid can
    // reopen it writable through /proc, while one of the reader's uid may still take it
    // read-only from the reader's descriptor table while no registry answers. Not sealed
    // against writes: a restarted registry must set its cursor for every ring it adds.
    if (rc >= 0 && ::fchmod(page.fd, 0600) != 0) rc = -errno;
    // (Only root may give it away; a registry of another uid keeps it, and its members of
    // another uid then wait for a registry to pass it.)
    if (rc >= 0 && c.cred.uid != ::geteuid() && ::fchown(page.fd, c.cred.uid, gid_t(-1)) != 0) {
    }
    if (rc >= 0) rc = v2::format_reader_page(page.mem, page.bytes, h->max_rings, h->instance_id, uint32_t(idx));
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
      // A ring, until its writer sealed it, someone could still map writable: not passed yet.
      if (ring && !sealed_for_writes(x.fd)) return fail(-EAGAIN);
      const int ro = reopen_read_only(x.fd);
      if (ro < 0) return fail(ro);
      pass(ro, true);
      return fail(0);
    }
    case Op::kReaderReady: {
      if (m.reader_index < 0 || a.index != uint32_t(m.reader_index) || a.state != m.page_state) return fail(-ESTALE);
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
  // Its process writes on through another id (an adopted ring: maybe one that never
  // rejoined; it drains when that process dies, sweep_ring2).
  if (m.writer_index >= 0 && (--r.rings[m.writer_index].users > 0 || r.rings[m.writer_index].adopted))
    m.writer_index = -1;
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
    if (!x.draining) continue;  // (an adopted dead writer's ring has no descriptor)
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

// ---------------------------------------------------------------- after a restart

namespace {

// Every PID in /proc: the processes that may hold a channel's directory.
std::vector<pid_t> all_pids() {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (pid > 0 && *end == '\0') out.push_back(pid_t(pid));
  }
  ::closedir(d);
  return out;
}

// A descriptor of memfd "fwipc-KIND:NAME" that process pid holds, opened with `flags`,
// that check() takes (base/proc.h: our uid's processes or, as root, anyone's); -errno.
int held(pid_t pid, const char* kind, const std::string& name, int flags, const std::function<bool(int)>& check) {
  return open_memfd_of(pid, v2::memfd_name(kind, name), flags, false, check);
}

uint64_t fd_size(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 && st.st_size > 0 ? uint64_t(st.st_size) : 0;
}

// Maps all of fd into *m (taken; closed on failure).
bool map_into(int fd, bool writable, Ring2::Mem* m) {
  const uint64_t bytes = fd_size(fd);
  void* p = bytes == 0 ? MAP_FAILED
                       : ::mmap(nullptr, bytes, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    ::close(fd);
    return false;
  }
  m->fd = fd;
  m->mem = p;
  m->bytes = bytes;
  return true;
}

}  // namespace

// The directory from whoever holds it (members keep it open; the creator first), read-write
// (it is 0600, ours: create_ring2), the bells from any member, then each live writer's
// ring and each live reader's page from their own descriptor tables. What belonged to a
// process that is gone is released as its connection's end would have: its ring drains,
// its page goes. The rest stays `adopted` until its process rejoins or dies.
bool Server::adopt_ring2(Channel& ch, uint64_t instance_id) {
  auto r = std::make_unique<Ring2>();
  const auto dir_ok = [&](int fd) {
    v2::DirHeader h;
    return ::pread(fd, &h, sizeof h, 0) == ssize_t(sizeof h) && h.magic == v2::kDirMagic &&
           h.instance_id == instance_id && h.closed.load(std::memory_order_relaxed) == 0;
  };
  int fd = held(ch.creator_pid, "dir", ch.name, O_RDWR, dir_ok);
  if (fd < 0)
    for (pid_t p : all_pids())
      if ((fd = held(p, "dir", ch.name, O_RDWR, dir_ok)) >= 0) break;
  if (fd < 0 || !map_into(fd, true, &r->dir) || r->w.attach(r->dir.mem, r->dir.bytes) < 0) return false;
  const v2::DirHeader* h = r->w.header();
  std::vector<pid_t> pids{ch.creator_pid};
  for (uint32_t i = 0; i < h->max_rings; ++i)
    if (r->w.ring(i).status() == v2::kActive) pids.push_back(pid_t(r->w.ring(i).pid));
  for (uint32_t i = 0; i < h->max_readers; ++i)
    if (r->w.reader(i).status() != v2::kFree) pids.push_back(pid_t(r->w.reader(i).pid));
  const uint64_t bells = v2::bells_bytes(h->max_rings, h->max_readers);
  fd = -ENOENT;
  for (pid_t p : pids)
    if ((fd = held(p, "bells", ch.name, O_RDWR, [&](int f) { return fd_size(f) >= bells; })) >= 0) break;
  if (fd < 0 || !map_into(fd, true, &r->bells)) return false;
  r->rings.resize(h->max_rings);
  r->pages.resize(h->max_readers);
  for (uint32_t i = 0; i < h->max_rings; ++i) {
    const v2::EntryView e = r->w.ring(i);
    if (e.status() != v2::kActive && e.status() != v2::kDraining) continue;
    Ring2::Mem& x = r->rings[i];
    x.state = e.state;
    if (e.status() == v2::kActive && process_alive(pid_t(e.pid), e.start_time))
      x.fd = held(pid_t(e.pid), "ring", ch.name, O_RDONLY, [&](int f) {
        return v2::is_ring_of(f, instance_id, i) && fd_size(f) >= v2::ring_bytes(h->ring_capacity);
      });
    if (x.fd >= 0) {
      x.bytes = fd_size(x.fd);
      x.adopted = true;
      continue;
    }
    // Its writer is gone (or its ring with it): what it committed still drains.
    if (e.status() == v2::kActive) r->w.drain_ring(i, e.state);
    x.state = r->w.ring(i).state;
    x.draining = true;
  }
  for (uint32_t i = 0; i < h->max_readers; ++i) {
    const v2::EntryView e = r->w.reader(i);
    if (e.status() == v2::kFree) continue;
    // A joining reader's open fails without the registry that made its page: it is gone.
    const int f = e.status() == v2::kJoining || !process_alive(pid_t(e.pid), e.start_time)
                      ? -ESRCH
                      : held(pid_t(e.pid), "rdr", ch.name, O_RDWR, [&](int g) {
                          v2::ReaderPage pg;
                          return ::pread(g, &pg, offsetof(v2::ReaderPage, sleep), 0) ==
                                     ssize_t(offsetof(v2::ReaderPage, sleep)) &&
                                 pg.magic == v2::kRingMagic && pg.version == v2::kRingVersion &&
                                 pg.instance_id == instance_id && pg.reader_index == i &&
                                 fd_size(g) >= v2::reader_page_bytes(h->max_rings);
                        });
    Ring2::Mem& x = r->pages[i];
    if (f < 0 || !map_into(f, true, &x)) {
      r->w.free_reader(i, e.state);
      continue;
    }
    x.state = e.state;
    x.adopted = true;
  }
  ch.v2 = std::move(r);
  ring_readers(*ch.v2);  // the directory changed under them
  ring_writers(*ch.v2);
  settle_rings(ch);
  ticking_ = true;
  return true;
}

// kRejoin: the asker must be the process the directory names for what it claims, and hold
// it still unclaimed (a page) or adopted (a ring: every id of its process shares it).
int Server::rejoin_ring2(Client& c, Channel& ch, const RejoinArgs& a, Membership& m) {
  Ring2& r = *ch.v2;
  const v2::DirHeader* h = r.w.header();
  if (h->closed.load(std::memory_order_relaxed)) return -EPIPE;
  const auto ours = [&](const v2::EntryView& e, uint64_t state) {
    return e.state == state && e.pid == uint32_t(c.cred.pid) && e.start_time == c.start_time;
  };
  const bool ring = a.ring_index >= 0, page = a.reader_index >= 0;
  if (!ring && !page) return -EINVAL;
  if (ring && (uint32_t(a.ring_index) >= h->max_rings || !r.rings[a.ring_index].adopted ||
               !ours(r.w.ring(uint32_t(a.ring_index)), a.ring_state)))
    return -ESTALE;
  if (page && (uint32_t(a.reader_index) >= h->max_readers || !r.pages[a.reader_index].adopted ||
               !ours(r.w.reader(uint32_t(a.reader_index)), a.page_state)))
    return -ESTALE;
  const bool creator = a.creator != 0;
  if (creator && !(ch.adopted && !ch.name.empty() && ch.creator_pid == c.cred.pid && ch.creator_start == c.start_time))
    return -ESTALE;
  if (ring) {
    ++r.rings[a.ring_index].users;
    m.writer_index = a.ring_index;
    m.ring_state = a.ring_state;
    m.writer_state = uint32_t(a.ring_state);
  }
  if (page) {
    r.pages[a.reader_index].adopted = false;  // its connection tells us when it ends now
    m.reader_index = a.reader_index;
    m.page_state = a.page_state;
    m.reader_state = uint32_t(a.page_state);
  }
  if (creator) {
    m.creator = true;
    m.creator_reads = page;
    ch.adopted = false;  // its close (or death) unlinks the name now
  }
  return 0;
}

// Members of a previous registry that have not rejoined: a dead writer's ring drains, a
// dead reader's page goes. Returns whether any is left to watch or to settle.
bool Server::sweep_ring2(Channel& ch) {
  Ring2& r = *ch.v2;
  bool any = false, changed = false;
  // Adopted, and still the live process's its entry names: watched on (any).
  const auto held = [&](const Ring2::Mem& x, const v2::EntryView& e) {
    const bool yes = x.adopted && e.state == x.state && process_alive(pid_t(e.pid), e.start_time);
    any = any || yes;
    return yes || !x.adopted;
  };
  for (uint32_t i = 0; i < r.rings.size(); ++i) {
    Ring2::Mem& x = r.rings[i];
    const v2::EntryView e = r.w.ring(i);
    if (held(x, e)) continue;
    if (e.state == x.state && e.status() == v2::kActive) r.w.drain_ring(i, x.state);
    x.state = r.w.ring(i).state;
    x.draining = true;
    x.adopted = false;
    changed = true;
  }
  for (uint32_t i = 0; i < r.pages.size(); ++i) {
    Ring2::Mem& x = r.pages[i];
    if (held(x, r.w.reader(i))) continue;
    r.w.free_reader(i, x.state);
    unmap(x);
    changed = true;
  }
  if (changed) {
    ring_readers(r);
    ring_writers(r);
  }
  return settle_rings(ch) || any;
}

}  // namespace fwipc::registry
