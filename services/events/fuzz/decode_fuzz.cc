// libFuzzer: the event decoder (bytes another process put on the channel) and the topic
// grammar. A decoded event must re-encode to an event with the same topic that decodes
// again; for a valid pattern and topic, match() must agree with a reference matcher that
// splits both into segments.
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "services/events/topic.h"
#include "services/events/wire.h"

namespace {

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    if (dot == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, dot - start));
    start = dot + 1;
  }
}

bool reference_match(std::string_view pattern, std::string_view topic) {
  const auto p = split(pattern), t = split(topic);
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == ">") return t.size() > i;
    if (i >= t.size()) return false;
    if (p[i] != "*" && p[i] != t[i]) return false;
  }
  return p.size() == t.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  ++data;
  --size;
  if (mode & 1) {
    // Grammar: pattern, a NUL, topic.
    const std::string_view all(reinterpret_cast<const char*>(data), size);
    const size_t nul = all.find('\0');
    if (nul == std::string_view::npos) return 0;
    const std::string_view pattern = all.substr(0, nul), topic = all.substr(nul + 1);
    const bool pv = fwevent::valid_pattern(pattern), tv = fwevent::valid_topic(topic);
    if (tv && !fwevent::valid_pattern(topic)) std::abort();  // every topic is a pattern
    if (pv && tv && fwevent::match(pattern, topic) != reference_match(pattern, topic)) std::abort();
    if (tv && !fwevent::match(topic, topic)) std::abort();
    if (tv && !fwevent::match(">", topic)) std::abort();
    return 0;
  }
  // The decoder, as a subscriber meets a message: the type (mostly the event type).
  const uint32_t type = (mode & 2) ? fwevent::kWireType : 0x45565400u | (mode >> 2);
  fwevent::Decoded d;
  std::string why;
  if (!fwevent::decode(type, data, size, &d, &why)) {
    if (why.empty()) std::abort();  // a refusal always says why
    return 0;
  }
  if (type != fwevent::kWireType || size > fwevent::kPayloadMax) std::abort();
  if (!fwevent::valid_topic(d.topic)) std::abort();
  if (d.topic.size() + 1 + d.json.size() != size) std::abort();
  std::string again;
  const int rc = fwevent::encode(d.topic, d.json, &again, &why);
  if (rc == 0) {
    fwevent::Decoded d2;
    if (!fwevent::decode(fwevent::kWireType, again.data(), again.size(), &d2, &why)) std::abort();
    if (d2.topic != d.topic) std::abort();
  } else if (rc != -EMSGSIZE) {  // compact JSON can be longer (1E2 becomes 100.0)
    std::abort();
  }
  return 0;
}
