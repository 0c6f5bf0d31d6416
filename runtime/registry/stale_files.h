// The runtime directory's channel files, by their naming pattern: NAME.sock (a SOCKET
// channel, or a QUEUE channel's bridge), NAME.call (request/reply), NAME.fifo (a PIPE channel) and
// NAME.fifo.{r,w}PID.N (a PIPE member's own FIFO). Shared by the registry, which cleans at
// start and on request, and by `ipcctl clean` when no registry runs.
#pragma once

#include <string>
#include <vector>

namespace fwipc::registry {

// Unlinks channel files in dir except those in in_use and FIFOs of live members. Returns
// how many, or -errno. The caller must be the registry or hold its lock.
int remove_stale_files(const std::string& dir, const std::vector<std::string>& in_use);

}  // namespace fwipc::registry
