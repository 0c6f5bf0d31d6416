// The registry's policy: who may create (own) which channel names, D-Bus's
// <allow own="..."> for FreeWorld IPC. Read from --policy FILE, else $FWIPC_POLICY_FILE,
// else /etc/freeworld-ipc/policy.conf; reloaded on SIGHUP.
//
//   # comment
//   own NAME|PREFIX* PRINCIPAL...     PRINCIPAL: user:NAME, user:UID, group:NAME, group:GID
//
// A name that one or more `own` rules cover (an exact NAME, or a PREFIX ending in `*`,
// which covers every name that starts with PREFIX) may be created only by a principal one
// of those rules names; a name no rule covers may be created by anyone the registry serves.
// Root always may. A policy file replaces the built-in policy, which reserves logd,
// networkd, csrss and events for root. Other directives are refused (the file is read
// whole or not at all), so a typo never silently opens a name.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/perm.h"

namespace fwipc::registry {

inline constexpr const char* kDefaultPolicyPath = "/etc/freeworld-ipc/policy.conf";

struct Principal {
  bool is_group = false;
  uint32_t id = 0;  // uid or gid
};

struct OwnRule {
  std::string pattern;  // exact name, or a prefix when `prefix` is set
  bool prefix = false;
  std::vector<Principal> who;
  bool covers(const std::string& name) const;
};

class Policy {
 public:
  // The built-in policy: logd, networkd, csrss and events belong to root.
  static Policy builtin();
  // Parses text (from `origin`, for messages). 0, or -EINVAL with *error naming the line
  // and the reason.
  static int parse(const std::string& text, const std::string& origin, Policy* out, std::string* error);
  // Loads a file: 0, or -errno / -EINVAL with *error saying why. A missing file is an
  // error here; the caller decides whether a missing default means the built-in policy.
  static int load(const std::string& path, Policy* out, std::string* error);

  // Whether c may create a channel called name.
  bool may_own(const std::string& name, const Caller& c) const;
  const std::vector<OwnRule>& rules() const { return rules_; }
  const std::string& origin() const { return origin_; }

 private:
  std::vector<OwnRule> rules_;
  std::string origin_;  // "built-in" or the file's path
};

// The policy a registry runs with: `path` (its --policy), else $FWIPC_POLICY_FILE, else
// kDefaultPolicyPath if it exists, else the built-in policy. A file that was named but
// cannot be read, or that is malformed, is an error: 0, or -errno / -EINVAL with *error.
int load_policy(const std::string& path, Policy* out, std::string* error);

}  // namespace fwipc::registry
