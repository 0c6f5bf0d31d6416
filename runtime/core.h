// The runtime core behind the C API (ipc.cc): argument checks and dispatch from a channel
// id to its transport (api.cc), over the handle table (handle_table.h). Internal: the C++
// API (fwipc/channel.hpp) goes through the public C calls, not through this header.
#pragma once

#include <cstdint>

#include "transports/transport.h"

namespace fwipc::shm {
struct Loan;
}

namespace fwipc::core {

// Receive timeout meaning "the channel's own mode": forever, or 0 when non-blocking.
inline constexpr int kDefaultTimeout = -1;

int create(const char* name, uint32_t type, uint32_t buffer_size, uint32_t perm_mode) noexcept;
int open(const char* name, uint32_t mode) noexcept;
int close(uint32_t id) noexcept;
int send(uint32_t id, const MsgHeader& hdr, const void* payload) noexcept;
int receive(uint32_t id, MsgHeader* hdr, void* buf, uint32_t cap, int timeout_ms) noexcept;
int send_batch(uint32_t id, const MsgHeader* hdrs, const void* const* payloads, uint32_t n) noexcept;
int consume(uint32_t id, uint32_t max, Transport::Visitor fn, void* ctx, int timeout_ms) noexcept;
int notify_fd(uint32_t id) noexcept;
int loan(uint32_t id, shm::Loan* out) noexcept;
int commit(uint32_t id, shm::Loan* loan, const MsgHeader& hdr) noexcept;
void abandon(uint32_t id, shm::Loan* loan) noexcept;
// The transport a channel id really uses, or -EBADF.
int transport_of(uint32_t id) noexcept;

}  // namespace fwipc::core
