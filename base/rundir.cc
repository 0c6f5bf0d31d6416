#include "base/rundir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace fwipc {

std::string runtime_dir() {
  if (const char* e = std::getenv("FWIPC_RUNTIME_DIR"); e && *e) return e;
  const std::string sys = "/run/freeworld-ipc";
  if (::geteuid() == 0 || ::access(sys.c_str(), W_OK | X_OK) == 0) return sys;
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) return std::string(x) + "/freeworld-ipc";
  return "/tmp/freeworld-ipc-" + std::to_string(::geteuid());
}

int ensure_dir(const std::string& dir) {
  if (dir.empty()) return -EINVAL;
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i < dir.size() && dir[i] != '/') continue;
    const std::string part = dir.substr(0, i);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) return -errno;
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return -errno;
  if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
  return 0;
}

}  // namespace fwipc
