#include "services/logd/syslog_parse.h"

#include <cstddef>

namespace logd {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "Mmm dd hh:mm:ss " (dd may be " d"), RFC 3164's TIMESTAMP and the space after it.
bool bsd_timestamp(std::string_view s) {
  if (s.size() < 16) return false;
  static constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  bool month = false;
  for (size_t i = 0; i < kMonths.size(); i += 3)
    if (s.substr(0, 3) == kMonths.substr(i, 3)) month = true;
  return month && s[3] == ' ' && (s[4] == ' ' || is_digit(s[4])) && is_digit(s[5]) && s[6] == ' ' && is_digit(s[7]) &&
         is_digit(s[8]) && s[9] == ':' && is_digit(s[10]) && is_digit(s[11]) && s[12] == ':' && is_digit(s[13]) &&
         is_digit(s[14]) && s[15] == ' ';
}

// The next space-separated token of s (RFC 5424 header fields), consuming it and one space.
std::string_view token(std::string_view& s) {
  const size_t sp = s.find(' ');
  const std::string_view t = s.substr(0, sp);
  s = sp == std::string_view::npos ? std::string_view() : s.substr(sp + 1);
  return t;
}

}  // namespace

SyslogMessage parse_syslog(std::string_view s) {
  SyslogMessage m;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0')) s.remove_suffix(1);
  if (s.size() >= 3 && s[0] == '<') {
    size_t i = 1;
    int pri = 0;
    while (i < s.size() && i <= 3 && is_digit(s[i])) pri = pri * 10 + (s[i++] - '0');
    if (i > 1 && i < s.size() && s[i] == '>' && pri <= 191) {
      m.facility = pri / 8;
      m.severity = pri % 8;
      s.remove_prefix(i + 1);
    }
  }
  if (s.size() >= 2 && s[0] == '1' && s[1] == ' ') {  // RFC 5424
    s.remove_prefix(2);
    token(s);  // TIMESTAMP: logd stamps its own
    token(s);  // HOSTNAME
    const std::string_view app = token(s);
    token(s);  // PROCID: logd takes the kernel's
    token(s);  // MSGID
    if (!s.empty() && s[0] == '-') {
      s.remove_prefix(1);
    } else {
      while (!s.empty() && s[0] == '[') {  // SD-ELEMENTs: skip to the matching ']'
        size_t i = 1;
        bool in_quotes = false;
        for (; i < s.size(); ++i) {
          if (s[i] == '\\' && in_quotes) {
            ++i;
          } else if (s[i] == '"') {
            in_quotes = !in_quotes;
          } else if (s[i] == ']' && !in_quotes) {
            break;
          }
        }
        s.remove_prefix(i < s.size() ? i + 1 : s.size());
      }
    }
    if (!s.empty() && s[0] == ' ') s.remove_prefix(1);
    if (s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);  // BOM
    m.tag = app == "-" ? std::string_view() : app;
    m.msg = s;
    return m;
  }
  if (bsd_timestamp(s)) s.remove_prefix(16);
  // TAG: up to 48 characters that are not space, ':' or '[', then "[PID]" and/or ':'.
  size_t i = 0;
  while (i < s.size() && i < 48 && s[i] != ' ' && s[i] != ':' && s[i] != '[') ++i;
  size_t end = i;
  if (i > 0 && i < s.size() && s[i] == '[') {
    const size_t close = s.find(']', i);
    if (close != std::string_view::npos && close - i <= 12) end = close + 1;
  }
  if (i > 0 && end < s.size() && s[end] == ':') {
    m.tag = s.substr(0, i);
    s.remove_prefix(end + 1);
    if (!s.empty() && s[0] == ' ') s.remove_prefix(1);
  }
  m.msg = s;
  return m;
}

const char* facility_name(int facility) {
  static const char* const kNames[] = {"kern",   "user",     "mail",    "daemon", "auth",     "syslog",
                                       "lpr",    "news",     "uucp",    "cron",   "authpriv", "ftp",
                                       "ntp",    "security", "console", "cron2",  "local0",   "local1",
                                       "local2", "local3",   "local4",  "local5", "local6",   "local7"};
  return facility >= 0 && facility < 24 ? kNames[facility] : "unknown";
}

}  // namespace logd
