// The fragment header at the front of every call and reply payload of the service layer:
// how a body of up to 4 GiB travels as 512-byte ipc_call() payloads. Both ends run on
// one machine, so fields are in host byte order; the header is still an ABI between
// builds of the client library and of services, hence the magic, the version and the
// pinned layout.
//
// A request body goes as consecutive kRequest fragments of one transfer (an id the
// client picks); the service answers each but the last with kAck, the last by running
// the handler and answering kReply with the reply's first bytes. The client fetches the
// rest of a longer reply with kFetch (offset = what it has), or gives it up with kCancel.
// Any refusal is kError with a negative errno. Fragments of a transfer come in order:
// the client waits for each answer before it sends the next.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "fwsvc.h"
#include "ipc.h"

namespace fwsvc {

enum Op : uint8_t {
  kRequest = 1,  // client: word = method, data = body[offset, offset + len)
  kFetch = 2,    // client: the reply from offset on
  kCancel = 3,   // client: forget the transfer
  kAck = 16,     // service: fragment taken, send the next
  kReply = 17,   // service: word = status, data = reply body[offset, offset + len)
  kError = 18,   // service: word = negative errno; the transfer is gone
};

struct FragmentHeader {
  uint16_t magic;     // kMagic
  uint8_t version;    // kVersion
  uint8_t op;         // Op
  uint32_t word;      // method (kRequest) or status (kReply, kError)
  uint32_t transfer;  // chosen by the client, never 0; per calling process
  uint32_t offset;    // of this fragment's data in the body
  uint32_t total;     // the body's length
};
static_assert(offsetof(FragmentHeader, magic) == 0);
static_assert(offsetof(FragmentHeader, version) == 2);
static_assert(offsetof(FragmentHeader, op) == 3);
static_assert(offsetof(FragmentHeader, word) == 4);
static_assert(offsetof(FragmentHeader, transfer) == 8);
static_assert(offsetof(FragmentHeader, offset) == 12);
static_assert(offsetof(FragmentHeader, total) == 16);
static_assert(sizeof(FragmentHeader) == 20);

constexpr uint16_t kMagic = 0x5346;  // "FS"
constexpr uint8_t kVersion = 1;
// The IPC_MESSAGE type every fragment carries (informative: the payload decides).
constexpr uint32_t kMessageType = 0x46575356;  // "FWSV"
constexpr size_t kHeaderBytes = sizeof(FragmentHeader);
constexpr size_t kFragmentDataBytes = IPC_MAX_PAYLOAD - kHeaderBytes;
static_assert(kFragmentDataBytes == FWSVC_FRAGMENT_BYTES, "fwsvc.h says how much body one call carries");

// Writes a header and data into a payload of IPC_MAX_PAYLOAD bytes; returns its length.
inline size_t encode(uint8_t* payload, Op op, uint32_t word, uint32_t transfer, uint32_t offset, uint32_t total,
                     std::span<const uint8_t> data = {}) noexcept {
  const FragmentHeader h{kMagic, kVersion, static_cast<uint8_t>(op), word, transfer, offset, total};
  std::memcpy(payload, &h, sizeof h);
  if (!data.empty()) std::memcpy(payload + kHeaderBytes, data.data(), data.size());
  return kHeaderBytes + data.size();
}

// Reads a payload of n bytes from anyone. False unless the header is ours, the data fits
// the fragment and lies inside the body, and only kRequest/kReply carry data.
inline bool decode(const uint8_t* payload, size_t n, FragmentHeader* h, std::span<const uint8_t>* data) noexcept {
  if (n < kHeaderBytes || n > IPC_MAX_PAYLOAD) return false;
  std::memcpy(h, payload, sizeof *h);
  if (h->magic != kMagic || h->version != kVersion) return false;
  const size_t len = n - kHeaderBytes;
  const bool carries = h->op == kRequest || h->op == kReply;
  if (!carries && len != 0) return false;
  if (uint64_t(h->offset) + len > h->total) return false;
  *data = std::span<const uint8_t>(payload + kHeaderBytes, len);
  return true;
}

}  // namespace fwsvc
