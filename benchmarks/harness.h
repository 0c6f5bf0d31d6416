// Two-process measurements shared by the benchmarks and the demo. Each runs a real peer
// process (fork) and returns what it measured; nothing here asserts a speed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace fwipc::bench {

struct Percentiles {
  double p50_ns = 0, p99_ns = 0, p999_ns = 0, max_ns = 0, mean_ns = 0;
};
Percentiles percentiles(std::vector<int64_t> samples_ns);

// Runs the rows in alternating chunks until each has `total` samples, so every row sees
// the same machine state (on this VM the cross-core latency itself changes over time).
void interleave(uint64_t total, uint64_t chunk, const std::vector<std::function<std::vector<int64_t>(uint64_t)>>& rows,
                std::vector<std::vector<int64_t>>* out);

// An echo peer over two channels (<prefix>.ping / <prefix>.pong). Round trips are
// timed one by one. spin_ns sets the peer's and our FWIPC_SPIN_NS (0: sleep at once).
class QueuePingPong {
 public:
  // type: IPC_TYPE_QUEUE (default), IPC_TYPE_SOCKET or IPC_TYPE_PIPE. zero_copy: both
  // sides use the C++ API's loan/commit to send and consume() to receive.
  // peer_uid: the echo peer runs as this uid (0: ours); channels are then created 0666
  // so that each side may write the other's (the runtime directory must admit it).
  QueuePingPong(const std::string& prefix, uint32_t payload_bytes, uint32_t type = 2, bool zero_copy = false,
                uint32_t peer_uid = 0);
  ~QueuePingPong();
  bool ok() const { return ping_ >= 0 && pong_ >= 0; }
  // One round trip; false on error.
  bool round_trip();
  std::vector<int64_t> timed(uint64_t n);

 private:
  int ping_ = -1, pong_ = -1, peer_ = -1;
  uint32_t bytes_;
  bool zero_copy_;
  char buf_[512] = {};
};

// The calibration row between the floor and a channel: two processes echoing over two
// bare single-writer rings whose slots carry a per-slot sequence word, a small header and
// the payload (a 64 B payload spans two cache lines, as in a channel). Nothing else: no
// cursors, no wakeups, no checks.
class BareSeqPingPong {
 public:
  explicit BareSeqPingPong(uint32_t payload_bytes);
  ~BareSeqPingPong();
  void round_trip();
  std::vector<int64_t> timed(uint64_t n);

 private:
  struct Shared;
  Shared* sh_;
  int peer_ = -1;
  uint32_t bytes_;
  uint64_t pos_ = 0;
};

// Two processes bouncing one cache line in shared memory: the floor for any round trip.
class RawPingPong {
 public:
  RawPingPong();
  ~RawPingPong();
  void round_trip();
  std::vector<int64_t> timed(uint64_t n);

 private:
  struct Line;
  Line* line_;
  int peer_ = -1;
  uint64_t seq_ = 0;  // last value we expect back (even)
};

// How a throughput run moves messages.
enum class Path {
  kPlain,     // ipc_send / ipc_receive, one message per call
  kZeroCopy,  // C++: loan/commit one message at a time; consume in place
  kBatch,     // C++: send_batch of 32; consume in place, up to 64 per call
};

// `writers` processes send n messages in all, of payload_bytes each, along `path`; we
// receive them. Returns messages per second (0 on error).
double queue_throughput(const std::string& name, uint64_t n, uint32_t payload_bytes, uint32_t type = 2, int writers = 1,
                        Path path = Path::kPlain);

// The reference a channel is measured against: a bare single-producer ring of fixed
// records in shared memory with head/tail on their own lines, cached opposite indices and
// index updates published every `batch` records. Messages per second between 2 processes.
double bare_ring_throughput(uint64_t n, uint32_t record_bytes, uint32_t batch);

// The in-process ceiling: moodycamel ReaderWriterQueue (1 producer thread) or
// ConcurrentQueue (`producers` threads), one consumer thread. Messages per second.
double moodycamel_throughput(uint64_t n, uint32_t payload_bytes, int producers);

}  // namespace fwipc::bench
