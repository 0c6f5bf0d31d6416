// The runtime directory: FWIPC_RUNTIME_DIR, else /run/freeworld-ipc, else (not root and
// that is not usable) $XDG_RUNTIME_DIR/freeworld-ipc or /tmp/freeworld-ipc-UID.
#pragma once

#include <string>

namespace fwipc {

std::string runtime_dir();

// Creates dir (and missing parents) as 0755: never world-writable. 0 or -errno.
int ensure_dir(const std::string& dir);

}  // namespace fwipc
