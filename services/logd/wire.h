// logd's record message (PROTOCOL.md): what clients send with ipc_send(), and the
// decoder logd runs on every payload from another process. Host byte order: both ends
// share the machine; the header is still an ABI between builds, hence the version and
// the pinned layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace logd {

constexpr uint32_t kRecordType = 0x4C474431;  // "LGD1": the IPC_MESSAGE type of records
constexpr uint8_t kVersion = 1;
constexpr size_t kMaxText = 65536;
constexpr size_t kMaxTagKept = 32;
constexpr size_t kPayloadBytes = 512;  // IPC_MAX_PAYLOAD

enum Method : uint32_t { kHello = 1, kFlush = 2, kQuery = 3, kStats = 4 };

enum Kind : uint8_t { kWhole = 1, kFirst = 2, kMiddle = 3, kLast = 4 };

struct RecordHeader {
  uint8_t version;
  uint8_t kind;
  uint8_t level;
  uint8_t tag_len;
  uint32_t total;   // the whole text's length
  uint32_t offset;  // of this message's text in the whole text
};
static_assert(offsetof(RecordHeader, version) == 0);
static_assert(offsetof(RecordHeader, kind) == 1);
static_assert(offsetof(RecordHeader, level) == 2);
static_assert(offsetof(RecordHeader, tag_len) == 3);
static_assert(offsetof(RecordHeader, total) == 4);
static_assert(offsetof(RecordHeader, offset) == 8);
static_assert(sizeof(RecordHeader) == 12);
constexpr size_t kHeaderBytes = sizeof(RecordHeader);

// One decoded message: views into the payload.
struct Piece {
  RecordHeader h;
  std::string_view tag;
  std::string_view text;
};

// Checks one payload of n bytes from anyone (the rules of PROTOCOL.md that need no state).
inline bool decode(const void* payload, size_t n, Piece* out) noexcept {
  if (n < kHeaderBytes || n > kPayloadBytes) return false;
  std::memcpy(&out->h, payload, kHeaderBytes);
  const RecordHeader& h = out->h;
  if (h.version != kVersion || h.kind < kWhole || h.kind > kLast) return false;
  const bool tagged = h.kind == kWhole || h.kind == kFirst;
  if (!tagged && h.tag_len != 0) return false;
  if (h.tag_len > n - kHeaderBytes) return false;
  if (h.total > kMaxText) return false;
  const size_t text_len = n - kHeaderBytes - h.tag_len;
  if (tagged && h.offset != 0) return false;
  if (uint64_t(h.offset) + text_len > h.total) return false;
  if (h.kind == kWhole && text_len != h.total) return false;
  if (h.kind == kLast && h.offset + text_len != h.total) return false;
  const char* p = static_cast<const char*>(payload);
  out->tag = std::string_view(p + kHeaderBytes, h.tag_len);
  out->text = std::string_view(p + kHeaderBytes + h.tag_len, text_len);
  return true;
}

// Calls emit(payload, len) for each message of one record, in order; stops at the first
// emit that returns false. Returns the number of messages.
template <typename Emit>
size_t encode(int level, std::string_view tag, std::string_view text, Emit&& emit) {
  if (tag.size() > 255) tag = tag.substr(0, 255);
  if (text.size() > kMaxText) text = text.substr(0, kMaxText);
  uint8_t buf[kPayloadBytes];
  const size_t first_room = kPayloadBytes - kHeaderBytes - tag.size();
  RecordHeader h{kVersion,
                 kWhole,
                 static_cast<uint8_t>(level),
                 static_cast<uint8_t>(tag.size()),
                 static_cast<uint32_t>(text.size()),
                 0};
  if (text.size() <= first_room) {
    std::memcpy(buf, &h, kHeaderBytes);
    std::memcpy(buf + kHeaderBytes, tag.data(), tag.size());
    if (!text.empty()) std::memcpy(buf + kHeaderBytes + tag.size(), text.data(), text.size());
    emit(static_cast<const void*>(buf), kHeaderBytes + tag.size() + text.size());
    return 1;
  }
  size_t off = 0, n = 0;
  while (off < text.size()) {
    const size_t room = kPayloadBytes - kHeaderBytes - (off == 0 ? tag.size() : 0);
    const size_t len = text.size() - off < room ? text.size() - off : room;
    h.kind = off == 0 ? kFirst : (off + len == text.size() ? kLast : kMiddle);
    h.tag_len = off == 0 ? static_cast<uint8_t>(tag.size()) : 0;
    h.offset = static_cast<uint32_t>(off);
    std::memcpy(buf, &h, kHeaderBytes);
    size_t at = kHeaderBytes;
    if (off == 0) {
      std::memcpy(buf + at, tag.data(), tag.size());
      at += tag.size();
    }
    std::memcpy(buf + at, text.data() + off, len);
    ++n;
    if (!emit(static_cast<const void*>(buf), at + len)) return n;
    off += len;
  }
  return n;
}

}  // namespace logd
