// The hub in every mode: construction, peers' epoll interest, routing and back-pressure,
// seqpacket peers (SOCKET, BRIDGE), and the Transport calls. The FIFO side is hub_pipe.cc.
#include "transports/socket/hub.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/perm.h"
#include "base/time.h"
#include "transports/socket/io.h"

namespace fwipc::sock {

bool Hub::Peer::reads() const noexcept {
  if (evicted) return false;
  if (const auto* s = std::get_if<SocketPeer>(&io)) return s->intent & frame::kHelloRead;
  return std::holds_alternative<ReaderFifo>(io);
}

bool Hub::Peer::writes() const noexcept {
  if (const auto* s = std::get_if<SocketPeer>(&io)) return s->intent & frame::kHelloWrite;
  return std::holds_alternative<WriterFifo>(io);
}

// ---------------------------------------------------------------- construction

Hub::Hub(Mode mode, int fd, Owner owner, uint32_t cap, pid_t self) noexcept
    : mode_(mode), listen_fd_(fd), owner_(owner), cap_(cap), pid_(static_cast<uint32_t>(self)) {}

// The one place a hub is set up: the destructor closes whatever exists if it fails.
Result<std::unique_ptr<Hub>> Hub::start(std::unique_ptr<Hub> h) noexcept {
  using R = Result<std::unique_ptr<Hub>>;
  h->io_ep_ = ::epoll_create1(EPOLL_CLOEXEC);
  h->ep_ = ::epoll_create1(EPOLL_CLOEXEC);
  h->kick_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (h->io_ep_ < 0 || h->ep_ < 0 || h->kick_fd_ < 0) return R::error(-errno);
  for (const auto& [ep, fd] :
       {std::pair{h->io_ep_, h->listen_fd_}, std::pair{h->io_ep_, h->kick_fd_}, std::pair{h->ep_, h->io_ep_}}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) return R::error(-errno);
  }
  // The bridge drives its hub from its own progress work. Without the thread (it could
  // not be made) the hub moves inside the creator's calls, as it always could.
  if (h->mode_ != Mode::kBridge) h->registered_ = progress::add(h->io_ep_, h.get()) == 0;
  return R(std::move(h));
}

Result<std::unique_ptr<Hub>> Hub::create_socket(int listen_fd, Owner owner, uint32_t cap, pid_t self) noexcept {
  return start(std::unique_ptr<Hub>(new Hub(Mode::kSocket, listen_fd, owner, cap, self)));
}

Result<std::unique_ptr<Hub>> Hub::create_bridge(int listen_fd, Owner owner, uint32_t cap, pid_t self,
                                                BridgeHooks hooks) noexcept {
  std::unique_ptr<Hub> h(new Hub(Mode::kBridge, listen_fd, owner, cap, self));
  h->bridge_ = hooks;
  return start(std::move(h));
}

Result<std::unique_ptr<Hub>> Hub::create_pipe(int in_fd, std::string fifo_prefix, uint32_t cap, pid_t self) noexcept {
  std::unique_ptr<Hub> h(new Hub(Mode::kPipe, in_fd, Owner{0, 0, 0}, cap, self));
  h->fifo_prefix_ = std::move(fifo_prefix);
  return start(std::move(h));
}

Hub::~Hub() {
  if (registered_) progress::remove(this);  // before anything it uses goes
  for (auto& [fd, p] : peers_) ::close(fd);
  if (listen_fd_ >= 0) ::close(listen_fd_);  // PIPE: writers now see EPIPE, readers POLLERR
  if (ep_ >= 0) ::close(ep_);
  if (io_ep_ >= 0) ::close(io_ep_);
  if (kick_fd_ >= 0) ::close(kick_fd_);
  if (evfd_ >= 0) ::close(evfd_);
  if (evict_fd_ >= 0) ::close(evict_fd_);
  if (pub_fd_ >= 0) ::close(pub_fd_);
}

void Hub::set_evict_after_ms(uint32_t ms) noexcept {
  std::lock_guard<std::mutex> lk(mu_);
  if (ms == 0 || evict_fd_ >= 0) return;
  const int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return;  // then evictions happen only inside the creator's calls
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (::epoll_ctl(io_ep_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    ::close(fd);
    return;
  }
  evict_fd_ = fd;
  evict_ns_ = int64_t(ms) * 1'000'000;
}

Hub::Stats Hub::stats() const noexcept {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_locked();
}

Hub::Stats Hub::stats_locked() const noexcept {
  Stats st{};
  // Every queue holds whole frames (the memory they cost, not their wire size); O(peers).
  st.queued_frames = inbox_.size();
  for (const auto& [fd, p] : peers_) st.queued_frames += p.out.size();
  if (mode_ == Mode::kBridge) st.queued_frames += bridge_.sink->size();
  st.queued_bytes = st.queued_frames * sizeof(frame::Frame);
  st.high_water = high_water_;
  st.evictions = evictions_;
  st.dropped_peers = dropped_;
  st.peers = static_cast<uint32_t>(peers_.size());
  st.held_back = inbound_on_ ? 0u : 1u;
  return st;
}

void Hub::set_stats(std::shared_ptr<stats::Mapping> page) noexcept {
  std::lock_guard<std::mutex> lk(mu_);
  if (!page || pub_fd_ >= 0) return;
  const int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (::epoll_ctl(io_ep_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    ::close(fd);
    return;
  }
  pub_fd_ = fd;
  stats_ = std::move(page);
  stats::Page* p = stats_->page();
  p->publisher_pid.store(pid_, std::memory_order_relaxed);
  p->queue_bound.store(cap_, std::memory_order_relaxed);
  p->peers_bound.store(kMaxPeers, std::memory_order_relaxed);
  publish();
}

void Hub::publish() noexcept {
  if (!stats_) return;
  const int64_t now = monotonic_ns();
  const int64_t since = now - published_ns_;
  if (since < stats::kPublishNs) {
    if (!pub_armed_) {  // publish what changed meanwhile when the time comes
      itimerspec t{};
      t.it_value.tv_nsec = static_cast<long>(stats::kPublishNs - since);
      pub_armed_ = ::timerfd_settime(pub_fd_, 0, &t, nullptr) == 0;
    }
    return;
  }
  const Stats st = stats_locked();
  stats::Page* p = stats_->page();
  constexpr auto r = std::memory_order_relaxed;
  p->queued_frames.store(st.queued_frames, r);
  p->queued_bytes.store(st.queued_bytes, r);
  p->high_water.store(st.high_water, r);
  p->held_back.store(st.held_back, r);
  p->held_back_times.store(held_back_times_, r);
  p->evictions.store(st.evictions, r);
  p->dropped_peers.store(st.dropped_peers, r);
  p->peers.store(st.peers, r);
  p->updated_ns.store(static_cast<uint64_t>(now), r);
  published_ns_ = now;
}

// ---------------------------------------------------------------- eviction

void Hub::evict(Peer& p) noexcept {
  // Its queue goes (the writers it held back go on); a bridged reader keeps what the ring
  // already gave it. Then kEvicted, as soon as its descriptor takes it.
  if (mode_ != Mode::kBridge) p.out.clear();
  p.out.push_back(frame::make_evicted());
  p.evicted = true;
  p.held_since = 0;
  if (mode_ != Mode::kBridge) ++evictions_;  // a bridged reader's eviction is the ring's, counted there
  flush(p);                                  // may drop p
}

void Hub::evict_reader(int fd) noexcept {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = peers_.find(fd);
  if (it != peers_.end() && !it->second.evicted) evict(it->second);
}

bool Hub::check_evictions() noexcept {
  if (inbound_on_ && !evict_armed_) return false;  // the common case: no system call
  itimerspec t{};
  bool any = false;
  if (!inbound_on_) {  // writers are held back: by whom, and since when?
    const int64_t now = monotonic_ns();
    const size_t held = std::max<size_t>(cap_ / 2, 1);  // reading resumes only below this
    int64_t next = -1;
    // true: held past the bound. Else stamps it (first seen) and notes when it comes due.
    auto overdue = [&](int64_t& since) {
      if (since == 0) since = now;
      const int64_t due = since + evict_ns_ - now;
      if (due < 0) return true;
      if (next < 0 || due < next) next = due;
      return false;
    };
    for (auto it = peers_.begin(); it != peers_.end();) {
      Peer& p = (it++)->second;  // evict() may drop p
      if (p.reads() && p.out.size() >= held && overdue(p.held_since)) {
        evict(p);
        any = true;
      }
    }
    if (creator_reads_ && !creator_evicted_ && inbox_.size() >= held && overdue(inbox_held_since_)) {
      creator_evicted_ = true;  // its receive ends in -ENOBUFS once the inbox is empty
      ++evictions_;
      any = true;
      inbox_changed();
    }
    if (next >= 0) {
      next += 1'000'000;  // past the bound, not at it
      t.it_value.tv_sec = next / 1'000'000'000;
      t.it_value.tv_nsec = next % 1'000'000'000;
    }
  }
  evict_armed_ = t.it_value.tv_sec != 0 || t.it_value.tv_nsec != 0;
  ::timerfd_settime(evict_fd_, 0, &t, nullptr);
  return any;
}

// ---------------------------------------------------------------- peers and back-pressure

Hub::Peer& Hub::add_peer(Peer p) noexcept {
  Peer& added = peers_.emplace(p.fd, std::move(p)).first->second;
  set_interest(added);
  return added;
}

void Hub::drop(int fd) noexcept {
  auto it = peers_.find(fd);
  if (it != peers_.end() && it->second.events != 0) ::epoll_ctl(io_ep_, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  peers_.erase(fd);  // a dead reader's queue goes with it: writers are released
  hello_pending_.erase(fd);
}

void Hub::set_interest(Peer& p) noexcept {
  // A peer we may not read and need not write leaves the set: a hung-up peer would
  // otherwise report EPOLLHUP (which cannot be masked) on every wait.
  const bool readable = inbound_on_ && !std::holds_alternative<ReaderFifo>(p.io);
  const uint32_t want = (readable ? EPOLLIN | EPOLLRDHUP : 0u) | (!p.out.empty() ? EPOLLOUT : 0u);
  if (want == 0) {
    if (p.events != 0) ::epoll_ctl(io_ep_, EPOLL_CTL_DEL, p.fd, nullptr);
    p.events = 0;
    return;
  }
  epoll_event ev{};
  ev.events = want;
  ev.data.fd = p.fd;
  ::epoll_ctl(io_ep_, p.events != 0 ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, p.fd, &ev);
  p.events = want;
}

bool Hub::backlogged() const noexcept { return any_queue_at(cap_); }

bool Hub::any_queue_at(size_t n) const noexcept {
  if (!creator_evicted_ && inbox_.size() >= n) return true;
  if (mode_ == Mode::kBridge && bridge_.sink->size() >= n) return true;
  for (const auto& [fd, p] : peers_)
    if (!p.evicted && p.out.size() >= n) return true;
  return false;
}

// Stops (or resumes) reading from writers: level-triggered epoll would otherwise report
// them readable forever while we are not allowed to read.
void Hub::update_inbound() noexcept {
  switch_inbound();
  if (evict_fd_ >= 0 && check_evictions()) switch_inbound();  // those evicted held nobody back
}

void Hub::switch_inbound() noexcept {
  // Off at a full queue, on again at half: every switch is an epoll_ctl per peer, so it
  // must not flip with every message a slow reader takes.
  const bool on = inbound_on_ ? !backlogged() : !any_queue_at(std::max<size_t>(cap_ / 2, 1));
  if (on == inbound_on_) return;
  inbound_on_ = on;
  if (!on) ++held_back_times_;
  for (auto& [fd, p] : peers_) set_interest(p);
  // PIPE frames already read and buffered while reading was off move on no descriptor's
  // event: tell the progress thread.
  if (on && mode_ == Mode::kPipe) {
    const uint64_t one = 1;
    (void)!::write(kick_fd_, &one, sizeof one);
  }
}

void Hub::inbox_changed() noexcept { set_ready(evfd_, &ev_set_, !inbox_.empty() || creator_evicted_); }

// ---------------------------------------------------------------- routing

void Hub::route(const frame::Frame& f) noexcept {
  if (mode_ == Mode::kBridge) {  // into the ring: readers get it from there
    bridge_.sink->push_back(f);
    return;
  }
  // f may have been sent after a reader's open() returned that we have not yet heard of
  // (its hello or JOIN came in after our last look): look again before routing it. A
  // backlog sent before that look is routed without further system calls.
  if (f.time_ns >= newcomers_ns_) take_newcomers();
  if (creator_reads_ && !creator_evicted_ && (f.receiver == 0 || f.receiver == pid_)) {
    inbox_.push(f);
    note_depth(inbox_.size());
    inbox_changed();
  }
  // Frames that waited in a writer's buffer while a reader opened are older than its join:
  // not its. A writer can only misdate its own frames: a stamp in the future reaches every
  // reader known now (joins are clamped to the hub's clock), as a message sent now would;
  // a stamp in the past keeps them from readers that joined since.
  for (auto& [fd, p] : peers_) {
    if (!p.reads() || f.time_ns < p.joined_ns) continue;
    if (f.receiver != 0 && f.receiver != static_cast<uint32_t>(p.cred.pid)) continue;
    p.out.push_back(f);
    note_depth(p.out.size());
  }
}

void Hub::flush(Peer& p) noexcept {
  const Link link = std::holds_alternative<ReaderFifo>(p.io) ? Link::kFifo : Link::kSeqpacket;
  while (!p.out.empty()) {
    const frame::Frame& f = p.out.front();
    const ssize_t n = write_frame_once(p.fd, link, f);
    if (n < 0 && errno == EAGAIN) break;
    if (n != static_cast<ssize_t>(f.wire_bytes())) {
      if (!(n < 0 && (errno == EPIPE || errno == ECONNRESET))) ++dropped_;  // not just gone
      drop(p.fd);
      return;
    }
    p.out.pop_front();
    p.held_since = 0;  // it takes frames: it holds nobody back for long
  }
  // Evicted and told: a reader that does not also write has nothing left here.
  if (p.evicted && p.out.empty() && !p.writes()) {
    drop(p.fd);
    return;
  }
  if (((p.events & EPOLLOUT) != 0) != !p.out.empty()) set_interest(p);
}

// flush() may drop a peer (erasing it from peers_), so step past it before the call.
void Hub::flush_all() noexcept {
  for (auto it = peers_.begin(); it != peers_.end();) {
    Peer& p = (it++)->second;
    if (!p.out.empty()) flush(p);
  }
}

// ---------------------------------------------------------------- seqpacket peers

bool Hub::permitted(const ucred& c, bool read, bool write) const noexcept {
  if (c.pid == static_cast<pid_t>(pid_)) return true;
  return mode_permits(Caller{c.pid, c.uid, c.gid}, owner_.uid, owner_.gid, owner_.mode, read, write);
}

void Hub::accept_peers() noexcept {
  newcomers_ns_ = static_cast<uint64_t>(monotonic_ns());  // before looking: see route()
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) break;
    Peer p{};
    p.fd = fd;
    socklen_t len = sizeof p.cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &p.cred, &len) != 0 || peers_.size() >= kMaxPeers) {
      ::close(fd);
      continue;
    }
    add_peer(std::move(p));
    hello_pending_.insert(fd);
  }
  // A client sends its hello before its open() returns: reading it now (and no data yet,
  // so that later connections are taken too) makes it a reader for what follows. A
  // connection accepted before its hello arrived is looked at again here, before any
  // frame is routed, not only when epoll reports it (maybe after a writer's frame).
  for (auto it = hello_pending_.begin(); it != hello_pending_.end();) {
    const int fd = *it++;  // read_peer() may erase fd (hello read, or dropped)
    auto p = peers_.find(fd);
    if (p != peers_.end()) read_peer(p->second, std::get<SocketPeer>(p->second.io), true);
  }
}

// p (and s, its state) may be gone on return.
void Hub::read_peer(Peer& p, SocketPeer& s, bool hello_only) noexcept {
  const int fd = p.fd;
  // Hellos are read even under back-pressure; data only while every queue has room.
  while (!s.hello || (!hello_only && inbound_on_ && !backlogged())) {
    char buf[frame::kMaxFrame + 1];  // one byte more: an oversized packet shows as such
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && errno == EAGAIN) return;
    frame::Frame f;
    // EOF (the peer closed or died) or a malformed frame: the peer is disconnected.
    if (n <= 0 || frame::check_packet(buf, static_cast<size_t>(n), &f) != 0) {
      if (n > 0) ++dropped_;
      drop(fd);
      return;
    }
    if (f.kind == frame::kHello) {
      const bool r = f.flags & frame::kHelloRead, w = f.flags & frame::kHelloWrite;
      if (s.hello || !permitted(p.cred, r, w)) {
        drop(fd);
        return;
      }
      // A bridge relays the ring to a reader through the entry the registry joined for it.
      if (mode_ == Mode::kBridge && r &&
          (!(f.flags & frame::kHelloEntry) || !bridge_.admit(bridge_.ctx, p.cred.pid, f.type, f.receiver))) {
        drop(fd);
        return;
      }
      s.entry_index = f.type;
      s.entry_state = f.receiver;
      s.hello = true;
      hello_pending_.erase(fd);
      // A reader cannot date its join later than now, when we learn of it.
      p.joined_ns = std::min<uint64_t>(f.time_ns, static_cast<uint64_t>(monotonic_ns()));
      s.intent = static_cast<uint16_t>(f.flags & (frame::kHelloRead | frame::kHelloWrite));
      continue;
    }
    if (!p.writes() || f.kind != frame::kData) {  // only messages are routed, never a notice
      ++dropped_;
      drop(fd);
      return;
    }
    f.sender = static_cast<uint32_t>(p.cred.pid);  // the kernel's word, not the peer's
    route(f);
    flush_all();
    if (peers_.find(fd) == peers_.end()) return;
  }
}

std::vector<Hub::ReaderView> Hub::bridged_readers() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<ReaderView> v;
  for (const auto& [fd, p] : peers_) {
    const auto* s = std::get_if<SocketPeer>(&p.io);
    if (s == nullptr || !p.reads()) continue;
    v.push_back({fd, p.cred.pid, s->entry_index, s->entry_state, p.out.size() < cap_ ? cap_ - p.out.size() : 0});
  }
  return v;
}

void Hub::deliver(int fd, const MsgHeader& h, const char* payload) noexcept {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = peers_.find(fd);
  if (it == peers_.end()) return;
  // Picked by the ring's own join rule already: the stamp is not looked at again.
  it->second.out.push_back(frame::make_data_frame(h, payload, h.sender));
  note_depth(it->second.out.size());
  flush(it->second);
  publish();
}

// ---------------------------------------------------------------- the hub's work

// Every reader whose open() has returned must be known before a message is routed:
// pending connections (SOCKET, BRIDGE) or JOIN frames (PIPE).
void Hub::take_newcomers() noexcept {
  if (mode_ == Mode::kPipe)
    read_control();
  else
    accept_peers();
}

int Hub::poll_once(int timeout_ms) noexcept {
  if (mode_ == Mode::kPipe && inbound_on_ && route_buffered()) timeout_ms = 0;
  epoll_event evs[64];
  const int n = ::epoll_wait(io_ep_, evs, 64, timeout_ms);
  // Connections first: a reader whose open() returned before a writer's send must be
  // known before that message is routed, whatever order epoll reports them in.
  if (mode_ != Mode::kPipe) accept_peers();
  int work = 0;  // events other than our own inbox-ready flag
  for (int i = 0; i < n; ++i) {
    const int fd = evs[i].data.fd;
    const uint32_t e = evs[i].events;
    if (fd == kick_fd_ || fd == evict_fd_ || fd == pub_fd_) {  // update_inbound(), publish() below
      uint64_t v;
      (void)!::read(fd, &v, sizeof v);
      if (fd == pub_fd_) pub_armed_ = false;
      continue;
    }
    ++work;
    if (fd == listen_fd_) {
      if (mode_ == Mode::kPipe) read_control();
      continue;
    }
    auto it = peers_.find(fd);
    if (it == peers_.end()) continue;
    // Writable, or broken (a reader gone): flushing sends what fits or drops the peer.
    if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) flush(it->second);
    it = peers_.find(fd);
    if (it == peers_.end() || !(e & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR))) continue;
    Peer& p = it->second;
    if (auto* w = std::get_if<WriterFifo>(&p.io))
      read_writer(p, *w);
    else if (auto* s = std::get_if<SocketPeer>(&p.io))
      read_peer(p, *s, false);
    // A ReaderFifo is never read.
  }
  update_inbound();
  publish();
  return work;
}

int Hub::send(const MsgHeader& h, const void* payload, int64_t timeout_ns) noexcept {
  if (h.size > frame::kMaxPayload) return -EMSGSIZE;
  const Deadline deadline = Deadline::after_ns(timeout_ns);
  std::unique_lock<std::mutex> lk(mu_);
  // Stamped before the look for newcomers, so that route() need not look again; as for a
  // member's send, the time the call began.
  const uint64_t sent_ns = static_cast<uint64_t>(monotonic_ns());
  take_newcomers();
  for (;;) {
    poll_once(0);
    if (!backlogged()) break;
    if (timeout_ns == 0) return -EAGAIN;  // before the deadline: never a -ETIMEDOUT
    if (deadline.expired()) return -ETIMEDOUT;
    wait_round(lk, deadline);
  }
  route(frame::make_data_frame(h, payload, pid_, sent_ns));
  flush_all();
  update_inbound();
  publish();
  return static_cast<int>(h.size);
}

int Hub::receive(MsgHeader* hdr, void* buf, uint32_t cap, int64_t timeout_ns) noexcept {
  const Deadline deadline = Deadline::after_ns(timeout_ns);
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    for (int i = 0; i < 64 && poll_once(0) > 0; ++i) {
    }
    if (!inbox_.empty()) {
      const int rc = inbox_.pop(hdr, buf, cap);
      if (rc >= 0) inbox_held_since_ = 0;
      inbox_changed();
      update_inbound();
      publish();
      return rc;
    }
    if (creator_evicted_) return -ENOBUFS;
    if (timeout_ns == 0) return -EAGAIN;
    if (deadline.expired()) return -ETIMEDOUT;
    wait_round(lk, deadline);
  }
}

void Hub::progress() noexcept {
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (int i = 0; i < 64 && poll_once(0) > 0; ++i) {
    }
  }
  cv_.notify_all();
}

void Hub::wait_round(std::unique_lock<std::mutex>& lk, const Deadline& deadline) noexcept {
  if (!registered_) {  // nobody else works the hub: wait for its descriptors ourselves
    lk.unlock();
    pollfd p{io_ep_, POLLIN, 0};
    ::poll(&p, 1, deadline.poll_ms());
    lk.lock();
    return;
  }
  // The cap only bounds the cost of a notify that came between our look and this wait.
  constexpr int64_t kCapNs = 20'000'000;
  const int64_t left = deadline.remaining_ns();
  cv_.wait_for(lk, std::chrono::nanoseconds(left < 0 || left > kCapNs ? kCapNs : left));
}

int Hub::notify_fd() noexcept {
  std::lock_guard<std::mutex> lk(mu_);
  if (evfd_ < 0) {
    const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return -errno;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      const int e = errno;
      ::close(fd);
      return -e;
    }
    evfd_ = fd;
    inbox_changed();
  }
  return ep_;  // readable when a message waits, or hub work (a peer) is pending
}

}  // namespace fwipc::sock
