// The transfer table (see transfers.h): reassembly of request bodies and the kept rest of
// long replies, with every bound a caller could push against checked before memory is
// taken.
#include "service/transfers.h"

#include <algorithm>
#include <cerrno>
#include <utility>

namespace fwsvc {

TransferTable::TransferTable(const Limits& limits, std::function<bool(uint32_t)> known)
    : limits_(limits), known_(std::move(known)) {}

size_t TransferTable::error(uint32_t transfer, int err, uint8_t* out) const noexcept {
  return encode(out, kError, static_cast<uint32_t>(err), transfer, 0, 0);
}

uint32_t TransferTable::held_by(uint32_t pid) const {
  auto it = per_pid_.find(pid);
  return it == per_pid_.end() ? 0 : it->second;
}

void TransferTable::erase(uint64_t k) {
  auto it = entries_.find(k);
  if (it == entries_.end()) return;
  const auto pid = static_cast<uint32_t>(k >> 32);
  auto p = per_pid_.find(pid);
  if (p != per_pid_.end() && --p->second == 0) per_pid_.erase(p);
  entries_.erase(it);
}

size_t TransferTable::accept(uint32_t pid, const uint8_t* payload, size_t n, int64_t now_ms, Complete* done,
                             uint8_t* out) {
  FragmentHeader h{};
  std::span<const uint8_t> data;
  if (!decode(payload, n, &h, &data) || h.transfer == 0) {
    ++stats_.malformed;
    return error(0, -EBADMSG, out);
  }
  switch (h.op) {
    case kRequest: return on_request(pid, h, data, now_ms, done, out);
    case kFetch: return on_fetch(pid, h, now_ms, out);
    case kCancel: erase(key(pid, h.transfer)); return encode(out, kAck, 0, h.transfer, 0, 0);
    default: ++stats_.malformed; return error(h.transfer, -EBADMSG, out);
  }
}

size_t TransferTable::on_request(uint32_t pid, const FragmentHeader& h, std::span<const uint8_t> data, int64_t now_ms,
                                 Complete* done, uint8_t* out) {
  const uint64_t k = key(pid, h.transfer);
  // Every fragment but the last is full: a body takes as few calls as it can, and a
  // caller cannot keep a transfer alive forever with empty fragments.
  const bool last = uint64_t(h.offset) + data.size() == h.total;
  if (!last && data.size() != kFragmentDataBytes) {
    ++stats_.malformed;
    erase(k);
    return error(h.transfer, -EBADMSG, out);
  }
  if (h.offset == 0) {
    erase(k);  // a transfer id started again replaces what it held
    if (!known_(h.word)) {
      ++stats_.unknown_method;
      return error(h.transfer, -ENOSYS, out);
    }
    if (h.total > limits_.max_body_bytes) {
      ++stats_.refused_size;
      return error(h.transfer, -EMSGSIZE, out);
    }
    if (last) {  // one fragment: nothing is held
      *done = Complete{pid, h.transfer, h.word, data};
      return 0;
    }
    if (held_by(pid) >= limits_.max_per_caller || entries_.size() >= limits_.max_transfers) {
      ++stats_.refused_busy;
      return error(h.transfer, -EBUSY, out);
    }
    Entry e;
    e.method = h.word;
    e.total = h.total;
    e.body.reserve(h.total);  // <= max_body_bytes, checked above
    e.body.assign(data.begin(), data.end());
    e.done = static_cast<uint32_t>(data.size());
    e.touched_ms = now_ms;
    e.age = next_age_++;
    entries_.emplace(k, std::move(e));
    ++per_pid_[pid];
    return encode(out, kAck, 0, h.transfer, h.offset, h.total);
  }
  auto it = entries_.find(k);
  if (it == entries_.end()) return error(h.transfer, -ESTALE, out);  // expired, or never begun
  Entry& e = it->second;
  if (!e.receiving || h.word != e.method || h.total != e.total || h.offset != e.done) {
    ++stats_.malformed;
    erase(k);
    return error(h.transfer, -EBADMSG, out);
  }
  e.body.insert(e.body.end(), data.begin(), data.end());
  e.done += static_cast<uint32_t>(data.size());
  e.touched_ms = now_ms;
  if (!last) return encode(out, kAck, 0, h.transfer, h.offset, h.total);
  completed_ = std::move(e.body);
  const uint32_t method = e.method;
  erase(k);
  *done = Complete{pid, h.transfer, method, std::span<const uint8_t>(completed_)};
  return 0;
}

size_t TransferTable::on_fetch(uint32_t pid, const FragmentHeader& h, int64_t now_ms, uint8_t* out) {
  const uint64_t k = key(pid, h.transfer);
  auto it = entries_.find(k);
  if (it == entries_.end()) return error(h.transfer, -ESTALE, out);  // expired, evicted, or never kept
  Entry& e = it->second;
  if (e.receiving || h.offset != e.done) {
    ++stats_.malformed;
    erase(k);
    return error(h.transfer, -EBADMSG, out);
  }
  const size_t len = std::min<size_t>(kFragmentDataBytes, e.total - e.done);
  const size_t n = encode(out, kReply, static_cast<uint32_t>(e.status), h.transfer, e.done, e.total,
                          std::span<const uint8_t>(e.body.data() + e.done, len));
  e.done += static_cast<uint32_t>(len);
  e.touched_ms = now_ms;
  if (e.done == e.total) erase(k);
  return n;
}

size_t TransferTable::reply(const Complete& done, int32_t status, std::span<const uint8_t> body, int64_t now_ms,
                            uint8_t* out) {
  const auto total = static_cast<uint32_t>(body.size());
  const auto word = static_cast<uint32_t>(status);
  if (body.size() <= kFragmentDataBytes) return encode(out, kReply, word, done.transfer, 0, total, body);
  const uint64_t k = key(done.pid, done.transfer);
  erase(k);
  make_room(done.pid);
  Entry e;
  e.receiving = false;
  e.status = status;
  e.total = total;
  e.body.assign(body.begin(), body.end());
  e.done = static_cast<uint32_t>(kFragmentDataBytes);
  e.touched_ms = now_ms;
  e.age = next_age_++;
  entries_.emplace(k, std::move(e));
  ++per_pid_[done.pid];
  return encode(out, kReply, word, done.transfer, 0, total, body.first(kFragmentDataBytes));
}

// A reply is never refused for room (its handler has run): the caller's own oldest
// transfer goes first, then the oldest of whoever holds the most.
void TransferTable::make_room(uint32_t pid) {
  auto evict_oldest_of = [this](uint32_t victim) {
    uint64_t best = 0;
    uint64_t best_age = UINT64_MAX;
    for (const auto& [k, e] : entries_) {
      if (static_cast<uint32_t>(k >> 32) == victim && e.age < best_age) {
        best = k;
        best_age = e.age;
      }
    }
    if (best_age == UINT64_MAX) return false;
    erase(best);
    ++stats_.evicted;
    return true;
  };
  while (held_by(pid) >= limits_.max_per_caller && evict_oldest_of(pid)) {
  }
  while (entries_.size() >= limits_.max_transfers && !per_pid_.empty()) {
    auto hog = std::max_element(per_pid_.begin(), per_pid_.end(),
                                [](const auto& a, const auto& b) { return a.second < b.second; });
    if (!evict_oldest_of(hog->first)) break;
  }
}

void TransferTable::expire(int64_t now_ms) {
  std::vector<uint64_t> stale;
  for (const auto& [k, e] : entries_) {
    if (now_ms - e.touched_ms >= int64_t(limits_.timeout_ms)) stale.push_back(k);
  }
  for (uint64_t k : stale) erase(k);
  stats_.expired += stale.size();
}

size_t TransferTable::bytes_held() const noexcept {
  size_t n = 0;
  for (const auto& [k, e] : entries_) n += e.body.capacity();
  return n;
}

}  // namespace fwsvc
