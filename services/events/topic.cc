#include "services/events/topic.h"

namespace fwevent {

namespace {

bool segment_char(unsigned char c) noexcept { return c >= 0x21 && c <= 0x7e && c != '.' && c != '*' && c != '>'; }

void say(std::string* why, const char* what, size_t at) {
  if (why != nullptr) *why = std::string(what) + " at byte " + std::to_string(at);
}

// Shared by topics and patterns: wildcards only as whole segments of a pattern.
bool check(std::string_view s, bool pattern, std::string* why) noexcept {
  try {
    if (s.empty()) {
      if (why != nullptr) *why = "empty";
      return false;
    }
    if (s.size() > kTopicMax) {
      if (why != nullptr) *why = "longer than " + std::to_string(kTopicMax) + " bytes";
      return false;
    }
    size_t start = 0;
    while (true) {
      size_t end = s.find('.', start);
      const bool last = end == std::string_view::npos;
      if (last) end = s.size();
      const std::string_view seg = s.substr(start, end - start);
      if (seg.empty()) {
        say(why, "empty segment", start);
        return false;
      }
      if (pattern && seg == "*") {
        // one segment, any
      } else if (pattern && seg == ">") {
        if (!last) {
          say(why, "'>' is not the last segment", start);
          return false;
        }
      } else {
        for (size_t i = 0; i < seg.size(); ++i) {
          const unsigned char c = static_cast<unsigned char>(seg[i]);
          if (segment_char(c)) continue;
          if (c == '*' || c == '>') {
            say(why, pattern ? "wildcard inside a segment (a wildcard is a whole segment)" : "wildcard in a topic",
                start + i);
          } else {
            say(why, "byte not allowed (printable ASCII other than . * > only)", start + i);
          }
          return false;
        }
      }
      if (last) return true;
      start = end + 1;
    }
  } catch (...) {  // std::string allocation for *why
    return false;
  }
}

}  // namespace

bool valid_topic(std::string_view topic, std::string* why) noexcept { return check(topic, false, why); }
bool valid_pattern(std::string_view pattern, std::string* why) noexcept { return check(pattern, true, why); }

bool match(std::string_view pattern, std::string_view topic) noexcept {
  size_t p = 0, t = 0;
  while (true) {
    size_t pe = pattern.find('.', p);
    if (pe == std::string_view::npos) pe = pattern.size();
    const std::string_view ps = pattern.substr(p, pe - p);
    if (ps == ">") return t < topic.size();  // one or more segments remain
    if (t >= topic.size()) return false;     // pattern has more segments than the topic
    size_t te = topic.find('.', t);
    if (te == std::string_view::npos) te = topic.size();
    if (ps != "*" && ps != topic.substr(t, te - t)) return false;
    const bool p_done = pe >= pattern.size(), t_done = te >= topic.size();
    if (p_done || t_done) return p_done && t_done;
    p = pe + 1;
    t = te + 1;
  }
}

}  // namespace fwevent
