// See call_server.h.
#include "transports/call/call_server.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "transports/frame.h"

namespace fwipc::call {

Result<std::unique_ptr<CallServer>> CallServer::create(int listen_fd, ChannelOwner owner) noexcept {
  using R = Result<std::unique_ptr<CallServer>>;
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listen_fd;
  if (ep < 0 || ::epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) != 0) {
    const int e = errno;
    if (ep >= 0) ::close(ep);
    ::close(listen_fd);
    return R::error(-e);
  }
  return std::unique_ptr<CallServer>(new CallServer(listen_fd, ep, owner));
}

CallServer::~CallServer() {
  for (const auto& [fd, c] : by_fd_) ::close(fd);
  ::close(listen_fd_);  // callers now see EPIPE
  ::close(ep_);
}

void CallServer::accept_all() noexcept {
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    ucred cr{};
    socklen_t len = sizeof cr;
    // The socket file lets every class with any bit connect; calling needs the write bit.
    const bool ok = by_fd_.size() < kMaxCallers && ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 &&
                    mode_permits(Caller{cr.pid, cr.uid, cr.gid}, owner_.uid, owner_.gid, owner_.mode, false, true);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (!ok || ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ++refused_;
      ::close(fd);
      continue;
    }
    const uint32_t id = next_id_++ ?: next_id_++;  // 0 never names a connection
    by_fd_[fd] = Conn{id, cr.pid};
    by_id_[id] = fd;
  }
  publish();
}

void CallServer::set_stats(std::shared_ptr<stats::Mapping> page) noexcept {
  std::lock_guard<std::mutex> lk(mu_);
  stats_ = std::move(page);
  if (stats_) stats_->page()->callers_bound.store(kMaxCallers, std::memory_order_relaxed);
  publish();
}

void CallServer::publish() noexcept {
  if (!stats_) return;
  stats::Page* p = stats_->page();
  constexpr auto r = std::memory_order_relaxed;
  p->callers.store(by_fd_.size(), r);
  p->callers_refused.store(refused_, r);
  p->replies_dropped.store(dropped_, r);
}

void CallServer::drop(int fd) noexcept {
  auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) return;
  by_id_.erase(it->second.id);
  by_fd_.erase(it);
  ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  publish();
}

int CallServer::take(int fd, MsgHeader* hdr, void* buf, uint32_t cap, uint64_t* call) noexcept {
  frame::Frame f;
  const ssize_t n = ::recv(fd, &f, sizeof f, MSG_DONTWAIT | MSG_TRUNC);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
  // EOF, an error, or anything but a well-formed call: the connection goes (a caller
  // that sends garbage gets -EPIPE on its calls, and nobody else is affected).
  if (n <= 0 || n > static_cast<ssize_t>(sizeof f) || frame::check_call_packet(&f, size_t(n), frame::kCall, &f) < 0) {
    drop(fd);
    return 0;
  }
  const Conn& c = by_fd_.at(fd);
  *hdr = header_of(f);
  hdr->sender = static_cast<uint32_t>(c.pid);
  hdr->receiver = 0;
  *call = uint64_t(c.id) << 32 | f.reserved;
  if (f.size > cap) return -EMSGSIZE;
  if (f.size) std::memcpy(buf, f.payload, f.size);
  return 1;
}

int CallServer::receive(MsgHeader* hdr, void* buf, uint32_t cap, uint64_t* call, Deadline deadline) noexcept {
  for (;;) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      epoll_event ev[16];
      const int n = ::epoll_wait(ep_, ev, 16, 0);
      for (int i = 0; i < n; ++i) {
        if (ev[i].data.fd == listen_fd_) {
          accept_all();
          continue;
        }
        if (by_fd_.count(ev[i].data.fd) == 0) continue;  // dropped by another thread
        const int rc = take(ev[i].data.fd, hdr, buf, cap, call);
        if (rc != 0) return rc < 0 ? rc : static_cast<int>(hdr->size);
      }
      if (n == 16) continue;  // more may be ready: look again before sleeping
    }
    if (deadline.expired()) return -ETIMEDOUT;
    pollfd p{ep_, POLLIN, 0};
    if (::poll(&p, 1, deadline.poll_ms()) < 0 && errno == EINTR) return -EINTR;
  }
}

int CallServer::reply(uint64_t call, const MsgHeader& hdr, const void* payload) noexcept {
  if (hdr.size > kMaxPayloadBytes) return -EMSGSIZE;
  std::lock_guard<std::mutex> lk(mu_);
  auto it = by_id_.find(static_cast<uint32_t>(call >> 32));
  if (it == by_id_.end()) return -EPIPE;  // the caller hung up: nobody to answer
  frame::Frame f = frame::make_call_frame(frame::kReply, static_cast<uint32_t>(call), hdr, payload);
  if (::send(it->second, &f, f.wire_bytes(), MSG_DONTWAIT | MSG_NOSIGNAL) == static_cast<ssize_t>(f.wire_bytes()))
    return 0;
  const int e = errno;
  ++dropped_;
  publish();
  if (e == EAGAIN) return -EAGAIN;
  drop(it->second);
  return -EPIPE;
}

}  // namespace fwipc::call
