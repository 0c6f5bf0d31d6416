// What each registry request means, whatever the transport: validation, the name map,
// memberships and the reply. The per-transport parts are in channel_*.cc.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/names.h"
#include "base/perm.h"
#include "base/proc.h"
#include "ipc.h"
#include "runtime/registry/daemon/server.h"
#include "transports/shm/stats.h"

namespace fwipc::registry {

Channel::~Channel() {
  for (const auto& [path, k] : keepers) ::close(k.fd);
}

namespace {

bool permitted(const Client& c, const Channel& ch, bool want_read, bool want_write) {
  return mode_permits(Caller{c.cred.pid, c.cred.uid, c.cred.gid}, ch.uid, ch.gid, ch.mode, want_read, want_write);
}

Reply error_reply(int status) {
  Reply r{};
  r.status = status;
  r.reader_index = r.writer_index = -1;
  return r;
}

// The reply for a new membership h of channel ch.
Reply reply_for(uint32_t h, const Channel& ch, const Membership& m) {
  Reply r = error_reply(0);
  r.handle = h;
  r.channel = ch.id;
  r.transport = ch.v2 ? kTransportRing2 : static_cast<uint32_t>(ch.transport);
  r.reader_index = m.reader_index;
  r.reader_state = m.reader_state;
  r.writer_index = m.writer_index;
  r.writer_state = m.writer_state;
  r.type = ch.type;
  r.owner_uid = ch.uid;
  r.owner_gid = ch.gid;
  r.mode = ch.mode;
  auto slots = shm::Segment::slots_for_capacity(ch.capacity);
  // Ring v2: what each writer's ring holds (it takes as many records, whatever their size).
  r.capacity_bytes = (slots ? *slots : shm::kDefaultSlots) * shm::kSlotBytes;
  r.creator_pid = static_cast<uint32_t>(ch.creator_pid);
  r.overflow = ch.overflow;
  r.evict_after_ms = ch.evict_after_ms;
  return r;
}

}  // namespace

// n: the datagram's real length (MSG_TRUNC), of which at most sizeof rq is in rq.
void Server::handle(Client& c, Request& rq, ssize_t n) {
  Reply r = error_reply(0);
  npass_ = 0;
  if (n != static_cast<ssize_t>(sizeof rq) || rq.magic != kProtoMagic) {
    r.status = -EBADMSG;
  } else {
    rq.name[sizeof rq.name - 1] = '\0';
    switch (static_cast<Op>(rq.op)) {
      case Op::kList:
      case Op::kObserve: return list(c, rq);
      case Op::kQuota: return quota(c, rq);
      case Op::kClean: r.status = clean_dir(); break;
      case Op::kCreate: r = create(c, rq); break;
      case Op::kOpen: r = open(c, rq); break;
      case Op::kClose: r = close(c, rq); break;
      case Op::kRejoin: r = rejoin(c, rq); break;
      case Op::kPing: r.status = 0; break;
      case Op::kRingFd:
      case Op::kReaderReady:
      case Op::kEvict: r = ring2_op(c, rq); break;
      default: r.status = -EOPNOTSUPP;
    }
  }
  reply(c.fd, &r, sizeof r, pass_, r.status < 0 ? 0 : npass_);
  for (int i = 0; i < npass_; ++i)
    if (pass_ours_[i]) ::close(pass_[i]);
  npass_ = 0;
}

void Server::pass(int fd, bool ours) {
  if (npass_ == kReplyFds) {  // a bug, not input: never more than the protocol allows
    if (ours) ::close(fd);
    return;
  }
  pass_[npass_] = fd;
  pass_ours_[npass_++] = ours;
}

Reply Server::create(Client& c, const Request& rq) {
  if (int rc = validate_channel_name(rq.name); rc < 0) return error_reply(rc);
  if (rq.type > IPC_TYPE_QUEUE || (rq.perm_mode & ~0777u) != 0) return error_reply(-EINVAL);
  // The name policy: a service's name is its owner's, whoever comes first.
  if (!policy_.may_own(rq.name, Caller{c.cred.pid, c.cred.uid, c.cred.gid})) return error_reply(-EACCES);
  if (by_name_.count(rq.name)) return error_reply(-EEXIST);
  // The last kHeadroom channels are root's and the reserved names' owners'.
  const bool full = channels_.size() >= kMaxChannels || (channels_.size() >= kMaxChannels - kHeadroom &&
                                                         !privileged(Caller{c.cred.pid, c.cred.uid, c.cred.gid}));
  if (full || c.members.size() >= kMaxMembershipsPerClient) return error_reply(-ENOSPC);
  auto slots = shm::Segment::slots_for_capacity(rq.capacity);
  if (!slots) return error_reply(slots.error());
  // Counted against the creator's uid: the segment as a QUEUE ring would be (a fallback to
  // a socket then counts only its hub's inbox), else the hub's inbox.
  const bool want_shm = rq.type == IPC_TYPE_QUEUE && !(rq.flags & kNoShm);
  const uint64_t amount[kQuotaKeys] = {1, want_shm ? shm::segment_bytes(*slots) : hub_bytes(*slots), 0, 1};
  if (int rc = admit(c, amount); rc < 0) return error_reply(rc);
  auto ch = std::make_unique<Channel>();
  ch->id = next_channel_++;
  ch->name = rq.name;
  ch->type = rq.type;
  ch->uid = c.cred.uid;
  ch->gid = c.cred.gid;
  ch->mode = rq.perm_mode;
  ch->capacity = rq.capacity;
  ch->creator_pid = c.cred.pid;
  ch->creator_start = c.start_time;
  ch->overflow = rq.overflow;
  ch->evict_after_ms = rq.evict_after_ms;
  Membership m;
  m.creator = true;
  // 0 (an older client): the creator reads and writes, as always.
  const uint32_t cm = rq.creator_mode ? rq.creator_mode : IPC_MODE_READ | IPC_MODE_WRITE;
  m.creator_reads = (cm & IPC_MODE_READ) != 0;
  int rc = 0;
  if (rq.type == IPC_TYPE_PIPE) {
    ch->transport = TransportKind::kPipe;
    rc = create_pipe(*ch);
  } else {
    // No memory, no memfd: a QUEUE channel falls back to a socket, transparently.
    bool on_shm = rq.type == IPC_TYPE_QUEUE && !(rq.flags & kNoShm);
    if (on_shm && opts_.ring_v2)
      rc = create_ring2(c, *ch, cm, m);
    else if (on_shm)
      rc = create_shm(c, *ch, *slots, (cm & IPC_MODE_READ) != 0, m);
    if (rc < 0) return error_reply(rc);
    on_shm = on_shm && rc == 0;
    ch->transport = on_shm ? TransportKind::kShmRing : TransportKind::kSocket;
    // Ring v2 needs no bridge: every uid the mode admits maps the channel itself.
    rc = ch->v2 && on_shm ? 0 : create_socket(*ch);
  }
  if (rc == 0) rc = create_call_socket(*ch);  // after the transport's descriptors (protocol.h)
  if (rc == 0) {
    // Without it (no memory) the channel works; only its counters stay in the creator.
    ch->stats.fd = stats::create_page(ch->name.c_str());
    if (ch->stats.fd >= 0) pass(ch->stats.fd, false);
  }
  if (rc < 0) {
    if (!ch->path.empty()) ::unlink(ch->path.c_str());
    return error_reply(rc);
  }
  ch->members = 1;
  ch->counted = true;
  ch->bytes = ch->transport == TransportKind::kShmRing ? shm::segment_bytes(*slots) : hub_bytes(*slots);
  charge(ch->uid, kQuotaChannels, 1);
  charge(ch->uid, kQuotaBytes, int64_t(ch->bytes));
  charge(c.cred.uid, kQuotaMemberships, 1);
  m.uid = c.cred.uid;
  Channel* raw = ch.get();
  m.ch = raw;
  by_name_[ch->name] = raw;
  channels_[ch->id] = std::move(ch);
  const uint32_t h = c.next_handle++;
  const Reply r = reply_for(h, *raw, m);
  c.members[h] = std::move(m);
  save_state();
  return r;
}

Reply Server::open(Client& c, const Request& rq) {
  if (int rc = validate_channel_name(rq.name); rc < 0) return error_reply(rc);
  const bool want_read = rq.flags & kWantRead;
  const bool want_write = rq.flags & kWantWrite;
  if (!want_read && !want_write) return error_reply(-EINVAL);
  auto it = by_name_.find(rq.name);
  if (it == by_name_.end()) return error_reply(-ENOENT);
  Channel* ch = it->second;
  if (!permitted(c, *ch, want_read, want_write)) return error_reply(-EACCES);
  if (c.members.size() >= kMaxMembershipsPerClient) return error_reply(-ENOSPC);
  // A reader served by the creator's hub or bridge has a queue there, counted against
  // the reader's uid (the ring's own members read in place).
  const bool queued = want_read && (ch->transport != TransportKind::kShmRing || (!ch->v2 && !shares_ring(c, *ch)));
  auto slots = shm::Segment::slots_for_capacity(ch->capacity);
  // Ring v2: a writer's ring and a reader's page are made for this membership, counted
  // against its uid (a process's second writer id shares its first one's ring: counted
  // again while both are open).
  const uint64_t bytes = ch->v2   ? ring2_bytes(*ch, want_read, want_write)
                         : queued ? hub_bytes(slots ? *slots : shm::kDefaultSlots)
                                  : 0;
  const uint64_t amount[kQuotaKeys] = {0, bytes, 0, 1};
  if (int rc = admit(c, amount); rc < 0) return error_reply(rc);
  Membership m;
  m.ch = ch;
  m.uid = c.cred.uid;
  m.bytes = amount[kQuotaBytes];
  int rc = 0;
  if (ch->transport == TransportKind::kPipe)
    rc = open_pipe(c, *ch, want_read, want_write, m);
  else if (ch->v2)
    rc = open_ring2(c, *ch, want_read, want_write, m);
  else if (ch->transport == TransportKind::kShmRing)
    rc = open_shm(c, *ch, want_read, want_write, m);
  if (rc < 0) return error_reply(rc);
  ch->members++;
  charge(m.uid, kQuotaMemberships, 1);
  if (m.bytes) charge(m.uid, kQuotaBytes, int64_t(m.bytes));
  const uint32_t h = c.next_handle++;
  Reply r = reply_for(h, *ch, m);
  // Another uid reaches a QUEUE channel through the creator's bridge socket, never the ring.
  if (ch->transport == TransportKind::kShmRing && !ch->v2 && !shares_ring(c, *ch))
    r.transport = static_cast<uint32_t>(TransportKind::kSocket);
  c.members[h] = std::move(m);
  return r;
}

Reply Server::rejoin(Client& c, const Request& rq) {
  RejoinArgs a;
  static_assert(sizeof a <= sizeof rq.name);
  std::memcpy(&a, rq.name, sizeof a);
  if (c.members.size() >= kMaxMembershipsPerClient) return error_reply(-ENOSPC);
  Channel* ch = nullptr;
  for (const auto& [id, x] : channels_)
    if (x->v2 && x->v2->w.header()->instance_id == a.instance_id) ch = x.get();
  if (ch == nullptr) return error_reply(-ENOENT);
  Membership m;
  m.ch = ch;
  m.uid = c.cred.uid;
  if (int rc = rejoin_ring2(c, *ch, a, m); rc < 0) return error_reply(rc);
  // What it holds exists already: counted again, never refused.
  m.bytes = ring2_bytes(*ch, m.reader_index >= 0, m.writer_index >= 0);
  ch->members++;
  charge(m.uid, kQuotaMemberships, 1);
  charge(m.uid, kQuotaBytes, int64_t(m.bytes));
  const uint32_t h = c.next_handle++;
  const Reply r = reply_for(h, *ch, m);
  c.members[h] = std::move(m);
  return r;
}

Reply Server::close(Client& c, const Request& rq) {
  auto it = c.members.find(rq.handle);
  if (it == c.members.end()) return error_reply(-EBADF);
  release(it->second);
  c.members.erase(it);
  return error_reply(0);
}

void Server::release(Membership& m) {
  Channel* ch = m.ch;
  if (ch->v2)
    release_ring2(m);
  else if (ch->transport == TransportKind::kShmRing)
    release_shm(m);
  release_pipe(m);
  charge(m.uid, kQuotaMemberships, -1);
  if (m.bytes) charge(m.uid, kQuotaBytes, -int64_t(m.bytes));
  if (m.creator) unlink_name(ch);
  if (--ch->members == 0 && ch->name.empty()) forget_channel(ch->id);
}

// The creator's close removes the name; ids still open see -EPIPE on send (a socket
// channel's clients see it when the creator's runtime closes their connections).
void Server::unlink_name(Channel* ch) {
  if (ch->name.empty()) return;
  by_name_.erase(ch->name);
  ch->name.clear();
  if (ch->counted) charge(ch->uid, kQuotaChannels, -1);  // its memory goes with the channel
  ch->counted = false;
  if (ch->v2)
    close_ring2(*ch);
  else if (ch->transport == TransportKind::kShmRing)
    shm::close_channel(ch->seg);
  if (!ch->path.empty()) ::unlink(ch->path.c_str());
  if (!ch->call_path.empty()) ::unlink(ch->call_path.c_str());
  settle_keepers(*ch, true);  // writers now see EPIPE: no reader is left
  save_state();
}

namespace {

// kObserve: up to kReplyFds rings or reader pages of a ring v2 channel, read-only, from
// directory index a.index on, into fds (the caller closes them).
ObserveInfo observe(const Channel& ch, const Ring2Args& a, int* fds) {
  ObserveInfo info{};
  const Ring2& r = *ch.v2;
  const bool ring = a.kind == kRing2Ring;
  if (!ring && a.kind != kRing2Page) {
    info.status = -EINVAL;
    return info;
  }
  const std::vector<Ring2::Mem>& mems = ring ? r.rings : r.pages;
  info.table = uint32_t(mems.size());
  uint32_t i = a.index;
  for (; i < mems.size() && info.count < uint32_t(kReplyFds); ++i) {
    const Ring2::Mem& x = mems[i];
    const shm::v2::EntryView e = ring ? r.w.ring(i) : r.w.reader(i);
    // Pages are 0600, their reader's (create: open_ring2); rings are their writer's to seal.
    if (x.fd < 0 || e.status() == shm::v2::kFree || (ring && !sealed_for_writes(x.fd))) continue;
    const int ro = reopen_read_only(x.fd);
    if (ro < 0) {  // out of descriptors: what we have, and the caller asks again from here
      if (info.count == 0) info.status = ro;
      break;
    }
    fds[info.count] = ro;
    info.index[info.count] = i;
    info.state[info.count++] = e.state;
  }
  info.next = std::min<uint32_t>(i, info.table);
  return info;
}

}  // namespace

void Server::list(Client& c, const Request& rq) {
  if (static_cast<Op>(rq.op) == Op::kObserve) {
    ObserveInfo o{};
    int fds[kReplyFds];
    auto it = channels_.find(rq.handle);
    Ring2Args a;
    std::memcpy(&a, rq.name, sizeof a);
    if (it == channels_.end() || it->second->name.empty())
      o.status = -ENOENT;
    else if (!permitted(c, *it->second, true, false))
      o.status = -EACCES;
    else if (!it->second->v2)
      o.status = -EOPNOTSUPP;
    else
      o = observe(*it->second, a, fds);
    const int n = o.status < 0 ? 0 : int(o.count);
    reply(c.fd, &o, sizeof o, fds, n);
    for (int i = 0; i < n; ++i) ::close(fds[i]);
    return;
  }
  ChannelInfo info{};
  info.status = -ENOENT;
  int pass[2] = {-1, -1};
  bool ours[2] = {false, false};
  int npass = 0, ro = -1;
  // Unlinked channels (creator gone, members left) are not listed: they have no name.
  for (auto it = channels_.lower_bound(rq.handle); it != channels_.end(); ++it) {
    const Channel& ch = *it->second;
    if (ch.name.empty()) continue;
    info.status = 0;
    info.channel = ch.id;
    info.type = ch.type;
    info.transport = static_cast<uint32_t>(ch.transport);
    info.uid = ch.uid;
    info.gid = ch.gid;
    info.mode = ch.mode;
    info.capacity = ch.capacity;
    info.overflow = ch.overflow;
    std::snprintf(info.name, sizeof info.name, "%s", ch.name.c_str());
    for (const auto& [fd, cl] : clients_) {
      for (const auto& [h, m] : cl->members) {
        if (m.ch != &ch) continue;
        if (info.listed < kInfoMembers) {
          auto& e = info.members[info.listed++];
          e.pid = static_cast<uint32_t>(cl->cred.pid);
          const bool reads = m.reader_index >= 0 || !m.reader_fifo.empty() || (m.creator && m.creator_reads);
          const bool writes = m.writer_index >= 0 || !m.writer_fifo.empty() || m.creator || m.remote_writer ||
                              ch.transport == TransportKind::kSocket;  // its hub knows, not us
          e.flags = (reads ? kMemberRead : 0) | (writes ? kMemberWrite : 0) | (m.creator ? kMemberCreator : 0) |
                    (process_alive(cl->cred.pid, cl->start_time) ? kMemberAlive : 0);
        }
        ++info.member_count;
      }
    }
    if (ch.transport == TransportKind::kShmRing && !ch.v2 && permitted(c, ch, true, false) && shares_ring(c, ch)) {
      pass[npass++] = ch.seg.fd();
      info.attached |= kAttachedSegment;
    }
    // Ring v2: an observer maps what a reader may, read-only (every uid the mode lets read).
    if (ch.v2 && ch.v2->dir.fd >= 0 && permitted(c, ch, true, false) && (ro = reopen_read_only(ch.v2->dir.fd)) >= 0) {
      ours[npass] = true;
      pass[npass++] = ro;
      info.attached |= kAttachedRing2;
    }
    // Counters only, but they are the channel's traffic pattern: for those who may read it.
    if (ch.stats.fd >= 0 && permitted(c, ch, true, false) && (ro = reopen_read_only(ch.stats.fd)) >= 0) {
      ours[npass] = true;
      pass[npass++] = ro;
      info.attached |= kAttachedStats;
    }
    break;
  }
  reply(c.fd, &info, sizeof info, pass, npass);
  for (int i = 0; i < npass; ++i)
    if (ours[i]) ::close(pass[i]);
}

}  // namespace fwipc::registry
