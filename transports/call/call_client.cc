// See call_client.h.
#include "transports/call/call_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/unixsock.h"

namespace fwipc::call {

CallClient::~CallClient() {
  if (fd_ >= 0) ::close(fd_);
}

void CallClient::forget_after_fork() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  waiting_.clear();
  reading_ = false;
}

int CallClient::connect_locked() noexcept {
  if (fd_ >= 0) return 0;
  const int fd = connect_seqpacket(path_, 0);
  // The socket file gone (the creator closed the channel) or served by nobody (it died):
  // for an id that is still open, the channel is closed.
  if (fd < 0) return fd == -ECONNREFUSED || fd == -ENOENT ? -EPIPE : fd;
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  fd_ = fd;
  return 0;
}

// The connection broke: every call in flight on it fails (their replies cannot come).
void CallClient::fail_all_locked() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  cv_.notify_all();
}

int CallClient::call(const MsgHeader& req, const void* payload, MsgHeader* rep, void* buf, uint32_t cap,
                     Deadline deadline) noexcept {
  if (req.size > kMaxPayloadBytes) return -EMSGSIZE;
  std::unique_lock<std::mutex> lk(mu_);
  if (int rc = connect_locked(); rc < 0) return rc;
  const int fd = fd_;
  uint32_t seq = next_seq_++;
  if (seq == 0) seq = next_seq_++;
  const frame::Frame f = frame::make_call_frame(frame::kCall, seq, req, payload);
  // A server slower than its callers fills our socket: wait for room within the deadline.
  for (;;) {
    if (::send(fd, &f, f.wire_bytes(), MSG_DONTWAIT | MSG_NOSIGNAL) == static_cast<ssize_t>(f.wire_bytes())) break;
    if (errno != EAGAIN) {
      fail_all_locked();
      return -EPIPE;
    }
    if (deadline.expired()) return -ETIMEDOUT;
    lk.unlock();
    pollfd p{fd, POLLOUT, 0};
    ::poll(&p, 1, deadline.poll_ms(10));  // capped: another thread may close fd meanwhile
    lk.lock();
    if (fd_ != fd) return -EPIPE;
  }
  waiting_[seq] = std::nullopt;
  int rc = -ETIMEDOUT;
  for (;;) {
    auto me = waiting_.find(seq);
    if (me->second) {
      const frame::Frame& r = *me->second;
      *rep = header_of(r);
      rep->sender = server_pid_;
      rep->receiver = 0;
      rc = r.size > cap ? -EMSGSIZE : static_cast<int>(r.size);
      if (rc >= 0 && r.size) std::memcpy(buf, r.payload, r.size);
      break;
    }
    if (fd_ != fd) {
      rc = -EPIPE;
      break;
    }
    if (deadline.expired()) break;
    if (reading_) {
      // Another caller reads; it hands our reply over and wakes us.
      if (deadline.infinite()) cv_.wait(lk);
      else cv_.wait_for(lk, std::chrono::nanoseconds(deadline.remaining_ns()));
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
    if (n > 0 && n <= static_cast<ssize_t>(sizeof in) && frame::check_call_packet(&in, size_t(n), frame::kReply, &in) == 0) {
      // A reply nobody waits for (its call timed out) is dropped here.
      if (auto w = waiting_.find(in.reserved); w != waiting_.end()) w->second = in;
    }
    cv_.notify_all();
  }
  waiting_.erase(seq);
  return rc;
}

}  // namespace fwipc::call
