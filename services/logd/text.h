// Text helpers of logd shared by the daemon, logctl and the fuzzers: UTF-8 repair, tag
// sanitising, JSON string escaping, level names, RFC 3339 timestamps.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace logd {

// Appends s to out with every invalid UTF-8 sequence (overlong forms, surrogates, code
// points past U+10FFFF, truncated sequences) replaced by U+FFFD. Returns how many were replaced.
size_t append_utf8_repaired(std::string& out, std::string_view s);
// The longest prefix of s of at most max bytes that does not split a UTF-8 sequence.
size_t utf8_cut(std::string_view s, size_t max);

// At most kMaxTagKept bytes, [A-Za-z0-9._/-] kept and anything else '_'; "-" if empty.
std::string sanitize_tag(std::string_view tag);

// Appends s as a JSON string (quotes included); s must be valid UTF-8.
void append_json_string(std::string& out, std::string_view s);

// "emerg" ... "debug" for 0..7; nullptr otherwise.
const char* level_name(int level);
// 0..7 for a syslog name ("warn" and "error" too, as syslog(3) users write them), or -1.
int level_from_name(std::string_view name);

// RFC 3339 UTC with microseconds: 2026-11-25T20:01:02.123456Z.
std::string rfc3339_us(int64_t unix_us);
// Parses what rfc3339_us writes (also without fraction, with "+00:00", or a date only):
// microseconds since the epoch, or false.
bool parse_rfc3339_us(std::string_view s, int64_t* unix_us);

}  // namespace logd
