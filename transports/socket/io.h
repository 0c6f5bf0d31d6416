// Frame I/O on the descriptors of the SOCKET and PIPE transports: a SOCK_SEQPACKET
// connection (one frame per packet) or a FIFO (frames as a byte stream, each written
// whole), and the eventfd that makes an inbox pollable.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "transports/frame.h"

namespace fwipc::sock {

// One read() of a FIFO; large enough for dozens of frames per system call.
inline constexpr size_t kReadChunkBytes = 16384;
// A FIFO's decoder stops reading at this many buffered bytes, so a writer that outpaces
// routing is held back by its FIFO (back-pressure), not by our memory.
inline constexpr size_t kMaxBufferedBytes = 8 * frame::kMaxFrame;

enum class Link : uint8_t {
  kSeqpacket,  // one packet per frame; the peer's death is EPIPE/ECONNRESET
  kFifo,       // whole frames of at most PIPE_BUF bytes: atomic, never interleaved
};

// write() without dying of SIGPIPE when a FIFO has lost its reader (-1/EPIPE instead).
ssize_t write_nosigpipe(int fd, const void* buf, size_t len) noexcept;

// One non-blocking attempt to write f whole: write()/send()'s result (errno set).
ssize_t write_frame_once(int fd, Link link, const frame::Frame& f) noexcept;

// Writes one frame, waiting for room up to timeout_ns (< 0: forever; 0: not at all):
// 0, -EAGAIN, -ETIMEDOUT, or -EPIPE (the other end is gone, and with it the channel).
// POLLERR on gone_fd (a FIFO whose reader is the hub) while waiting also means -EPIPE.
int write_frame_to(int fd, Link link, const frame::Frame& f, int64_t timeout_ns, int gone_fd = -1) noexcept;

// Level-style readiness on an eventfd (evfd < 0: none yet): readable while `want`.
// *is_set mirrors the eventfd so that each change costs one system call, and none otherwise.
void set_ready(int evfd, bool* is_set, bool want) noexcept;

}  // namespace fwipc::sock
