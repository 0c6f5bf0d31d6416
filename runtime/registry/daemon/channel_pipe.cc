// A PIPE channel's FIFOs. The registry is the only process that creates files in the
// runtime directory: the channel FIFO (JOIN frames only, opened by path by the creator's
// runtime alone) and one FIFO per member, named after the PID read from the member's
// registry connection, so the hub knows who wrote what it reads from a writer's FIFO.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/registry/daemon/server.h"
#include "transports/frame.h"

namespace fwipc::registry {
namespace {

// mkfifo with exactly `mode` (no umask window), owned by uid/gid when we are root.
int make_fifo(const std::string& path, uint32_t mode, uid_t uid, gid_t gid) {
  ::unlink(path.c_str());  // left by a crashed creator: the name is free in our map
  const mode_t old = ::umask(0777);
  int rc = ::mkfifo(path.c_str(), 0);
  ::umask(old);
  if (rc == 0) rc = ::chmod(path.c_str(), mode);
  if (rc == 0 && ::geteuid() == 0) rc = ::chown(path.c_str(), uid, gid);
  if (rc != 0) {
    const int e = errno;
    ::unlink(path.c_str());
    return -e;
  }
  return 0;
}

// A new FIFO of channel ch for one member, path ch.path + infix + "." + join id (the next
// free one), opened with `flags`. With O_WRONLY, a read end is also opened and kept in
// ch.keepers, so that writes succeed before the creator's runtime opens the FIFO. *join and
// *path receive the id and the path. Returns the descriptor or -errno.
int member_fifo(Channel& ch, const std::string& infix, int flags, uint32_t* join, std::string* path) {
  std::string p;
  uint32_t id;
  // An adopted channel restarts numbering: skip FIFOs of members joined before.
  struct stat st;
  do {
    id = ch.next_join++;
    p = ch.path + infix + "." + std::to_string(id);
  } while (::lstat(p.c_str(), &st) == 0);
  if (int rc = make_fifo(p, 0600, ch.uid, ch.gid); rc < 0) return rc;
  // O_RDONLY first: a FIFO opens for writing only while it has a reader.
  const int k = flags == O_WRONLY ? ::open(p.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1;
  const int fd = flags != O_WRONLY || k >= 0 ? ::open(p.c_str(), flags | O_NONBLOCK | O_CLOEXEC) : -1;
  if (fd < 0) {
    const int e = errno;
    if (k >= 0) ::close(k);
    ::unlink(p.c_str());
    return -e;
  }
  if (k >= 0) ch.keepers[p] = Channel::Keeper{k, false};
  *join = id;
  *path = std::move(p);
  return fd;
}

}  // namespace

int Server::create_pipe(Channel& ch) {
  ch.path = opts_.runtime_dir + "/" + ch.name + ".fifo";
  // Only the creator's runtime and the registry ever open it by path; everyone else gets
  // a descriptor from us, so the mode on the file is the owner's alone.
  const int rc = make_fifo(ch.path, 0600, ch.uid, ch.gid);
  const int fd = rc < 0 ? -1 : ::open(ch.path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int e = rc < 0 ? rc : -errno;
    ::unlink(ch.path.c_str());
    return e;
  }
  pass(fd, true);
  return 0;
}

// Everyone gets a write end of the channel FIFO, for JOIN frames. A reader also gets its
// own FIFO, which the creator's runtime opens for writing when the JOIN arrives; a writer
// gets the write end of its own FIFO, which the creator's runtime opens for reading when
// that JOIN arrives. Both are named after the member's PID (see the hub's join).
int Server::open_pipe(Client& c, Channel& ch, bool want_read, bool want_write, Membership& m) {
  if (want_write && keepers_held() >= kMaxKeepers) return -ENOSPC;  // see kMaxKeepers
  const int in_w = ::open(ch.path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (in_w < 0) return errno == ENXIO ? -ENOENT : -errno;  // ENXIO: the creator is gone
  pass(in_w, true);
  if (want_read) {
    const int rd = member_fifo(ch, ".r" + std::to_string(c.cred.pid), O_RDWR, &m.reader_state, &m.reader_fifo);
    if (rd < 0) return rd;
    pass(rd, true);
  }
  if (want_write) {
    const int wr = member_fifo(ch, ".w" + std::to_string(c.cred.pid), O_WRONLY, &m.writer_state, &m.writer_fifo);
    if (wr < 0) {
      if (!m.reader_fifo.empty()) ::unlink(m.reader_fifo.c_str());
      return wr;
    }
    pass(wr, true);
    ticking_ = true;  // settle_keepers() until the creator's runtime has opened it
  }
  return 0;
}

void Server::release_pipe(Membership& m) {
  if (!m.reader_fifo.empty()) ::unlink(m.reader_fifo.c_str());
  if (!m.writer_fifo.empty()) {
    // Not opened by the creator's runtime yet: what it holds is still to be delivered.
    if (auto k = m.ch->keepers.find(m.writer_fifo); k != m.ch->keepers.end())
      k->second.orphan = true;
    else
      ::unlink(m.writer_fifo.c_str());
    settle_keepers(*m.ch, false);
  }
}

// Closes the keepers (see Channel) the creator's runtime has taken over, or all of them
// once it is gone.
void Server::settle_keepers(Channel& ch, bool all) {
  for (auto it = ch.keepers.begin(); it != ch.keepers.end();) {
    struct stat st;
    const bool taken = ::fstat(it->second.fd, &st) == 0 && (st.st_mode & 0777) == frame::kFifoTakenMode;
    if (!all && !taken) {
      ++it;
      continue;
    }
    ::close(it->second.fd);
    if (it->second.orphan) ::unlink(it->first.c_str());
    it = ch.keepers.erase(it);
  }
}

}  // namespace fwipc::registry
