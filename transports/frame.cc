#include "transports/frame.h"

#include <cerrno>
#include <cstring>

namespace fwipc::frame {
namespace {

// Header plausibility, given only the header bytes.
bool header_ok(const Frame& f) noexcept {
  return f.magic == kMagic && ((f.kind >= kData && f.kind <= kWriterJoin) || f.kind == kEvicted) &&
         f.size <= kMaxPayload && (f.kind == kData || f.size == 0);
}

}  // namespace

Frame make_data_frame(const MsgHeader& h, const void* payload, uint32_t sender, uint64_t sent_ns) noexcept {
  Frame f;  // only wire_bytes() are sent: the payload's tail stays uninitialised on purpose
  f.magic = kMagic;
  f.kind = kData;
  f.flags = 0;
  put_header(&f, h, sender);
  f.reserved = 0;
  f.time_ns = sent_ns;
  if (h.size) std::memcpy(f.payload, payload, h.size);
  return f;
}

Frame make_hello(uint16_t intent, uint64_t joined_ns, int entry_index, uint32_t entry_state) noexcept {
  Frame f{};
  f.magic = kMagic;
  f.kind = kHello;
  f.flags = static_cast<uint16_t>(intent | (entry_index >= 0 ? kHelloEntry : 0));
  f.type = entry_index >= 0 ? static_cast<uint32_t>(entry_index) : 0;
  f.receiver = entry_state;
  f.time_ns = joined_ns;
  return f;
}

Frame make_evicted() noexcept {
  Frame f{};
  f.magic = kMagic;
  f.kind = kEvicted;
  return f;
}

Frame make_join(uint16_t kind, uint32_t join_id, uint32_t pid, uint64_t joined_ns) noexcept {
  Frame f{};
  f.magic = kMagic;
  f.kind = kind;
  f.type = join_id;
  f.sender = pid;
  f.time_ns = joined_ns;
  return f;
}

int check_packet(const void* data, size_t len, Frame* out) noexcept {
  if (len < kHeaderBytes || len > kMaxFrame) return -EBADMSG;
  std::memcpy(out, data, kHeaderBytes);
  if (!header_ok(*out) || out->wire_bytes() != len) return -EBADMSG;
  std::memcpy(out->payload, static_cast<const char*>(data) + kHeaderBytes, out->size);
  return 0;
}

Frame make_call_frame(uint16_t kind, uint32_t seq, const MsgHeader& h, const void* payload) noexcept {
  Frame f;  // only wire_bytes() are sent
  f.magic = kMagic;
  f.kind = kind;
  f.flags = 0;
  put_header(&f, h, 0);  // the receiving side knows the sender from the kernel, not from us
  f.reserved = seq;
  f.time_ns = 0;
  if (h.size) std::memcpy(f.payload, payload, h.size);
  return f;
}

int check_call_packet(const void* data, size_t len, uint16_t kind, Frame* out) noexcept {
  if (len < kHeaderBytes || len > kMaxFrame || (kind != kCall && kind != kReply)) return -EBADMSG;
  Frame h;
  std::memcpy(&h, data, kHeaderBytes);
  if (h.magic != kMagic || h.kind != kind || h.size > kMaxPayload || h.wire_bytes() != len) return -EBADMSG;
  // out may be data itself (a packet checked in place): payload first, then the header.
  std::memmove(out->payload, static_cast<const char*>(data) + kHeaderBytes, h.size);
  std::memcpy(out, &h, kHeaderBytes);
  return 0;
}

void StreamDecoder::feed(const void* data, size_t len) {
  if (off_ > 0 && off_ == buf_.size()) {
    buf_.clear();
    off_ = 0;
  } else if (off_ > 65536) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(off_));
    off_ = 0;
  }
  const char* p = static_cast<const char*>(data);
  buf_.insert(buf_.end(), p, p + len);
}

int StreamDecoder::next(Frame* out) noexcept {
  const size_t avail = buf_.size() - off_;
  if (avail < kHeaderBytes) return 0;
  std::memcpy(out, buf_.data() + off_, kHeaderBytes);
  if (!header_ok(*out)) {
    // Resynchronise: skip to the next byte that could start a frame's magic.
    size_t skip = 1;
    while (skip < avail) {
      uint32_t m;
      if (avail - skip < sizeof m) break;
      std::memcpy(&m, buf_.data() + off_ + skip, sizeof m);
      if (m == kMagic) break;
      ++skip;
    }
    off_ += skip;
    return -EBADMSG;
  }
  if (avail < out->wire_bytes()) return 0;
  std::memcpy(out->payload, buf_.data() + off_ + kHeaderBytes, out->size);
  off_ += out->wire_bytes();
  return 1;
}

}  // namespace fwipc::frame
