// The transfer table with fragments built by hand: reassembly, every refusal, the caps,
// expiry and eviction, and replies fetched piece by piece.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cerrno>
#include <vector>

#include "service/transfers.h"

using namespace fwsvc;

namespace {

constexpr uint32_t kPid = 100;
constexpr uint32_t kMethod = 7;

std::vector<uint8_t> frag(Op op, uint32_t word, uint32_t transfer, uint32_t offset, uint32_t total,
                          std::vector<uint8_t> data = {}) {
  std::vector<uint8_t> p(IPC_MAX_PAYLOAD);
  p.resize(encode(p.data(), op, word, transfer, offset, total, data));
  return p;
}

std::vector<uint8_t> body(size_t n, uint8_t seed = 1) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t(seed + i * 31);
  return b;
}

std::vector<uint8_t> slice(const std::vector<uint8_t>& b, size_t off, size_t len) {
  return {b.begin() + long(off), b.begin() + long(off + len)};
}

struct Answer {
  bool complete = false;
  Complete done;
  FragmentHeader h{};
  std::vector<uint8_t> data;
};

struct Table {
  TransferTable t;
  int64_t now = 1000;
  uint8_t out[IPC_MAX_PAYLOAD];
  explicit Table(Limits l = {}) : t(l, [](uint32_t m) { return m == kMethod; }) {}

  Answer feed(const std::vector<uint8_t>& p, uint32_t pid = kPid) {
    Answer a;
    const size_t n = t.accept(pid, p.data(), p.size(), now, &a.done, out);
    if (n == 0) {
      a.complete = true;
      return a;
    }
    std::span<const uint8_t> d;
    REQUIRE(decode(out, n, &a.h, &d));
    a.data.assign(d.begin(), d.end());
    return a;
  }
  int error_of(const Answer& a) const { return a.h.op == kError ? int32_t(a.h.word) : 0; }
};

// Sends every fragment of b but the last; returns the last.
std::vector<uint8_t> send_all_but_last(Table& tb, uint32_t transfer, const std::vector<uint8_t>& b,
                                       uint32_t pid = kPid) {
  size_t off = 0;
  while (b.size() - off > kFragmentDataBytes) {
    const Answer a = tb.feed(frag(kRequest, kMethod, transfer, off, b.size(), slice(b, off, kFragmentDataBytes)), pid);
    REQUIRE(a.h.op == kAck);
    off += kFragmentDataBytes;
  }
  return frag(kRequest, kMethod, transfer, off, b.size(), slice(b, off, b.size() - off));
}

}  // namespace

TEST_CASE("shouldCompleteASingleFragmentRequestWithoutHoldingAnything") {
  Table tb;
  for (size_t n : {size_t(0), size_t(1), kFragmentDataBytes}) {
    const auto b = body(n);
    const auto p = frag(kRequest, kMethod, 5, 0, n, b);  // the body points into it
    const Answer a = tb.feed(p);
    REQUIRE(a.complete);
    CHECK(a.done.method == kMethod);
    CHECK(a.done.pid == kPid);
    CHECK(std::vector<uint8_t>(a.done.body.begin(), a.done.body.end()) == b);
    CHECK(tb.t.size() == 0);
  }
}

TEST_CASE("shouldReassembleInOrderFragmentsAndAckEachButTheLast") {
  Table tb;
  const auto b = body(3 * kFragmentDataBytes + 17);
  const Answer a = tb.feed(send_all_but_last(tb, 9, b));
  REQUIRE(a.complete);
  CHECK(std::vector<uint8_t>(a.done.body.begin(), a.done.body.end()) == b);
  CHECK(tb.t.size() == 0);
}

TEST_CASE("shouldKeepTheTransfersOfTwoCallersWithTheSameIdApart") {
  Table tb;
  const auto b1 = body(kFragmentDataBytes + 1, 1);
  const auto b2 = body(kFragmentDataBytes + 1, 2);
  const auto last1 = send_all_but_last(tb, 9, b1, 100);
  const auto last2 = send_all_but_last(tb, 9, b2, 200);
  CHECK(tb.t.size() == 2);
  Answer a = tb.feed(last2, 200);
  REQUIRE(a.complete);
  CHECK(std::vector<uint8_t>(a.done.body.begin(), a.done.body.end()) == b2);
  a = tb.feed(last1, 100);
  REQUIRE(a.complete);
  CHECK(std::vector<uint8_t>(a.done.body.begin(), a.done.body.end()) == b1);
}

TEST_CASE("shouldRefuseOutOfOrderOrMismatchedFragmentsAndForgetTheTransfer") {
  Table tb;
  const auto b = body(3 * kFragmentDataBytes);
  const auto first = frag(kRequest, kMethod, 3, 0, b.size(), slice(b, 0, kFragmentDataBytes));
  REQUIRE(tb.feed(first).h.op == kAck);
  // Skips the second fragment.
  CHECK(tb.error_of(tb.feed(frag(kRequest, kMethod, 3, 2 * kFragmentDataBytes, b.size(),
                                 slice(b, 2 * kFragmentDataBytes, kFragmentDataBytes)))) == -EBADMSG);
  CHECK(tb.t.size() == 0);
  // Another total, another method.
  REQUIRE(tb.feed(first).h.op == kAck);
  CHECK(tb.error_of(tb.feed(frag(kRequest, kMethod, 3, kFragmentDataBytes, b.size() + 1,
                                 slice(b, kFragmentDataBytes, kFragmentDataBytes)))) == -EBADMSG);
  REQUIRE(tb.feed(first).h.op == kAck);
  CHECK(tb.error_of(tb.feed(frag(kRequest, kMethod + 1, 3, kFragmentDataBytes, b.size(),
                                 slice(b, kFragmentDataBytes, kFragmentDataBytes)))) == -EBADMSG);
  CHECK(tb.t.size() == 0);
  // A continuation nobody began.
  CHECK(tb.error_of(tb.feed(frag(kRequest, kMethod, 4, kFragmentDataBytes, b.size(),
                                 slice(b, kFragmentDataBytes, kFragmentDataBytes)))) == -ESTALE);
  CHECK(tb.t.stats().malformed == 3);
}

TEST_CASE("shouldRefuseAShortFragmentThatIsNotTheLast") {
  Table tb;
  CHECK(tb.error_of(tb.feed(frag(kRequest, kMethod, 3, 0, 1000, body(10)))) == -EBADMSG);
  CHECK(tb.error_of(tb.feed(frag(kRequest, kMethod, 3, 0, 1000, {}))) == -EBADMSG);
  CHECK(tb.t.size() == 0);
}

TEST_CASE("shouldRefuseBodiesOverTheLimitAndUnknownMethodsBeforeHoldingAnything") {
  Limits l;
  l.max_body_bytes = 4096;
  Table tb(l);
  CHECK(tb.error_of(tb.feed(frag(kRequest, kMethod, 1, 0, 4097, body(kFragmentDataBytes)))) == -EMSGSIZE);
  CHECK(tb.error_of(tb.feed(frag(kRequest, kMethod + 1, 2, 0, 4096, body(kFragmentDataBytes)))) == -ENOSYS);
  CHECK(tb.error_of(tb.feed(frag(kRequest, kMethod + 1, 2, 0, 3, body(3)))) == -ENOSYS);
  CHECK(tb.t.size() == 0);
  CHECK(tb.t.stats().refused_size == 1);
  CHECK(tb.t.stats().unknown_method == 2);
  const auto b = body(4096);
  CHECK(tb.feed(send_all_but_last(tb, 3, b)).complete);  // exactly the limit is fine
}

TEST_CASE("shouldCapIncompleteTransfersPerCallerAndInTotal") {
  Limits l;
  l.max_per_caller = 2;
  l.max_transfers = 3;
  Table tb(l);
  const auto first = [&](uint32_t transfer) {
    return frag(kRequest, kMethod, transfer, 0, 2 * kFragmentDataBytes, body(kFragmentDataBytes));
  };
  CHECK(tb.feed(first(1), 100).h.op == kAck);
  CHECK(tb.feed(first(2), 100).h.op == kAck);
  CHECK(tb.error_of(tb.feed(first(3), 100)) == -EBUSY);  // caller 100 at its cap
  CHECK(tb.feed(first(1), 200).h.op == kAck);
  CHECK(tb.error_of(tb.feed(first(1), 300)) == -EBUSY);  // the table at its cap
  CHECK(tb.t.stats().refused_busy == 2);
  CHECK(tb.t.size() == 3);
  // Single-fragment calls need no room: they still run.
  CHECK(tb.feed(frag(kRequest, kMethod, 9, 0, 1, body(1)), 300).complete);
  CHECK(tb.t.bytes_held() <= 3 * 2 * kFragmentDataBytes);
}

TEST_CASE("shouldExpireIdleTransfersAndSayStaleAfterwards") {
  Limits l;
  l.timeout_ms = 100;
  Table tb(l);
  const auto b = body(2 * kFragmentDataBytes);
  REQUIRE(tb.feed(frag(kRequest, kMethod, 1, 0, b.size(), slice(b, 0, kFragmentDataBytes))).h.op == kAck);
  tb.now += 99;
  tb.t.expire(tb.now);
  CHECK(tb.t.size() == 1);
  tb.now += 1;
  tb.t.expire(tb.now);
  CHECK(tb.t.size() == 0);
  CHECK(tb.t.stats().expired == 1);
  CHECK(tb.error_of(tb.feed(frag(kRequest, kMethod, 1, kFragmentDataBytes, b.size(),
                                 slice(b, kFragmentDataBytes, kFragmentDataBytes)))) == -ESTALE);
}

TEST_CASE("shouldServeALongReplyByFetchesAndForgetItAfterTheLastByte") {
  Table tb;
  const Answer req = tb.feed(frag(kRequest, kMethod, 4, 0, 1, body(1)));
  REQUIRE(req.complete);
  const auto r = body(2 * kFragmentDataBytes + 5, 9);
  const size_t n = tb.t.reply(req.done, 42, r, tb.now, tb.out);
  FragmentHeader h{};
  std::span<const uint8_t> d;
  REQUIRE(decode(tb.out, n, &h, &d));
  CHECK(h.op == kReply);
  CHECK(int32_t(h.word) == 42);
  CHECK(h.total == r.size());
  std::vector<uint8_t> got(d.begin(), d.end());
  CHECK(tb.t.size() == 1);
  // A fetch from the wrong offset is refused and forgets the reply.
  while (got.size() < r.size()) {
    const Answer a = tb.feed(frag(kFetch, 0, 4, got.size(), r.size()));
    REQUIRE(a.h.op == kReply);
    CHECK(a.h.offset == got.size());
    CHECK(int32_t(a.h.word) == 42);
    got.insert(got.end(), a.data.begin(), a.data.end());
  }
  CHECK(got == r);
  CHECK(tb.t.size() == 0);
  CHECK(tb.error_of(tb.feed(frag(kFetch, 0, 4, got.size(), r.size()))) == -ESTALE);
}

TEST_CASE("shouldForgetAReplyOnCancelOrOnAFetchFromTheWrongOffset") {
  Table tb;
  const auto r = body(2 * kFragmentDataBytes);
  for (int i = 0; i < 2; ++i) {
    const Answer req = tb.feed(frag(kRequest, kMethod, 4, 0, 0));
    REQUIRE(req.complete);
    (void)tb.t.reply(req.done, 0, r, tb.now, tb.out);
    REQUIRE(tb.t.size() == 1);
    if (i == 0) {
      CHECK(tb.feed(frag(kCancel, 0, 4, 0, 0)).h.op == kAck);
    } else {
      CHECK(tb.error_of(tb.feed(frag(kFetch, 0, 4, 1, r.size()))) == -EBADMSG);
    }
    CHECK(tb.t.size() == 0);
  }
}

TEST_CASE("shouldEvictTheCallersOwnOldestReplyFirstThenTheBiggestHolders") {
  Limits l;
  l.max_per_caller = 2;
  l.max_transfers = 3;
  Table tb(l);
  const auto r = body(kFragmentDataBytes + 1);
  auto long_reply = [&](uint32_t pid, uint32_t transfer) {
    const Answer req = tb.feed(frag(kRequest, kMethod, transfer, 0, 0), pid);
    REQUIRE(req.complete);
    (void)tb.t.reply(req.done, 0, r, tb.now, tb.out);
  };
  long_reply(100, 1);
  long_reply(100, 2);
  long_reply(100, 3);  // 100 at its cap: its transfer 1 goes
  CHECK(tb.t.stats().evicted == 1);
  CHECK(tb.error_of(tb.feed(frag(kFetch, 0, 1, kFragmentDataBytes, r.size()), 100)) == -ESTALE);
  long_reply(200, 1);  // 3 held: 100's 2 and 3, 200's 1
  long_reply(300, 1);  // the table full: the biggest holder (100) loses its oldest (2)
  CHECK(tb.t.stats().evicted == 2);
  CHECK(tb.t.size() == 3);
  CHECK(tb.error_of(tb.feed(frag(kFetch, 0, 2, kFragmentDataBytes, r.size()), 100)) == -ESTALE);
  CHECK(tb.feed(frag(kFetch, 0, 3, kFragmentDataBytes, r.size()), 100).h.op == kReply);
  CHECK(tb.feed(frag(kFetch, 0, 1, kFragmentDataBytes, r.size()), 200).h.op == kReply);
}

TEST_CASE("shouldAnswerGarbageWithEbadmsg") {
  Table tb;
  CHECK(tb.error_of(tb.feed({})) == -EBADMSG);
  CHECK(tb.error_of(tb.feed(std::vector<uint8_t>(IPC_MAX_PAYLOAD, 0xff))) == -EBADMSG);
  auto p = frag(kRequest, kMethod, 1, 0, 1, body(1));
  p[2] = 99;  // version
  CHECK(tb.error_of(tb.feed(p)) == -EBADMSG);
  CHECK(tb.error_of(tb.feed(frag(kRequest, kMethod, 0, 0, 1, body(1)))) == -EBADMSG);            // transfer 0
  CHECK(tb.error_of(tb.feed(frag(kReply, 0, 1, 0, 1, body(1)))) == -EBADMSG);                    // a service's op
  CHECK(tb.error_of(tb.feed(frag(kRequest, kMethod, 1, 0xffffffffu, 1, body(1)))) == -EBADMSG);  // past total
  CHECK(tb.t.stats().malformed == 6);
}
