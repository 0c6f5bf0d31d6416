// See call_client.h.
#include "transports/call/call_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/unixsock.h"

namespace fwipc::call {

CallClient::~CallClient() {
  if (fd_ >= 0) ::close(fd_);
  if (epfd_ >= 0) ::close(epfd_);
  if (wake_ >= 0) ::close(wake_);
}

void CallClient::forget_after_fork() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  // The epoll instance is shared with the parent (closing our copy of the socket does not
  // take it out of the set): the child makes its own when it asks.
  if (epfd_ >= 0) ::close(epfd_);
  if (wake_ >= 0) ::close(wake_);
  epfd_ = wake_ = -1;
  waiting_.clear();
  async_ = 0;
  reading_ = false;
}

int CallClient::connect_locked() noexcept {
  if (fd_ >= 0) return 0;
  const int fd = connect_seqpacket(path_, 0);
  // The socket file gone (the creator closed the channel) or served by nobody (it died):
  // for an id that is still open, the channel is closed.
  if (fd < 0) return fd == -ECONNREFUSED || fd == -ENOENT ? -EPIPE : fd;
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  if (epfd_ >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) {
      const int e = errno;
      ::close(fd);
      return -e;
    }
  }
  fd_ = fd;
  ++conn_;
  return 0;
}

// The connection broke: every call in flight on it fails (their replies cannot come).
// Closing the socket also takes it out of epfd_ (no other descriptor refers to it), so
// an event loop with calls in flight is told through wake_.
void CallClient::fail_all_locked() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  cv_.notify_all();
  if (async_ > 0 && wake_ >= 0) ::eventfd_write(wake_, 1);
}

uint32_t CallClient::next_seq_locked() noexcept {
  // Skips 0 and any seq still in flight (after 2^32 calls a slow one may remain).
  for (;;) {
    const uint32_t seq = next_seq_++;
    if (seq != 0 && waiting_.find(seq) == waiting_.end()) return seq;
  }
}

// One non-blocking send of a whole request: 0, -EAGAIN (socket full) or -EPIPE.
int CallClient::send_locked(const frame::Frame& f) noexcept {
  if (::send(fd_, &f, f.wire_bytes(), MSG_DONTWAIT | MSG_NOSIGNAL) == static_cast<ssize_t>(f.wire_bytes())) return 0;
  if (errno == EAGAIN) return -EAGAIN;
  fail_all_locked();
  return -EPIPE;
}

// A reply nobody waits for (its call timed out or was cancelled) is dropped here. A
// reply for start()'s call that a thread in call() read off the socket leaves nothing
// readable there: the event loop is told through wake_ instead.
void CallClient::take_reply_locked(const frame::Frame& in, bool by_result) noexcept {
  auto w = waiting_.find(in.reserved);
  if (w == waiting_.end()) return;
  w->second.reply = in;
  if (w->second.async && !by_result && wake_ >= 0) ::eventfd_write(wake_, 1);
}

int CallClient::fill_reply(const frame::Frame& r, MsgHeader* rep, void* buf, uint32_t cap) const noexcept {
  *rep = header_of(r);
  rep->sender = server_pid_;
  rep->receiver = 0;
  if (r.size > cap) return -EMSGSIZE;
  if (r.size) std::memcpy(buf, r.payload, r.size);
  return static_cast<int>(r.size);
}

int CallClient::call(const MsgHeader& req, const void* payload, MsgHeader* rep, void* buf, uint32_t cap,
                     Deadline deadline) noexcept {
  if (req.size > kMaxPayloadBytes) return -EMSGSIZE;
  std::unique_lock<std::mutex> lk(mu_);
  if (int rc = connect_locked(); rc < 0) return rc;
  const int fd = fd_;
  const uint32_t seq = next_seq_locked();
  const frame::Frame f = frame::make_call_frame(frame::kCall, seq, req, payload);
  // A server slower than its callers fills our socket: wait for room within the deadline.
  for (;;) {
    const int rc = send_locked(f);
    if (rc == 0) break;
    if (rc != -EAGAIN) return rc;
    if (deadline.expired()) return -ETIMEDOUT;
    lk.unlock();
    pollfd p{fd, POLLOUT, 0};
    ::poll(&p, 1, deadline.poll_ms(10));  // capped: another thread may close fd meanwhile
    lk.lock();
    if (fd_ != fd) return -EPIPE;
  }
  waiting_[seq] = Waiter{conn_, false, std::nullopt};
  int rc = -ETIMEDOUT;
  for (;;) {
    auto me = waiting_.find(seq);
    if (me->second.reply) {
      rc = fill_reply(*me->second.reply, rep, buf, cap);
      break;
    }
    if (fd_ != fd) {
      rc = -EPIPE;
      break;
    }
    if (deadline.expired()) break;
    if (reading_) {
      // Another caller reads; it hands our reply over and wakes us.
      if (deadline.infinite())
        cv_.wait(lk);
      else
        cv_.wait_for(lk, std::chrono::nanoseconds(deadline.remaining_ns()));
      continue;
    }
    reading_ = true;
    lk.unlock();
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, deadline.poll_ms());
    frame::Frame in;
    ssize_t n = 0;
    if (ready > 0) n = ::recv(fd, &in, sizeof in, MSG_DONTWAIT | MSG_TRUNC);
    const int e = errno;
    lk.lock();
    reading_ = false;
    if (ready > 0 && (n == 0 || (n < 0 && e != EAGAIN && e != EINTR))) {
      fail_all_locked();
      continue;
    }
    if (n > 0 && n <= static_cast<ssize_t>(sizeof in) &&
        frame::check_call_packet(&in, size_t(n), frame::kReply, &in) == 0)
      take_reply_locked(in, false);
    cv_.notify_all();
  }
  waiting_.erase(seq);
  return rc;
}

int CallClient::start(const MsgHeader& req, const void* payload, uint32_t* seq) noexcept {
  if (req.size > kMaxPayloadBytes) return -EMSGSIZE;
  std::lock_guard<std::mutex> lk(mu_);
  if (async_ >= kMaxAsyncCalls) return -ENOBUFS;
  if (int rc = connect_locked(); rc < 0) return rc;
  const uint32_t s = next_seq_locked();
  if (int rc = send_locked(frame::make_call_frame(frame::kCall, s, req, payload)); rc < 0) return rc;
  waiting_[s] = Waiter{conn_, true, std::nullopt};
  ++async_;
  *seq = s;
  return 0;
}

int CallClient::result(uint32_t seq, MsgHeader* rep, void* buf, uint32_t cap) noexcept {
  std::lock_guard<std::mutex> lk(mu_);
  auto me = waiting_.find(seq);
  if (me == waiting_.end() || !me->second.async) return -ENOENT;
  if (wake_ >= 0) {
    eventfd_t ignored;
    ::eventfd_read(wake_, &ignored);  // non-blocking: the loop asks every call it waits for
  }
  // Reads what has come, unless a thread in call() is reading (it hands replies over).
  // Never blocks: the socket is non-blocking.
  while (!me->second.reply && !reading_ && fd_ >= 0 && me->second.conn == conn_) {
    frame::Frame in;
    const ssize_t n = ::recv(fd_, &in, sizeof in, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    if (n <= 0) {
      fail_all_locked();
      break;
    }
    if (n <= static_cast<ssize_t>(sizeof in) && frame::check_call_packet(&in, size_t(n), frame::kReply, &in) == 0) {
      take_reply_locked(in, true);
      cv_.notify_all();
    }
  }
  int rc;
  if (me->second.reply)
    rc = fill_reply(*me->second.reply, rep, buf, cap);
  else if (fd_ < 0 || me->second.conn != conn_)
    rc = -EPIPE;
  else
    return -EAGAIN;
  waiting_.erase(me);
  --async_;
  return rc;
}

void CallClient::cancel(uint32_t seq) noexcept {
  std::lock_guard<std::mutex> lk(mu_);
  auto me = waiting_.find(seq);
  if (me == waiting_.end() || !me->second.async) return;
  waiting_.erase(me);
  --async_;
}

int CallClient::event_fd() noexcept {
  std::lock_guard<std::mutex> lk(mu_);
  if (epfd_ >= 0) return epfd_;
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return -errno;
  const int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  int rc = wake < 0 ? -errno : 0;
  if (rc == 0) {
    ev.data.fd = wake;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, wake, &ev) < 0) rc = -errno;
  }
  if (rc == 0 && fd_ >= 0) {
    ev.data.fd = fd_;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd_, &ev) < 0) rc = -errno;
  }
  if (rc < 0) {
    if (wake >= 0) ::close(wake);
    ::close(ep);
    return rc;
  }
  epfd_ = ep;
  wake_ = wake;
  return ep;
}

}  // namespace fwipc::call
