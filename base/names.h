// Channel names: 1-63 chars of [A-Za-z0-9._-], never "." or "..", so a name can be used
// as a path component without escaping the runtime directory.
#pragma once

#include <cstddef>
#include <string_view>

namespace fwipc {

inline constexpr size_t kNameMax = 63;

// 0 if valid, else -EINVAL (empty, bad character, "." / "..") or -ENAMETOOLONG.
int validate_channel_name(const char* name) noexcept;

// A name that has passed validation; cannot hold an invalid one.
class ChannelName {
 public:
  static int make(const char* raw, ChannelName* out) noexcept;
  const char* c_str() const noexcept { return buf_; }
  std::string_view view() const noexcept { return buf_; }

 private:
  char buf_[kNameMax + 1] = {};
};

}  // namespace fwipc
