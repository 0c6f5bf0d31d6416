// A console's bounded scroll-back: the newest `capacity` bytes of its output, addressed by
// absolute offsets (bytes since the console started), so that each reader's cursor says
// exactly how much it missed when the window moved past it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace csrss {

class Scrollback {
 public:
  explicit Scrollback(size_t capacity_bytes) : buf_(capacity_bytes ? capacity_bytes : 1) {}
  // Offset one past the newest byte (total output so far).
  uint64_t end() const { return end_; }
  // Offset of the oldest byte still held.
  uint64_t begin() const { return end_ - std::min<uint64_t>(end_, buf_.size()); }
  void append(const char* p, size_t n) {
    if (n > buf_.size()) p += n - buf_.size(), end_ += n - buf_.size(), n = buf_.size();
    size_t at = size_t(end_ % buf_.size());
    const size_t first = std::min(n, buf_.size() - at);
    std::memcpy(&buf_[at], p, first);
    std::memcpy(&buf_[0], p + first, n - first);
    end_ += n;
  }
  // Copies up to n bytes from offset `from` (begin() <= from <= end()); returns how many.
  size_t copy(uint64_t from, char* out, size_t n) const {
    if (from < begin() || from >= end_) return 0;
    n = size_t(std::min<uint64_t>(n, end_ - from));
    const size_t at = size_t(from % buf_.size());
    const size_t first = std::min(n, buf_.size() - at);
    std::memcpy(out, &buf_[at], first);
    std::memcpy(out + first, &buf_[0], n - first);
    return n;
  }

 private:
  std::vector<char> buf_;
  uint64_t end_ = 0;
};

}  // namespace csrss
