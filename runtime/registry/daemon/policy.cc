// See policy.h.
#include "runtime/registry/daemon/policy.h"

#include <grp.h>
#include <pwd.h>

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
    } else {
      why = "unknown directive '" + directive + "' (expected 'own')";
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
