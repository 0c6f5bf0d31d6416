#include "transports/socket/socket_transport.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "base/time.h"
#include "base/perm.h"
#include "base/unixsock.h"
#include "transports/socket/io.h"

namespace fwipc::sock {

static_assert(frame::kMaxPayload == kMaxPayloadBytes);
// ---------------------------------------------------------------- Hub

Hub* Hub::socket_hub(int listen_fd, Owner owner, uint32_t cap, pid_t self) noexcept {
  return new Hub(listen_fd, false, owner, cap, self);
}

Hub* Hub::bridge_hub(int listen_fd, Owner owner, uint32_t cap, pid_t self, BridgeHooks hooks) noexcept {
  Hub* h = new Hub(listen_fd, false, owner, cap, self);
  h->bridge_ = hooks;
  return h;
}

std::vector<Hub::ReaderView> Hub::bridged_readers() const {
  std::vector<ReaderView> v;
  for (const auto& [fd, p] : peers_)
    if (p.reader) v.push_back({fd, p.cred.pid, p.entry_index, p.entry_state, p.out.size() < cap_ ? cap_ - p.out.size() : 0});
  return v;
}

void Hub::deliver(int fd, const MsgHeader& h, const char* payload) noexcept {
  auto it = peers_.find(fd);
  if (it == peers_.end()) return;
  it->second.out.push_back(frame::make_data_frame(h, payload, h.sender));
  flush(it->second);
}

Hub* Hub::pipe_hub(int in_fd, std::string fifo_prefix, uint32_t cap, pid_t self) noexcept {
  Hub* h = new Hub(in_fd, true, Owner{0, 0, 0}, cap, self);
  h->fifo_prefix_ = std::move(fifo_prefix);
  return h;
}

Hub::Hub(int fd, bool pipe, Owner owner, uint32_t cap, pid_t self) noexcept
    : listen_fd_(fd), pipe_(pipe), owner_(owner), cap_(cap), pid_(static_cast<uint32_t>(self)) {
  ep_ = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listen_fd_;
  ::epoll_ctl(ep_, EPOLL_CTL_ADD, listen_fd_, &ev);
}

Hub::~Hub() {
  for (auto& [fd, p] : peers_) ::close(fd);
  if (listen_fd_ >= 0) ::close(listen_fd_);  // PIPE: writers now see EPIPE, readers POLLERR
  if (ep_ >= 0) ::close(ep_);
  if (evfd_ >= 0) ::close(evfd_);
}

void Hub::forget_after_fork() noexcept {}  // descriptors only: closing them is local

bool Hub::permitted(const ucred& c, bool read, bool write) const noexcept {
  if (c.pid == static_cast<pid_t>(pid_)) return true;
  return mode_permits(Caller{c.pid, c.uid, c.gid}, owner_.uid, owner_.gid, owner_.mode, read, write);
}

bool Hub::backlogged() const noexcept { return any_queue_at(cap_); }

bool Hub::any_queue_at(size_t n) const noexcept {
  if (inbox_.size() >= n) return true;
  if (bridge_.sink != nullptr && bridge_.sink->size() >= n) return true;
  for (const auto& [fd, p] : peers_)
    if (p.out.size() >= n) return true;
  return false;
}

void Hub::set_interest(Peer& p) noexcept {
  p.want_out = !p.out.empty();
  // A peer we may not read and need not write leaves the set: a hung-up peer would
  // otherwise report EPOLLHUP (which cannot be masked) on every wait.
  const bool readable = inbound_on_ && !p.out_only;
  const bool want = readable || p.want_out;
  if (!want) {
    if (p.registered) ::epoll_ctl(ep_, EPOLL_CTL_DEL, p.fd, nullptr);
    p.registered = false;
    return;
  }
  epoll_event ev{};
  ev.events = (readable ? EPOLLIN | EPOLLRDHUP : 0u) | (p.want_out ? EPOLLOUT : 0u);
  ev.data.fd = p.fd;
  ::epoll_ctl(ep_, p.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, p.fd, &ev);
  p.registered = true;
}

// Stops (or resumes) reading from writers: level-triggered epoll would otherwise report
// them readable forever while we are not allowed to read.
void Hub::update_inbound() noexcept {
  // Off at a full queue, on again at half: every switch is an epoll_ctl per peer, so it
  // must not flip with every message a slow reader takes.
  const bool on = inbound_on_ ? !backlogged() : !any_queue_at(std::max<size_t>(cap_ / 2, 1));
  if (on == inbound_on_) return;
  inbound_on_ = on;
  for (auto& [fd, p] : peers_) set_interest(p);
}

// A JOIN from the channel FIFO: opens the member's own FIFO, fifo_prefix + ".r" (reader)
// or ".w" (writer) + PID + "." + join id. Anyone may write the channel FIFO, but the name
// is built from two numbers and only the registry creates files in the runtime directory,
// for the PID of the process it then hands the FIFO to: a forged JOIN can only name a FIFO
// that exists for that PID, and the PID the hub then uses for it is right.
void Hub::join(const frame::Frame& f, bool writer) noexcept {
  const pid_t pid = static_cast<pid_t>(f.sender);
  for (const auto& [fd, p] : peers_)  // announced twice, or by someone else first
    if ((writer ? p.in_fifo : p.out_only) && p.join == f.type && p.cred.pid == pid) return;
  const std::string path =
      fifo_prefix_ + (writer ? ".w" : ".r") + std::to_string(f.sender) + "." + std::to_string(f.type);
  // A reader holds its FIFO open (O_RDWR), so opening it for writing does not block or fail
  // with ENXIO unless the reader is already gone.
  const int fd = ::open(path.c_str(), (writer ? O_RDONLY : O_WRONLY) | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0 || peers_.size() >= 4096) {
    if (fd >= 0) ::close(fd);
    return;
  }
  if (writer) (void)::fchmod(fd, frame::kFifoTakenMode);
  Peer p{};
  p.fd = fd;
  p.cred.pid = pid;
  p.hello = true;
  p.reader = p.out_only = !writer;
  p.writer = p.in_fifo = writer;
  p.join = f.type;
  p.registered = false;
  set_interest(peers_.emplace(fd, std::move(p)).first->second);
}

// The channel FIFO: JOIN frames only, read whatever the back-pressure (they add no
// messages). Data in it could claim any sender, so it is refused.
void Hub::read_control() noexcept {
  for (;;) {
    frame::Frame f;
    int rc;
    while ((rc = decoder_.next(&f)) != 0) {
      if (rc > 0 && (f.kind == frame::kJoin || f.kind == frame::kWriterJoin)) join(f, f.kind == frame::kWriterJoin);
      else ++rejected_;
    }
    char buf[16384];
    const ssize_t n = ::read(listen_fd_, buf, sizeof buf);
    if (n <= 0) return;
    decoder_.feed(buf, static_cast<size_t>(n));
  }
}

// Bytes first, then the channel FIFO, then routing: a reader whose JOIN was written before
// these frames were (its open() returned before the send) is known before they are routed.
void Hub::read_writer(Peer& p) noexcept {
  if (p.dec.buffered() < 8 * frame::kMaxFrame) {
    char buf[16384];
    const ssize_t n = ::read(p.fd, buf, sizeof buf);
    if (n > 0) p.dec.feed(buf, static_cast<size_t>(n));
    else if (n == 0) p.eof = true;  // only once the FIFO is empty
  }
  read_control();
  route_from(p);
}

// Routes p's buffered frames while every queue has room; drops p once it is drained and
// its writers are gone. p may be gone on return.
void Hub::route_from(Peer& p) noexcept {
  frame::Frame f;
  bool dry = false;  // every complete frame routed
  while (inbound_on_ && !backlogged()) {
    const int rc = p.dec.next(&f);
    if (rc == 0) {
      dry = true;
      break;
    }
    if (rc < 0 || f.kind != frame::kData) {
      ++rejected_;
      continue;
    }
    f.sender = static_cast<uint32_t>(p.cred.pid);  // the registry's word, not the writer's
    route(f);
    flush_all();  // drops only readers; p is a writer FIFO
  }
  if (p.eof && dry) drop(p.fd);
}
void Hub::inbox_changed() noexcept { set_ready(evfd_, &ev_set_, !inbox_.empty()); }

void Hub::accept_peers() noexcept {
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    Peer p{};
    p.fd = fd;
    socklen_t len = sizeof p.cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &p.cred, &len) != 0 || peers_.size() >= 4096) {
      ::close(fd);
      continue;
    }
    p.registered = false;
    Peer& added = peers_.emplace(fd, std::move(p)).first->second;
    set_interest(added);
    // A client sends its hello before its open() returns: reading it now (and no data yet,
    // so that later connections are taken too) makes it a reader for what follows.
    read_peer(added, true);
  }
}

void Hub::drop(int fd) noexcept {
  auto it = peers_.find(fd);
  if (it != peers_.end() && it->second.registered) ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  peers_.erase(fd);  // a dead reader's queue goes with it: writers are released
}

void Hub::flush(Peer& p) noexcept {
  while (!p.out.empty()) {
    const frame::Frame& f = p.out.front();
    const ssize_t n = write_frame_once(p.fd, p.out_only ? Link::kFifo : Link::kSeqpacket, f);
    if (n < 0 && errno == EAGAIN) break;
    if (n != static_cast<ssize_t>(f.wire_bytes())) {
      drop(p.fd);
      return;
    }
    p.out.pop_front();
  }
  if (p.want_out != !p.out.empty()) set_interest(p);
}

// flush() may drop a peer (erasing it from peers_), so step past it before the call.
void Hub::flush_all() noexcept {
  for (auto it = peers_.begin(); it != peers_.end();) {
    Peer& p = (it++)->second;
    if (!p.out.empty()) flush(p);
  }
}

void Hub::route(const frame::Frame& f) noexcept {
  if (bridge_.sink != nullptr) {  // into the ring: readers get it from there
    bridge_.sink->push_back(f);
    return;
  }
  if (f.receiver == 0 || f.receiver == pid_) {
    inbox_.push(f);
    inbox_changed();
  }
  for (auto& [fd, p] : peers_) {
    if (!p.reader || (f.receiver != 0 && f.receiver != static_cast<uint32_t>(p.cred.pid))) continue;
    p.out.push_back(f);
  }
}

void Hub::read_peer(Peer& p, bool hello_only) noexcept {
  const int fd = p.fd;
  // Hellos are read even under back-pressure; data only while every queue has room.
  while (!p.hello || (!hello_only && inbound_on_ && !backlogged())) {
    char buf[frame::kMaxFrame + 1];
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && errno == EAGAIN) return;
    frame::Frame f;
    // EOF (the peer closed or died) or a malformed frame: the peer is disconnected.
    if (n <= 0 || frame::check_packet(buf, static_cast<size_t>(n), &f) != 0) {
      drop(fd);
      return;
    }
    if (f.kind == frame::kHello) {
      const bool r = f.flags & frame::kHelloRead, w = f.flags & frame::kHelloWrite;
      if (p.hello || !permitted(p.cred, r, w)) {
        drop(fd);
        return;
      }
      // A bridge relays the ring to a reader through the entry the registry joined for it.
      if (bridge_.sink != nullptr && r &&
          (!(f.flags & frame::kHelloEntry) || !bridge_.admit(bridge_.ctx, p.cred.pid, f.type, f.receiver))) {
        drop(fd);
        return;
      }
      p.entry_index = f.type;
      p.entry_state = f.receiver;
      p.hello = true;
      p.reader = r;
      p.writer = w;
      continue;
    }
    if (!p.writer) {
      drop(fd);
      return;
    }
    f.sender = static_cast<uint32_t>(p.cred.pid);  // the kernel's word, not the peer's
    route(f);
    flush_all();
    if (peers_.find(fd) == peers_.end()) return;
  }
}

int Hub::poll_once(int timeout_ms) noexcept {
  // Frames already in a writer's decoder raise no epoll event: finish them first. By
  // descriptor, not iterator: routing may drop any reader (a failed flush) and p itself.
  if (pipe_ && inbound_on_) {
    std::vector<int> pending;
    for (const auto& [fd, p] : peers_)
      if (p.in_fifo && p.dec.buffered() >= frame::kHeaderBytes) pending.push_back(fd);
    for (int fd : pending) {
      auto it = peers_.find(fd);
      if (it == peers_.end() || !inbound_on_ || backlogged()) continue;
      route_from(it->second);
      timeout_ms = 0;
    }
  }
  epoll_event evs[64];
  const int n = ::epoll_wait(ep_, evs, 64, timeout_ms);
  // Connections first: a reader whose open() returned before a writer's send must be
  // known before that message is routed, whatever order epoll reports them in.
  if (!pipe_) accept_peers();
  int work = 0;  // events other than our own inbox-ready flag
  for (int i = 0; i < n; ++i) {
    const int fd = evs[i].data.fd;
    const uint32_t e = evs[i].events;
    if (fd == evfd_) continue;
    ++work;
    if (fd == listen_fd_) {
      if (pipe_) read_control();
      continue;
    }
    auto it = peers_.find(fd);
    if (it == peers_.end()) continue;
    // Writable, or broken (a reader gone): flushing sends what fits or drops the peer.
    if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) flush(it->second);
    it = peers_.find(fd);
    if (it == peers_.end() || it->second.out_only || !(e & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR))) continue;
    if (it->second.in_fifo) read_writer(it->second);
    else read_peer(it->second, false);
  }
  update_inbound();
  return work;
}

int Hub::send(const MsgHeader& h, const void* payload, int64_t timeout_ns) noexcept {
  if (h.size > frame::kMaxPayload) return -EMSGSIZE;
  const Deadline deadline = Deadline::after_ns(timeout_ns);
  // Every reader whose open() has returned gets this message: take pending connections
  // (SOCKET) or JOIN frames (PIPE) first.
  if (pipe_) read_control();
  else accept_peers();
  for (;;) {
    poll_once(0);
    if (!backlogged()) break;
    if (timeout_ns == 0) return -EAGAIN;
    if (deadline.expired()) return -ETIMEDOUT;
    poll_once(deadline.poll_ms());
  }
  route(frame::make_data_frame(h, payload, pid_));
  flush_all();
  update_inbound();
  return static_cast<int>(h.size);
}

int Hub::receive(MsgHeader* hdr, void* buf, uint32_t cap, int64_t timeout_ns) noexcept {
  const Deadline deadline = Deadline::after_ns(timeout_ns);
  for (;;) {
    for (int i = 0; i < 64 && poll_once(0) > 0; ++i) {
    }
    if (!inbox_.empty()) {
      const int rc = inbox_.pop(hdr, buf, cap);
      inbox_changed();
      update_inbound();
      return rc;
    }
    if (timeout_ns == 0) return -EAGAIN;
    if (deadline.expired()) return -ETIMEDOUT;
    poll_once(deadline.poll_ms());
  }
}

int Hub::notify_fd() noexcept {
  if (evfd_ < 0) {
    evfd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (evfd_ < 0) return -errno;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = evfd_;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, evfd_, &ev);
    inbox_changed();
  }
  return ep_;  // readable when a message waits, or hub work (a peer) is pending
}

}  // namespace fwipc::sock
