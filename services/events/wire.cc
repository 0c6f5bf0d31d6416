#include "services/events/wire.h"

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "services/events/topic.h"

namespace fwevent {

namespace {

void say(std::string* why, std::string text) noexcept {
  if (why == nullptr) return;
  try {
    *why = std::move(text);
  } catch (...) {
  }
}

// SAX handler that accepts everything: nlohmann::json::sax_parse validates without building
// a DOM, and reports where a syntax error is.
struct Checker : nlohmann::json_sax<nlohmann::json> {
  std::string error;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& ex) override {
    error = "syntax error at byte " + std::to_string(pos > 0 ? pos - 1 : 0) + " (" + ex.what() + ")";
    return false;
  }
};

}  // namespace

bool decode(uint32_t type, const void* payload, size_t size, Decoded* out, std::string* why) noexcept {
  if (type != kWireType) {
    say(why, "not an event (message type " + std::to_string(type) + ")");
    return false;
  }
  if (payload == nullptr || size == 0 || size > kPayloadMax) {
    say(why, "payload size " + std::to_string(size) + " outside 1-512");
    return false;
  }
  const char* p = static_cast<const char*>(payload);
  const void* nul = std::memchr(p, '\0', size);
  if (nul == nullptr) {
    say(why, "no NUL after the topic");
    return false;
  }
  const size_t tlen = static_cast<size_t>(static_cast<const char*>(nul) - p);
  const std::string_view topic(p, tlen), json(p + tlen + 1, size - tlen - 1);
  std::string tw;
  if (!valid_topic(topic, &tw)) {
    say(why, "topic: " + tw);
    return false;
  }
  if (json.find('\0') != std::string_view::npos) {
    say(why, "json: NUL byte");
    return false;
  }
  try {
    Checker c;
    if (!nlohmann::json::sax_parse(json.begin(), json.end(), &c, nlohmann::json::input_format_t::json, true)) {
      say(why, "json: " + (c.error.empty() ? std::string("invalid") : c.error));
      return false;
    }
  } catch (...) {
    say(why, "json: invalid");
    return false;
  }
  out->topic = topic;
  out->json = json;
  return true;
}

int encode(std::string_view topic, std::string_view json, std::string* out, std::string* why) noexcept {
  std::string tw;
  if (!valid_topic(topic, &tw)) {
    say(why, "topic: " + tw);
    return -EINVAL;
  }
  try {
    nlohmann::json v = nlohmann::json::parse(json.begin(), json.end(), nullptr, true, false);
    // Invalid UTF-8 inside strings is rejected by the parser; dump() keeps UTF-8 as is.
    const std::string compact = v.dump();
    const size_t size = topic.size() + 1 + compact.size();
    if (size > kPayloadMax) {
      say(why, "event: " + std::to_string(size) + " bytes (topic + NUL + compact JSON) over the limit of " +
                   std::to_string(kPayloadMax));
      return -EMSGSIZE;
    }
    out->assign(topic);
    out->push_back('\0');
    out->append(compact);
    return 0;
  } catch (const nlohmann::json::parse_error& e) {
    say(why, "json: syntax error at byte " + std::to_string(e.byte > 0 ? e.byte - 1 : 0));
    return -EINVAL;
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  } catch (...) {
    say(why, "json: invalid");
    return -EINVAL;
  }
}

}  // namespace fwevent
