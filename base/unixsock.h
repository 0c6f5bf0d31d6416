// Unix-domain socket helpers shared by the registry, its clients, the SOCKET transport
// and ipcctl: addresses, connecting, receiving descriptors (SCM_RIGHTS).
#pragma once

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <string>

namespace fwipc {

// Fills *a with path; -ENAMETOOLONG if it does not fit (108 bytes with the NUL).
int unix_address(const std::string& path, sockaddr_un* a) noexcept;

// A SOCK_SEQPACKET socket connected to path, or -errno. With timeout_sec > 0, sends and
// receives on it give up after that long (EAGAIN).
int connect_seqpacket(const std::string& path, int timeout_sec) noexcept;

// Receives one datagram of at most len bytes into buf, with up to max_fds descriptors
// (close-on-exec) into fds[]; unused fds[] entries are -1 and descriptors beyond max_fds
// are closed. Retries on EINTR. Returns the byte count or -errno.
ssize_t recv_with_fds(int sock, void* buf, size_t len, int* fds, int max_fds, int flags) noexcept;

// A non-blocking SOCK_DGRAM socket bound to a (a reader's wake-up descriptor), or -errno.
int bind_datagram(const sockaddr_un& a, socklen_t len) noexcept;
// One byte to the datagram socket bound at a, never blocking: a full queue already means
// "wake up", and nobody bound there means nobody to wake. Sent from one process-wide
// unbound socket, opened at first use and kept (inherited across fork).
void ping_datagram(const sockaddr_un& a, socklen_t len) noexcept;

}  // namespace fwipc
