// Unit tests of the shm ring: state set up by hand in one process, no registry.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "transports/shm/membership.h"
#include "transports/shm/ring.h"

using fwipc::MsgHeader;
using namespace fwipc::shm;

namespace {

struct Fixture {
  Segment seg;
  uint32_t reader_state = 0;
  uint32_t reader_idx = 0;
  explicit Fixture(uint32_t slots = kMinSlots) {
    auto s = Segment::create("unit", slots, ::getpid());
    REQUIRE(s.ok());
    seg = std::move(s.value());
    auto idx = join_reader(seg, ::getpid(), 0, &reader_state);
    REQUIRE(idx.ok());
    reader_idx = *idx;
  }
  // A second mapping of the same segment, as another process would have.
  Segment map() const {
    auto s = Segment::attach(seg.fd());
    REQUIRE(s.ok());
    return std::move(s.value());
  }
  // Each call joins a new writer entry, as each writing open does.
  Roles writer_roles() const {
    uint32_t st = 0;
    auto idx = join_writer(seg, ::getpid(), 0, &st);
    REQUIRE(idx.ok());
    return Roles{-1, 0, int(*idx), st};
  }
  ShmRing writer() const { return ShmRing(map(), writer_roles(), ::getpid()); }
  ShmRing reader() const { return reader_at(int(reader_idx), reader_state); }
  ShmRing reader_at(int idx, uint32_t state) const { return ShmRing(map(), Roles{idx, state, -1, 0}, ::getpid()); }
};

MsgHeader hdr(uint32_t size, uint32_t type = 1, uint32_t prio = 0, uint32_t receiver = 0) {
  return MsgHeader{type, size, 0, receiver, prio};
}

}  // namespace

TEST_CASE("shouldRoundCapacityToPowerOfTwoSlotsWithinBounds") {
  CHECK(*Segment::slots_for_capacity(1) == kMinSlots);
  CHECK(*Segment::slots_for_capacity(0) == 256);
  CHECK(*Segment::slots_for_capacity(100 * kSlotBytes) == 128);
  CHECK(Segment::slots_for_capacity(512u * 1024 * 1024).error() == -EINVAL);
}

TEST_CASE("shouldReportEmptyRingAsWouldBlock") {
  Fixture f;
  auto r = f.reader();
  MsgHeader h;
  char buf[512];
  CHECK(r.receive(&h, buf, sizeof buf, 0) == -EAGAIN);
}

TEST_CASE("shouldCarryEveryPayloadSizeFromZeroTo512") {
  Fixture f(64);
  auto w = f.writer();
  auto r = f.reader();
  std::vector<char> out(512), in(512);
  for (uint32_t size = 0; size <= 512; ++size) {
    for (uint32_t i = 0; i < size; ++i) out[i] = char(size * 31 + i);
    REQUIRE(w.send(hdr(size, size), out.data(), 0) == int(size));
    MsgHeader h{};
    REQUIRE(r.receive(&h, in.data(), 512, 0) == int(size));
    CHECK(h.type == size);
    CHECK(h.size == size);
    CHECK(h.sender == uint32_t(::getpid()));
    CHECK(std::memcmp(in.data(), out.data(), size) == 0);
  }
}

TEST_CASE("shouldRejectOversizePayloadWithoutChangingTheRing") {
  Fixture f;
  auto w = f.writer();
  auto r = f.reader();
  char big[600] = {};
  const uint64_t tail = f.seg.header()->tail.load();
  CHECK(w.send(hdr(513), big, 0) == -EMSGSIZE);
  CHECK(f.seg.header()->tail.load() == tail);
  MsgHeader h;
  CHECK(r.receive(&h, big, sizeof big, 0) == -EAGAIN);
}

TEST_CASE("shouldKeepMessageWhenReceiveBufferTooSmall") {
  Fixture f;
  auto w = f.writer();
  auto r = f.reader();
  const char msg[] = "0123456789";
  REQUIRE(w.send(hdr(10), msg, 0) == 10);
  MsgHeader h{};
  char small[4];
  CHECK(r.receive(&h, small, sizeof small, 0) == -EMSGSIZE);
  CHECK(h.size == 10);
  char buf[16] = {};
  CHECK(r.receive(&h, buf, sizeof buf, 0) == 10);
  CHECK(std::memcmp(buf, msg, 10) == 0);
}

TEST_CASE("shouldFillExactlyToCapacityThenRefuseThenAcceptAfterOneRead") {
  Fixture f;  // kMinSlots slots
  auto w = f.writer();
  auto r = f.reader();
  for (uint32_t i = 0; i < kMinSlots; ++i) REQUIRE(w.send(hdr(4), &i, 0) == 4);
  uint32_t extra = 99;
  CHECK(w.send(hdr(4), &extra, 0) == -EAGAIN);
  MsgHeader h;
  uint32_t v = 0;
  REQUIRE(r.receive(&h, &v, 4, 0) == 4);
  CHECK(v == 0);
  CHECK(w.send(hdr(4), &extra, 0) == 4);
  CHECK(w.send(hdr(4), &extra, 0) == -EAGAIN);
}

TEST_CASE("shouldWrapAroundManyTimesKeepingOrder") {
  Fixture f;
  auto w = f.writer();
  auto r = f.reader();
  uint64_t next_out = 0, next_in = 0;
  for (int round = 0; round < 1000; ++round) {
    const int burst = 1 + round % int(kMinSlots);
    for (int i = 0; i < burst; ++i, ++next_out) REQUIRE(w.send(hdr(8), &next_out, 0) == 8);
    for (int i = 0; i < burst; ++i, ++next_in) {
      uint64_t v = ~0ull;
      MsgHeader h;
      REQUIRE(r.receive(&h, &v, 8, 0) == 8);
      REQUIRE(v == next_in);
    }
  }
  CHECK(f.seg.header()->tail.load() == next_out);
}

TEST_CASE("shouldGiveEveryReaderItsOwnCopy") {
  Fixture f;
  uint32_t st2 = 0;
  auto idx2 = join_reader(f.seg, ::getpid(), 0, &st2);
  REQUIRE(idx2.ok());
  auto w = f.writer();
  auto r1 = f.reader();
  auto r2 = f.reader_at(int(*idx2), st2);
  const int v = 42;
  REQUIRE(w.send(hdr(4), &v, 0) == 4);
  int a = 0, b = 0;
  MsgHeader h;
  CHECK(r1.receive(&h, &a, 4, 0) == 4);
  CHECK(r2.receive(&h, &b, 4, 0) == 4);
  CHECK(a == 42);
  CHECK(b == 42);
}

TEST_CASE("shouldDeliverUnicastOnlyToTheNamedPid") {
  Fixture f;
  auto w = f.writer();
  auto r = f.reader();
  const int other = 1, mine = 2;
  REQUIRE(w.send(hdr(4, 1, 0, uint32_t(::getpid()) + 1), &other, 0) == 4);
  REQUIRE(w.send(hdr(4, 1, 0, uint32_t(::getpid())), &mine, 0) == 4);
  int v = 0;
  MsgHeader h;
  CHECK(r.receive(&h, &v, 4, 0) == 4);
  CHECK(v == mine);
  CHECK(h.receiver == uint32_t(::getpid()));
  CHECK(r.receive(&h, &v, 4, 0) == -EAGAIN);
}

TEST_CASE("shouldDeliverHigherPriorityFirstAndKeepOrderWithinAPriority") {
  Fixture f(64);
  auto w = f.writer();
  auto r = f.reader();
  const uint32_t prios[] = {0, 1, 5, 1, 0, 5, 3};
  for (uint32_t i = 0; i < 7; ++i) REQUIRE(w.send(hdr(4, 0, prios[i]), &i, 0) == 4);
  const uint32_t expect[] = {2, 5, 6, 1, 3, 0, 4};
  for (uint32_t e : expect) {
    uint32_t v = 99;
    MsgHeader h;
    REQUIRE(r.receive(&h, &v, 4, 0) == 4);
    CHECK(v == e);
    CHECK(h.priority == prios[e]);
  }
  MsgHeader h;
  CHECK(r.receive(&h, nullptr, 0, 0) == -EAGAIN);
}

TEST_CASE("shouldSkipAnAbandonedLoan") {
  Fixture f;
  auto w = f.writer();
  auto r = f.reader();
  Loan l;
  REQUIRE(w.loan(&l, 0) == 0);
  std::memcpy(l.data(), "junk", 4);
  w.abandon(&l);
  Loan l2;
  REQUIRE(w.loan(&l2, 0) == 0);
  std::memcpy(l2.data(), "good", 4);
  REQUIRE(w.commit(&l2, hdr(4, 7)) == 4);
  char buf[8] = {};
  MsgHeader h;
  CHECK(r.receive(&h, buf, sizeof buf, 0) == 4);
  CHECK(std::memcmp(buf, "good", 4) == 0);
  CHECK(r.receive(&h, buf, sizeof buf, 0) == -EAGAIN);
}

TEST_CASE("shouldNotDeliverAnUncommittedSlot") {
  Fixture f;
  auto w = f.writer();
  auto r = f.reader();
  Loan l;
  REQUIRE(w.loan(&l, 0) == 0);
  MsgHeader h;
  char buf[8];
  CHECK(r.receive(&h, buf, sizeof buf, 0) == -EAGAIN);
  REQUIRE(w.commit(&l, hdr(0)) == 0);
  CHECK(r.receive(&h, buf, sizeof buf, 0) == 0);
}

namespace {
// The PID of a process that has exited and been reaped.
pid_t dead_pid() {
  const pid_t p = ::fork();
  if (p == 0) ::_exit(0);
  int st;
  ::waitpid(p, &st, 0);
  return p;
}
}  // namespace

TEST_CASE("shouldSkipTheClaimOfAWriterThatDiedBeforeCommitting") {
  Fixture f;
  // The claimer's entry names a dead process, as when a writer is SIGKILLed mid-write.
  uint32_t st = 0;
  auto idx = join_writer(f.seg, dead_pid(), 0, &st);
  REQUIRE(idx.ok());
  ShmRing dead(f.map(), Roles{-1, 0, int(*idx), st}, ::getpid());
  auto live = f.writer();
  auto r = f.reader();
  Loan l;
  REQUIRE(dead.loan(&l, 0) == 0);
  std::memcpy(l.data(), "torn", 4);  // half-written: must never be delivered
  const int v = 7;
  REQUIRE(live.send(hdr(4), &v, 0) == 4);
  int got = 0;
  MsgHeader h;
  CHECK(r.receive(&h, &got, 4, 2'000'000'000) == 4);
  CHECK(got == 7);
  CHECK(f.seg.header()->abandoned.load() == 1);
  CHECK(f.seg.slot(0)->seq.load() == (1 | kAbandoned));
  // A late commit into the abandoned slot (as if the claimer had only been presumed dead)
  // rewrites the commit word, but behind every cursor: nothing is delivered again and no
  // reader, old or new, sees the torn record.
  REQUIRE(dead.commit(&l, hdr(4, 9)) == 4);
  CHECK(f.seg.slot(0)->seq.load() == 1);
  CHECK(r.receive(&h, &got, 4, 0) == -EAGAIN);
  uint32_t st2 = 0;
  auto idx2 = join_reader(f.seg, ::getpid(), 0, &st2);
  REQUIRE(idx2.ok());
  auto late = f.reader_at(int(*idx2), st2);
  CHECK(late.receive(&h, &got, 4, 0) == -EAGAIN);
  CHECK(f.seg.header()->abandoned.load() == 1);
  // The ring goes on from where it was: the next message is the next one delivered.
  const int w = 8;
  REQUIRE(live.send(hdr(4), &w, 0) == 4);
  CHECK(r.receive(&h, &got, 4, 0) == 4);
  CHECK(got == 8);
  CHECK(h.type == 1);
}

TEST_CASE("shouldWaitForTheClaimOfALiveWriter") {
  Fixture f;
  auto slow = f.writer();
  auto fast = f.writer();
  auto r = f.reader();
  Loan l;
  REQUIRE(slow.loan(&l, 0) == 0);
  const int v = 7;
  REQUIRE(fast.send(hdr(4), &v, 0) == 4);
  int got = 0;
  MsgHeader h;
  // Longer than the stall threshold: the live claimer is checked and waited for.
  CHECK(r.receive(&h, &got, 4, 30'000'000) == -ETIMEDOUT);
  CHECK(recover_stalled(f.seg) == 0);
  std::memcpy(l.data(), "slow", 4);
  REQUIRE(slow.commit(&l, hdr(4)) == 4);
  char buf[4];
  CHECK(r.receive(&h, buf, 4, 0) == 4);
  CHECK(std::memcmp(buf, "slow", 4) == 0);
  CHECK(r.receive(&h, &got, 4, 0) == 4);
  CHECK(got == 7);
  CHECK(f.seg.header()->abandoned.load() == 0);
}

TEST_CASE("shouldLetBlockedWritersRecoverADeadWritersClaim") {
  Fixture f;  // 16 slots
  uint32_t st = 0;
  auto idx = join_writer(f.seg, dead_pid(), 0, &st);
  REQUIRE(idx.ok());
  ShmRing dead(f.map(), Roles{-1, 0, int(*idx), st}, ::getpid());
  Loan l;
  REQUIRE(dead.loan(&l, 0) == 0);
  // No reader runs: only recover_stalled (what a blocked writer and the registry call)
  // can release the slot.
  CHECK(recover_stalled(f.seg) == 1);
  CHECK(recover_stalled(f.seg) == 0);
  auto r = f.reader();
  auto w = f.writer();
  const int v = 9;
  REQUIRE(w.send(hdr(4), &v, 0) == 4);
  int got = 0;
  MsgHeader h;
  CHECK(r.receive(&h, &got, 4, 0) == 4);
  CHECK(got == 9);
}

TEST_CASE("shouldReportCorruptSizeAsBadMessageAndMoveOn") {
  Fixture f;
  auto w = f.writer();
  auto r = f.reader();
  const int v = 1;
  REQUIRE(w.send(hdr(4), &v, 0) == 4);
  REQUIRE(w.send(hdr(4), &v, 0) == 4);
  f.seg.slot(0)->size = 100000;  // a hostile peer scribbles over a committed slot
  char buf[512];
  MsgHeader h;
  CHECK(r.receive(&h, buf, sizeof buf, 0) == -EBADMSG);
  CHECK(r.receive(&h, buf, sizeof buf, 0) == 4);
}

TEST_CASE("shouldDetectALappedCursor") {
  Fixture f;
  auto r = f.reader();
  f.seg.slot(0)->seq.store(kMinSlots + 1);  // position 16 committed over position 0
  char buf[8];
  MsgHeader h;
  CHECK(r.receive(&h, buf, sizeof buf, 0) == -EBADMSG);
}

TEST_CASE("shouldRefuseToAttachSomethingThatIsNotASegment") {
  Fixture f;
  f.seg.header()->magic ^= 1;
  CHECK(Segment::attach(f.seg.fd()).error() == -EBADMSG);
  f.seg.header()->magic ^= 1;
  f.seg.header()->slot_count = 12345;
  CHECK(Segment::attach(f.seg.fd()).error() == -EBADMSG);
  int p[2];
  REQUIRE(::pipe(p) == 0);
  CHECK(Segment::attach(p[0]).error() == -EBADMSG);
  ::close(p[0]);
  ::close(p[1]);
}

TEST_CASE("shouldReleaseAReaderSoWritersProceed") {
  Fixture f;
  auto w = f.writer();
  for (uint32_t i = 0; i < kMinSlots; ++i) REQUIRE(w.send(hdr(4), &i, 0) == 4);
  uint32_t v = 0;
  CHECK(w.send(hdr(4), &v, 0) == -EAGAIN);
  CHECK(release_reader(f.seg, f.reader_idx, f.reader_state));
  CHECK_FALSE(release_reader(f.seg, f.reader_idx, f.reader_state));  // idempotent
  CHECK(w.send(hdr(4), &v, 0) == 4);
}

TEST_CASE("shouldStartAJoiningReaderAtTheTail") {
  Fixture f;
  auto w = f.writer();
  const int v = 5;
  REQUIRE(w.send(hdr(4), &v, 0) == 4);
  uint32_t st = 0;
  auto idx = join_reader(f.seg, ::getpid(), 0, &st);
  REQUIRE(idx.ok());
  auto late = f.reader_at(int(*idx), st);
  MsgHeader h;
  int out = 0;
  CHECK(late.receive(&h, &out, 4, 0) == -EAGAIN);
  REQUIRE(w.send(hdr(4), &v, 0) == 4);
  CHECK(late.receive(&h, &out, 4, 0) == 4);
}

TEST_CASE("shouldTimeOutAndFailClosedChannels") {
  Fixture f;
  auto w = f.writer();
  auto r = f.reader();
  MsgHeader h;
  char buf[8];
  CHECK(r.receive(&h, buf, sizeof buf, 20'000'000) == -ETIMEDOUT);
  const int v = 3;
  REQUIRE(w.send(hdr(4), &v, 0) == 4);
  close_channel(f.seg);
  CHECK(w.send(hdr(4), &v, 0) == -EPIPE);
  CHECK(r.receive(&h, buf, sizeof buf, -1) == 4);  // committed before close: delivered
  CHECK(r.receive(&h, buf, sizeof buf, -1) == -EPIPE);
}

TEST_CASE("shouldMakeTheNotifyFdReadableOnlyWhileAMessageWaits") {
  Fixture f;
  auto w = f.writer();
  auto r = f.reader();
  const int fd = r.notify_fd();
  REQUIRE(fd >= 0);
  pollfd p{fd, POLLIN, 0};
  CHECK(::poll(&p, 1, 0) == 0);
  const int v = 1;
  REQUIRE(w.send(hdr(4), &v, 0) == 4);
  REQUIRE(w.send(hdr(4), &v, 0) == 4);
  CHECK(::poll(&p, 1, 1000) == 1);
  MsgHeader h;
  int out;
  REQUIRE(r.receive(&h, &out, 4, 0) == 4);
  CHECK(::poll(&p, 1, 0) == 1);  // one more waits: still readable
  REQUIRE(r.receive(&h, &out, 4, 0) == 4);
  CHECK(r.receive(&h, &out, 4, 0) == -EAGAIN);
  CHECK(::poll(&p, 1, 0) == 0);
}

// Threads instead of processes so ThreadSanitizer (--config=tsan) checks the ring's
// memory ordering: a 16-slot ring forces wrap-around, back-pressure and futex sleeps.
TEST_CASE("shouldDeliverEveryMessageToEveryReaderAcrossThreads") {
  Fixture f;
  uint32_t st2 = 0;
  auto idx2 = join_reader(f.seg, ::getpid(), 0, &st2);
  REQUIRE(idx2.ok());
  constexpr uint32_t kWriters = 2;
  constexpr uint64_t kPerWriter = 50'000;
  struct Rec {
    uint32_t writer;
    uint64_t seq;
    uint64_t check;
  };
  auto reader_fn = [&](int idx, uint32_t state, int* result) {
    ShmRing r(f.map(), Roles{idx, state, -1, 0}, ::getpid());
    uint64_t next[kWriters] = {};
    for (uint64_t got = 0; got < kWriters * kPerWriter; ++got) {
      Rec rec{};
      MsgHeader h;
      if (r.receive(&h, &rec, sizeof rec, 10'000'000'000) != int(sizeof rec)) {
        *result = 1;
        return;
      }
      if (rec.writer >= kWriters || rec.seq != next[rec.writer] || rec.check != rec.seq * 2654435761u + rec.writer) {
        *result = 2;
        return;
      }
      ++next[rec.writer];
    }
    *result = 0;
  };
  int res1 = -1, res2 = -1;
  std::thread r1(reader_fn, int(f.reader_idx), f.reader_state, &res1);
  std::thread r2(reader_fn, int(*idx2), st2, &res2);
  std::vector<std::thread> writers;
  std::atomic<int> write_errors{0};
  for (uint32_t w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w, roles = f.writer_roles(), seg = f.map()]() mutable {
      ShmRing ring(std::move(seg), roles, ::getpid());
      for (uint64_t s = 0; s < kPerWriter; ++s) {
        const Rec rec{w, s, s * 2654435761u + w};
        if (ring.send(hdr(sizeof rec), &rec, -1) != int(sizeof rec)) write_errors.fetch_add(1);
      }
    });
  }
  for (auto& t : writers) t.join();
  r1.join();
  r2.join();
  CHECK(write_errors.load() == 0);
  CHECK(res1 == 0);
  CHECK(res2 == 0);
}

TEST_CASE("shouldTakeBackTheWaitCountOfAReaderThatDiedAsleep") {
  Fixture f;
  SegmentHeader* h = f.seg.header();
  ReaderEntry& e = h->readers[f.reader_idx];
  e.sleeping.store(1);  // as a reader that was SIGKILLed inside its futex wait leaves it
  h->data_waiters.store(1);
  REQUIRE(release_reader(f.seg, f.reader_idx, f.reader_state));
  CHECK(h->data_waiters.load() == 0);
  CHECK(e.sleeping.load() == 0);
}

TEST_CASE("shouldMarkABlockedWriterAndClearTheSlotOfADeadOne") {
  Fixture f;
  SegmentHeader* h = f.seg.header();
  auto w = f.writer();
  for (uint32_t i = 0; i < kMinSlots; ++i) REQUIRE(w.send(hdr(4), &i, 0) == 4);
  ShmRing::set_spin_ns(0);
  std::atomic<int> rc{1};
  std::thread blocked([&] {
    uint32_t v = 7;
    rc = w.send(hdr(4), &v, 300'000'000);
  });
  bool seen = false;
  for (int i = 0; i < 1000 && !seen; ++i) {
    seen = h->space_mask.load() != 0 && h->space_sleeper[0].load() == uint32_t(::getpid());
    if (!seen) ::usleep(200);
  }
  CHECK(seen);
  blocked.join();
  ShmRing::set_spin_ns(50'000);
  CHECK(rc.load() == -ETIMEDOUT);
  CHECK(h->space_mask.load() == 0);
  CHECK(h->space_sleeper[0].load() == 0);
  // A writer SIGKILLed while blocked leaves its slot; the registry clears it by PID.
  h->space_sleeper[3].store(4242);
  h->space_sleeper[5].store(777);
  h->space_mask.store((1u << 3) | (1u << 5));
  release_sleeper(f.seg, 4242);
  CHECK(h->space_mask.load() == (1u << 5));
  CHECK(h->space_sleeper[3].load() == 0);
  CHECK(h->space_sleeper[5].load() == 777);
}

namespace {
struct Seen {
  std::vector<uint32_t> types;
  std::vector<std::string> payloads;
  static void visit(void* ctx, const MsgHeader* h, const void* p) {
    auto* s = static_cast<Seen*>(ctx);
    s->types.push_back(h->type);
    s->payloads.emplace_back(static_cast<const char*>(p), h->size);
  }
};

int send_n(ShmRing& w, uint32_t n, uint32_t first_type, int64_t timeout_ns, uint32_t prio = 0) {
  std::vector<MsgHeader> hs;
  std::vector<std::string> bodies;
  std::vector<const void*> ps;
  for (uint32_t i = 0; i < n; ++i) bodies.push_back("m" + std::to_string(first_type + i));
  for (uint32_t i = 0; i < n; ++i) {
    hs.push_back(hdr(uint32_t(bodies[i].size()), first_type + i, prio));
    ps.push_back(bodies[i].data());
  }
  return w.send_batch(hs.data(), ps.data(), n, timeout_ns);
}
}  // namespace

TEST_CASE("shouldSendABatchWithOneClaimAndConsumeItInPlace") {
  Fixture f;
  auto w = f.writer();
  auto r = f.reader();
  REQUIRE(send_n(w, 10, 100, 0) == 10);
  CHECK(f.seg.header()->tail.load() == 10);
  CHECK(f.seg.header()->writers[w.roles().writer_index].inflight.load() == 0);
  Seen s;
  CHECK(r.consume(4, Seen::visit, &s, 0) == 4);
  CHECK(f.seg.header()->readers[f.reader_idx].cursor.load() == 4);  // released together
  CHECK(r.consume(64, Seen::visit, &s, 0) == 6);
  REQUIRE(s.types.size() == 10);
  for (uint32_t i = 0; i < 10; ++i) {
    CHECK(s.types[i] == 100 + i);
    CHECK(s.payloads[i] == "m" + std::to_string(100 + i));
  }
  CHECK(r.consume(4, Seen::visit, &s, 0) == -EAGAIN);
  CHECK(r.consume(0, Seen::visit, &s, 0) == -EINVAL);
}

TEST_CASE("shouldSendWhatFitsOfABatchAndRefuseTheRestWhenNonBlocking") {
  Fixture f;  // 16 slots
  auto w = f.writer();
  auto r = f.reader();
  CHECK(send_n(w, 20, 0, 0) == 16);
  CHECK(send_n(w, 2, 0, 0) == -EAGAIN);
  std::vector<MsgHeader> big{hdr(4), hdr(kMaxPayload + 1)};
  const char x[600] = {};
  const void* ps[] = {x, x};
  CHECK(w.send_batch(big.data(), ps, 2, 0) == -EMSGSIZE);  // all or nothing
  Seen s;
  CHECK(r.consume(64, Seen::visit, &s, 0) == 16);
  CHECK(send_n(w, 3, 0, 0) == 3);
}

TEST_CASE("shouldConsumePastSkippedSlotsAndOthersUnicasts") {
  Fixture f;
  auto w = f.writer();
  auto r = f.reader();
  Loan l;
  REQUIRE(w.loan(&l, 0) == 0);
  w.abandon(&l);
  const int v = 1;
  REQUIRE(w.send(hdr(4, 1, 0, 999999), &v, 0) == 4);  // for someone else
  REQUIRE(w.send(hdr(4, 2), &v, 0) == 4);
  REQUIRE(w.send(hdr(4, 3), &v, 0) == 4);
  f.seg.slot(3)->size = 100000;  // scribbled
  REQUIRE(w.send(hdr(4, 4), &v, 0) == 4);
  Seen s;
  CHECK(r.consume(64, Seen::visit, &s, 0) == 1);  // stops before the corrupt slot
  CHECK(r.consume(64, Seen::visit, &s, 0) == -EBADMSG);
  CHECK(r.consume(64, Seen::visit, &s, 0) == 1);
  CHECK(s.types == std::vector<uint32_t>{2, 4});
}

TEST_CASE("shouldConsumeInPriorityOrderWhenPrioritiesAreInPlay") {
  Fixture f;
  auto w = f.writer();
  auto r = f.reader();
  REQUIRE(send_n(w, 2, 10, 0) == 2);
  REQUIRE(send_n(w, 2, 20, 0, 5) == 2);
  Seen s;
  int total = 0;
  for (int rc; (rc = r.consume(64, Seen::visit, &s, 0)) > 0;) total += rc;
  CHECK(total == 4);
  CHECK(s.types == std::vector<uint32_t>{20, 21, 10, 11});
}
