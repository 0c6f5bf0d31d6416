#include "services/logd/daemon/writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "nlohmann/json.hpp"
#include "services/logd/text.h"

namespace logd {
namespace {

int64_t monotonic_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int Writer::open(const WriterOptions& opts, std::string* detail) {
  opts_ = opts;
  if (mkdir(opts_.dir.c_str(), 0755) != 0 && errno != EEXIST) {
    const int e = errno;
    *detail = "--log-dir " + opts_.dir + ": " + strerror(e);
    return -e;
  }
  load_existing();
  return open_file(detail);
}

int Writer::open_file(std::string* detail) {
  const std::string path = opts_.dir + "/logd.log";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    const int e = errno;
    if (detail != nullptr) *detail = path + ": " + strerror(e);
    return -e;
  }
  struct stat st;
  size_ = fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  return 0;
}

// The current file back into the index, and the seq after its last record, so that seq
// keeps increasing across restarts and logctl answers about what came before.
void Writer::load_existing() {
  const std::string path = opts_.dir + "/logd.log";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  std::string data;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > opts_.max_bytes + (1u << 20)) break;  // not ours to read all of
  }
  ::close(fd);
  size_t at = 0;
  while (at < data.size()) {
    size_t nl = data.find('\n', at);
    if (nl == std::string::npos) break;  // a torn last line is not a record
    const std::string_view line(data.data() + at, nl - at);
    at = nl + 1;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("seq") || !j["seq"].is_number_unsigned()) continue;
    Indexed ix;
    ix.seq = j["seq"].get<uint64_t>();
    ix.level = j.contains("level") && j["level"].is_string() ? level_from_name(j["level"].get<std::string>()) : 7;
    if (ix.level < 0) ix.level = 7;
    ix.ts_us = 0;
    if (j.contains("ts") && j["ts"].is_string()) parse_rfc3339_us(j["ts"].get<std::string>(), &ix.ts_us);
    ix.pid = j.contains("pid") && j["pid"].is_number_integer() ? j["pid"].get<int32_t>() : 0;
    ix.tag = j.contains("tag") && j["tag"].is_string() ? j["tag"].get<std::string>() : "";
    ix.line = std::string(line);
    if (ix.seq >= first_seq_) first_seq_ = ix.seq + 1;
    index_.push_back(std::move(ix));
    if (index_.size() > opts_.index_records) index_.pop_front();
  }
  written_.store(first_seq_ - 1, std::memory_order_release);
}

void Writer::start() {
  thread_ = std::thread([this] { run(); });
}

void Writer::push(Record&& r) {
  ++pushed_;
  queue_.enqueue(std::move(r));
}

void Writer::stop() {
  if (!thread_.joinable()) return;
  Record r;
  r.control = Record::kStop;
  push(std::move(r));
  thread_.join();
  if (fd_ >= 0) {
    if (opts_.sync != SyncMode::kNever) fdatasync(fd_);
    ::close(fd_);
    fd_ = -1;
  }
}

bool Writer::wait_written(uint64_t seq, int timeout_ms) {
  std::unique_lock<std::mutex> lock(written_mu_);
  return written_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return written_seq() >= seq; });
}

void Writer::format(const Record& r, std::string& out) const {
  out += "{\"seq\":";
  out += std::to_string(r.seq);
  out += ",\"ts\":\"";
  out += rfc3339_us(r.ts_us);
  out += "\",\"level\":\"";
  out += level_name(r.level);
  out += "\",\"tag\":";
  append_json_string(out, r.tag);
  out += ",\"msg\":";
  append_json_string(out, r.msg);
  out += ",\"pid\":";
  out += std::to_string(r.pid);
  out += ",\"uid\":";
  out += r.uid < 0 ? "null" : std::to_string(r.uid);
  out += ",\"comm\":";
  if (r.comm.empty())
    out += "null";
  else
    append_json_string(out, r.comm);
  out += r.extra;
  out += "}";
}

void Writer::write_out(std::string& buf) {
  size_t off = 0;
  while (off < buf.size()) {
    const ssize_t n = ::write(fd_, buf.data() + off, buf.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ++write_errors_;  // disk full or gone: counted; the records stay queryable
      break;
    }
    off += static_cast<size_t>(n);
  }
  size_ += off;
  bytes_ += off;
  buf.clear();
}

void Writer::rotate() {
  if (opts_.sync != SyncMode::kNever) fdatasync(fd_);
  const std::string base = opts_.dir + "/logd.log";
  if (opts_.keep <= 0) {
    unlink(base.c_str());
  } else {
    for (int i = opts_.keep - 1; i >= 1; --i)
      rename((base + "." + std::to_string(i)).c_str(), (base + "." + std::to_string(i + 1)).c_str());
    rename(base.c_str(), (base + ".1").c_str());
  }
  ++rotations_;
  if (open_file(nullptr) != 0) ++write_errors_;
}

void Writer::run() {
  moodycamel::ConsumerToken token(queue_);
  std::vector<Record> batch(512);
  std::string buf, line, human;
  int64_t last_sync_ms = monotonic_ms();
  bool dirty = false, running = true;
  while (running) {
    const size_t got = queue_.wait_dequeue_bulk_timed(token, batch.begin(), batch.size(), std::chrono::seconds(1));
    uint64_t last = 0;
    std::vector<Indexed> fresh;
    fresh.reserve(got);
    for (size_t i = 0; i < got; ++i) {
      Record& r = batch[i];
      if (r.control == Record::kStop) {
        running = false;
        continue;
      }
      if (r.control == Record::kReopen) {
        write_out(buf);
        if (open_file(nullptr) == 0) ++reopens_;
        continue;
      }
      line.clear();
      format(r, line);
      if (size_ + buf.size() + line.size() + 1 > opts_.max_bytes && size_ + buf.size() > 0) {
        write_out(buf);
        rotate();
      }
      buf += line;
      buf += '\n';
      if (opts_.mirror_stderr) {
        human = rfc3339_us(r.ts_us) + " " + level_name(r.level) + " " + r.tag + "[" + std::to_string(r.pid) +
                "]: " + r.msg + "\n";
        (void)!::write(STDERR_FILENO, human.data(), human.size());
      }
      fresh.push_back(Indexed{r.seq, r.ts_us, r.level, r.pid, std::move(r.tag), line});
      last = r.seq;
      ++lines_;
      r = Record();
    }
    write_out(buf);
    if (!fresh.empty()) dirty = true;
    const int64_t now = monotonic_ms();
    if (dirty && (opts_.sync == SyncMode::kAlways ||
                  (opts_.sync == SyncMode::kInterval && (now - last_sync_ms >= 1000 || !running)))) {
      fdatasync(fd_);
      ++syncs_;
      dirty = false;
      last_sync_ms = now;
    }
    if (!fresh.empty()) {
      std::lock_guard<std::mutex> lock(index_mu_);
      for (auto& ix : fresh) index_.push_back(std::move(ix));
      while (index_.size() > opts_.index_records) index_.pop_front();
    }
    popped_.fetch_add(got, std::memory_order_release);
    if (last != 0) {
      std::lock_guard<std::mutex> lock(written_mu_);
      written_.store(last, std::memory_order_release);
      written_cv_.notify_all();
    }
  }
}

std::vector<std::string> Writer::query(const Filter& f, size_t max_bytes) const {
  std::vector<std::string> out;
  size_t bytes = 0;
  std::lock_guard<std::mutex> lock(index_mu_);
  for (auto it = index_.rbegin(); it != index_.rend() && out.size() < f.n; ++it) {
    if (it->seq <= f.after_seq) break;  // the index is in seq order
    if (it->level > f.max_level) continue;
    if (f.pid >= 0 && it->pid != f.pid) continue;
    if (it->ts_us < f.since_us) continue;
    if (!f.tag_prefix.empty() && it->tag.compare(0, f.tag_prefix.size(), f.tag_prefix) != 0) continue;
    if (bytes + it->line.size() + 1 > max_bytes) break;
    bytes += it->line.size() + 1;
    out.push_back(it->line);
  }
  return {out.rbegin(), out.rend()};
}

Writer::Counters Writer::counters() const {
  return {lines_.load(), bytes_.load(), rotations_.load(), write_errors_.load(), reopens_.load(), syncs_.load()};
}

}  // namespace logd
