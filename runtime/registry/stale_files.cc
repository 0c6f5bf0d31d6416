// See stale_files.h.
#include "runtime/registry/stale_files.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "base/proc.h"
#include "runtime/registry/protocol.h"

namespace fwipc::registry {

int remove_stale_files(const std::string& dir, const std::vector<std::string>& in_use) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return -errno;
  int removed = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    const bool ours = (n.size() > 5 && n.compare(n.size() - 5, 5, ".sock") == 0 && n != kSocketName) ||
                      (n.size() > 5 && n.compare(n.size() - 5, 5, ".call") == 0) ||
                      (n.size() > 5 && n.compare(n.size() - 5, 5, ".fifo") == 0) ||
                      n.find(".fifo.") != std::string::npos;
    if (!ours) continue;
    // A member's FIFO carries its PID: one whose member lives may not be opened by the
    // creator's runtime yet (a restart between open and JOIN), so it stays.
    const size_t r = n.find(".fifo.r"), w = n.find(".fifo.w");
    if (const size_t at = r != std::string::npos ? r : w; at != std::string::npos) {
      const long pid = std::strtol(n.c_str() + at + 7, nullptr, 10);
      if (pid > 0 && process_alive(static_cast<pid_t>(pid), 0)) continue;
    }
    const std::string path = dir + "/" + n;
    if (std::find(in_use.begin(), in_use.end(), path) != in_use.end()) continue;
    if (::unlink(path.c_str()) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

}  // namespace fwipc::registry
