// ShmRing2: the v2 QUEUE transport (see ring2.h, RING-V2.md sections 4-6).
#include "transports/shm/ring2.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <tuple>

#include "base/cpu.h"
#include "base/proc.h"
#include "base/time.h"
#include "base/unixsock.h"
#include "ipc.h"

namespace fwipc::shm::v2 {

struct ShmRing2::Map {
  int fd = -1;
  void* mem = nullptr;
  uint64_t bytes = 0;
  ~Map() {
    if (mem != nullptr) ::munmap(mem, bytes);
    if (fd >= 0) ::close(fd);
  }
  // Maps all of fd (its size from our own fstat, never from what it holds). Takes fd.
  static std::unique_ptr<Map> of(int fd, bool writable, int* err) noexcept {
    auto m = std::make_unique<Map>();
    m->fd = fd;
    struct stat st;
    if (fd < 0 || ::fstat(fd, &st) != 0 || st.st_size <= 0) {
      *err = fd < 0 ? -EBADF : -EPROTO;
      return nullptr;
    }
    m->bytes = uint64_t(st.st_size);
    void* p = ::mmap(nullptr, m->bytes, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      *err = -errno;
      return nullptr;
    }
    m->mem = p;
    return m;
  }
};

// A writer's ring as one of our readers sees it.
struct ShmRing2::Ring {
  uint64_t state = 0;
  bool draining = false;
  std::unique_ptr<Map> map;
  RingReader r;
};

// A reader's page as one of our writers sees it.
struct ShmRing2::Page {
  uint64_t state = 0;
  std::unique_ptr<Map> map;
};

namespace {

socklen_t notify_addr(uint64_t instance, uint32_t idx, uint64_t state, sockaddr_un* a) {
  std::memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  const int n = std::snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "fwipc2/%016llx/%u/%llx",
                              static_cast<unsigned long long>(instance), idx, static_cast<unsigned long long>(state));
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
}

void ping(uint64_t instance, uint32_t idx, uint64_t state) {
  sockaddr_un a;
  ping_datagram(a, notify_addr(instance, idx, state, &a));
}

// Bell i of the channel's bells page (rings first, then readers; the size was checked
// against the directory's counts at open).
std::atomic<uint32_t>* bell_of(const ShmRing2::Map& bells, uint32_t i) {
  return &static_cast<Bell*>(bells.mem)[i].word;
}

bool page_ok(const ReaderPage* p, uint64_t bytes, uint32_t rings) {
  return bytes >= reader_page_bytes(rings) && p->magic == kRingMagic && p->version == kRingVersion && p->rings >= rings;
}

// A registry call that failed because there is no registry for us: ours is gone (-EPIPE,
// -EBADF: our connection to it is), or none listens (-ENOENT, -ECONNREFUSED).
bool registry_gone(int rc) {
  return rc == -EPIPE || rc == -EBADF || rc == -ENOENT || rc == -ECONNREFUSED || rc == -ECONNRESET || rc == -ENOTCONN;
}

// Without a registry: the descriptor member `pid` holds read-write for its memfd
// "fwipc-KIND:CHANNEL", reopened read-only through /proc (its uid or root only), if it is
// protected as the registry insists before it passes one (sizes sealed; a ring sealed
// against new writable mappings by its writer, a page 0600 so only its reader's uid can
// write it), at least min_bytes long, and check() takes it.
int holder_fd(pid_t pid, const char* kind, const std::string& channel, uint64_t min_bytes,
              const std::function<bool(int fd)>& check) noexcept {
  if (channel.empty()) return -ENOENT;
  const bool ring = std::strcmp(kind, "ring") == 0;
  return open_memfd_of(pid, memfd_name(kind, channel), O_RDONLY, true, [&](int fd) {
    const int want = F_SEAL_SHRINK | F_SEAL_GROW | (ring ? F_SEAL_FUTURE_WRITE : 0);
    const int seals = ::fcntl(fd, F_GET_SEALS);
    struct stat st;
    return seals >= 0 && (seals & want) == want && ::fstat(fd, &st) == 0 && uint64_t(st.st_size) >= min_bytes &&
           (ring || (st.st_mode & 077) == 0) && check(fd);
  });
}

// Whether the directory's PIDs are in our PID namespace (the registry's: it records
// SO_PEERCRED), so that we may look them up in /proc: our own entry (ring or reader `idx`)
// names us. In another namespace (a container) they name other processes or none.
bool pids_are_ours(const DirReader& dir, bool ring, uint32_t idx) noexcept {
  EntryView me;
  return (ring ? dir.ring(idx, &me) : dir.reader(idx, &me)) && me.pid == uint32_t(::getpid());
}

std::atomic<int64_t>& spin_budget() {
  static std::atomic<int64_t> v{50'000};
  return v;
}

}  // namespace

int64_t ShmRing2::spin_ns() noexcept { return spin_budget().load(std::memory_order_relaxed); }
void ShmRing2::set_spin_ns(int64_t ns) noexcept { spin_budget().store(ns, std::memory_order_relaxed); }

// One per ring in a process: every handle of a process on a channel writes through the
// same ring (the registry gives a process's second writer membership the ring its first
// one has), so what a process sends on any of its handles stays in the order it sent it.
struct ShmRing2::Writer {
  std::mutex mu;  // one sending thread at a time; a loan holds it until commit/abandon
  // Set while the holder of mu waits for space: the ring is full, so a non-blocking send
  // fails at once instead of queueing behind it for the lock.
  std::atomic<bool> waiting{false};
  std::shared_ptr<Map> dir_map, bells_map;
  DirReader dir;
  std::unique_ptr<Map> ring_map;
  uint32_t ring_index = 0;
  RingWriter w;
  uint64_t gen = ~0ull;
  std::vector<std::unique_ptr<Page>> pages;  // by reader index
  std::vector<uint32_t> port_reader;         // port -> reader index
  std::string channel;
  // Active readers whose page we could not map (no registry, another uid): each holds us
  // where we were, as if it had read nothing since, until a refresh maps its page.
  std::vector<std::unique_ptr<uint64_t[]>> stand_ins;
  int64_t retry_at_ns = 0;
  uint64_t held_cursor = ~0ull;  // EVICT: the cursor that first held us full, and when
  int64_t held_since = 0;
  uint32_t held_reader = 0;

  std::atomic<uint32_t>* bell(uint32_t i) const noexcept { return bell_of(*bells_map, i); }

  // The process's writer of this ring, made from ro.ring_fd if there is none yet.
  static int get(ShmRing2* t, Roles2& ro, std::shared_ptr<Writer>* out) noexcept {
    static std::mutex mu;
    static std::map<std::tuple<uint64_t, uint32_t, uint32_t>, std::weak_ptr<Writer>> all;
    const auto key = std::make_tuple(t->dir_.instance_id(), uint32_t(ro.ring_index), uint32_t(ro.ring_state));
    std::lock_guard<std::mutex> lk(mu);
    if (auto w = all[key].lock()) {
      *out = std::move(w);
      return 0;
    }
    auto w = std::make_shared<Writer>();
    int err = 0;
    w->ring_map = Map::of(std::exchange(ro.ring_fd, -1), true, &err);
    if (!w->ring_map) return err;
    // From now on nobody, not even a process that reopens the memfd read-write through
    // /proc, can map it writable: the registry passes it to readers only once sealed.
    if (::fcntl(w->ring_map->fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) != 0) return -errno;
    w->dir_map = t->dir_map_;
    w->bells_map = t->bells_map_;
    w->dir = t->dir_;
    w->ring_index = uint32_t(ro.ring_index);
    w->channel = ro.channel;
    if (int rc = w->w.attach(w->ring_map->mem, w->ring_map->bytes, w->bell(w->ring_index)); rc < 0) return rc;
    w->w.set_ping(&Writer::ping_port, w.get());
    w->w.set_max_records(w->dir.ring_records());
    for (auto it = all.begin(); it != all.end();) it = it->second.expired() ? all.erase(it) : std::next(it);
    all[key] = w;
    *out = std::move(w);
    return 0;
  }

  // The readers that hold us back, when the directory's generation moved. Under mu.
  void refresh(Peers& peers) noexcept {
    const uint64_t g = dir.gen();
    const uint32_t n = dir.max_readers();
    if (pages.size() != n) pages.resize(n);
    std::vector<std::unique_ptr<uint64_t[]>> old_stand_ins;
    old_stand_ins.swap(stand_ins);  // the ring writer points into them until set_readers
    std::vector<ReaderPort> ports;
    port_reader.clear();
    const bool pids_ours = pids_are_ours(dir, true, ring_index);
    for (uint32_t i = 0; i < n; ++i) {
      EntryView e;
      const bool active = dir.reader(i, &e) && e.status() == kActive;
      auto& p = pages[i];
      // A dead reader the registry has not freed yet (it may be down) holds nobody back.
      if (!active || (pids_ours && !process_alive(pid_t(e.pid), e.start_time))) {
        p.reset();
        continue;
      }
      if (!p || p->state != e.state) {
        p.reset();
        int fd = peers.page_fd(i, e.state);
        if (fd == -ESTALE) continue;  // gone meanwhile: the next generation says so
        if (registry_gone(fd) && pids_ours)
          fd = holder_fd(pid_t(e.pid), "rdr", channel, reader_page_bytes(dir.max_rings()), [](int) { return true; });
        int err = 0;
        auto m = fd >= 0 ? Map::of(fd, false, &err) : nullptr;
        if (m) ::close(std::exchange(m->fd, -1));  // the mapping is all we need (see attach_ring)
        if (m && page_ok(static_cast<const ReaderPage*>(m->mem), m->bytes, dir.max_rings())) {
          p = std::make_unique<Page>();
          p->state = e.state;
          p->map = std::move(m);
        }
      }
      ReaderPage* pg = p ? static_cast<ReaderPage*>(p->map->mem) : stand_in();
      ports.push_back(
          ReaderPort{&pg->cursor[ring_index], &pg->sleep, bell(dir.max_rings() + i), &pg->armed, &pg->guarded});
      port_reader.push_back(i);
    }
    w.set_readers(ports.data(), uint32_t(ports.size()), g);
    gen = g;
    retry_at_ns = stand_ins.empty() ? 0 : monotonic_ns() + kSliceNs;  // then a stand-in's page again
  }

  // A zeroed page of our own whose cursor on our ring is a lap behind our tail (the oldest
  // record a reader could still be at): no room past the tail until it is replaced.
  ReaderPage* stand_in() {
    const uint64_t bytes = reader_page_bytes(dir.max_rings());
    stand_ins.push_back(std::make_unique<uint64_t[]>((bytes + 7) / 8));
    auto* pg = reinterpret_cast<ReaderPage*>(stand_ins.back().get());
    const uint64_t t = w.tail(), cap = w.capacity();
    pg->cursor[ring_index].store(t > cap ? t - cap : 0, std::memory_order_relaxed);
    return pg;
  }

  static void ping_port(void* ctx, uint32_t port) noexcept {
    auto* t = static_cast<Writer*>(ctx);
    if (port >= t->port_reader.size()) return;
    const uint32_t idx = t->port_reader[port];
    ping(t->dir.instance_id(), idx, t->pages[idx] ? t->pages[idx]->state : 0);
  }

  // IPC_OVERFLOW_EVICT: the registry decides (it checks the reader's cursor); we only tell
  // it which reader has held us at one cursor for too long.
  void maybe_evict(Peers& peers, int64_t now_ns) noexcept {
    if (dir.overflow() != IPC_OVERFLOW_EVICT || dir.evict_after_ms() == 0) return;
    const int port = w.holder();
    if (port < 0 || uint32_t(port) >= port_reader.size()) return;
    const uint32_t idx = port_reader[uint32_t(port)];
    const uint64_t c = w.holder_cursor();
    if (c != held_cursor || idx != held_reader) {
      held_cursor = c, held_reader = idx, held_since = now_ns;
      return;
    }
    if (now_ns - held_since < int64_t(dir.evict_after_ms()) * 1'000'000) return;
    if (pages[idx]) peers.evict(idx, pages[idx]->state, c);
    held_since = now_ns;  // asked; ask again after another bound if still held
  }
};

// ---------------------------------------------------------------- open, close

Result<std::unique_ptr<ShmRing2>> ShmRing2::open(Roles2 roles, std::shared_ptr<Peers> peers, pid_t self) noexcept {
  using R = Result<std::unique_ptr<ShmRing2>>;
  std::unique_ptr<ShmRing2> t(new ShmRing2());
  t->peers_ = std::move(peers);
  t->channel_ = roles.channel;
  const int rc = t->setup(roles, self);
  for (int fd : {roles.dir_fd, roles.bells_fd, roles.ring_fd, roles.page_fd})
    if (fd >= 0) ::close(fd);  // those setup did not take
  if (rc < 0) return R::error(rc);
  return t;
}

int ShmRing2::setup(Roles2& ro, pid_t self) noexcept {
  int err = 0;
  dir_map_ = Map::of(std::exchange(ro.dir_fd, -1), false, &err);
  if (!dir_map_) return err;
  if (int rc = dir_.attach(dir_map_->mem, dir_map_->bytes); rc < 0) return rc;
  bells_map_ = Map::of(std::exchange(ro.bells_fd, -1), true, &err);
  if (!bells_map_) return err;
  if (bells_map_->bytes < bells_bytes(dir_.max_rings(), dir_.max_readers())) return -EPROTO;

  if (ro.ring_index >= 0) {
    if (uint32_t(ro.ring_index) >= dir_.max_rings()) return -EPROTO;
    if (int rc = Writer::get(this, ro, &wr_); rc < 0) return rc;
  }
  if (ro.reader_index >= 0) {
    if (uint32_t(ro.reader_index) >= dir_.max_readers()) return -EPROTO;
    page_map_ = Map::of(std::exchange(ro.page_fd, -1), true, &err);
    if (!page_map_) return err;
    page_ = static_cast<ReaderPage*>(page_map_->mem);
    if (!page_ok(page_, page_map_->bytes, dir_.max_rings())) return -EPROTO;
    reader_index_ = ro.reader_index;
    // The registry's reply carries the state's low 32 bits; the directory has all of it.
    EntryView me;
    if (!dir_.reader(uint32_t(reader_index_), &me) || uint32_t(me.state) != uint32_t(ro.reader_state)) return -EPROTO;
    reader_state_ = me.state;
    rings_.resize(dir_.max_rings());
    set_ = std::make_unique<RingSet>(uint32_t(self));
    sleep_ =
        std::make_unique<ReaderSleep>(&page_->sleep, bell_of(*bells_map_, dir_.max_rings() + uint32_t(reader_index_)));
    // Join: a cursor on every ring, then the registry counts us. Rings we attach now are
    // guarded until their writers' bounds count us (the generation after activation).
    refresh_reader(true);
    if (int rc = peers_->reader_ready(uint32_t(reader_index_), reader_state_); rc < 0) return rc;
    if (!dir_.reader(uint32_t(reader_index_), &me) || (me.state >> 8) != (reader_state_ >> 8)) return -EPROTO;
    reader_state_ = me.state;  // active now: writers ping us under this state
    joined_ = true;
    const uint64_t g = dir_.gen();
    for (auto& r : rings_)
      if (r) r->r.set_guard_gen(g);
  }
  EntryView ring;
  const bool writes = ro.ring_index >= 0 && dir_.ring(uint32_t(ro.ring_index), &ring);
  peers_->held(dir_.instance_id(), writes ? ro.ring_index : -1, writes ? ring.state : 0, reader_index_, reader_state_);
  return 0;
}

ShmRing2::~ShmRing2() {
  if (notify_fd_ >= 0) ::close(notify_fd_);
  // A closed reader holds no writer back, whether or not a registry heard of the close (a
  // restarted one may not know us).
  if (page_ != nullptr && !forgotten_)
    for (uint32_t i = 0; i < dir_.max_rings(); ++i) page_->cursor[i].store(kDetached, std::memory_order_release);
}

void ShmRing2::forget_after_fork() noexcept {
  // The ring and the page are the parent's roles: two writers in one ring would break it.
  forgotten_ = true;
}

// ---------------------------------------------------------------- writer

// Runs op (a RingWriter call) in slices, so a writer blocked on a full ring notices
// readers leaving, the channel closing, and (EVICT) asks for the holder's eviction.
// Under wr_->mu.
template <typename Op>
int ShmRing2::with_room(Op op, int64_t timeout_ns) noexcept {
  Writer& wr = *wr_;
  const Deadline deadline = timeout_ns == 0 ? Deadline::never() : Deadline::after_ns(timeout_ns);
  const int64_t evict_ns =
      dir_.overflow() == IPC_OVERFLOW_EVICT ? int64_t(dir_.evict_after_ms()) * 1'000'000 : kSliceNs;
  int rc = 0;
  for (int round = 0;; ++round) {
    if (dir_.closed()) {
      rc = -EPIPE;
      break;
    }
    // Blocked (round > 0): a slice has passed, so the readers' liveness too.
    if (dir_.gen() != wr.gen || round > 0 || (wr.retry_at_ns != 0 && monotonic_ns() >= wr.retry_at_ns))
      wr.refresh(*peers_);
    // The first try never waits; then in slices, announced to non-blocking senders.
    int64_t slice = round == 0 ? 0 : std::min<int64_t>(kSliceNs, std::max<int64_t>(evict_ns / 2, 1'000'000));
    if (timeout_ns > 0) slice = std::min(slice, deadline.remaining_ns());
    if (round == 1) wr.waiting.store(true, std::memory_order_relaxed);
    rc = op(wr.w, slice);
    if (rc != -ETIMEDOUT && rc != -EAGAIN) break;
    rc = -ETIMEDOUT;
    // Held back, whether we wait here or the caller retries non-blocking sends in its own
    // loop (eventsd's emitters do): maybe_evict times the holder across attempts, as layout
    // 4's evict_stuck_readers does. Only blocking sends used to count, so a stuck reader
    // held non-blocking writers at -EAGAIN forever.
    if (dir_.overflow() == IPC_OVERFLOW_EVICT) wr.maybe_evict(*peers_, monotonic_ns());
    if (timeout_ns == 0 || deadline.expired()) break;
  }
  wr.waiting.store(false, std::memory_order_relaxed);
  if (rc == -ETIMEDOUT) wr.w.count_refused();
  return rc == -ETIMEDOUT && timeout_ns == 0 ? -EAGAIN : rc;
}

// The ring's lock for a send: a non-blocking one does not wait behind a sender that
// waits for space (the ring is full: -EAGAIN), only behind one that is sending.
int ShmRing2::lock_writer(int64_t timeout_ns) noexcept {
  if (!wr_ || forgotten_) return -EBADF;
  if (timeout_ns != 0) {
    wr_->mu.lock();
    return 0;
  }
  while (!wr_->mu.try_lock()) {
    if (wr_->waiting.load(std::memory_order_relaxed)) return -EAGAIN;
    cpu_relax();
  }
  return 0;
}

int ShmRing2::send(const MsgHeader& hdr, const void* payload, int64_t timeout_ns) noexcept {
  if (int rc = lock_writer(timeout_ns); rc < 0) return rc;
  std::lock_guard<std::mutex> lk(wr_->mu, std::adopt_lock);
  return with_room([&](RingWriter& w, int64_t slice) { return w.send(hdr, payload, slice); }, timeout_ns);
}

int ShmRing2::send_batch(const MsgHeader* hdrs, const void* const* payloads, uint32_t n, int64_t timeout_ns) noexcept {
  if (n == 0) return wr_ && !forgotten_ ? 0 : -EBADF;
  if (int rc = lock_writer(timeout_ns); rc < 0) return rc;
  std::lock_guard<std::mutex> lk(wr_->mu, std::adopt_lock);
  // What fits, at once; a blocking send goes on until all of it is in.
  uint32_t done = 0;
  do {
    const int rc = with_room(
        [&](RingWriter& w, int64_t slice) { return w.send_batch(hdrs + done, payloads + done, n - done, slice); },
        timeout_ns);
    if (rc < 0) return done > 0 ? int(done) : rc;
    done += uint32_t(rc);
  } while (done < n && timeout_ns != 0);
  return int(done);
}

int ShmRing2::loan(WLoan* out, int64_t timeout_ns) noexcept {
  if (int rc = lock_writer(timeout_ns); rc < 0) return rc;
  const int rc = with_room([&](RingWriter& w, int64_t slice) { return w.loan(out, slice); }, timeout_ns);
  if (rc < 0) wr_->mu.unlock();
  return rc;
}

int ShmRing2::commit(WLoan* l, const MsgHeader& hdr) noexcept {
  if (!wr_ || !*l) return -EINVAL;
  const int rc = wr_->w.commit(l, hdr);
  wr_->mu.unlock();
  return rc;
}

void ShmRing2::abandon(WLoan* l) noexcept {
  if (!wr_ || !*l) return;
  wr_->w.abandon(l);
  wr_->mu.unlock();
}

// ---------------------------------------------------------------- reader

// The registry that knew us is gone (restarted, or down for now): the writer's own
// descriptor of its ring, if it is that ring of this channel.
int ShmRing2::ring_fd_of_writer(uint32_t idx, const EntryView& e) noexcept {
  if (!pids_are_ours(dir_, false, uint32_t(reader_index_))) return -ESRCH;
  return holder_fd(pid_t(e.pid), "ring", channel_, ring_bytes(dir_.ring_capacity()),
                   [&](int fd) { return is_ring_of(fd, dir_.instance_id(), idx); });
}

bool ShmRing2::attach_ring(uint32_t idx, const EntryView& e, uint64_t guard_gen) noexcept {
  int fd = peers_->ring_fd(idx, e.state);
  if (fd == -EAGAIN) retry_ = true;  // its writer has not sealed it yet: ask again later
  if (registry_gone(fd)) {
    fd = ring_fd_of_writer(idx, e);
    if (fd < 0) retry_ = true;  // another uid's: only a registry passes it; look again later
  }
  if (fd < 0) return false;
  int err = 0;
  auto m = Map::of(fd, false, &err);
  if (!m) return false;
  // The mapping is all we need: a reader of 1,000 writers holds no 1,000 descriptors.
  ::close(std::exchange(m->fd, -1));
  auto ring = std::make_unique<Ring>();
  ring->state = e.state;
  ring->draining = e.status() == kDraining;
  draining_ += ring->draining;
  ring->map = std::move(m);
  // The registry set our cursor for a ring it added while we were a member (0: from its
  // first record); otherwise we start at its tail.
  // That ring's writer counted us from its first bound unless we are still joining (then
  // guard_gen is set) or we pick the start ourselves.
  const uint64_t start = page_->cursor[idx].load(std::memory_order_acquire);
  if (start == kDetached && guard_gen == 0) guard_gen = dir_.gen();
  // Before the cursor store attach_at makes: its writer's next bound then bumps the epoch.
  if (guard_gen != 0) page_->guarded.store(1, std::memory_order_seq_cst);
  if (ring->r.attach_at(ring->map->mem, ring->map->bytes, e.pid, &page_->cursor[idx], bell_of(*bells_map_, idx), start,
                        guard_gen) < 0)
    return false;  // not a ring of this layout: its writer's loss alone
  set_->add(idx, &ring->r);
  rings_[idx] = std::move(ring);
  return true;
}

void ShmRing2::detach_ring(uint32_t idx) noexcept {
  draining_ -= rings_[idx]->draining;
  set_->remove(idx);
  rings_[idx].reset();
  // SYNC POINT WRITE: cursor detached: the registry may free the ring once every reader
  // has let go of it.
  page_->cursor[idx].store(kDetached, std::memory_order_release);
}

void ShmRing2::refresh_reader(bool force) noexcept {
  const uint64_t g = dir_.gen();
  const bool retry = retry_ && monotonic_ns() >= retry_at_ns_;
  if (!force && g == rgen_ && !retry) return;
  retry_ = false;
  bool torn = false;
  for (uint32_t i = 0; i < dir_.max_rings(); ++i) {
    EntryView e;
    const bool ok = dir_.ring(i, &e);
    if (!ok) {  // the registry kept changing it: look again at the next receive
      torn = true;
      continue;
    }
    const bool live = ok && (e.status() == kActive || e.status() == kDraining);
    auto& r = rings_[i];
    if (r && (!live || e.state != r->state)) {
      // Freed under us (the registry thought us gone) or reused: nothing more to read.
      if (!(ok && e.status() == kDraining && (e.state & ~0xffull) == (r->state & ~0xffull))) {
        detach_ring(i);
      } else {
        draining_ += !r->draining;
        r->draining = true;
        r->state = e.state;
      }
    }
    // A draining ring too: what its writer committed before it went is still ours.
    // A draining ring our cursor has let go of (we drained it, or never had it) is the
    // registry's to free at any moment and its index then a new ring's, whose start the
    // registry writes into our cursor word: attaching it again would overwrite that word.
    if (!rings_[i] && live &&
        !(e.status() == kDraining && page_->cursor[i].load(std::memory_order_acquire) == kDetached))
      attach_ring(i, e, joined_ ? 0 : g);
  }
  EntryView me;
  if (dir_.reader(uint32_t(reader_index_), &me) && me.state != reader_state_ && me.status() == kEvicted)
    evicted_.store(true, std::memory_order_relaxed);
  rgen_ = torn ? ~0ull : g;
  // A writer seals its ring right after open; one that never does costs us a request at
  // most every 100 ms.
  retry_ns_ = retry_ ? std::min<int64_t>(std::max<int64_t>(retry_ns_ * 2, 1'000'000), kSliceNs) : 0;
  if (retry_) retry_at_ns_ = monotonic_ns() + retry_ns_;
}

bool ShmRing2::data_ready() noexcept {
  return set_->ready() || dir_.gen() != rgen_ || dir_.closed() || (retry_ && monotonic_ns() >= retry_at_ns_);
}

template <typename Attempt, typename Queued>
int ShmRing2::receive_with(Attempt attempt, Queued queued, int64_t timeout_ns) noexcept {
  if (reader_index_ < 0 || forgotten_) return -EBADF;
  std::lock_guard<std::mutex> lk(recv_mu_);
  const Deadline deadline = timeout_ns == 0 ? Deadline::never() : Deadline::after_ns(timeout_ns);
  int64_t spin_until = -1;  // set at the first miss: a receive that finds data reads no clock
  for (;;) {
    refresh_reader(false);
    // Evicted: writers no longer keep our place, so nothing more in their rings is ours;
    // what we had already taken into the heap still is (ipc.h), then -ENOBUFS.
    if (evicted_.load(std::memory_order_relaxed)) {
      const int rc = queued();
      return rc == -EAGAIN ? -ENOBUFS : rc;
    }
    int rc = attempt();
    if (rc != -EAGAIN) return rc;
    // Nothing: finished rings of dead writers go; then closed, evicted, or wait.
    if (draining_ > 0)
      for (uint32_t i = 0; i < rings_.size(); ++i)
        if (rings_[i] && rings_[i]->draining && !rings_[i]->r.ready()) detach_ring(i);
    if (evicted_.load(std::memory_order_relaxed)) return -ENOBUFS;
    if (dir_.closed()) {
      rc = attempt();  // what was committed before the close is still delivered
      return rc == -EAGAIN ? -EPIPE : rc;
    }
    if (notify_fd_ >= 0) {
      rearm_notify();
      rc = attempt();
      if (rc != -EAGAIN) return rc;
    }
    if (timeout_ns == 0) return -EAGAIN;
    if (deadline.expired()) return -ETIMEDOUT;
    if (spin_until < 0) {
      spin_until = monotonic_ns() + spin_ns();
      // No ring guarded any more: writers need not start epochs for us.
      if (page_->guarded.load(std::memory_order_relaxed) != 0 && !any_guarded())
        page_->guarded.store(0, std::memory_order_relaxed);
    }
    if (monotonic_ns() < spin_until) {
      for (int i = 0; i < 64 && !set_->ready(); ++i) cpu_relax();
      continue;
    }
    int64_t slice = kSliceNs;
    if (!deadline.infinite()) slice = std::min(slice, deadline.remaining_ns());
    sleep_->sleep([this] { return data_ready(); }, slice);
  }
}

bool ShmRing2::evicted_since_copy() noexcept {
  if (dir_.overflow() != IPC_OVERFLOW_EVICT) return false;
  // SYNC POINT READ: directory generation, after the copy (a seqlock's reader). A writer
  // reuses our records only after it saw the generation of our eviction.
  std::atomic_thread_fence(std::memory_order_acquire);
  if (dir_.gen() == rgen_) return false;
  refresh_reader(false);
  return evicted_.load(std::memory_order_relaxed);
}

int ShmRing2::receive(MsgHeader* hdr, void* buf, uint32_t cap, int64_t timeout_ns) noexcept {
  return receive_with(
      [&] {
        const int rc = set_->receive(hdr, buf, cap);
        // Evicted meanwhile: the copy may be of a record a writer already reused.
        return rc >= 0 && evicted_since_copy() ? -ENOBUFS : rc;
      },
      [&] { return set_->take_queued(hdr, buf, cap); }, timeout_ns);
}

int ShmRing2::consume(uint32_t max, Visitor fn, void* ctx, int64_t timeout_ns) noexcept {
  if (max == 0) return -EINVAL;
  return receive_with([&] { return set_->consume(max, [&](const MsgHeader& h, const char* p) { fn(ctx, &h, p); }); },
                      [&] {
                        char buf[kMaxPayload];
                        MsgHeader h;
                        uint32_t got = 0;
                        while (got < max && set_->take_queued(&h, buf, sizeof buf) >= 0) fn(ctx, &h, buf), ++got;
                        return got > 0 ? int(got) : -EAGAIN;
                      },
                      timeout_ns);
}

bool ShmRing2::any_guarded() const noexcept {
  for (const auto& r : rings_)
    if (r && r->r.guarded()) return true;
  return false;
}

size_t ShmRing2::rings() const noexcept {
  size_t n = 0;
  for (const auto& r : rings_) n += r != nullptr;
  return n;
}

uint64_t ShmRing2::lapped() const noexcept {
  uint64_t n = 0;
  for (const auto& r : rings_)
    if (r) n += r->r.lapped();
  return n;
}

// ---- pollable descriptor: readable while a message may wait. Invariant as v4's
// (notify.cc): either a ping is queued or we are armed (writers ping once per arm).

void ShmRing2::rearm_notify() noexcept {
  char b[64];
  while (::recv(notify_fd_, b, sizeof b, MSG_DONTWAIT) > 0) {
  }
  page_->armed.store(1, std::memory_order_relaxed);
  sleep_->arm();
  refresh_reader(false);  // a moved generation is not data by itself
  if (set_->ready() || dir_.closed() || evicted_.load(std::memory_order_relaxed))
    ping(dir_.instance_id(), uint32_t(reader_index_), reader_state_);
}

int ShmRing2::notify_fd() noexcept {
  if (reader_index_ < 0) return -EBADF;
  std::lock_guard<std::mutex> lk(recv_mu_);
  if (notify_fd_ >= 0) return notify_fd_;
  sockaddr_un a;
  const int fd = bind_datagram(a, notify_addr(dir_.instance_id(), uint32_t(reader_index_), reader_state_, &a));
  if (fd < 0) return fd;
  notify_fd_ = fd;
  rearm_notify();
  return notify_fd_;
}

}  // namespace fwipc::shm::v2
