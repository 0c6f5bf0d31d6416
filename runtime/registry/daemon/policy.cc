// See policy.h.
#include "runtime/registry/daemon/policy.h"

#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/names.h"

namespace fwipc::registry {
namespace {

// Numeric ids are taken as they are (a uid need not have a passwd entry); names are
// resolved now, so a policy naming an unknown user fails to load instead of matching no one.
bool parse_id(const std::string& s, uint32_t* out) {
  if (s.empty() || s.size() > 10) return false;
  char* end = nullptr;
  const unsigned long v = std::strtoul(s.c_str(), &end, 10);
  if (*end != '\0' || v > 0xfffffffful) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

bool parse_principal(const std::string& word, Principal* p, std::string* why) {
  const size_t colon = word.find(':');
  const std::string kind = word.substr(0, colon);
  const std::string who = colon == std::string::npos ? "" : word.substr(colon + 1);
  if ((kind != "user" && kind != "group") || who.empty()) {
    *why = "principal '" + word + "' is not user:NAME, user:UID, group:NAME or group:GID";
    return false;
  }
  p->is_group = kind == "group";
  if (parse_id(who, &p->id)) return true;
  if (p->is_group) {
    const group* g = ::getgrnam(who.c_str());
    if (g != nullptr) {
      p->id = g->gr_gid;
      return true;
    }
  } else {
    const passwd* u = ::getpwnam(who.c_str());
    if (u != nullptr) {
      p->id = u->pw_uid;
      return true;
    }
  }
  *why = "no such " + kind + " '" + who + "'";
  return false;
}

bool parse_pattern(const std::string& word, OwnRule* r, std::string* why) {
  r->prefix = !word.empty() && word.back() == '*';
  r->pattern = r->prefix ? word.substr(0, word.size() - 1) : word;
  // A prefix may be empty ("*": every name); a whole name must be a valid channel name,
  // and a prefix must consist of name characters.
  const std::string probe = r->prefix ? r->pattern + "x" : r->pattern;
  if ((r->prefix && r->pattern.empty()) || validate_channel_name(probe.c_str()) == 0) return true;
  *why = "'" + word + "' is neither a channel name nor a name prefix ending in '*'";
  return false;
}

constexpr const char* kLimitKeys[kQuotaKeys] = {"channels", "bytes", "connections", "memberships"};

// VALUE of a limit: a decimal number (bytes: with an optional K, M or G suffix, binary
// units) or `unlimited`.
bool parse_limit_value(const std::string& s, bool bytes, uint64_t* out) {
  if (s == "unlimited") {
    *out = kQuotaUnlimited;
    return true;
  }
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  if (digits == 0 || digits > 19) return false;
  uint64_t v = std::strtoull(s.substr(0, digits).c_str(), nullptr, 10);
  const std::string suffix = s.substr(digits);
  int shift = 0;
  if (suffix.empty()) {
  } else if (bytes && suffix.size() == 1 && std::strchr("kKmMgG", suffix[0]) != nullptr) {
    shift = suffix[0] == 'k' || suffix[0] == 'K' ? 10 : suffix[0] == 'm' || suffix[0] == 'M' ? 20 : 30;
  } else {
    return false;
  }
  if (shift && v > (kQuotaUnlimited >> shift)) return false;
  *out = v << shift;
  return true;
}

// `limit PRINCIPAL|default KEY=VALUE...` after the directive.
bool parse_limit(std::istringstream& words, LimitRule* r, std::string* why) {
  std::string who, kv;
  if (!(words >> who)) {
    *why = "'limit' needs a principal (or 'default') and at least one KEY=VALUE";
    return false;
  }
  if (who == "default") {
    r->is_default = true;
  } else if (!parse_principal(who, &r->who, why)) {
    return false;
  }
  while (words >> kv) {
    const size_t eq = kv.find('=');
    const std::string key = kv.substr(0, eq);
    uint32_t k = 0;
    while (k < kQuotaKeys && key != kLimitKeys[k]) ++k;
    if (eq == std::string::npos || k == kQuotaKeys) {
      *why = "'" + kv + "' is not KEY=VALUE with KEY channels, bytes, connections or memberships";
      return false;
    }
    if (!parse_limit_value(kv.substr(eq + 1), k == kQuotaBytes, &r->value[k])) {
      *why = "'" + kv + "': the value is not a number" + (k == kQuotaBytes ? " (optionally with K, M or G)" : "") +
             " or 'unlimited'";
      return false;
    }
    r->set |= 1u << k;
  }
  if (r->set == 0) {
    *why = "'limit " + who + "' sets no limit";
    return false;
  }
  return true;
}

bool names(const Principal& p, const Caller& c) { return p.is_group ? in_group(c, p.id) : c.uid == p.id; }

}  // namespace

bool OwnRule::covers(const std::string& name) const {
  return prefix ? name.compare(0, pattern.size(), pattern) == 0 : name == pattern;
}

Policy Policy::builtin() {
  Policy p;
  p.origin_ = "built-in";
  for (const char* name : {"logd", "networkd", "csrss", "events"})
    p.rules_.push_back(OwnRule{name, false, {Principal{false, 0}}});
  return p;
}

int Policy::parse(const std::string& text, const std::string& origin, Policy* out, std::string* error) {
  Policy p;
  p.origin_ = origin;
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (const size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string directive;
    if (!(words >> directive)) continue;
    std::string why;
    if (directive == "own") {
      OwnRule r;
      std::string pattern, who;
      if (!(words >> pattern)) {
        why = "'own' needs a name or prefix and at least one principal";
      } else if (parse_pattern(pattern, &r, &why)) {
        Principal pr;
        while (why.empty() && words >> who)
          if (parse_principal(who, &pr, &why)) r.who.push_back(pr);
        if (why.empty() && r.who.empty()) why = "'own " + pattern + "' names no principal";
      }
      if (why.empty()) p.rules_.push_back(std::move(r));
    } else if (directive == "limit") {
      LimitRule r;
      if (parse_limit(words, &r, &why)) p.limits_.push_back(r);
    } else {
      why = "unknown directive '" + directive + "' (expected 'own' or 'limit')";
    }
    if (!why.empty()) {
      *error = origin + ":" + std::to_string(n) + ": " + why;
      return -EINVAL;
    }
  }
  *out = std::move(p);
  return 0;
}

int Policy::load(const std::string& path, Policy* out, std::string* error) {
  std::ifstream f(path);
  if (!f) {
    const int e = errno ? errno : ENOENT;
    *error = path + ": " + std::strerror(e);
    return -e;
  }
  std::ostringstream text;
  text << f.rdbuf();
  return parse(text.str(), path, out, error);
}

int load_policy(const std::string& path, Policy* out, std::string* error) {
  if (!path.empty()) return Policy::load(path, out, error);
  if (const char* env = std::getenv("FWIPC_POLICY_FILE"); env && *env) return Policy::load(env, out, error);
  Policy p;
  const int rc = Policy::load(kDefaultPolicyPath, &p, error);
  if (rc == -ENOENT) {
    *out = Policy::builtin();
    return 0;
  }
  if (rc == 0) *out = std::move(p);
  return rc;
}

bool Policy::may_own(const std::string& name, const Caller& c) const {
  if (c.uid == 0) return true;
  bool covered = false;
  for (const OwnRule& r : rules_) {
    if (!r.covers(name)) continue;
    covered = true;
    for (const Principal& p : r.who)
      if (p.is_group ? in_group(c, p.id) : c.uid == p.id) return true;
  }
  return !covered;
}

}  // namespace fwipc::registry

namespace fwipc::registry {

Limits Policy::limits_for(const Caller& c) const {
  Limits out;
  out.fill(kQuotaUnlimited);
  if (c.uid == 0) return out;
  // Per key: the smallest value among the rules of the strongest kind that sets it.
  enum { kDefault, kGroup, kUser, kNone };
  std::array<int, kQuotaKeys> kind;
  kind.fill(kNone);
  for (const LimitRule& r : limits_) {
    const int k = r.is_default ? kDefault : r.who.is_group ? kGroup : kUser;
    if (!r.is_default && !names(r.who, c)) continue;
    for (uint32_t key = 0; key < kQuotaKeys; ++key) {
      if (!(r.set & (1u << key))) continue;
      if (kind[key] == kNone || k > kind[key]) {
        kind[key] = k;
        out[key] = r.value[key];
      } else if (k == kind[key]) {
        out[key] = std::min(out[key], r.value[key]);
      }
    }
  }
  for (uint32_t key = 0; key < kQuotaKeys; ++key)
    if (kind[key] == kNone) out[key] = kDefaultLimits[key];
  return out;
}

bool Policy::owns_reserved(const Caller& c) const {
  if (c.uid == 0) return true;
  for (const OwnRule& r : rules_)
    for (const Principal& p : r.who)
      if (names(p, c)) return true;
  return false;
}

}  // namespace fwipc::registry
