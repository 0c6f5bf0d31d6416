#include "transports/frame.h"

#include <cerrno>
#include <cstring>

namespace fwipc::frame {
namespace {

// Header plausibility, given only the header bytes.
bool header_ok(const Frame& f) noexcept {
  return f.magic == kMagic && (f.kind >= kData && f.kind <= kWriterJoin) && f.size <= kMaxPayload &&
         (f.kind == kData || f.size == 0);
}

}  // namespace

int check_packet(const void* data, size_t len, Frame* out) noexcept {
  if (len < kHeaderBytes || len > kMaxFrame) return -EBADMSG;
  std::memcpy(out, data, kHeaderBytes);
  if (!header_ok(*out) || out->wire_bytes() != len) return -EBADMSG;
  std::memcpy(out->payload, static_cast<const char*>(data) + kHeaderBytes, out->size);
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
