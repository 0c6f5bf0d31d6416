// libFuzzer: logd's record decoder (wire.h) on any payload, then what logd does with a
// decoded record (tag sanitising, UTF-8 repair, JSON encoding). Invariants: views stay
// inside the payload, repaired text is valid UTF-8, the JSON string parses back to it.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "nlohmann/json.hpp"
#include "services/logd/text.h"
#include "services/logd/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  logd::Piece p;
  if (!logd::decode(data, size, &p)) return 0;
  const char* begin = reinterpret_cast<const char*>(data);
  if (p.tag.data() < begin || p.tag.data() + p.tag.size() > begin + size) abort();
  if (p.text.data() < begin || p.text.data() + p.text.size() > begin + size) abort();
  const std::string tag = logd::sanitize_tag(p.tag);
  if (tag.empty() || tag.size() > logd::kMaxTagKept) abort();
  std::string text;
  logd::append_utf8_repaired(text, p.text);
  std::string again;
  if (logd::append_utf8_repaired(again, text) != 0 || again != text) abort();  // repair is final
  std::string js;
  logd::append_json_string(js, text);
  auto j = nlohmann::json::parse(js, nullptr, false);
  if (!j.is_string() || j.get<std::string>() != text) abort();
  // Encoding the decoded record again gives messages that decode to the same pieces.
  size_t total = 0;
  logd::encode(p.h.level, p.tag, text, [&](const void* buf, size_t len) {
    logd::Piece q;
    if (!logd::decode(buf, len, &q)) abort();
    total += q.text.size();
    return true;
  });
  if (total != std::min(text.size(), logd::kMaxText)) abort();
  return 0;
}
