// Topic and pattern grammar (NATS subjects): validation and matching, no I/O.
#pragma once

#include <string>
#include <string_view>

namespace fwevent {

inline constexpr size_t kTopicMax = 255;

// true if valid; otherwise false with *why naming the problem and its byte offset.
bool valid_topic(std::string_view topic, std::string* why = nullptr) noexcept;
bool valid_pattern(std::string_view pattern, std::string* why = nullptr) noexcept;

// Does topic match pattern? Both must be valid (checked by the caller): `*` is exactly one
// segment, a final `>` one or more.
bool match(std::string_view pattern, std::string_view topic) noexcept;

}  // namespace fwevent
