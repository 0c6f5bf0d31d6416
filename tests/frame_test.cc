// Unit tests of the SOCKET/PIPE wire frame: building, packet checks and stream reassembly.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "transports/frame.h"

using fwipc::MsgHeader;
using namespace fwipc::frame;

namespace {

Frame message(const std::string& text, uint32_t sender = 42, uint32_t priority = 3) {
  const MsgHeader h{7, static_cast<uint32_t>(text.size()), 999, 11, priority};
  return make_data_frame(h, text.data(), sender);
}

std::vector<char> wire(const Frame& f) {
  const char* p = reinterpret_cast<const char*>(&f);
  return std::vector<char>(p, p + f.wire_bytes());
}

}  // namespace

TEST_CASE("shouldRoundTripADataFrameThroughCheckPacket") {
  const Frame f = message("hello");
  CHECK(f.sender == 42);  // the given sender, never the header's
  const std::vector<char> w = wire(f);
  Frame out;
  REQUIRE(check_packet(w.data(), w.size(), &out) == 0);
  CHECK(out.kind == kData);
  const MsgHeader h = fwipc::header_of(out);
  CHECK(h.type == 7);
  CHECK(h.size == 5);
  CHECK(h.sender == 42);
  CHECK(h.receiver == 11);
  CHECK(h.priority == 3);
  CHECK(std::memcmp(out.payload, "hello", 5) == 0);
}

TEST_CASE("shouldRoundTripAFullSizePayload") {
  const std::string big(kMaxPayload, 'x');
  const std::vector<char> w = wire(message(big));
  CHECK(w.size() == kMaxFrame);
  Frame out;
  REQUIRE(check_packet(w.data(), w.size(), &out) == 0);
  CHECK(std::string(out.payload, out.size) == big);
}

TEST_CASE("shouldEncodeHelloIntentAndRingEntry") {
  Frame out;
  const Frame plain = make_hello(kHelloWrite, 0);
  REQUIRE(check_packet(&plain, kHeaderBytes, &out) == 0);
  CHECK(out.kind == kHello);
  CHECK(out.flags == kHelloWrite);
  CHECK(out.size == 0);

  const Frame entry = make_hello(kHelloRead, 123456789012345ull, 5, 0x80000009u);
  REQUIRE(check_packet(&entry, kHeaderBytes, &out) == 0);
  CHECK(out.flags == (kHelloRead | kHelloEntry));
  CHECK(out.type == 5);
  CHECK(out.receiver == 0x80000009u);
  CHECK(out.time_ns == 123456789012345ull);  // the reader's join time
}

TEST_CASE("shouldEncodeJoinWithIdAndPid") {
  Frame out;
  const Frame j = make_join(kWriterJoin, 17, 1234, 987654321ull);
  REQUIRE(check_packet(&j, kHeaderBytes, &out) == 0);
  CHECK(out.kind == kWriterJoin);
  CHECK(out.type == 17);
  CHECK(out.sender == 1234);
  CHECK(out.size == 0);
  CHECK(out.time_ns == 987654321ull);
}

TEST_CASE("shouldCarryTheSendTimeOfADataFrame") {
  const MsgHeader h{7, 2, 0, 0, 0};
  Frame out;
  const Frame f = make_data_frame(h, "hi", 42, 0x0102030405060708ull);
  REQUIRE(check_packet(&f, f.wire_bytes(), &out) == 0);
  CHECK(out.time_ns == 0x0102030405060708ull);
  // Without a time it is routed as if sent now (to every reader the hub knows).
  const Frame unstamped = make_data_frame(h, "hi", 42);
  REQUIRE(check_packet(&unstamped, unstamped.wire_bytes(), &out) == 0);
  CHECK(out.time_ns == kUnstamped);
}

TEST_CASE("shouldKeepTheLargestFrameWithinOneAtomicFifoWrite") {
  CHECK(kHeaderBytes == 40);
  CHECK(kMaxFrame == kHeaderBytes + 512);
  CHECK(kMaxFrame <= PIPE_BUF);
}

// A peer of a build with the 32-byte header (magic "FWM1") is refused, not misread.
TEST_CASE("shouldRejectFramesOfTheOldLayout") {
  Frame f = message("x");
  f.magic = 0x314d5746;  // "FWM1"
  Frame out;
  CHECK(check_packet(&f, f.wire_bytes(), &out) == -EBADMSG);
  StreamDecoder dec;
  dec.feed(&f, f.wire_bytes());
  int rc;
  while ((rc = dec.next(&out)) == -EBADMSG) {
  }
  CHECK(rc == 0);  // all skipped, nothing handed out
}

TEST_CASE("shouldRejectBadMagic") {
  Frame f = message("x");
  f.magic ^= 1;
  Frame out;
  CHECK(check_packet(&f, f.wire_bytes(), &out) == -EBADMSG);
}

TEST_CASE("shouldRejectUnknownKinds") {
  Frame out;
  for (uint16_t kind : {uint16_t(0), uint16_t(kWriterJoin + 1), uint16_t(0xffff)}) {
    Frame f = message("x");
    f.kind = kind;
    CHECK(check_packet(&f, f.wire_bytes(), &out) == -EBADMSG);
  }
}

TEST_CASE("shouldRejectPayloadOnControlFrames") {
  Frame f = make_join(kJoin, 1, 2, 3);
  f.size = 1;
  Frame out;
  CHECK(check_packet(&f, f.wire_bytes(), &out) == -EBADMSG);
}

TEST_CASE("shouldRejectLengthsThatDisagreeWithTheHeader") {
  const Frame f = message("four");
  Frame out;
  CHECK(check_packet(&f, f.wire_bytes() - 1, &out) == -EBADMSG);  // short
  CHECK(check_packet(&f, f.wire_bytes() + 1, &out) == -EBADMSG);  // long
  CHECK(check_packet(&f, kHeaderBytes - 1, &out) == -EBADMSG);    // not even a header
  std::vector<char> over(kMaxFrame + 1, 0);
  CHECK(check_packet(over.data(), over.size(), &out) == -EBADMSG);  // longer than any frame
  Frame huge = message("x");
  huge.size = kMaxPayload + 1;  // claims more than a frame holds
  CHECK(check_packet(&huge, kMaxFrame, &out) == -EBADMSG);
}

TEST_CASE("shouldReassembleFramesFedByteByByte") {
  std::vector<char> stream;
  for (const char* text : {"one", "", "three"}) {
    const std::vector<char> w = wire(message(text));
    stream.insert(stream.end(), w.begin(), w.end());
  }
  StreamDecoder dec;
  std::vector<std::string> got;
  for (char c : stream) {
    dec.feed(&c, 1);
    Frame f;
    int rc;
    while ((rc = dec.next(&f)) != 0) {
      REQUIRE(rc == 1);
      got.emplace_back(f.payload, f.size);
    }
  }
  CHECK(got == std::vector<std::string>{"one", "", "three"});
  CHECK(dec.buffered() == 0);
}

TEST_CASE("shouldWaitForTheWholeFrameBeforeReturningIt") {
  const std::vector<char> w = wire(message("partial"));
  StreamDecoder dec;
  dec.feed(w.data(), w.size() - 1);
  Frame f;
  CHECK(dec.next(&f) == 0);
  dec.feed(w.data() + w.size() - 1, 1);
  CHECK(dec.next(&f) == 1);
  CHECK(std::string(f.payload, f.size) == "partial");
}

TEST_CASE("shouldResyncAfterGarbage") {
  std::vector<char> stream(100, 'g');  // no magic anywhere in it
  const std::vector<char> w = wire(message("after"));
  stream.insert(stream.end(), w.begin(), w.end());
  StreamDecoder dec;
  dec.feed(stream.data(), stream.size());
  Frame f;
  int bad = 0, rc;
  while ((rc = dec.next(&f)) == -EBADMSG) ++bad;
  CHECK(bad >= 1);
  REQUIRE(rc == 1);
  CHECK(std::string(f.payload, f.size) == "after");
  CHECK(dec.next(&f) == 0);
}

TEST_CASE("shouldResyncPastAFrameWithAGoodMagicButABadHeader") {
  Frame broken = message("bad");
  broken.kind = 99;  // the magic checks out, the rest does not
  std::vector<char> stream = wire(broken);
  const std::vector<char> good = wire(message("good"));
  stream.insert(stream.end(), good.begin(), good.end());
  StreamDecoder dec;
  dec.feed(stream.data(), stream.size());
  Frame f;
  int rc;
  while ((rc = dec.next(&f)) == -EBADMSG) {
  }
  REQUIRE(rc == 1);
  CHECK(std::string(f.payload, f.size) == "good");
}
