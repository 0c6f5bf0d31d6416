// The syslog datagrams that syslog(3) and logger(1) send to /dev/log: RFC 3164 (the BSD
// form glibc writes, "<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG") and RFC 5424
// ("<PRI>1 TS HOST APP PROCID MSGID SD MSG"). Input from any local process: every
// field is bounded and nothing is trusted (logd takes pid and uid from SO_PASSCRED).
#pragma once

#include <string_view>

namespace logd {

struct SyslogMessage {
  int facility = 1;  // user
  int severity = 5;  // notice: RFC 3164's default when the PRI is missing
  std::string_view tag;
  std::string_view msg;
};

// Splits a datagram of any bytes; never fails (a message with no header is all text).
SyslogMessage parse_syslog(std::string_view dgram);

// "kern", "user", ... "local7"; "unknown" past the table.
const char* facility_name(int facility);

}  // namespace logd
