// The topic grammar against the conformance file testdata/topics.txt (also read by the
// JavaScript tests), and the wire format's encoder and decoder.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "services/events/fwevent.h"
#include "services/events/test_support.h"
#include "services/events/topic.h"
#include "services/events/wire.h"

namespace {

struct Case {
  int line;
  std::string pattern, topic, expect;
};

std::vector<Case> load_cases() {
  std::ifstream in(fwevent::test::runfile("services/events/testdata/topics.txt"));
  std::vector<Case> out;
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    if (text.empty() || text[0] == '#') continue;
    std::istringstream s(text);
    Case c{line, {}, {}, {}};
    std::string extra;
    s >> c.pattern >> c.topic >> c.expect;
    if (s >> extra) c.expect = "bad line";
    out.push_back(c);
  }
  return out;
}

}  // namespace

TEST_CASE("shouldFollowEveryCaseOfTheConformanceFile") {
  const auto cases = load_cases();
  REQUIRE(cases.size() >= 60);
  int match = 0, nomatch = 0, invalid = 0;
  for (const Case& c : cases) {
    INFO("topics.txt line " << c.line << ": " << c.pattern << " " << c.topic << " " << c.expect);
    REQUIRE((c.expect == "match" || c.expect == "nomatch" || c.expect == "invalid"));
    const int rc = fwevent_match(c.pattern.c_str(), c.topic.c_str());
    if (c.expect == "match") {
      CHECK(rc == 1);
      ++match;
    } else if (c.expect == "nomatch") {
      CHECK(rc == 0);
      ++nomatch;
    } else {
      CHECK(rc == -EINVAL);
      CHECK((fwevent_pattern_valid(c.pattern.c_str()) == 0 || fwevent_topic_valid(c.topic.c_str()) == 0));
      ++invalid;
    }
    // A valid topic is a valid pattern that matches exactly itself.
    if (fwevent_topic_valid(c.topic.c_str()) == 1) CHECK(fwevent_match(c.topic.c_str(), c.topic.c_str()) == 1);
  }
  CHECK(match >= 15);
  CHECK(nomatch >= 20);
  CHECK(invalid >= 15);
}

TEST_CASE("shouldNameTheFieldAndTheByteOfAnInvalidTopic") {
  CHECK(fwevent_topic_valid("a..b") == 0);
  CHECK(std::string(fwevent_last_error_detail()) == "topic: empty segment at byte 2");
  CHECK(fwevent_pattern_valid("a.>.b") == 0);
  CHECK(std::string(fwevent_last_error_detail()).find("'>' is not the last segment") != std::string::npos);
  CHECK(fwevent_topic_valid(nullptr) == 0);
  CHECK(fwevent_match(nullptr, "a") == -EINVAL);
}

TEST_CASE("shouldEncodeTopicNulCompactJson") {
  std::string p, why;
  REQUIRE(fwevent::encode("security.user.login", "{ \"username\" : \"user\" }", &p, &why) == 0);
  CHECK(p == std::string("security.user.login\0{\"username\":\"user\"}", 39));
  fwevent::Decoded d;
  REQUIRE(fwevent::decode(fwevent::kWireType, p.data(), p.size(), &d, &why));
  CHECK(d.topic == "security.user.login");
  CHECK(d.json == "{\"username\":\"user\"}");
}

TEST_CASE("shouldRefuseBadTopicsBadJsonAndOversizeEventsAtEncode") {
  std::string p, why;
  CHECK(fwevent::encode("a.*", "{}", &p, &why) == -EINVAL);
  CHECK(why.rfind("topic:", 0) == 0);
  CHECK(fwevent::encode("a.b", "{\"x\":}", &p, &why) == -EINVAL);
  CHECK(why.rfind("json: syntax error", 0) == 0);
  CHECK(fwevent::encode("a.b", "{} {}", &p, &why) == -EINVAL);
  CHECK(fwevent::encode("a.b", "\"\xff\"", &p, &why) == -EINVAL);  // not UTF-8
  CHECK(fwevent::encode("a.b", "", &p, &why) == -EINVAL);
  // 3 + 1 + 508 = 512 fits; one byte more does not.
  const std::string fits = "\"" + std::string(506, 'x') + "\"";
  CHECK(fwevent::encode("a.b", fits, &p, &why) == 0);
  CHECK(p.size() == 512);
  CHECK(fwevent::encode("a.b", "\"" + std::string(507, 'x') + "\"", &p, &why) == -EMSGSIZE);
  CHECK(why.find("513 bytes") != std::string::npos);
  // The C API says the same before it looks for the event bus.
  CHECK(fwevent_emit("a.b", "{\"x\":}") == -EINVAL);
  CHECK(std::string(fwevent_last_error_detail()).rfind("json:", 0) == 0);
}

TEST_CASE("shouldRejectEveryMalformedMessageAtDecode") {
  fwevent::Decoded d;
  std::string why;
  const std::string good("a.b\0{}", 6);
  CHECK(fwevent::decode(fwevent::kWireType, good.data(), good.size(), &d, &why));
  CHECK_FALSE(fwevent::decode(fwevent::kWireType + 1, good.data(), good.size(), &d, &why));  // not version 1
  CHECK_FALSE(fwevent::decode(fwevent::kWireType, good.data(), 0, &d, &why));
  CHECK_FALSE(fwevent::decode(fwevent::kWireType, "a.b{}", 5, &d, &why));  // no NUL
  CHECK(why == "no NUL after the topic");
  const std::string bad_topic("a..b\0{}", 7), bad_json("a.b\0{", 5), two_nul("a.b\0{}\0", 7), empty_json("a.b\0", 4);
  CHECK_FALSE(fwevent::decode(fwevent::kWireType, bad_topic.data(), bad_topic.size(), &d, &why));
  CHECK_FALSE(fwevent::decode(fwevent::kWireType, bad_json.data(), bad_json.size(), &d, &why));
  CHECK_FALSE(fwevent::decode(fwevent::kWireType, two_nul.data(), two_nul.size(), &d, &why));
  CHECK_FALSE(fwevent::decode(fwevent::kWireType, empty_json.data(), empty_json.size(), &d, &why));
  std::string big(513, 'a');
  CHECK_FALSE(fwevent::decode(fwevent::kWireType, big.data(), big.size(), &d, &why));
}
