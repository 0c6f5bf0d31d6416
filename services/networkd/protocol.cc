#include "services/networkd/protocol.h"

#include <cerrno>
#include <nlohmann/json.hpp>

namespace networkd {

using json = nlohmann::json;

namespace {

bool fail(FieldError* err, int code, std::string field, std::string reason) {
  *err = FieldError{code, std::move(field), std::move(reason)};
  return false;
}

// The object's keys must all be among `allowed` (a typo is an error, not a silent default).
bool only_keys(const json& j, std::initializer_list<const char*> allowed, FieldError* err) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || it.key() == a;
    if (!ok) {
      std::string k = it.key().substr(0, 32);
      return fail(err, EINVAL, k, "unknown field");
    }
  }
  return true;
}

// A string field: present (unless optional), a string, at most max bytes, printable.
bool get_string(const json& j, const char* key, size_t max, bool optional, std::string* out, FieldError* err) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return optional ? true : fail(err, EINVAL, key, "missing");
  if (!it->is_string()) return fail(err, EINVAL, key, "not a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max) return fail(err, ENAMETOOLONG, key, "longer than " + std::to_string(max) + " bytes");
  for (unsigned char c : s)
    if (c < 0x21 || c > 0x7e) return fail(err, EINVAL, key, "contains a space, control or non-ASCII byte");
  *out = s;
  return true;
}

bool get_iface(const json& j, bool optional, std::string* out, FieldError* err) {
  if (!get_string(j, "iface", kMaxIfaceLen, optional, out, err)) return false;
  if (out->empty() && optional) return true;
  if (!valid_iface_name(*out)) return fail(err, EINVAL, "iface", "not an interface name");
  return true;
}

bool get_ipv4(const json& j, const char* key, bool optional, std::optional<uint32_t>* out, FieldError* err) {
  std::string s;
  if (!get_string(j, key, 64, optional, &s, err)) return false;
  if (s.empty()) {
    if (optional) return true;
    return fail(err, EINVAL, key, "empty");
  }
  const auto ip = parse_ipv4(s);
  if (!ip) {
    if (looks_ipv6(s)) return fail(err, EAFNOSUPPORT, key, "IPv6 address: only IPv4 is supported");
    return fail(err, EINVAL, key, "not an IPv4 address (dotted quad)");
  }
  *out = ip;
  return true;
}

bool decode_static(const json& j, StaticReq* r, FieldError* err) {
  if (!only_keys(j, {"iface", "ip", "netmask", "gateway"}, err) || !get_iface(j, false, &r->iface, err)) return false;
  std::optional<uint32_t> ip, mask;
  if (!get_ipv4(j, "ip", false, &ip, err) || !get_ipv4(j, "netmask", false, &mask, err) ||
      !get_ipv4(j, "gateway", true, &r->gateway, err))
    return false;
  const auto prefix = mask_to_prefix(*mask);
  if (!prefix) return fail(err, EINVAL, "netmask", "not contiguous (ones then zeros)");
  if (*prefix == 0) return fail(err, EINVAL, "netmask", "0.0.0.0 is no subnet");
  const uint32_t m = prefix_to_mask(*prefix);
  if ((*ip >> 24) == 0 || (*ip >> 24) == 127 || (*ip >> 28) >= 14)
    return fail(err, EINVAL, "ip", "not a unicast host address");
  if (*prefix <= 30 && ((*ip & ~m) == 0 || (*ip & ~m) == ~m))
    return fail(err, EINVAL, "ip", "is the subnet's network or broadcast address");
  if (r->gateway) {
    if (!in_subnet(*r->gateway, *ip, *prefix))
      return fail(err, EINVAL, "gateway",
                  format_ipv4(*r->gateway) + " is outside the subnet " + format_cidr(Cidr{*ip & m, *prefix}));
    if (*r->gateway == *ip) return fail(err, EINVAL, "gateway", "is the address itself");
    if (*prefix <= 30 && ((*r->gateway & ~m) == 0 || (*r->gateway & ~m) == ~m))
      return fail(err, EINVAL, "gateway", "is the subnet's network or broadcast address");
  }
  r->ip = *ip;
  r->prefix = *prefix;
  return true;
}

bool decode_route(const json& j, bool adding, RouteReq* r, FieldError* err) {
  if (!only_keys(j, {"dest", "gateway", "iface"}, err)) return false;
  std::string dest;
  if (!get_string(j, "dest", 64, false, &dest, err)) return false;
  switch (parse_cidr(dest, &r->dest)) {
    case CidrError::kNone: break;
    case CidrError::kMalformed:
      return fail(err, looks_ipv6(dest.substr(0, dest.find('/'))) ? EAFNOSUPPORT : EINVAL, "dest",
                  "not an IPv4 CIDR (a.b.c.d/len or default)");
    case CidrError::kPrefix: return fail(err, EINVAL, "dest", "prefix length not 0-32");
    case CidrError::kHostBits: return fail(err, EINVAL, "dest", "host bits set below the prefix length");
  }
  if (!get_ipv4(j, "gateway", true, &r->gateway, err) || !get_iface(j, true, &r->iface, err)) return false;
  if (adding && !r->gateway && r->iface.empty())
    return fail(err, EINVAL, "gateway", "a route needs a gateway or an iface");
  return true;
}

}  // namespace

bool valid_iface_name(const std::string& s) {
  if (s.empty() || s.size() > kMaxIfaceLen || s == "." || s == "..") return false;
  for (unsigned char c : s)
    if (c <= 0x20 || c > 0x7e || c == '/' || c == ':') return false;
  return true;
}

std::optional<Request> decode_request(uint32_t method, const void* body, size_t len, FieldError* err) {
  if (len > kMaxBodyBytes) {
    fail(err, EMSGSIZE, "", "request larger than " + std::to_string(kMaxBodyBytes) + " bytes");
    return std::nullopt;
  }
  const char* p = static_cast<const char*>(body);
  json j = json::parse(p, p + len, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    fail(err, EBADMSG, "", "request body is not a JSON object");
    return std::nullopt;
  }
  bool ok = false;
  Request out;
  switch (method) {
    case kConfigureStatic: {
      StaticReq r;
      ok = decode_static(j, &r, err);
      out = std::move(r);
      break;
    }
    case kEnableDhcp:
    case kOnline: {
      IfaceReq r;
      ok = only_keys(j, {"iface"}, err) && get_iface(j, method == kOnline, &r.iface, err);
      out = std::move(r);
      break;
    }
    case kSetDns: {
      DnsReq r;
      ok = only_keys(j, {"servers", "merge"}, err);
      const auto it = j.find("servers");
      if (ok && (it == j.end() || !it->is_array())) ok = fail(err, EINVAL, "servers", "missing or not an array");
      if (ok && it->size() > kMaxDnsServers)
        ok = fail(err, E2BIG, "servers", "more than " + std::to_string(kMaxDnsServers) + " servers");
      for (size_t i = 0; ok && i < it->size(); ++i) {
        const std::string field = "servers[" + std::to_string(i) + "]";
        json one = json::object({{field, (*it)[i]}});
        std::optional<uint32_t> ip;
        ok = get_ipv4(one, field.c_str(), false, &ip, err);
        if (ok) {
          for (uint32_t s : r.servers)
            if (s == *ip) ok = fail(err, EINVAL, field, "listed twice");
          if (ok) r.servers.push_back(*ip);
        }
      }
      const auto m = j.find("merge");
      if (ok && m != j.end()) {
        if (!m->is_boolean())
          ok = fail(err, EINVAL, "merge", "not a boolean");
        else
          r.merge = m->get<bool>();
      }
      out = std::move(r);
      break;
    }
    case kAddRoute:
    case kDelRoute: {
      RouteReq r;
      ok = decode_route(j, method == kAddRoute, &r, err);
      out = std::move(r);
      break;
    }
    case kLinkUp: {
      LinkReq r;
      ok = only_keys(j, {"iface", "up"}, err) && get_iface(j, false, &r.iface, err);
      const auto it = j.find("up");
      if (ok && (it == j.end() || !it->is_boolean())) ok = fail(err, EINVAL, "up", "missing or not a boolean");
      if (ok) r.up = it->get<bool>();
      out = std::move(r);
      break;
    }
    case kCheckpoint: {
      CheckpointReq r;
      ok = only_keys(j, {"rollback_ms"}, err);
      const auto it = j.find("rollback_ms");
      if (ok && (it == j.end() || !it->is_number_integer()))
        ok = fail(err, EINVAL, "rollback_ms", "missing or not an integer");
      if (ok) {
        const int64_t ms = it->get<int64_t>();
        if (ms <= 0 || ms > kMaxRollbackMs)
          ok = fail(err, ERANGE, "rollback_ms", "not within 1.." + std::to_string(kMaxRollbackMs));
        else
          r.rollback_ms = static_cast<uint32_t>(ms);
      }
      out = r;
      break;
    }
    case kGetState:
    case kConfirm:
      ok = only_keys(j, {}, err);
      out = EmptyReq{};
      break;
    default: fail(err, ENOSYS, "", "unknown method " + std::to_string(method)); return std::nullopt;
  }
  if (!ok) return std::nullopt;
  return out;
}

std::string encode_error(const FieldError& e) {
  return json{{"field", e.field}, {"reason", e.reason}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string error_text(const void* body, size_t len) {
  const char* p = static_cast<const char*>(body);
  json j = json::parse(p, p + len, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return {};
  const auto f = j.find("field"), r = j.find("reason");
  if (r == j.end() || !r->is_string()) return {};
  std::string out;
  if (f != j.end() && f->is_string() && !f->get_ref<const std::string&>().empty())
    out = f->get_ref<const std::string&>() + ": ";
  return out + r->get_ref<const std::string&>();
}

namespace {

// udhcpc passes lists as space-separated words.
bool ip_list(const json& j, const char* key, std::vector<uint32_t>* out, std::string* why) {
  const auto it = j.find(key);
  if (it == j.end()) return true;
  if (!it->is_string()) return (*why = std::string(key) + " not a string"), false;
  const auto& s = it->get_ref<const std::string&>();
  size_t pos = 0;
  while (pos < s.size() && out->size() < kMaxDnsServers) {
    while (pos < s.size() && s[pos] == ' ') ++pos;
    const size_t end = std::min(s.find(' ', pos), s.size());
    if (end > pos) {
      const auto ip = parse_ipv4(std::string_view(s).substr(pos, end - pos));
      if (!ip) return (*why = std::string(key) + " has a malformed address"), false;
      out->push_back(*ip);
    }
    pos = end;
  }
  return true;
}

}  // namespace

std::optional<HookEvent> decode_hook_event(const std::string& line, std::string* why) {
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return (*why = "not a JSON object"), std::nullopt;
  HookEvent ev;
  const auto str = [&](const char* k, std::string* out) {
    const auto it = j.find(k);
    if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().size() > 64) return false;
    *out = it->get_ref<const std::string&>();
    return true;
  };
  if (!str("event", &ev.event) || !str("interface", &ev.iface) || !valid_iface_name(ev.iface))
    return (*why = "event or interface missing"), std::nullopt;
  if (ev.event == "bound" || ev.event == "renew") {
    std::string ip, subnet, server, lease;
    if (!str("ip", &ip) || !str("subnet", &subnet) || !str("lease", &lease))
      return (*why = "bound without ip, subnet or lease"), std::nullopt;
    const auto a = parse_ipv4(ip), m = parse_ipv4(subnet);
    const auto pre = m ? mask_to_prefix(*m) : std::nullopt;
    if (!a || !pre || *pre == 0) return (*why = "malformed ip or subnet"), std::nullopt;
    ev.ip = *a;
    ev.prefix = *pre;
    if (str("serverid", &server)) {
      const auto s = parse_ipv4(server);
      if (!s) return (*why = "malformed serverid"), std::nullopt;
      ev.server = *s;
    }
    if (lease.empty() || lease.size() > 9 || lease.find_first_not_of("0123456789") != std::string::npos)
      return (*why = "malformed lease time"), std::nullopt;
    ev.lease_s = static_cast<uint32_t>(std::stoul(lease));
    if (!ip_list(j, "router", &ev.routers, why) || !ip_list(j, "dns", &ev.dns, why)) return std::nullopt;
  }
  return ev;
}

}  // namespace networkd
