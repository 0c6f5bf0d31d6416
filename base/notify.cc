// Readiness notification as systemd's sd_notify() does it: one datagram with the state
// text to $NOTIFY_SOCKET, a filesystem path or, with a leading '@', an abstract socket.
#include "base/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace fwipc {

int sd_notify(const char* state) {
  if (state == nullptr || state[0] == '\0') return -EINVAL;
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return 0;
  const size_t len = std::strlen(path);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if ((path[0] != '/' && path[0] != '@') || len < 2 || len >= sizeof addr.sun_path) return -EINVAL;
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  // An abstract name's length is exact (no terminating zero); a path's includes its zero.
  const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len + (path[0] == '@' ? 0 : 1));
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  const ssize_t n = ::sendto(fd, state, std::strlen(state), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), addr_len);
  const int rc = n < 0 ? -errno : 1;
  ::close(fd);
  return rc;
}

}  // namespace fwipc
