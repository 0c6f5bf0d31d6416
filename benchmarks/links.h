// Reference transports for the benchmark suite: each is a pair of one-way links between
// this process and a forked echo peer, so every row is measured the same way.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fwipc::bench {

enum class LinkKind { kFutex, kEventfd, kUdsSeqpacket, kUdsStream, kPipe, kPosixMq, kBoostMq };
const char* link_name(LinkKind k);
std::vector<LinkKind> all_links();

// One direction of a message link. Blocking; payloads up to 512 bytes.
class Link {
 public:
  virtual ~Link() = default;
  virtual bool send(const void* buf, uint32_t n) = 0;
  virtual int recv(void* buf, uint32_t cap) = 0;  // bytes, or < 0
};

// Round trips to an echo peer over a reference link.
class LinkPingPong {
 public:
  LinkPingPong(LinkKind kind, uint32_t payload_bytes);
  ~LinkPingPong();
  bool ok() const { return ok_; }
  bool round_trip();
  std::vector<int64_t> timed(uint64_t n);

 private:
  std::unique_ptr<Link> to_peer_, from_peer_;
  int peer_ = -1;
  bool ok_ = false;
  uint32_t bytes_;
  char buf_[512] = {};
};

}  // namespace fwipc::bench
