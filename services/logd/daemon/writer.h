// logd's writer: records from the receive path go through a moodycamel queue to one
// thread that formats them as JSON Lines, appends them to DIR/logd.log, rotates by size,
// syncs as configured and keeps the newest records in memory for queries. The receive
// path never touches the disk.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "blockingconcurrentqueue.h"

namespace logd {

struct Record {
  enum Control : uint8_t { kLine, kReopen, kStop };
  Control control = kLine;
  int level = 6;
  int32_t pid = 0;
  int64_t uid = -1;  // -1: unknown (null in the file)
  uint64_t seq = 0;
  int64_t ts_us = 0;
  std::string tag;    // sanitised
  std::string msg;    // valid UTF-8
  std::string comm;   // empty: unknown (null)
  std::string extra;  // more members, each ",\"key\":value" (valid JSON)
};

enum class SyncMode { kNever, kInterval, kAlways };

struct WriterOptions {
  std::string dir;
  uint64_t max_bytes = 16u << 20;
  int keep = 5;
  bool mirror_stderr = false;
  SyncMode sync = SyncMode::kNever;
  size_t index_records = 100000;
};

// A record as queries see it.
struct Indexed {
  uint64_t seq;
  int64_t ts_us;
  int level;
  int32_t pid;
  std::string tag;
  std::string line;  // the JSON object, no newline
};

struct Filter {
  size_t n = 10;
  int max_level = 7;  // this level and more severe
  std::string tag_prefix;
  int64_t pid = -1;
  int64_t since_us = INT64_MIN;
  uint64_t after_seq = 0;
};

class Writer {
 public:
  // Opens DIR/logd.log and reads it back: the newest records into the index, the next seq.
  // 0 or a negative errno; detail says what failed.
  int open(const WriterOptions& opts, std::string* detail);
  void start();
  // From the receive thread only (one producer).
  void push(Record&& r);
  // Queues the stop marker and waits for everything before it to be written.
  void stop();

  uint64_t next_seq() const { return first_seq_; }
  // The seq of the last record on disk (written, and synced when --fsync always).
  uint64_t written_seq() const { return written_.load(std::memory_order_acquire); }
  // Waits until written_seq() >= seq, or timeout_ms passed. True when reached.
  bool wait_written(uint64_t seq, int timeout_ms);
  uint64_t backlog() const { return pushed_ - popped_.load(std::memory_order_acquire); }
  // The newest filter.n matching records, oldest first, within max_bytes of lines.
  std::vector<std::string> query(const Filter& f, size_t max_bytes) const;

  struct Counters {
    uint64_t lines, bytes, rotations, write_errors, reopens, syncs;
  };
  Counters counters() const;

 private:
  void run();
  int open_file(std::string* detail);
  void write_out(std::string& buf);
  void rotate();
  void load_existing();
  void format(const Record& r, std::string& out) const;

  WriterOptions opts_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t first_seq_ = 1;
  uint64_t pushed_ = 0;
  std::atomic<uint64_t> popped_{0};
  std::atomic<uint64_t> written_{0};
  moodycamel::BlockingConcurrentQueue<Record> queue_;
  std::thread thread_;
  std::mutex written_mu_;
  std::condition_variable written_cv_;
  mutable std::mutex index_mu_;
  std::deque<Indexed> index_;
  std::atomic<uint64_t> lines_{0}, bytes_{0}, rotations_{0}, write_errors_{0}, reopens_{0}, syncs_{0};
};

}  // namespace logd
