// The wire format: every encoder's output decodes to what went in; the decoders refuse
// truncations, trailing bytes and out-of-range values.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cerrno>

#include "services/csrss/proto.h"
#include "services/csrss/scrollback.h"

using namespace csrss;

TEST_CASE("create requests round-trip; every truncation and any trailing byte is refused") {
  CreateReq r;
  r.rows = 24, r.cols = 80, r.channel = "csrssc.12.1", r.argv = {"/bin/sh", "-c", "echo hi"};
  const std::string b = encode(r);
  CreateReq d;
  REQUIRE(decode(b.data(), b.size(), &d) == 0);
  CHECK(d.rows == 24);
  CHECK(d.cols == 80);
  CHECK(d.channel == r.channel);
  CHECK(d.argv == r.argv);
  for (size_t n = 0; n < b.size(); n++) CHECK(decode(b.data(), n, &d) == -EBADMSG);
  const std::string t = b + "x";
  CHECK(decode(t.data(), t.size(), &d) == -EBADMSG);
  r.rows = 0;
  CHECK(decode(encode(r).data(), encode(r).size(), &d) == -EINVAL);
  r.rows = 24, r.channel = "csrssc./x";
  CHECK(decode(encode(r).data(), encode(r).size(), &d) == -EINVAL);
  r.channel = "csrssc.1", r.argv = {std::string("a\0b", 3)};
  CHECK(decode(encode(r).data(), encode(r).size(), &d) == -EINVAL);
  r.argv = {""};
  CHECK(decode(encode(r).data(), encode(r).size(), &d) == -EINVAL);
  r.argv.assign(300, "x");
  CHECK(decode(encode(r).data(), encode(r).size(), &d) == -EINVAL);
  CHECK(decode(nullptr, 0, &d) == -EBADMSG);
}

TEST_CASE("window requests: geometry and titles are checked") {
  WinCreateReq w;
  w.g = {1, 2, 3, 4}, w.title = "hello";
  std::string b = encode(w);
  WinCreateReq d;
  REQUIRE(decode(b.data(), b.size(), &d) == 0);
  CHECK(d.g.h == 4);
  CHECK(d.title == "hello");
  w.g.w = 0;
  b = encode(w);
  CHECK(decode(b.data(), b.size(), &d) == -EINVAL);
  w.g.w = 3, w.title = std::string(256, 'a');
  b = encode(w);
  CHECK(decode(b.data(), b.size(), &d) == -EINVAL);
  WinMoveReq m{7, {-1000000, 1000000, 65535, 1}};
  b = encode(m);
  WinMoveReq md;
  REQUIRE(decode(b.data(), b.size(), &md) == 0);
  CHECK(md.id == 7);
  CHECK(md.g.x == -1000000);
  m.g.x = -1000001;
  b = encode(m);
  CHECK(decode(b.data(), b.size(), &md) == -EINVAL);
}

TEST_CASE("JSON strings are always valid: quotes, controls and stray bytes escaped, UTF-8 kept") {
  CHECK(json_str("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(json_str(std::string("\x01\n", 2)) == "\"\\u0001\\u000a\"");
  CHECK(json_str("\xc3\xa9") == "\"\xc3\xa9\"");
  CHECK(json_str("\xff") == "\"\\u00ff\"");
  CHECK(json_str("\xc3") == "\"\\u00c3\"");
}

TEST_CASE("the scroll-back keeps the newest bytes and says where the oldest is") {
  Scrollback s(8);
  s.append("abcdef", 6);
  CHECK(s.begin() == 0);
  CHECK(s.end() == 6);
  s.append("ghijk", 5);
  CHECK(s.begin() == 3);
  CHECK(s.end() == 11);
  char out[16] = {};
  CHECK(s.copy(3, out, 16) == 8);
  CHECK(std::string(out, 8) == "defghijk");
  CHECK(s.copy(2, out, 16) == 0);  // fell off
  s.append("0123456789ABC", 13);   // more than it holds at once
  CHECK(s.end() == 24);
  CHECK(s.copy(s.begin(), out, 16) == 8);
  CHECK(std::string(out, 8) == "56789ABC");
}
