#include "transports/socket/socket_transport.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "runtime/common/futex.h"

namespace fwipc::sock {
namespace {

int ms_until(int64_t deadline) {
  if (deadline < 0) return -1;
  const int64_t left = deadline - monotonic_ns();
  return left <= 0 ? 0 : static_cast<int>((left + 999999) / 1000000);
}

frame::Frame make_frame(const MsgHeader& h, const void* payload, uint32_t sender) {
  frame::Frame f;
  f.magic = frame::kMagic;
  f.kind = frame::kData;
  f.flags = 0;
  f.type = h.type;
  f.size = h.size;
  f.sender = sender;
  f.receiver = h.receiver;
  f.priority = h.priority;
  f.reserved = 0;
  if (h.size) std::memcpy(f.payload, payload, h.size);
  return f;
}

bool in_group(pid_t pid, gid_t gid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Groups:", 0) != 0) continue;
    std::istringstream ss(line.substr(7));
    unsigned long g;
    while (ss >> g)
      if (g == gid) return true;
  }
  return false;
}

// Level-style readiness for a notify descriptor: set while the inbox holds messages.
void set_event(int evfd, bool* is_set, bool want) {
  if (evfd < 0 || *is_set == want) return;
  if (want) {
    const uint64_t one = 1;
    (void)!::write(evfd, &one, sizeof one);
  } else {
    uint64_t v;
    (void)!::read(evfd, &v, sizeof v);
  }
  *is_set = want;
}

}  // namespace

// ---------------------------------------------------------------- Inbox

namespace {
struct ItemLess {
  template <typename T>
  bool operator()(const T& a, const T& b) const noexcept {
    if (a.f.priority != b.f.priority) return a.f.priority < b.f.priority;
    return a.seq > b.seq;
  }
};
}  // namespace

void Inbox::push(const frame::Frame& f) {
  heap_.push_back(Item{seq_++, f});
  std::push_heap(heap_.begin(), heap_.end(), ItemLess{});
}

int Inbox::pop(MsgHeader* hdr, void* buf, uint32_t cap) noexcept {
  const frame::Frame& f = heap_.front().f;
  *hdr = MsgHeader{f.type, f.size, f.sender, f.receiver, f.priority};
  if (f.size > cap) return -EMSGSIZE;
  if (f.size) std::memcpy(buf, f.payload, f.size);
  const int n = static_cast<int>(f.size);
  std::pop_heap(heap_.begin(), heap_.end(), ItemLess{});
  heap_.pop_back();
  return n;
}

// ---------------------------------------------------------------- SocketHub

SocketHub::SocketHub(int listen_fd, Owner owner, uint32_t cap, pid_t self) noexcept
    : listen_fd_(listen_fd), owner_(owner), cap_(cap), pid_(static_cast<uint32_t>(self)) {
  ep_ = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listen_fd_;
  ::epoll_ctl(ep_, EPOLL_CTL_ADD, listen_fd_, &ev);
}

SocketHub::~SocketHub() {
  for (auto& [fd, p] : peers_) ::close(fd);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (ep_ >= 0) ::close(ep_);
  if (evfd_ >= 0) ::close(evfd_);
}

void SocketHub::forget_after_fork() noexcept {}  // descriptors only: closing them is local

bool SocketHub::permitted(const ucred& c, bool read, bool write) const noexcept {
  if (c.uid == 0 || c.pid == static_cast<pid_t>(pid_)) return true;
  uint32_t bits;
  if (c.uid == owner_.uid) bits = (owner_.mode >> 6) & 7;
  else if (c.gid == owner_.gid || in_group(c.pid, owner_.gid)) bits = (owner_.mode >> 3) & 7;
  else bits = owner_.mode & 7;
  return (!read || (bits & 4)) && (!write || (bits & 2));
}

bool SocketHub::backlogged() const noexcept {
  if (inbox_.size() >= cap_) return true;
  for (const auto& [fd, p] : peers_)
    if (p.out.size() >= cap_) return true;
  return false;
}

void SocketHub::set_interest(Peer& p) noexcept {
  p.want_out = !p.out.empty();
  // A peer we may not read and need not write leaves the set: a hung-up peer would
  // otherwise report EPOLLHUP (which cannot be masked) on every wait.
  const bool want = inbound_on_ || p.want_out;
  if (!want) {
    if (p.registered) ::epoll_ctl(ep_, EPOLL_CTL_DEL, p.fd, nullptr);
    p.registered = false;
    return;
  }
  epoll_event ev{};
  ev.events = (inbound_on_ ? EPOLLIN | EPOLLRDHUP : 0u) | (p.want_out ? EPOLLOUT : 0u);
  ev.data.fd = p.fd;
  ::epoll_ctl(ep_, p.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, p.fd, &ev);
  p.registered = true;
}

// Stops (or resumes) reading from writers: level-triggered epoll would otherwise report
// them readable forever while we are not allowed to read.
void SocketHub::update_inbound() noexcept {
  const bool on = !backlogged();
  if (on == inbound_on_) return;
  inbound_on_ = on;
  for (auto& [fd, p] : peers_) set_interest(p);
}

void SocketHub::inbox_changed() noexcept { set_event(evfd_, &ev_set_, !inbox_.empty()); }

void SocketHub::accept_peers() noexcept {
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
    // A client sends its hello before its open() returns: reading it now makes it a
    // reader for every message routed after that.
    read_peer(added);
  }
}

void SocketHub::drop(int fd) noexcept {
  auto it = peers_.find(fd);
  if (it != peers_.end() && it->second.registered) ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  peers_.erase(fd);  // a dead reader's queue goes with it: writers are released
}

void SocketHub::flush(Peer& p) noexcept {
  while (!p.out.empty()) {
    const frame::Frame& f = p.out.front();
    const ssize_t n = ::send(p.fd, &f, f.wire_bytes(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) break;
    if (n != static_cast<ssize_t>(f.wire_bytes())) {
      drop(p.fd);
      return;
    }
    p.out.pop_front();
  }
  if (p.want_out != !p.out.empty()) set_interest(p);
}

void SocketHub::route(const frame::Frame& f) noexcept {
  if (f.receiver == 0 || f.receiver == pid_) {
    inbox_.push(f);
    inbox_changed();
  }
  for (auto& [fd, p] : peers_) {
    if (!p.reader || (f.receiver != 0 && f.receiver != static_cast<uint32_t>(p.cred.pid))) continue;
    p.out.push_back(f);
  }
}

void SocketHub::read_peer(Peer& p) noexcept {
  const int fd = p.fd;
  // Hellos are read even under back-pressure; data only while every queue has room.
  while (!p.hello || (inbound_on_ && !backlogged())) {
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
    for (auto& [ofd, o] : peers_)
      if (!o.out.empty()) flush(o);
    if (peers_.find(fd) == peers_.end()) return;
  }
}

int SocketHub::poll_once(int timeout_ms) noexcept {
  epoll_event evs[64];
  const int n = ::epoll_wait(ep_, evs, 64, timeout_ms);
  int work = 0;  // events other than our own inbox-ready flag
  for (int i = 0; i < n; ++i) {
    const int fd = evs[i].data.fd;
    if (fd == evfd_) continue;
    ++work;
    if (fd == listen_fd_) {
      accept_peers();
      continue;
    }
    auto it = peers_.find(fd);
    if (it == peers_.end()) continue;
    if (evs[i].events & EPOLLOUT) flush(it->second);
    it = peers_.find(fd);
    if (it != peers_.end() && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR))) read_peer(it->second);
  }
  update_inbound();
  return work;
}

int SocketHub::send(const MsgHeader& h, const void* payload, int64_t timeout_ns) noexcept {
  if (h.size > frame::kMaxPayload) return -EMSGSIZE;
  const int64_t deadline = timeout_ns > 0 ? monotonic_ns() + timeout_ns : -1;
  accept_peers();  // every reader whose open() has returned gets this message
  for (;;) {
    poll_once(0);
    if (!backlogged()) break;
    if (timeout_ns == 0) return -EAGAIN;
    if (deadline >= 0 && monotonic_ns() >= deadline) return -ETIMEDOUT;
    poll_once(ms_until(deadline));
  }
  route(make_frame(h, payload, pid_));
  for (auto& [fd, p] : peers_)
    if (!p.out.empty()) flush(p);
  update_inbound();
  return static_cast<int>(h.size);
}

int SocketHub::receive(MsgHeader* hdr, void* buf, uint32_t cap, int64_t timeout_ns) noexcept {
  const int64_t deadline = timeout_ns > 0 ? monotonic_ns() + timeout_ns : -1;
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
    if (deadline >= 0 && monotonic_ns() >= deadline) return -ETIMEDOUT;
    poll_once(ms_until(deadline));
  }
}

int SocketHub::notify_fd() noexcept {
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

// ---------------------------------------------------------------- SocketClient

int SocketClient::connect_hub(const char* path, bool reader, bool writer) noexcept {
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (std::strlen(path) >= sizeof a.sun_path) {
    ::close(fd);
    return -ENAMETOOLONG;
  }
  std::strcpy(a.sun_path, path);
  // Non-blocking connect on a Unix socket completes at once or fails with EAGAIN
  // (backlog full): retry briefly.
  int rc = -1;
  for (int i = 0; i < 200; ++i) {
    rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    if (rc == 0 || errno != EAGAIN) break;
    ::usleep(5000);
  }
  if (rc != 0) {
    const int e = errno == ECONNREFUSED ? ENOENT : errno;
    ::close(fd);
    return -e;
  }
  frame::Frame hello{};
  hello.magic = frame::kMagic;
  hello.kind = frame::kHello;
  hello.flags = static_cast<uint16_t>((reader ? frame::kHelloRead : 0) | (writer ? frame::kHelloWrite : 0));
  if (::send(fd, &hello, frame::kHeaderBytes, MSG_NOSIGNAL) != frame::kHeaderBytes) {
    const int e = errno;
    ::close(fd);
    return -e;
  }
  return fd;
}

SocketClient::SocketClient(int conn, bool reader, bool writer, uint32_t cap, pid_t self) noexcept
    : conn_(conn), reader_(reader), writer_(writer), cap_(cap), pid_(static_cast<uint32_t>(self)) {}

SocketClient::~SocketClient() {
  if (conn_ >= 0) ::close(conn_);
  if (ep_ >= 0) ::close(ep_);
  if (evfd_ >= 0) ::close(evfd_);
}

void SocketClient::forget_after_fork() noexcept {}

void SocketClient::inbox_changed() noexcept { set_event(evfd_, &ev_set_, !inbox_.empty()); }

int SocketClient::drain() noexcept {
  while (!eof_ && inbox_.size() < cap_) {
    char buf[frame::kMaxFrame + 1];
    const ssize_t n = ::recv(conn_, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {
      eof_ = true;  // the hub (the creator) is gone
      break;
    }
    frame::Frame f;
    if (frame::check_packet(buf, static_cast<size_t>(n), &f) != 0 || f.kind != frame::kData) {
      ++bad_;
      continue;
    }
    inbox_.push(f);
  }
  inbox_changed();
  return 0;
}

int SocketClient::send(const MsgHeader& h, const void* payload, int64_t timeout_ns) noexcept {
  if (!writer_) return -EBADF;
  if (h.size > frame::kMaxPayload) return -EMSGSIZE;
  const frame::Frame f = make_frame(h, payload, pid_);
  const int64_t deadline = timeout_ns > 0 ? monotonic_ns() + timeout_ns : -1;
  for (;;) {
    const ssize_t n = ::send(conn_, &f, f.wire_bytes(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(f.wire_bytes())) return static_cast<int>(h.size);
    if (n >= 0 || errno != EAGAIN) return -EPIPE;  // the hub closed: the channel is gone
    if (timeout_ns == 0) return -EAGAIN;
    const int ms = ms_until(deadline);
    if (ms == 0) return -ETIMEDOUT;
    pollfd p{conn_, POLLOUT, 0};
    ::poll(&p, 1, ms);
  }
}

int SocketClient::receive(MsgHeader* hdr, void* buf, uint32_t cap, int64_t timeout_ns) noexcept {
  if (!reader_) return -EBADF;
  const int64_t deadline = timeout_ns > 0 ? monotonic_ns() + timeout_ns : -1;
  for (;;) {
    drain();
    if (bad_ > 0) {
      --bad_;
      return -EBADMSG;
    }
    if (!inbox_.empty()) {
      const int rc = inbox_.pop(hdr, buf, cap);
      inbox_changed();
      return rc;
    }
    if (eof_) return -EPIPE;
    if (timeout_ns == 0) return -EAGAIN;
    const int ms = ms_until(deadline);
    if (ms == 0) return -ETIMEDOUT;
    pollfd p{conn_, POLLIN, 0};
    ::poll(&p, 1, ms);
  }
}

int SocketClient::notify_fd() noexcept {
  if (!reader_) return -EBADF;
  if (ep_ < 0) {
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    evfd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ep_ < 0 || evfd_ < 0) return -errno;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = conn_;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, conn_, &ev);
    ev.data.fd = evfd_;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, evfd_, &ev);
    inbox_changed();
  }
  return ep_;
}

}  // namespace fwipc::sock
