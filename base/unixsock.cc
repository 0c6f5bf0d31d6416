#include "base/unixsock.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fwipc {

int unix_address(const std::string& path, sockaddr_un* a) noexcept {
  *a = sockaddr_un{};
  a->sun_family = AF_UNIX;
  if (path.size() >= sizeof a->sun_path) return -ENAMETOOLONG;
  std::memcpy(a->sun_path, path.c_str(), path.size() + 1);
  return 0;
}

int connect_seqpacket(const std::string& path, int timeout_sec) noexcept {
  sockaddr_un a;
  if (int rc = unix_address(path, &a); rc < 0) return rc;
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int e = errno;
    ::close(fd);
    return -e;
  }
  if (timeout_sec > 0) {
    const timeval tv{timeout_sec, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  return fd;
}

ssize_t recv_with_fds(int sock, void* buf, size_t len, int* fds, int max_fds, int flags) noexcept {
  for (int i = 0; i < max_fds; ++i) fds[i] = -1;
  iovec iov{buf, len};
  alignas(cmsghdr) char ctl[CMSG_SPACE(8 * sizeof(int))];
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl;
  m.msg_controllen = sizeof ctl;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &m, flags | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  int taken = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (taken < max_fds)
        fds[taken++] = fd;
      else
        ::close(fd);
    }
  }
  return n;
}

int bind_datagram(const sockaddr_un& a, socklen_t len) noexcept {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), len) != 0) {
    const int e = errno;
    ::close(fd);
    return -e;
  }
  return fd;
}

void ping_datagram(const sockaddr_un& a, socklen_t len) noexcept {
  static const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const char b = 1;
  (void)::sendto(fd, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&a), len);
}

}  // namespace fwipc
