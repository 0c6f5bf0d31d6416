// libFuzzer: the syslog datagram parser (RFC 3164 / 5424) on any bytes. Invariants: the
// tag and message are views inside the datagram, facility and severity are in range.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "services/logd/syslog_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const logd::SyslogMessage m = logd::parse_syslog(in);
  auto inside = [&](std::string_view v) {
    return v.empty() || (v.data() >= in.data() && v.data() + v.size() <= in.data() + in.size());
  };
  if (!inside(m.tag) || !inside(m.msg)) abort();
  if (m.facility < 0 || m.facility > 23 || m.severity < 0 || m.severity > 7) abort();
  if (logd::facility_name(m.facility) == nullptr) abort();
  return 0;
}
