// Channel access, decided like file access: root may do anything; otherwise the owner's,
// the group's (primary or supplementary) or others' bits of the channel mode apply.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace fwipc {

struct Caller {
  pid_t pid;
  uid_t uid;
  gid_t gid;
};

// Reads the caller's supplementary groups from /proc only when the group bits matter.
bool mode_permits(const Caller& c, uid_t owner_uid, gid_t owner_gid, uint32_t mode, bool want_read,
                  bool want_write) noexcept;

}  // namespace fwipc
