#include "services/logd/text.h"

#include <ctime>

#include "services/logd/wire.h"

namespace logd {

size_t append_utf8_repaired(std::string& out, std::string_view s) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";
  size_t bad = 0, i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  while (i < s.size()) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0, min = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07, min = 0x10000;
    }
    bool ok = len != 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (ok && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
    if (!ok) {
      out += kReplacement;
      ++bad;
      ++i;  // resynchronise on the next byte
      continue;
    }
    out.append(s.data() + i, len);
    i += len;
  }
  return bad;
}

size_t utf8_cut(std::string_view s, size_t max) {
  if (s.size() <= max) return s.size();
  size_t n = max;
  // Back up over continuation bytes to the start of the sequence that would be split.
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

std::string sanitize_tag(std::string_view tag) {
  std::string out;
  for (char c : tag.substr(0, kMaxTagKept)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-' || c == '/';
    out.push_back(ok ? c : '_');
  }
  if (out.empty()) out = "-";
  return out;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

const char* level_name(int level) {
  static const char* const kNames[] = {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"};
  return level >= 0 && level <= 7 ? kNames[level] : nullptr;
}

int level_from_name(std::string_view name) {
  for (int l = 0; l <= 7; ++l)
    if (name == level_name(l)) return l;
  if (name == "warn") return 4;
  if (name == "error") return 3;
  if (name == "critical") return 2;
  if (name == "panic") return 0;
  return -1;
}

std::string rfc3339_us(int64_t unix_us) {
  const time_t secs = static_cast<time_t>(unix_us / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[40];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(unix_us % 1000000));
  return buf;
}

bool parse_rfc3339_us(std::string_view s, int64_t* unix_us) {
  auto num = [&](size_t at, size_t len, int* v) {
    if (at + len > s.size()) return false;
    *v = 0;
    for (size_t i = at; i < at + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      *v = *v * 10 + (s[i] - '0');
    }
    return true;
  };
  struct tm tm = {};
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (!num(0, 4, &y) || s.size() < 10 || s[4] != '-' || !num(5, 2, &mo) || s[7] != '-' || !num(8, 2, &d)) return false;
  size_t at = 10;
  int64_t frac = 0;
  if (at < s.size()) {
    if ((s[at] != 'T' && s[at] != 't' && s[at] != ' ') || !num(at + 1, 2, &h) || s.size() < at + 9 ||
        s[at + 3] != ':' || !num(at + 4, 2, &mi) || s[at + 6] != ':' || !num(at + 7, 2, &sec))
      return false;
    at += 9;
    if (at < s.size() && s[at] == '.') {
      int64_t scale = 100000;
      ++at;
      while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
        frac += (s[at] - '0') * scale;
        scale /= 10;
        ++at;
      }
    }
    const std::string_view zone = s.substr(at);
    if (zone != "Z" && zone != "z" && zone != "+00:00" && zone != "") return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return false;
  tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d, tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = sec;
  *unix_us = static_cast<int64_t>(timegm(&tm)) * 1000000 + frac;
  return true;
}

}  // namespace logd
