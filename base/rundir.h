// The runtime directory: FWIPC_RUNTIME_DIR, else /run/freeworld-ipc, else (not root and
// that is not usable) $XDG_RUNTIME_DIR/freeworld-ipc or /tmp/freeworld-ipc-UID.
#pragma once

#include <string>

namespace fwipc {

inline constexpr const char* kSystemRuntimeDir = "/run/freeworld-ipc";

std::string runtime_dir();

// Creates dir and missing parents. The directory itself is made 0700 (only its owner's
// processes use it), except kSystemRuntimeDir created by root, made 0755 (shared by design);
// parents are made 0755 (never writable by others). Existing directories are left as they
// are: check_runtime_dir() judges them. 0, -ENOTDIR or -errno.
int ensure_dir(const std::string& dir);

// Whether this process may trust dir as its runtime directory, i.e. no other uid can put
// files in it: lstat'ed (not a symbolic link), a directory, owned by root (root decides who
// may write there) or owned by our effective uid with the group and other write bits off.
// 0, or -EPERM (someone else controls it), -ENOTDIR, -ENOENT or another -errno from lstat;
// on failure *why (if given) names the directory and the reason.
int check_runtime_dir(const std::string& dir, std::string* why);

}  // namespace fwipc
