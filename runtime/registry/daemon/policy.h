// The registry's policy: who may create (own) which channel names, D-Bus's
// <allow own="..."> for FreeWorld IPC, and how much each uid may hold (D-Bus's per-user
// limits). Read from --policy FILE, else $FWIPC_POLICY_FILE, else
// /etc/freeworld-ipc/policy.conf; reloaded on SIGHUP.
//
//   # comment
//   own NAME|PREFIX* PRINCIPAL...     PRINCIPAL: user:NAME, user:UID, group:NAME, group:GID
//   limit PRINCIPAL|default KEY=VALUE...
//
// A name that one or more `own` rules cover (an exact NAME, or a PREFIX ending in `*`,
// which covers every name that starts with PREFIX) may be created only by a principal one
// of those rules names; a name no rule covers may be created by anyone the registry serves.
// Root always may. A policy file replaces the built-in policy, which reserves logd,
// networkd, csrss and events for root. Other directives are refused (the file is read
// whole or not at all), so a typo never silently opens a name.
//
// Limits are per uid: what the processes of one uid hold in the registry together. KEY is
// channels (created, still named), bytes (channel memory: a QUEUE segment, a SOCKET or PIPE
// hub's inbox, the queue a hub or bridge keeps for a reader), connections (to the
// registry) or memberships (ids open, created ones included); VALUE a number, `unlimited`,
// and for bytes optionally K, M or G (binary). Every non-root uid starts with the defaults
// (kDefaultLimits, changed by `limit default`); per key, a `limit user:` rule naming the
// uid beats every `limit group:` rule of its groups (primary and supplementary), and among
// several rules of one kind the smallest value applies (so their order never matters).
// A group rule gives each uid of the group that limit; it is not a pool. Root is never
// limited.
#pragma once

#include <sys/types.h>

#include <array>
#include <string>
#include <vector>

#include "base/perm.h"
#include "runtime/registry/protocol.h"

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

// By QuotaKey (protocol.h): channels, bytes, connections, memberships. kQuotaUnlimited: none.
using Limits = std::array<uint64_t, kQuotaKeys>;

// Every non-root uid's limits unless the policy says otherwise: 256 channels, 1 GiB of
// channel memory, 256 registry connections, 4096 memberships (README, Permissions, says why).
inline constexpr Limits kDefaultLimits{256, uint64_t(1) << 30, 256, 4096};

struct LimitRule {
  bool is_default = false;  // `limit default`
  Principal who;            // otherwise
  uint32_t set = 0;         // bit k: value[k] was given
  Limits value{};
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
  // The limits of c's uid (all kQuotaUnlimited for root), by the rules above.
  Limits limits_for(const Caller& c) const;
  // Whether an `own` rule names c (its uid or one of its groups), or c is root: those may
  // use the headroom the registry keeps under its global caps.
  bool owns_reserved(const Caller& c) const;
  const std::vector<OwnRule>& rules() const { return rules_; }
  const std::vector<LimitRule>& limit_rules() const { return limits_; }
  const std::string& origin() const { return origin_; }

 private:
  std::vector<OwnRule> rules_;
  std::vector<LimitRule> limits_;
  std::string origin_;  // "built-in" or the file's path
};

// The policy a registry runs with: `path` (its --policy), else $FWIPC_POLICY_FILE, else
// kDefaultPolicyPath if it exists, else the built-in policy. A file that was named but
// cannot be read, or that is malformed, is an error: 0, or -errno / -EINVAL with *error.
int load_policy(const std::string& path, Policy* out, std::string* error);

}  // namespace fwipc::registry
