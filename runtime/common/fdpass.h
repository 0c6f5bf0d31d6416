// Receiving a datagram with descriptors attached (SCM_RIGHTS), shared by the registry
// client, the registry's fuzz session and ipcctl.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace fwipc {

// Receives one datagram of at most len bytes into buf, with up to max_fds descriptors
// (close-on-exec) into fds[]; unused fds[] entries are -1 and descriptors beyond max_fds
// are closed. Retries on EINTR. Returns the byte count or -errno.
ssize_t recv_with_fds(int sock, void* buf, size_t len, int* fds, int max_fds, int flags) noexcept;

}  // namespace fwipc
