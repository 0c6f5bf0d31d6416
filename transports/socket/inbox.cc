// The priority-ordered inbox (see inbox.h).
#include "transports/socket/inbox.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace fwipc::sock {
namespace {

struct ItemLess {
  template <typename T>
  bool operator()(const T& a, const T& b) const noexcept {
    return delivered_later(a.f.priority, a.seq, b.f.priority, b.seq);
  }
};

}  // namespace

void Inbox::push(const frame::Frame& f) {
  heap_.push_back(Item{seq_++, f});
  std::push_heap(heap_.begin(), heap_.end(), ItemLess{});
}

int Inbox::pop(MsgHeader* hdr, void* buf, uint32_t cap) noexcept {
  const frame::Frame& f = heap_.front().f;
  *hdr = header_of(f);
  if (f.size > cap) return -EMSGSIZE;
  if (f.size) std::memcpy(buf, f.payload, f.size);
  const int n = static_cast<int>(f.size);
  std::pop_heap(heap_.begin(), heap_.end(), ItemLess{});
  heap_.pop_back();
  return n;
}

}  // namespace fwipc::sock
