// A member of a PIPE channel (see pipe_client.h).
#include "transports/socket/pipe_client.h"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/time.h"
#include "transports/socket/io.h"

namespace fwipc::sock {

PipeClient::PipeClient(int in_w, int rd, int wr, uint32_t cap, pid_t self) noexcept
    : StreamClient(rd, in_w, cap, self), in_w_(in_w), rd_(rd), wr_(wr) {}

PipeClient::~PipeClient() {
  for (int fd : {in_w_, rd_, wr_})
    if (fd >= 0) ::close(fd);
}

bool PipeClient::hub_gone() const noexcept {
  pollfd p{in_w_, 0, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

// Frames are written whole, at most PIPE_BUF bytes each: atomic, never interleaved with
// another writer's. Called inside open(): a reader gets what is sent from now on.
int PipeClient::join(int in_w, uint16_t kind, uint32_t join_id, pid_t self) noexcept {
  const frame::Frame f =
      frame::make_join(kind, join_id, static_cast<uint32_t>(self), static_cast<uint64_t>(monotonic_ns()));
  return write_frame_to(in_w, Link::kFifo, f, -1);
}

int PipeClient::send(const MsgHeader& h, const void* payload, int64_t timeout_ns) noexcept {
  if (wr_ < 0) return -EBADF;
  if (h.size > frame::kMaxPayload) return -EMSGSIZE;
  if (!admitted_) {
    // Until the hub opens our FIFO, the registry holds a read end of it so that frames
    // wait there (even if we exit). That also hides the hub's death from write(): ask the
    // channel FIFO whether it still has its reader.
    struct stat st;
    if (::fstat(wr_, &st) == 0 && (st.st_mode & 0777) == frame::kFifoTakenMode)
      admitted_ = true;
    else if (hub_gone())
      return -EPIPE;
  }
  const frame::Frame f = frame::make_data_frame(h, payload, pid_, static_cast<uint64_t>(monotonic_ns()));
  const int rc = write_frame_to(wr_, Link::kFifo, f, timeout_ns, in_w_);
  return rc < 0 ? rc : static_cast<int>(h.size);
}

void PipeClient::fill() noexcept {
  while (!evicted_) {
    frame::Frame f;
    int rc;
    while (inbox_.size() < capacity_ && (rc = decoder_.next(&f)) != 0) {
      if (rc > 0 && f.kind == frame::kEvicted) {
        evicted_ = true;
        break;
      }
      if (rc < 0 || f.kind != frame::kData) {
        ++bad_;
        continue;
      }
      inbox_.push(f);
    }
    if (evicted_ || inbox_.size() >= capacity_ || decoder_.buffered() > kMaxBufferedBytes) break;
    char buf[kReadChunkBytes];
    const ssize_t n = ::read(rd_, buf, sizeof buf);
    if (n <= 0) break;
    decoder_.feed(buf, static_cast<size_t>(n));
  }
  inbox_changed();
}

// Garbage is reported after the messages around it; a gone hub only once what it wrote
// before going has been delivered.
int PipeClient::when_empty() noexcept {
  if (evicted_) return -ENOBUFS;
  if (bad_ > 0) {
    bad_ = 0;
    return -EBADMSG;
  }
  if (!hub_gone()) return 0;
  fill();
  return inbox_.empty() ? -EPIPE : kFillAgain;
}

}  // namespace fwipc::sock
