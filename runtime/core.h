// The runtime core behind the C API (ipc.cc): argument checks and dispatch from a channel
// id to its transport (api.cc), over the handle table (handle_table.h). Internal: the C++
// API (fwipc/channel.hpp) goes through the public C calls, not through this header.
#pragma once

#include <cstdint>

#include "ipc.h"
#include "transports/transport.h"

namespace fwipc::core {

// A zero-copy loan as IPC_LOAN carries it: the ring position, the transport's token for
// it (layout 4: its slot; ring v2: its payload), and where the payload goes.
struct Loan {
  uint64_t pos = 0;
  uintptr_t token = 0;
  char* data = nullptr;
};

// Receive timeout meaning "the channel's own mode": forever, or 0 when non-blocking.
inline constexpr int kDefaultTimeout = -1;

// literal_perm: opts.perm_mode 0 is mode 0 (ipc_create_channel_ex), not the 0660 default.
int create(const char* name, const IPC_CHANNEL_OPTIONS& opts, bool literal_perm) noexcept;
int open(const char* name, uint32_t mode) noexcept;
int close(uint32_t id) noexcept;
int send(uint32_t id, const MsgHeader& hdr, const void* payload) noexcept;
int receive(uint32_t id, MsgHeader* hdr, void* buf, uint32_t cap, int timeout_ms) noexcept;
int send_batch(uint32_t id, const MsgHeader* hdrs, const void* const* payloads, uint32_t n) noexcept;
int consume(uint32_t id, uint32_t max, Transport::Visitor fn, void* ctx, int timeout_ms) noexcept;
int notify_fd(uint32_t id) noexcept;
int loan(uint32_t id, Loan* out) noexcept;
int commit(uint32_t id, Loan* loan, const MsgHeader& hdr) noexcept;
void abandon(uint32_t id, Loan* loan) noexcept;
int info(uint32_t id, IPC_CHANNEL_INFO* out) noexcept;
int call(uint32_t id, const MsgHeader& req, const void* payload, MsgHeader* rep, void* buf, uint32_t cap,
         int timeout_ms) noexcept;
int call_start(uint32_t id, const MsgHeader& req, const void* payload, uint64_t* call) noexcept;
int call_result(uint32_t id, uint64_t call, MsgHeader* rep, void* buf, uint32_t cap) noexcept;
int call_cancel(uint32_t id, uint64_t call) noexcept;
int call_fd(uint32_t id) noexcept;
int receive_request(uint32_t id, MsgHeader* hdr, void* buf, uint32_t cap, uint64_t* call, int timeout_ms) noexcept;
int reply(uint32_t id, uint64_t call, const MsgHeader& hdr, const void* payload) noexcept;
int request_fd(uint32_t id) noexcept;
// The transport a channel id really uses, or -EBADF.
int transport_of(uint32_t id) noexcept;

}  // namespace fwipc::core
