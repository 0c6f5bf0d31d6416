// The sockets of a channel: NAME.sock of a SOCKET channel or of a QUEUE channel's bridge,
// and NAME.call of every channel (request/reply). Bound here with the channel's mode (so
// the kernel refuses connections the mode refuses) and passed to the creator, whose
// runtime serves them; members connect to them by path.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>

#include "base/unixsock.h"
#include "runtime/registry/daemon/server.h"

namespace fwipc::registry {

uint32_t connect_mode(uint32_t mode) {
  uint32_t m = 0;
  for (int shift : {6, 3, 0})
    if ((mode >> shift) & 6) m |= 6u << shift;
  return m;
}

bool socket_listened(const std::string& path) {
  sockaddr_un a;
  if (unix_address(path, &a) < 0) return false;
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return true;  // cannot tell: keep it
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 || errno == EAGAIN;
  ::close(fd);
  return ok;
}

namespace {
// Binds and listens on path. The listening descriptor, or -errno.
int bind_channel_socket(const std::string& path, uint32_t mode, uid_t uid, gid_t gid) {
  sockaddr_un a;
  if (int rc = unix_address(path, &a); rc < 0) return rc;
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  ::unlink(path.c_str());            // left by a crashed creator: the name is free in our map
  const mode_t old = ::umask(0777);  // no window in which the file is wider than asked
  const int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::umask(old);
  if (rc != 0 || ::chmod(path.c_str(), connect_mode(mode)) != 0 ||
      (::geteuid() == 0 && ::chown(path.c_str(), uid, gid) != 0) || ::listen(fd, 512) != 0) {
    const int e = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return -e;
  }
  return fd;
}
}  // namespace

int Server::create_socket(Channel& ch) {
  ch.path = opts_.runtime_dir + "/" + ch.name + ".sock";
  const int lfd = bind_channel_socket(ch.path, ch.mode, ch.uid, ch.gid);
  if (lfd < 0) return lfd;
  pass(lfd, true);  // ours to close once passed to the creator
  return 0;
}

int Server::create_call_socket(Channel& ch) {
  ch.call_path = opts_.runtime_dir + "/" + ch.name + ".call";
  const int lfd = bind_channel_socket(ch.call_path, ch.mode, ch.uid, ch.gid);
  if (lfd < 0) return lfd;
  pass(lfd, true);
  return 0;
}

}  // namespace fwipc::registry
