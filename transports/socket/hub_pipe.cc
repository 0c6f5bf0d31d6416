// The hub's FIFO side (PIPE mode): JOIN frames on the channel FIFO, and the members' own
// FIFOs, read as byte streams (writers) or written (readers).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "base/time.h"
#include "transports/socket/hub.h"
#include "transports/socket/io.h"

namespace fwipc::sock {

// A JOIN from the channel FIFO: opens the member's own FIFO, fifo_prefix + ".r" (reader)
// or ".w" (writer) + PID + "." + join id. Anyone may write the channel FIFO, but the name
// is built from two numbers and only the registry creates files in the runtime directory,
// for the PID of the process it then hands the FIFO to: a forged JOIN can only name a FIFO
// that exists for that PID, and the PID the hub then uses for it is right.
// The join time is at most now (when we learn of it). Announced twice, the earliest time
// counts: a JOIN forged ahead of the reader's own (any member may write the channel FIFO)
// cannot make it miss what was sent after its open() returned: its own JOIN, written before
// that, is read before any such frame is routed (see route()).
void Hub::join(const frame::Frame& f, bool writer) noexcept {
  const pid_t pid = static_cast<pid_t>(f.sender);
  const uint64_t joined = std::min<uint64_t>(f.time_ns, static_cast<uint64_t>(monotonic_ns()));
  for (auto& [fd, p] : peers_) {  // announced twice, or by someone else first
    if (p.cred.pid != pid) continue;
    const auto* w = std::get_if<WriterFifo>(&p.io);
    const auto* r = std::get_if<ReaderFifo>(&p.io);
    if (writer ? (w != nullptr && w->join == f.type) : (r != nullptr && r->join == f.type)) {
      p.joined_ns = std::min(p.joined_ns, joined);
      return;
    }
  }
  const std::string path =
      fifo_prefix_ + (writer ? ".w" : ".r") + std::to_string(f.sender) + "." + std::to_string(f.type);
  // A reader holds its FIFO open (O_RDWR), so opening it for writing does not block or fail
  // with ENXIO unless the reader is already gone.
  const int fd = ::open(path.c_str(), (writer ? O_RDONLY : O_WRONLY) | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0 || peers_.size() >= kMaxPeers) {
    if (fd >= 0) ::close(fd);
    return;
  }
  if (writer) (void)::fchmod(fd, frame::kFifoTakenMode);
  Peer p{};
  p.fd = fd;
  p.cred.pid = pid;
  p.joined_ns = joined;
  if (writer) {
    WriterFifo w{};
    w.join = f.type;
    p.io = std::move(w);
  } else {
    p.io = ReaderFifo{f.type};
  }
  add_peer(std::move(p));
}

// The channel FIFO: JOIN frames only, read whatever the back-pressure (they add no
// messages). Data in it could claim any sender, so it is refused.
void Hub::read_control() noexcept {
  newcomers_ns_ = static_cast<uint64_t>(monotonic_ns());  // before reading: see route()
  for (;;) {
    frame::Frame f;
    int rc;
    while ((rc = decoder_.next(&f)) != 0) {
      if (rc > 0 && (f.kind == frame::kJoin || f.kind == frame::kWriterJoin))
        join(f, f.kind == frame::kWriterJoin);
      else
        ++rejected_;
    }
    char buf[kReadChunkBytes];
    const ssize_t n = ::read(listen_fd_, buf, sizeof buf);
    if (n <= 0) return;
    decoder_.feed(buf, static_cast<size_t>(n));
  }
}

// Bytes first, then the channel FIFO, then routing: a reader whose JOIN was written before
// these frames were (its open() returned before the send) is known before they are routed.
// p may be gone on return.
void Hub::read_writer(Peer& p, WriterFifo& w) noexcept {
  if (w.dec.buffered() < kMaxBufferedBytes) {
    char buf[kReadChunkBytes];
    const ssize_t n = ::read(p.fd, buf, sizeof buf);
    if (n > 0)
      w.dec.feed(buf, static_cast<size_t>(n));
    else if (n == 0)
      w.eof = true;  // only once the FIFO is empty
  }
  read_control();  // adds peers; std::map keeps p and w where they are
  route_from(p, w);
}

// Routes p's buffered frames while every queue has room; drops p once it is drained and
// its writers are gone. p may be gone on return.
void Hub::route_from(Peer& p, WriterFifo& w) noexcept {
  frame::Frame f;
  bool dry = false;  // every complete frame routed
  while (inbound_on_ && !backlogged()) {
    const int rc = w.dec.next(&f);
    if (rc == 0) {
      dry = true;
      break;
    }
    if (rc < 0 || f.kind != frame::kData) {
      ++rejected_;
      continue;
    }
    f.sender = static_cast<uint32_t>(p.cred.pid);  // the registry's word, not the writer's
    route(f);
    flush_all();  // drops only readers; p is a writer FIFO
  }
  if (w.eof && dry) drop(p.fd);
}

// Frames already in a writer's decoder raise no epoll event: finish them first. By
// descriptor, not iterator: routing may drop any reader (a failed flush) and a writer
// itself. True if it routed from any writer.
bool Hub::route_buffered() noexcept {
  std::vector<int> pending;
  for (const auto& [fd, p] : peers_) {
    const auto* w = std::get_if<WriterFifo>(&p.io);
    if (w != nullptr && w->dec.buffered() >= frame::kHeaderBytes) pending.push_back(fd);
  }
  bool routed = false;
  for (int fd : pending) {
    auto it = peers_.find(fd);
    if (it == peers_.end() || !inbound_on_ || backlogged()) continue;
    route_from(it->second, std::get<WriterFifo>(it->second.io));
    routed = true;
  }
  return routed;
}

}  // namespace fwipc::sock
