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

// Whether the caller is in group gid: its primary group, or a supplementary one (read from
// /proc/PID/status, so the answer is the kernel's, not the caller's word).
bool in_group(const Caller& c, gid_t gid) noexcept;

// Reads the caller's supplementary groups from /proc only when the group bits matter.
bool mode_permits(const Caller& c, uid_t owner_uid, gid_t owner_gid, uint32_t mode, bool want_read,
                  bool want_write) noexcept;

}  // namespace fwipc
