// ipcctl's view of channels: the registry's kList walk, and the counters and entries of a
// QUEUE segment read by an observer that never joins it.
#include "tools/ipcctl/view.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "base/proc.h"
#include "ipc.h"
#include "transports/shm/layout.h"

namespace fwipc::ipcctl {

namespace reg = fwipc::registry;

int ask_registry(reg::Client& c, const std::string& dir, reg::Op op, uint32_t handle, void* out, size_t len, int* fd,
                 int* fd2) {
  reg::ClientOptions o;
  o.autostart = false;
  reg::Request rq{};
  rq.op = static_cast<uint32_t>(op);
  rq.handle = handle;
  int fds[reg::kReplyFds];
  const int rc = c.call(dir, o, rq, out, len, fds);
  if (rc < 0) return rc;
  *fd = fds[0];
  int first_closed = 1;
  if (fd2 != nullptr) {
    *fd2 = fds[1];
    first_closed = 2;
  }
  for (int i = first_closed; i < reg::kReplyFds; ++i)
    if (fds[i] >= 0) ::close(fds[i]);
  return 0;
}

// Memory orders: everything read here is only displayed, and no two numbers need to agree
// (writers and readers keep moving while we look), so counters, tail, cursors, scan bounds
// and PIDs are relaxed. The one exception is an entry's state word: acquiring it is what
// makes the plain start_time its joiner wrote before activating it safe to read.
RingStats read_ring(const shm::Segment& seg, std::vector<Peer>* readers, std::vector<Peer>* writers) {
  const shm::SegmentHeader* h = seg.header();
  RingStats r{};
  r.tail = h->tail.load(std::memory_order_relaxed);
  r.abandoned = h->abandoned.load(std::memory_order_relaxed);
  r.refused = h->refused.load(std::memory_order_relaxed);
  r.evictions = h->evictions.load(std::memory_order_relaxed);
  r.slots = seg.slot_count();
  r.closed = h->closed.load(std::memory_order_relaxed) != 0;
  uint64_t min = r.tail;
  const uint32_t nr = std::min(h->reader_count.load(std::memory_order_relaxed), shm::kMaxReaders);
  for (uint32_t i = 0; i < nr; ++i) {
    const shm::ReaderEntry& e = h->readers[i];
    // SYNC POINT READ: entry state (publishes pid and start_time).
    if ((e.state.load(std::memory_order_acquire) & shm::kEntryActive) == 0) continue;
    const uint64_t c = e.cursor.load(std::memory_order_relaxed);
    const uint32_t pid = e.pid.load(std::memory_order_relaxed);
    // A cursor read after the tail may be past it: that reader is simply caught up.
    Peer p{pid, process_alive(pid_t(pid), e.start_time), c <= r.tail ? r.tail - c : 0};
    p.reads = true;
    if (readers) readers->push_back(p);
    min = std::min(min, c);
  }
  const uint32_t nw = std::min(h->writer_count.load(std::memory_order_relaxed), shm::kMaxWriters);
  for (uint32_t i = 0; i < nw && writers; ++i) {
    const shm::WriterEntry& e = h->writers[i];
    // SYNC POINT READ: entry state (publishes pid and start_time).
    if ((e.state.load(std::memory_order_acquire) & shm::kEntryActive) == 0) continue;
    const uint32_t pid = e.pid.load(std::memory_order_relaxed);
    Peer p{pid, process_alive(pid_t(pid), e.start_time)};
    p.writes = true;
    writers->push_back(p);
  }
  r.depth = r.tail - min;
  return r;
}

std::vector<ChannelView> list_channels(const std::string& dir, int* err) {
  std::vector<ChannelView> out;
  reg::Client conn;
  uint32_t cursor = 0;
  for (;;) {
    ChannelView v{};
    int got[2] = {-1, -1};
    if (int rc = ask_registry(conn, dir, reg::Op::kList, cursor, &v.raw, sizeof v.raw, &got[0], &got[1]); rc < 0) {
      *err = rc;
      break;
    }
    if (v.raw.status < 0) {  // past the last channel
      for (int f : got)
        if (f >= 0) ::close(f);
      break;
    }
    v.raw.name[sizeof v.raw.name - 1] = '\0';
    v.member_count = v.raw.member_count;
    // In this order, each only if flagged (protocol.h).
    int at = 0;
    const int fd = (v.raw.attached & reg::kAttachedSegment) ? got[at++] : -1;
    const int dfd = (v.raw.attached & reg::kAttachedRing2) ? got[at++] : -1;
    const int sfd = (v.raw.attached & reg::kAttachedStats) ? got[at++] : -1;
    for (int i = at; i < 2; ++i)
      if (got[i] >= 0) ::close(got[i]);
    if (sfd >= 0) {
      if (auto m = stats::Mapping::map(sfd, false)) v.queues = stats::read(*m->page());
      ::close(sfd);
    }
    if (fd >= 0) {
      auto seg = shm::Segment::attach(fd);
      ::close(fd);
      if (seg) {
        v.seg = std::make_shared<shm::Segment>(std::move(seg.value()));
        v.ring = read_ring(*v.seg, &v.readers, &v.writers);
      }
    }
    if (dfd >= 0) {
      // A directory that does not validate, or a registry that fails us half way: the
      // channel is listed without ring counters.
      if (auto o = Ring2Observer::open(dfd, v.raw.channel); o && o->refresh(conn, dir) == 0) {
        v.v2 = std::move(o);
        v.ring = v.v2->stats(&v.readers, &v.writers);
      }
    }
    for (uint32_t i = 0; i < std::min(v.raw.listed, reg::kInfoMembers); ++i) {
      const auto& m = v.raw.members[i];
      Peer p{m.pid, (m.flags & reg::kMemberAlive) != 0};
      p.reads = m.flags & reg::kMemberRead;
      p.writes = m.flags & reg::kMemberWrite;
      p.creator = m.flags & reg::kMemberCreator;
      const bool listed =
          std::any_of(v.writers.begin(), v.writers.end(), [&](const Peer& w) { return w.pid == p.pid; });
      if (!v.ring && p.reads) v.readers.push_back(p);
      // With a ring, its entries list readers and writers, but not writers of another uid,
      // whose frames the creator's bridge commits.
      if (p.writes && !p.creator && !listed) v.writers.push_back(p);
    }
    cursor = v.raw.channel + 1;
    out.push_back(std::move(v));
  }
  return out;
}

std::optional<uint64_t> evictions_of(const ChannelView& c) {
  if (c.ring) return c.ring->evictions;
  if (c.queues) return c.queues->evictions;
  return std::nullopt;
}

uint32_t capacity_msgs(const ChannelView& c) {
  if (c.ring) return c.ring->slots;
  auto s = shm::Segment::slots_for_capacity(c.raw.capacity);
  return s ? *s : 0;
}

const char* type_name(uint32_t t) {
  return t == IPC_TYPE_QUEUE ? "QUEUE" : t == IPC_TYPE_SOCKET ? "SOCKET" : t == IPC_TYPE_PIPE ? "PIPE" : "?";
}

const char* transport_name(uint32_t t) {
  return t == IPC_TRANSPORT_SHM ? "shm" : t == IPC_TRANSPORT_SOCKET ? "socket" : t == IPC_TRANSPORT_PIPE ? "pipe" : "?";
}

std::string owner_name(uint32_t uid) {
  const passwd* pw = ::getpwuid(uid);
  return pw ? pw->pw_name : std::to_string(uid);
}

}  // namespace fwipc::ipcctl
