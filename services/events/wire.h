// The event wire format (PROTOCOL.md): topic, NUL, JSON in one IPC message payload.
// Pure functions over bytes, so the fuzz target drives the decoder directly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fwevent {

inline constexpr uint32_t kWireType = 0x45565401u;  // FWEVENT_WIRE_TYPE
inline constexpr size_t kPayloadMax = 512;          // IPC_MAX_PAYLOAD

struct Decoded {
  std::string_view topic;  // into the payload
  std::string_view json;
};

// Checks a received message: its type, the NUL, the topic's grammar, the JSON's syntax.
// true with *out pointing into payload; false with *why set.
bool decode(uint32_t type, const void* payload, size_t size, Decoded* out, std::string* why = nullptr) noexcept;

// Builds the payload for topic and json text: validates both, re-serialises the JSON
// compactly. 0 with *out filled, -EINVAL (bad topic or JSON) or -EMSGSIZE (over 512
// bytes), *why naming the field.
int encode(std::string_view topic, std::string_view json, std::string* out, std::string* why = nullptr) noexcept;

}  // namespace fwevent
