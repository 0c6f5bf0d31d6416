// Liveness of what the registry cannot watch through a connection: channels adopted from a
// previous registry (their creator holds no connection to us), and files in the runtime
// directory that a crash of everything left behind. Cleanup is idempotent.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/proc.h"
#include "runtime/registry/daemon/server.h"
#include "runtime/registry/stale_files.h"

namespace fwipc::registry {

// Removes socket files and FIFOs in the runtime directory that no channel or membership
// of ours uses. Returns how many were removed.
int Server::clean_dir() {
  std::vector<std::string> in_use;
  for (const auto& [id, ch] : channels_) {
    if (!ch->path.empty()) in_use.push_back(ch->path);
    if (!ch->call_path.empty()) in_use.push_back(ch->call_path);
    for (const auto& [path, k] : ch->keepers) in_use.push_back(path);
  }
  for (const auto& [fd, cl] : clients_)
    for (const auto& [h, m] : cl->members)
      for (const std::string* f : {&m.reader_fifo, &m.writer_fifo})
        if (!f->empty()) in_use.push_back(*f);
  return remove_stale_files(opts_.runtime_dir, in_use);
}

// Adopted channels have no creator membership: their name goes when the creator dies or
// closes the channel (a closed ring, a socket nobody listens on, a FIFO nobody reads).
// Returns whether any adopted channel remains.
bool Server::sweep() {
  bool any = false;
  ++sweeps_;
  for (auto it = channels_.begin(); it != channels_.end();) {
    Channel* ch = it->second.get();
    // Ring v2: a previous registry's members that have not rejoined, whoever created it.
    if (ch->v2 && sweep_ring2(*ch)) any = true;
    if (!ch->adopted || ch->name.empty()) {
      ++it;
      continue;
    }
    bool gone = !process_alive(ch->creator_pid, ch->creator_start);
    if (!gone && ch->v2) {
      // The creator's close reaches us through kRejoin (it is no longer adopted then).
    } else if (!gone && ch->transport == TransportKind::kShmRing) {
      gone = ch->seg.header()->closed.load(std::memory_order_acquire) != 0;
      if (!gone) shm::reap_dead_entries(ch->seg);  // nobody else tracks pre-restart members
    } else if (!gone && ch->transport == TransportKind::kSocket) {
      // A probe is a connection the creator's hub must accept and drop: once a second.
      gone = sweeps_ % 5 == 0 && !socket_listened(ch->path);
    } else if (!gone) {
      const int fd = ::open(ch->path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      gone = fd < 0;
      if (fd >= 0) ::close(fd);
    }
    if (gone) {
      unlink_name(ch);
      if (ch->members == 0) {
        const uint32_t id = (it++)->first;
        forget_channel(id);
        continue;
      }
    } else {
      any = true;
    }
    ++it;
  }
  return any;
}

}  // namespace fwipc::registry
