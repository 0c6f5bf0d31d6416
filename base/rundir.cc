#include "base/rundir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fwipc {

std::string runtime_dir() {
  if (const char* e = std::getenv("FWIPC_RUNTIME_DIR"); e && *e) return e;
  const std::string sys = kSystemRuntimeDir;
  if (::geteuid() == 0 || ::access(sys.c_str(), W_OK | X_OK) == 0) return sys;
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) return std::string(x) + "/freeworld-ipc";
  return "/tmp/freeworld-ipc-" + std::to_string(::geteuid());
}

int ensure_dir(const std::string& dir) {
  if (dir.empty()) return -EINVAL;
  std::string leaf = dir;
  while (leaf.size() > 1 && leaf.back() == '/') leaf.pop_back();
  for (size_t i = 1; i <= leaf.size(); ++i) {
    if (i < leaf.size() && leaf[i] != '/') continue;
    const std::string part = leaf.substr(0, i);
    const bool is_leaf = i == leaf.size();
    const bool shared = is_leaf && leaf == kSystemRuntimeDir && ::geteuid() == 0;
    if (::mkdir(part.c_str(), is_leaf && !shared ? 0700 : 0755) != 0) {
      if (errno != EEXIST) return -errno;
    } else if (shared) {
      ::chmod(part.c_str(), 0755);  // whatever the umask: other uids must reach the registry
    }
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return -errno;
  if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
  return 0;
}

int check_runtime_dir(const std::string& dir, std::string* why) {
  const auto refuse = [&](int rc, const std::string& reason) {
    if (why) *why = "runtime directory " + dir + ": " + reason;
    return rc;
  };
  if (dir.empty()) return refuse(-EINVAL, "an empty path");
  // lstat: a symbolic link may be swapped by whoever owns it, and where it points is not
  // what was checked (a trailing slash would make lstat follow it).
  std::string path = dir;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    const int err = errno;
    return refuse(-err, std::strerror(err));
  }
  if (S_ISLNK(st.st_mode)) return refuse(-EPERM, "a symbolic link (whoever owns it chooses where it points)");
  if (!S_ISDIR(st.st_mode)) return refuse(-ENOTDIR, "not a directory");
  const uid_t me = ::geteuid();
  // Root-owned: root chose its mode (e.g. /run/freeworld-ipc 0755, or a group-writable one
  // on purpose); a socket planted in it is caught by the registry's credential check.
  if (st.st_uid == 0) return 0;
  if (st.st_uid != me)
    return refuse(-EPERM, "owned by uid " + std::to_string(st.st_uid) + ", not by root or uid " + std::to_string(me) +
                              " (another user controls it)");
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return refuse(-EPERM, std::string("mode ") + mode + ", writable by other users (make it 0700 or 0755)");
  }
  return 0;
}

}  // namespace fwipc
