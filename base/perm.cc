#include "base/perm.h"

#include <fstream>
#include <sstream>
#include <string>

namespace fwipc {
namespace {

bool in_supplementary_group(pid_t pid, gid_t gid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Groups:", 0) != 0) continue;
    std::istringstream ss(line.substr(7));
    unsigned long g;
    while (ss >> g)
      if (g == gid) return true;
  }
  return false;
}

}  // namespace

bool in_group(const Caller& c, gid_t gid) noexcept { return c.gid == gid || in_supplementary_group(c.pid, gid); }

bool mode_permits(const Caller& c, uid_t owner_uid, gid_t owner_gid, uint32_t mode, bool want_read,
                  bool want_write) noexcept {
  if (c.uid == 0) return true;
  uint32_t bits;
  if (c.uid == owner_uid)
    bits = (mode >> 6) & 7;
  else if (in_group(c, owner_gid))
    bits = (mode >> 3) & 7;
  else
    bits = mode & 7;
  return (!want_read || (bits & 4)) && (!want_write || (bits & 2));
}

}  // namespace fwipc
