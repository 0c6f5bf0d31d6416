// A member of a PIPE channel: JOIN frames through the channel FIFO, then messages through
// FIFOs of its own that the registry made for it and the hub opened.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "transports/frame.h"
#include "transports/socket/stream_client.h"

namespace fwipc::sock {

// in_w: a write end of the channel FIFO (for JOIN frames); rd: this reader's own FIFO
// (held O_RDWR so it never reads EOF), or -1; wr: the write end of this writer's own
// FIFO, or -1. All come from the registry; the client owns them. The hub's death shows as
// POLLERR on in_w (a FIFO without readers).
class PipeClient final : public StreamClient {
 public:
  PipeClient(int in_w, int rd, int wr, uint32_t capacity_msgs, pid_t self) noexcept;
  ~PipeClient() override;
  TransportKind kind() const noexcept override { return TransportKind::kPipe; }
  int send(const MsgHeader& hdr, const void* payload, int64_t timeout_ns) noexcept override;

  // Announces this process's FIFO join_id (kind: frame::kJoin for a reader's,
  // frame::kWriterJoin for a writer's) to the hub.
  static int join(int in_w, uint16_t kind, uint32_t join_id, pid_t self) noexcept;

 private:
  void fill() noexcept override;
  int when_empty() noexcept override;
  bool hub_gone() const noexcept;

  const int in_w_, rd_, wr_;
  bool admitted_ = false;  // the hub has opened our writer FIFO (see send())
  int bad_ = 0;            // garbage skipped since the last -EBADMSG: reported once
  frame::StreamDecoder decoder_;
};

}  // namespace fwipc::sock
