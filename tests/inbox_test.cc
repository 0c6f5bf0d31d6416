// Unit tests of the SOCKET/PIPE inbox: the delivery order and the pop contract.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "transports/socket/inbox.h"

using fwipc::MsgHeader;
using fwipc::sock::Inbox;
namespace frame = fwipc::frame;

namespace {

void push(Inbox& in, const std::string& text, uint32_t priority, uint32_t sender = 1) {
  const MsgHeader h{0, static_cast<uint32_t>(text.size()), 0, 0, priority};
  in.push(frame::make_data_frame(h, text.data(), sender));
}

std::string pop(Inbox& in, MsgHeader* h = nullptr) {
  MsgHeader tmp;
  char buf[frame::kMaxPayload];
  const int n = in.pop(h ? h : &tmp, buf, sizeof buf);
  REQUIRE(n >= 0);
  return std::string(buf, static_cast<size_t>(n));
}

std::vector<std::string> drain(Inbox& in) {
  std::vector<std::string> out;
  while (!in.empty()) out.push_back(pop(in));
  return out;
}

}  // namespace

TEST_CASE("shouldDeliverHigherPriorityFirst") {
  Inbox in;
  push(in, "low", 1);
  push(in, "high", 9);
  push(in, "mid", 5);
  CHECK(drain(in) == std::vector<std::string>{"high", "mid", "low"});
}

TEST_CASE("shouldKeepArrivalOrderWithinOnePriority") {
  Inbox in;
  for (int i = 0; i < 50; ++i) push(in, std::to_string(i), 3, static_cast<uint32_t>(100 + i % 2));
  std::vector<std::string> want;
  for (int i = 0; i < 50; ++i) want.push_back(std::to_string(i));
  CHECK(drain(in) == want);
}

TEST_CASE("shouldKeepEachSendersOrderWhenPrioritiesInterleave") {
  Inbox in;
  push(in, "a0", 1, 10);
  push(in, "b0", 2, 20);
  push(in, "a1", 1, 10);
  push(in, "b1", 2, 20);
  push(in, "a2", 1, 10);
  CHECK(drain(in) == std::vector<std::string>{"b0", "b1", "a0", "a1", "a2"});
}

TEST_CASE("shouldKeepOrderAcrossInterleavedPushesAndPops") {
  Inbox in;
  push(in, "first", 0);
  push(in, "second", 0);
  CHECK(pop(in) == "first");
  push(in, "urgent", 7);
  push(in, "third", 0);
  CHECK(drain(in) == std::vector<std::string>{"urgent", "second", "third"});
}

TEST_CASE("shouldReturnTheWholeHeader") {
  Inbox in;
  const MsgHeader h{42, 3, 999, 77, 6};
  in.push(frame::make_data_frame(h, "abc", 1234));
  MsgHeader got{};
  CHECK(pop(in, &got) == "abc");
  CHECK(got.type == 42);
  CHECK(got.size == 3);
  CHECK(got.sender == 1234);  // the frame's sender, stamped by whoever built it
  CHECK(got.receiver == 77);
  CHECK(got.priority == 6);
}

TEST_CASE("shouldKeepTheMessageWhenTheBufferIsTooSmall") {
  Inbox in;
  push(in, "too long", 2);
  MsgHeader h{};
  char small[4];
  CHECK(in.pop(&h, small, sizeof small) == -EMSGSIZE);
  CHECK(h.size == 8);  // the caller learns how much room it needs
  CHECK(in.size() == 1);
  CHECK(pop(in) == "too long");
  CHECK(in.empty());
}

TEST_CASE("shouldCountWhatItHolds") {
  Inbox in;
  CHECK(in.empty());
  for (int i = 0; i < 300; ++i) push(in, "", static_cast<uint32_t>(i % 4));
  CHECK(in.size() == 300);  // unbounded: its owner stops reading at its capacity
  CHECK(pop(in).empty());
  CHECK(in.size() == 299);
}

TEST_CASE("shouldDeliverEmptyAndFullSizePayloads") {
  Inbox in;
  const std::string big(frame::kMaxPayload, 'z');
  push(in, "", 1);
  push(in, big, 1);
  CHECK(pop(in).empty());
  CHECK(pop(in) == big);
}
