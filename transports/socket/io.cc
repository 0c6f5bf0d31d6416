// Frame I/O on seqpacket sockets and FIFOs (see io.h).
#include "transports/socket/io.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "base/time.h"

namespace fwipc::sock {

// write() to a FIFO whose reader is gone raises SIGPIPE; a library must not kill its host
// for that. Block the signal for this write and swallow one we caused.
ssize_t write_nosigpipe(int fd, const void* buf, size_t len) noexcept {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigset_t pending;
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ssize_t n;
  do {
    n = ::write(fd, buf, len);
  } while (n < 0 && errno == EINTR);
  const int e = errno;
  if (n < 0 && e == EPIPE && !was_pending) {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = e;
  return n;
}

ssize_t write_frame_once(int fd, Link link, const frame::Frame& f) noexcept {
  return link == Link::kFifo ? write_nosigpipe(fd, &f, f.wire_bytes())
                             : ::send(fd, &f, f.wire_bytes(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

int write_frame_to(int fd, Link link, const frame::Frame& f, int64_t timeout_ns, int gone_fd) noexcept {
  // timeout_ns == 0 is answered before the deadline is looked at: never a -ETIMEDOUT.
  const Deadline deadline = Deadline::after_ns(timeout_ns);
  for (;;) {
    const ssize_t n = write_frame_once(fd, link, f);
    if (n == static_cast<ssize_t>(f.wire_bytes())) return 0;
    if (n >= 0 || errno != EAGAIN) return -EPIPE;  // the hub is gone: so is the channel
    if (timeout_ns == 0) return -EAGAIN;
    const int ms = deadline.poll_ms();
    if (ms == 0) return -ETIMEDOUT;
    pollfd p[2] = {{fd, POLLOUT, 0}, {gone_fd, 0, 0}};
    if (::poll(p, gone_fd < 0 ? 1 : 2, ms) > 0 && (p[1].revents & POLLERR)) return -EPIPE;
  }
}

void set_ready(int evfd, bool* is_set, bool want) noexcept {
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

}  // namespace fwipc::sock
