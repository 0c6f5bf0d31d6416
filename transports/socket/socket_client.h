// A member of a SOCKET channel (or a bridged QUEUE channel's member of another uid): one
// SOCK_SEQPACKET connection to the creator's hub, which stamps and routes its frames.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "transports/socket/stream_client.h"

namespace fwipc::sock {

class SocketClient final : public StreamClient {
 public:
  // conn: connected to the hub, hello already sent (connect_hub()). Owns conn.
  SocketClient(int conn, bool reader, bool writer, uint32_t capacity_msgs, pid_t self) noexcept;
  ~SocketClient() override;
  TransportKind kind() const noexcept override { return TransportKind::kSocket; }
  int send(const MsgHeader& hdr, const void* payload, int64_t timeout_ns) noexcept override;

  // Connects to path and announces read/write intent (and, for a reader of a bridged
  // QUEUE channel, its ring entry; entry_index < 0: none). A negative errno on failure.
  static int connect_hub(const char* path, bool reader, bool writer, int entry_index = -1,
                         uint32_t entry_state = 0) noexcept;

 private:
  void fill() noexcept override;
  int error_first() noexcept override;
  int when_empty() noexcept override;

  const int conn_;
  const bool writer_;
  bool eof_ = false;  // the hub (the creator) is gone
  int bad_ = 0;       // malformed packets not yet reported, one -EBADMSG each
};

}  // namespace fwipc::sock
