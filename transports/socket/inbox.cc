// The priority-ordered inbox (see inbox.h).
#include "transports/socket/inbox.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace fwipc::sock {
void Inbox::push(const frame::Frame& f) {
  heap_.push_back(Item{seq_++, f});
  std::push_heap(heap_.begin(), heap_.end(), DeliveredLater{});
}

int Inbox::pop(MsgHeader* hdr, void* buf, uint32_t cap) noexcept {
  const frame::Frame& f = heap_.front().f;
  *hdr = header_of(f);
  if (f.size > cap) return -EMSGSIZE;
  if (f.size) std::memcpy(buf, f.payload, f.size);
  const int n = static_cast<int>(f.size);
  std::pop_heap(heap_.begin(), heap_.end(), DeliveredLater{});
  heap_.pop_back();
  return n;
}

}  // namespace fwipc::sock
