// The wire frame of the SOCKET and PIPE transports: a 40-byte header and up to 512 bytes
// of payload, so every frame fits in one PIPE_BUF-atomic write and one SEQPACKET packet.
// Decoding is hostile-input safe: lengths are checked before any copy.
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "transports/message.h"

namespace fwipc::frame {

// "FWM2" little-endian. Bumped with every header change, so that peers of another build
// fail cleanly (-EBADMSG, a dropped connection) instead of misreading fields.
inline constexpr uint32_t kMagic = 0x324d5746;
inline constexpr uint32_t kHeaderBytes = 40;
inline constexpr uint32_t kMaxPayload = kMaxPayloadBytes;
inline constexpr uint32_t kMaxFrame = kHeaderBytes + kMaxPayload;
static_assert(kMaxFrame <= PIPE_BUF, "a frame must be one atomic FIFO write");

// Frame::time_ns of a data frame whose send time is unknown: routed like a message sent
// now (to every reader the hub knows), as before frames carried a send time.
inline constexpr uint64_t kUnstamped = UINT64_MAX;

// PIPE only, in the channel FIFO: kJoin announces a reader's FIFO, kWriterJoin a writer's;
// `type` carries the registry's join id and `sender` the PID in the FIFO's name.
enum Kind : uint16_t { kData = 1, kHello = 2, kJoin = 3, kWriterJoin = 4, kCall = 5, kReply = 6, kEvicted = 7 };
// kEvicted: hub to reader only (IPC_OVERFLOW_EVICT), the last frame a reader gets after it
// held writers back too long; its receive then returns -ENOBUFS. A hub routes only kData
// from members, so no member can forge it for another.
// kCall / kReply travel only on a channel's NAME.call socket (transports/call), never on
// its message transport: check_packet() refuses them, check_call_packet() takes only them.
// `reserved` carries the caller's call number.

// Hello flags: what the connecting process opened the channel for.
inline constexpr uint16_t kHelloRead = 1;
inline constexpr uint16_t kHelloWrite = 2;
// A reader of a bridged QUEUE channel: `type` and `receiver` carry the ring reader entry
// (index, state) the registry joined for it.
inline constexpr uint16_t kHelloEntry = 4;

// PIPE: the mode the hub gives a writer's FIFO once it has opened it (the registry makes
// it 0600), the sign for the registry and the writer that the hub reads it now.
inline constexpr uint32_t kFifoTakenMode = 0400;

struct Frame {
  uint32_t magic;
  uint16_t kind;
  uint16_t flags;
  uint32_t type;
  uint32_t size;
  uint32_t sender;
  uint32_t receiver;
  uint32_t priority;
  uint32_t reserved;
  // CLOCK_MONOTONIC ns: one clock for the processes of a machine (unless they are in
  // different time namespaces). kData: when the writer sent it. kHello/kJoin: when the
  // member joined, taken in open() before it returns. The hub routes a message only to
  // readers that joined at or before its send time.
  uint64_t time_ns;
  char payload[kMaxPayload];

  uint32_t wire_bytes() const noexcept { return kHeaderBytes + size; }
};
static_assert(sizeof(Frame) == kMaxFrame);
static_assert(offsetof(Frame, time_ns) == 32);
static_assert(offsetof(Frame, payload) == kHeaderBytes);

// The frames the runtime sends; the one place their header fields are filled in.
// The clock is the caller's (this module stays free of it): monotonic_ns() in base/time.h.
// A message: sender is given apart from h because only the runtime chooses it; sent_ns is
// the send time (a writer passes its clock; kUnstamped only where no reader compares it).
Frame make_data_frame(const MsgHeader& h, const void* payload, uint32_t sender, uint64_t sent_ns = kUnstamped) noexcept;
// A connection's first packet. intent: kHelloRead and/or kHelloWrite; joined_ns: the join
// time of a reader; entry_index >= 0 names a bridged reader's ring entry (sets kHelloEntry).
Frame make_hello(uint16_t intent, uint64_t joined_ns, int entry_index = -1, uint32_t entry_state = 0) noexcept;
// PIPE: kind kJoin (a reader's FIFO) or kWriterJoin (a writer's), for the registry's join
// id, with the member's join time.
Frame make_join(uint16_t kind, uint32_t join_id, uint32_t pid, uint64_t joined_ns) noexcept;
// The hub's notice to an evicted reader (no payload).
Frame make_evicted() noexcept;

// A request (kCall) or a reply (kReply) of call number seq on a NAME.call socket.
Frame make_call_frame(uint16_t kind, uint32_t seq, const MsgHeader& h, const void* payload) noexcept;
// check_packet() for the NAME.call socket: 0 only for a well-formed frame of kind `kind`.
int check_call_packet(const void* data, size_t len, uint16_t kind, Frame* out) noexcept;

// Checks one complete datagram/packet. 0, or -EBADMSG (bad magic, kind, or length).
int check_packet(const void* data, size_t len, Frame* out) noexcept;

// Reassembles frames from a byte stream (a FIFO). After garbage it resynchronises on the
// next header that checks out, and reports how many bytes it skipped.
class StreamDecoder {
 public:
  void feed(const void* data, size_t len);
  // 1: *out holds a frame; 0: need more bytes; -EBADMSG: skipped garbage (call again).
  int next(Frame* out) noexcept;
  size_t buffered() const noexcept { return buf_.size() - off_; }

 private:
  std::vector<char> buf_;
  size_t off_ = 0;
};

}  // namespace fwipc::frame
