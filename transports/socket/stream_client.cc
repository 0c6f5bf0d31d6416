// The member side shared by the SOCKET and PIPE transports (see stream_client.h).
#include "transports/socket/stream_client.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "base/time.h"
#include "transports/socket/io.h"

namespace fwipc::sock {
namespace {

// An epoll set of the data descriptor, an eventfd that is set while the inbox holds
// messages, and optionally a descriptor whose EPOLLERR means the hub is gone. On failure
// nothing is left open.
int make_notify(int data_fd, int err_fd, int* ep_out, int* evfd_out) noexcept {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return -errno;
  const int evfd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  auto fail = [&] {
    const int e = errno;
    ::close(ep);
    if (evfd >= 0) ::close(evfd);
    return -e;
  };
  if (evfd < 0) return fail();
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = data_fd;
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, data_fd, &ev) != 0) return fail();
  ev.data.fd = evfd;
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, evfd, &ev) != 0) return fail();
  if (err_fd >= 0) {
    ev.events = 0;  // EPOLLERR is reported regardless of the mask
    ev.data.fd = err_fd;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, err_fd, &ev) != 0) return fail();
  }
  *ep_out = ep;
  *evfd_out = evfd;
  return 0;
}

}  // namespace

StreamClient::StreamClient(int read_fd, int gone_fd, uint32_t capacity_msgs, pid_t self) noexcept
    : capacity_(capacity_msgs), pid_(static_cast<uint32_t>(self)), read_fd_(read_fd), gone_fd_(gone_fd) {}

StreamClient::~StreamClient() {
  if (ep_ >= 0) ::close(ep_);
  if (evfd_ >= 0) ::close(evfd_);
}

void StreamClient::inbox_changed() noexcept { set_ready(evfd_, &ev_set_, !inbox_.empty() || evicted_); }

int StreamClient::receive(MsgHeader* hdr, void* buf, uint32_t cap, int64_t timeout_ns) noexcept {
  if (read_fd_ < 0) return -EBADF;
  const Deadline deadline = Deadline::after_ns(timeout_ns);
  for (;;) {
    fill();
    if (int rc = error_first(); rc < 0) return rc;
    if (!inbox_.empty()) {
      const int rc = inbox_.pop(hdr, buf, cap);
      inbox_changed();
      return rc;
    }
    if (int rc = when_empty(); rc < 0)
      return rc;
    else if (rc == kFillAgain)
      continue;
    if (timeout_ns == 0) return -EAGAIN;  // before the deadline: never a -ETIMEDOUT
    const int ms = deadline.poll_ms();
    if (ms == 0) return -ETIMEDOUT;
    pollfd p[2] = {{read_fd_, POLLIN, 0}, {gone_fd_, 0, 0}};
    ::poll(p, gone_fd_ < 0 ? 1 : 2, ms);
  }
}

int StreamClient::notify_fd() noexcept {
  if (read_fd_ < 0) return -EBADF;
  if (ep_ < 0) {
    if (int rc = make_notify(read_fd_, gone_fd_, &ep_, &evfd_); rc < 0) return rc;
    inbox_changed();
  }
  return ep_;
}

}  // namespace fwipc::sock
