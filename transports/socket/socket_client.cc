// A member of a SOCKET channel (see socket_client.h).
#include "transports/socket/socket_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>

#include "base/time.h"
#include "base/unixsock.h"
#include "transports/socket/io.h"

namespace fwipc::sock {

int SocketClient::connect_hub(const char* path, bool reader, bool writer, int entry_index,
                              uint32_t entry_state) noexcept {
  sockaddr_un a;
  if (int rc = unix_address(path, &a); rc < 0) return rc;
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
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
  // Sent before open() returns, so the hub knows us as a reader before any later send;
  // it gets what was sent from now on (the join time), not what waits in writers' buffers.
  const frame::Frame hello =
      frame::make_hello(static_cast<uint16_t>((reader ? frame::kHelloRead : 0) | (writer ? frame::kHelloWrite : 0)),
                        static_cast<uint64_t>(monotonic_ns()), entry_index, entry_state);
  if (::send(fd, &hello, frame::kHeaderBytes, MSG_NOSIGNAL) != frame::kHeaderBytes) {
    const int e = errno;
    ::close(fd);
    return -e;
  }
  return fd;
}

SocketClient::SocketClient(int conn, bool reader, bool writer, uint32_t cap, pid_t self) noexcept
    : StreamClient(reader ? conn : -1, -1, cap, self), conn_(conn), writer_(writer) {}

SocketClient::~SocketClient() {
  if (conn_ >= 0) ::close(conn_);
}

void SocketClient::fill() noexcept {
  while (!eof_ && !evicted_ && inbox_.size() < capacity_) {
    char buf[frame::kMaxFrame + 1];  // one byte more: an oversized packet shows as such
    const ssize_t n = ::recv(conn_, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {
      eof_ = true;
      break;
    }
    frame::Frame f;
    const int rc = frame::check_packet(buf, static_cast<size_t>(n), &f);
    if (rc == 0 && f.kind == frame::kEvicted) {
      evicted_ = true;
      break;
    }
    if (rc != 0 || f.kind != frame::kData) {
      ++bad_;
      continue;
    }
    inbox_.push(f);
  }
  inbox_changed();
}

int SocketClient::error_first() noexcept {
  if (bad_ == 0) return 0;
  --bad_;
  return -EBADMSG;
}

int SocketClient::when_empty() noexcept { return evicted_ ? -ENOBUFS : eof_ ? -EPIPE : 0; }

int SocketClient::send(const MsgHeader& h, const void* payload, int64_t timeout_ns) noexcept {
  if (!writer_) return -EBADF;
  if (h.size > frame::kMaxPayload) return -EMSGSIZE;
  const frame::Frame f = frame::make_data_frame(h, payload, pid_, static_cast<uint64_t>(monotonic_ns()));
  const int rc = write_frame_to(conn_, Link::kSeqpacket, f, timeout_ns);
  return rc < 0 ? rc : static_cast<int>(h.size);
}

}  // namespace fwipc::sock
