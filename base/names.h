// Channel names: 1-63 chars of [A-Za-z0-9._-], never "." or "..", so a name can be used
// as a path component without escaping the runtime directory.
#pragma once

#include <cstddef>

namespace fwipc {

// IPC_NAME_MAX of the public API (asserted equal in runtime/api.cc; base/ includes nothing
// of ours).
inline constexpr size_t kNameMax = 63;

// 0 if valid, else -EINVAL (empty, bad character, "." / "..") or -ENAMETOOLONG.
int validate_channel_name(const char* name) noexcept;

}  // namespace fwipc
