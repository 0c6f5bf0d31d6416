// The core channel suite, written once and run over every channel type, with real
// processes: ordering, sizes, broadcast, unicast, priorities, back-pressure, non-blocking,
// timeouts, the pollable descriptor, killed peers, the creator's close.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "base/time.h"
#include "fwipc/channel.hpp"
#include "ipc.h"
#include "tests/support.h"
#include "transports/frame.h"

using fwipc::test::Barrier;
using fwipc::test::spawn;
using fwipc::test::TempRuntime;
using fwipc::test::wait_exit;

namespace {

const uint32_t kTypes[] = {IPC_TYPE_QUEUE, IPC_TYPE_SOCKET, IPC_TYPE_PIPE};

// Takes every message waiting on id without blocking; returns how many.
int drain_available(int id) {
  int got = 0;
  IPC_MESSAGE m;
  while (ipc_receive_message(uint32_t(id), &m, 0) >= 0) ++got;
  return got;
}

// A number between processes, through a Barrier's pipe (bounded like Barrier::wait).
void put_u32(const Barrier& b, uint32_t v) { (void)!::write(b.fds[1], &v, sizeof v); }
bool get_u32(const Barrier& b, uint32_t* v) {
  pollfd p{b.fds[0], POLLIN, 0};
  return ::poll(&p, 1, 60'000) == 1 && ::read(b.fds[0], v, sizeof *v) == ssize_t(sizeof *v);
}

// The writer of the join tests: fills "late" without blocking until -EAGAIN, reports how
// many it sent, waits for `go`, then sends kAfter (retrying while the channel is full).
constexpr uint32_t kAfter = 0xaf7e4;
int fill_then_send_after(const Barrier& count, const Barrier& go) {
  const int w = ipc_open_channel("late", IPC_MODE_WRITE | IPC_MODE_NONBLOCK);
  if (w < 0) return 10;
  uint32_t n = 0;
  int rc;
  while ((rc = ipc_send(uint32_t(w), &n, 4, 0)) == 4)
    if (++n > 1'000'000) return 11;
  if (rc != -EAGAIN) return 12;
  put_u32(count, n);
  if (!go.wait(1)) return 13;
  for (int i = 0; i < 20'000 && (rc = ipc_send(uint32_t(w), &kAfter, 4, 0)) == -EAGAIN; ++i) ::usleep(500);
  return rc == 4 ? 0 : 14;
}

// The creator takes the writer's n messages (0..n-1, in order) and then kAfter; returns
// how many of those n + 1 arrived as expected.
uint32_t take_all_then_after(int c, uint32_t n, pid_t writer) {
  uint32_t ok = 0;
  for (uint32_t i = 0; i <= n; ++i) {
    IPC_MESSAGE m;
    uint32_t v = ~0u;
    if (ipc_receive_message(uint32_t(c), &m, 10000) != 4) break;
    std::memcpy(&v, m.payload, 4);
    if (v != (i < n ? i : kAfter) || m.sender != uint32_t(writer)) break;
    ++ok;
  }
  return ok;
}

}  // namespace

TEST_CASE("shouldCarryEverySizeInOrderFromAnotherProcess") {
  for (uint32_t type : kTypes) {
    CAPTURE(type);
    TempRuntime rt;
    const int c = ipc_create_channel("sizes", type, 0);
    REQUIRE(c >= 0);
    const pid_t child = spawn([] {
      const int w = ipc_open_channel("sizes", IPC_MODE_WRITE);
      if (w < 0) return 10;
      char buf[512];
      for (uint32_t n = 0; n <= 512; ++n) {
        for (uint32_t i = 0; i < n; ++i) buf[i] = char(n + i);
        if (ipc_send(uint32_t(w), buf, n, n) != int(n)) return 11;
      }
      char big[513] = {};
      return ipc_send(uint32_t(w), big, 513, 0) == -EMSGSIZE ? 0 : 12;
    });
    for (uint32_t n = 0; n <= 512; ++n) {
      IPC_MESSAGE m;
      REQUIRE(ipc_receive_message(uint32_t(c), &m, 10000) == int(n));
      CHECK(m.type == n);
      CHECK(m.sender == uint32_t(child));
      bool same = true;
      for (uint32_t i = 0; i < n; ++i) same = same && m.payload[i] == char(n + i);
      CHECK(same);
    }
    CHECK(wait_exit(child) == 0);
    // A too-small buffer keeps the message.
    REQUIRE(ipc_send(uint32_t(c), "0123456789", 10, 1) == 10);
    char small[4], ok[16];
    CHECK(ipc_receive(uint32_t(c), small, sizeof small) == -EMSGSIZE);
    CHECK(ipc_receive(uint32_t(c), ok, sizeof ok) == 10);
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}

TEST_CASE("shouldBroadcastToEveryReaderAndUnicastToOne") {
  for (uint32_t type : kTypes) {
    CAPTURE(type);
    TempRuntime rt;
    const int c = ipc_create_channel("bus", type, 0);
    REQUIRE(c >= 0);
    Barrier ready;
    auto reader = [&] {
      return spawn([&] {
        const int id = ipc_open_channel("bus", IPC_MODE_READ);
        if (id < 0) return 10;
        ready.signal();
        IPC_MESSAGE m;
        if (ipc_receive_message(uint32_t(id), &m, 10000) < 0) return 11;
        if (m.receiver == uint32_t(::getpid())) {
          if (ipc_receive_message(uint32_t(id), &m, 10000) < 0) return 12;
          return m.receiver == 0 && std::memcmp(m.payload, "all", 3) == 0 ? 1 : 13;
        }
        return std::memcmp(m.payload, "all", 3) == 0 ? 2 : 14;
      });
    };
    const pid_t a = reader();
    const pid_t b = reader();
    REQUIRE(ready.wait(2));
    IPC_MESSAGE m{};
    m.size = 3;
    m.receiver = uint32_t(b);
    std::memcpy(m.payload, "one", 3);
    REQUIRE(ipc_send_message(uint32_t(c), &m) == 3);
    REQUIRE(ipc_send(uint32_t(c), "all", 3, 0) == 3);
    IPC_MESSAGE got{};
    CHECK(ipc_receive_message(uint32_t(c), &got, 10000) == 3);  // the creator is a reader too
    CHECK(std::memcmp(got.payload, "all", 3) == 0);
    CHECK(wait_exit(a) == 2);
    CHECK(wait_exit(b) == 1);
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}

TEST_CASE("shouldDeliverHigherPrioritiesFirstKeepingSenderOrder") {
  for (uint32_t type : kTypes) {
    CAPTURE(type);
    TempRuntime rt;
    const int c = ipc_create_channel("prio", type, 0);
    REQUIRE(c >= 0);
    const pid_t child = spawn([] {
      const int w = ipc_open_channel("prio", IPC_MODE_WRITE);
      if (w < 0) return 10;
      const uint32_t prios[] = {0, 1, 5, 1, 0, 5, 3};
      for (uint32_t i = 0; i < 7; ++i) {
        IPC_MESSAGE m{};
        m.size = 4;
        m.priority = prios[i];
        std::memcpy(m.payload, &i, 4);
        if (ipc_send_message(uint32_t(w), &m) != 4) return 11;
      }
      return 0;
    });
    REQUIRE(wait_exit(child) == 0);
    for (uint32_t e : {2u, 5u, 6u, 1u, 3u, 0u, 4u}) {
      IPC_MESSAGE m;
      REQUIRE(ipc_receive_message(uint32_t(c), &m, 10000) == 4);
      uint32_t v;
      std::memcpy(&v, m.payload, 4);
      CHECK(v == e);
    }
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}

TEST_CASE("shouldReturnWouldBlockWhenFullOrEmptyAndTimeOut") {
  for (uint32_t type : kTypes) {
    CAPTURE(type);
    TempRuntime rt;
    const int c = ipc_create_channel("nb", type, IPC_BUFFER_MIN);
    REQUIRE(c >= 0);
    const int w = ipc_open_channel("nb", IPC_MODE_WRITE | IPC_MODE_NONBLOCK);
    const int r = ipc_open_channel("nb", IPC_MODE_READ | IPC_MODE_NONBLOCK);
    REQUIRE(w >= 0);
    REQUIRE(r >= 0);
    char b[8];
    CHECK(ipc_receive(uint32_t(r), b, sizeof b) == -EAGAIN);
    int sent = 0;
    while (sent < 100000 && ipc_send(uint32_t(w), &sent, 4, 0) == 4) ++sent;
    CHECK(sent < 100000);  // the queue filled up
    CHECK(ipc_send(uint32_t(w), &sent, 4, 0) == -EAGAIN);
    // Both readers take everything, in order (r must drain too: it is a reader the
    // writer waits for).
    int got_c = 0, got_r = 0;
    for (int spins = 0; spins < 100000 && (got_c < sent || got_r < sent); ++spins) {
      IPC_MESSAGE m;
      int v = -1;
      while (got_r < sent && ipc_receive_message(uint32_t(r), &m, 0) == 4) {
        std::memcpy(&v, m.payload, 4);
        REQUIRE(v == got_r++);
      }
      if (got_c < sent && ipc_receive_message(uint32_t(c), &m, 1) == 4) {
        std::memcpy(&v, m.payload, 4);
        REQUIRE(v == got_c++);
      }
    }
    CHECK(got_c == sent);
    CHECK(got_r == sent);
    IPC_MESSAGE m;
    CHECK(ipc_receive_message(uint32_t(c), &m, 50) == -ETIMEDOUT);
    CHECK(ipc_receive_message(uint32_t(c), &m, 0) == -EAGAIN);
    for (int id : {r, w, c}) CHECK(ipc_close_channel(uint32_t(id)) == 0);
  }
}

TEST_CASE("shouldPollReadableWhileAMessageWaits") {
  for (uint32_t type : kTypes) {
    CAPTURE(type);
    TempRuntime rt;
    const int c = ipc_create_channel("fd", type, 0);
    REQUIRE(c >= 0);
    const int fd = ipc_channel_fd(uint32_t(c));
    REQUIRE(fd >= 0);
    const pid_t child = spawn([] {
      const int w = ipc_open_channel("fd", IPC_MODE_WRITE);
      ::usleep(100000);
      return w >= 0 && ipc_send(uint32_t(w), "x", 1, 0) == 1 ? 0 : 1;
    });
    // The descriptor may wake early (hub work); it must wake for the message.
    int got = -EAGAIN;
    for (int i = 0; i < 100 && got < 0; ++i) {
      pollfd p{fd, POLLIN, 0};
      REQUIRE(::poll(&p, 1, 10000) == 1);
      IPC_MESSAGE m;
      got = ipc_receive_message(uint32_t(c), &m, 0);
    }
    CHECK(got == 1);
    CHECK(wait_exit(child) == 0);
    IPC_MESSAGE m;
    CHECK(ipc_receive_message(uint32_t(c), &m, 0) == -EAGAIN);
    pollfd p{fd, POLLIN, 0};
    CHECK(::poll(&p, 1, 0) == 0);  // nothing waits: not readable
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}

TEST_CASE("shouldReleaseWritersWhenAStalledReaderIsKilled") {
  for (uint32_t type : kTypes) {
    CAPTURE(type);
    TempRuntime rt;
    const int c = ipc_create_channel("stall", type, IPC_BUFFER_MIN);
    REQUIRE(c >= 0);
    Barrier ready, never;
    const pid_t stalled = spawn([&] {
      if (ipc_open_channel("stall", IPC_MODE_READ) < 0) return 10;
      ready.signal();
      never.wait(1);
      return 0;
    });
    REQUIRE(ready.wait(1));
    const int w = ipc_open_channel("stall", IPC_MODE_WRITE | IPC_MODE_NONBLOCK);
    REQUIRE(w >= 0);
    // Send as fast as the creator (also a reader) drains; measure progress over 300 ms.
    auto send_for = [&](int ms) {
      int sent = 0;
      const auto until = fwipc::monotonic_ns() + int64_t(ms) * 1000000;
      while (fwipc::monotonic_ns() < until) {
        if (ipc_send(uint32_t(w), &sent, 4, 0) == 4)
          ++sent;
        else if (drain_available(c) == 0)
          ::usleep(1000);
      }
      return sent;
    };
    const int before = send_for(300);
    const int stuck = send_for(300);
    CHECK(before > 0);
    CHECK(stuck == 0);  // held back by the stalled reader
    ::kill(stalled, SIGKILL);
    CHECK(wait_exit(stalled) == 128 + SIGKILL);
    CHECK(send_for(500) > 100);
    CHECK(ipc_close_channel(uint32_t(w)) == 0);
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}

TEST_CASE("shouldFailSendsAndOpensOnceTheCreatorCloses") {
  for (uint32_t type : kTypes) {
    CAPTURE(type);
    TempRuntime rt;
    const int c = ipc_create_channel("bye", type, 0);
    REQUIRE(c >= 0);
    const int w = ipc_open_channel("bye", IPC_MODE_WRITE);
    REQUIRE(w >= 0);
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
    CHECK(ipc_send(uint32_t(w), "x", 1, 0) == -EPIPE);
    CHECK(ipc_open_channel("bye", IPC_MODE_READ) == -ENOENT);
    CHECK(ipc_close_channel(uint32_t(w)) == 0);
  }
}

TEST_CASE("shouldDeliverTheKernelsSenderPidNotAForgedOne") {
  TempRuntime rt;
  const int c = ipc_create_channel("creds", IPC_TYPE_SOCKET, 0);
  REQUIRE(c >= 0);
  const std::string path = rt.dir() + "/creds.sock";
  const pid_t child = spawn([&] {  // speaks the wire protocol by hand, lying about itself
    const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return 10;
    const fwipc::frame::Frame hello =
        fwipc::frame::make_hello(fwipc::frame::kHelloWrite, uint64_t(fwipc::monotonic_ns()));
    if (::send(fd, &hello, fwipc::frame::kHeaderBytes, 0) != fwipc::frame::kHeaderBytes) return 11;
    const fwipc::MsgHeader h{0, 4, 1, 0, 0};
    const fwipc::frame::Frame f = fwipc::frame::make_data_frame(h, "lie!", 1);  // claims to be init
    if (::send(fd, &f, f.wire_bytes(), 0) != ssize_t(f.wire_bytes())) return 12;
    // Garbage after that gets this connection dropped, and nothing delivered.
    const char junk[40] = "not a frame at all";
    (void)::send(fd, junk, sizeof junk, 0);
    ::usleep(200000);
    return 0;
  });
  IPC_MESSAGE m;
  REQUIRE(ipc_receive_message(uint32_t(c), &m, 10000) == 4);
  CHECK(m.sender == uint32_t(child));
  CHECK(wait_exit(child) == 0);
  CHECK(ipc_receive_message(uint32_t(c), &m, 100) == -ETIMEDOUT);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

TEST_CASE("shouldStampAPipeWritersPidAndRefuseDataInTheChannelFifo") {
  TempRuntime rt;
  const int c = ipc_create_channel("pcreds", IPC_TYPE_PIPE, 0);
  REQUIRE(c >= 0);
  const pid_t child = spawn([] {
    const int w = ipc_open_channel("pcreds", IPC_MODE_WRITE);
    if (w < 0) return 10;
    // What the runtime holds, found and abused by hand: the channel FIFO (JOIN frames
    // only) and this writer's own FIFO (read as this PID's, whatever a frame claims).
    const int chan = fwipc::test::fd_with_target("/pcreds.fifo");
    const int own = fwipc::test::fd_with_target("/pcreds.fifo.w" + std::to_string(::getpid()) + ".", true);
    if (chan < 0 || own < 0) return 11;
    if (fwipc::test::write_forged_frame(chan, 1, "lie1") <= 0) return 12;
    if (ipc_send(uint32_t(w), "ok", 2, 5) != 2) return 13;  // admitted from here on
    if (fwipc::test::write_forged_frame(own, 1, "lie2") <= 0) return 14;
    return 0;
  });
  IPC_MESSAGE m;
  REQUIRE(ipc_receive_message(uint32_t(c), &m, 10000) == 2);
  CHECK(std::string(m.payload, 2) == "ok");
  CHECK(m.sender == uint32_t(child));
  REQUIRE(ipc_receive_message(uint32_t(c), &m, 10000) == 4);
  CHECK(std::string(m.payload, 4) == "lie2");
  CHECK(m.sender == uint32_t(child));  // the FIFO's owner, not init
  CHECK(wait_exit(child) == 0);
  CHECK(ipc_receive_message(uint32_t(c), &m, 200) == -ETIMEDOUT);  // lie1 never arrives
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

// JOIN frames in the channel FIFO can be forged by any member: one naming another reader's
// FIFO must not make that reader get messages twice, nor put it under another PID.
TEST_CASE("shouldIgnoreForgedPipeJoins") {
  TempRuntime rt;
  const int c = ipc_create_channel("joins", IPC_TYPE_PIPE, 0);
  REQUIRE(c >= 0);
  Barrier ready, forged;
  const pid_t reader = spawn([&] {
    const int r = ipc_open_channel("joins", IPC_MODE_READ);
    if (r < 0) return 10;
    ready.signal();
    IPC_MESSAGE m;
    for (const char* want : {"all", "end"})
      if (ipc_receive_message(uint32_t(r), &m, 10000) != 3 || std::memcmp(m.payload, want, 3) != 0) return 11;
    return ipc_receive_message(uint32_t(r), &m, 200) == -ETIMEDOUT ? 0 : 12;
  });
  REQUIRE(ready.wait(1));
  const pid_t liar = spawn([&] {
    if (ipc_open_channel("joins", IPC_MODE_WRITE) < 0) return 10;
    const int chan = fwipc::test::fd_with_target("/joins.fifo");
    if (chan < 0) return 11;
    for (uint32_t id = 1; id < 8; ++id) {
      // The reader's own FIFO again, and the same id claimed for this process.
      if (fwipc::test::write_forged_frame(chan, uint32_t(reader), "", fwipc::frame::kJoin, id) <= 0) return 12;
      if (fwipc::test::write_forged_frame(chan, uint32_t(::getpid()), "", fwipc::frame::kJoin, id) <= 0) return 13;
    }
    forged.signal();
    ::pause();  // alive, so that a unicast to it would have somewhere to go
    return 0;
  });
  REQUIRE(forged.wait(1));
  REQUIRE(ipc_send(uint32_t(c), "all", 3, 0) == 3);
  IPC_MESSAGE m{};
  m.size = 3;
  m.receiver = uint32_t(liar);
  std::memcpy(m.payload, "lie", 3);
  REQUIRE(ipc_send_message(uint32_t(c), &m) == 3);
  REQUIRE(ipc_send(uint32_t(c), "end", 3, 0) == 3);
  CHECK(wait_exit(reader) == 0);
  ::kill(liar, SIGKILL);
  wait_exit(liar);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

TEST_CASE("shouldFallBackToASocketWhenSharedMemoryIsDisabled") {
  TempRuntime rt;
  ::setenv("FWIPC_DISABLE_SHM", "1", 1);
  auto ch = fwipc::Channel::create("fallback", IPC_TYPE_QUEUE, 0);
  ::unsetenv("FWIPC_DISABLE_SHM");
  REQUIRE(ch.ok());
  CHECK(ch->transport() == fwipc::TransportKind::kSocket);
  const pid_t child = spawn([] {
    auto w = fwipc::Channel::open("fallback", IPC_MODE_WRITE);
    if (!w.ok() || w->transport() != fwipc::TransportKind::kSocket) return 10;
    const std::byte b[2] = {std::byte{4}, std::byte{2}};
    return w->send(b, 9) == 2 ? 0 : 11;
  });
  std::byte buf[8];
  fwipc::MsgHeader h{};
  CHECK(ch->receive(buf, &h, 10000) == 2);
  CHECK(h.type == 9);
  CHECK(h.sender == uint32_t(child));
  CHECK(wait_exit(child) == 0);
  auto shm = fwipc::Channel::create("normal", IPC_TYPE_QUEUE, 0);
  REQUIRE(shm.ok());
  CHECK(shm->transport() == fwipc::TransportKind::kShmRing);
}

TEST_CASE("shouldNeverTearOrInterleaveFramesFromFourPipeWriters") {
  TempRuntime rt;
  constexpr uint32_t kWriters = 4;
  constexpr uint32_t kPerWriter = 250'000;
  const int c = ipc_create_channel("fifo", IPC_TYPE_PIPE, 0);
  REQUIRE(c >= 0);
  pid_t pids[kWriters];
  for (uint32_t w = 0; w < kWriters; ++w) {
    pids[w] = spawn([w] {
      const int id = ipc_open_channel("fifo", IPC_MODE_WRITE);
      if (id < 0) return 10;
      char buf[IPC_MAX_PAYLOAD];
      for (uint32_t s = 0; s < kPerWriter; ++s) {
        // Sizes vary so frames straddle every read boundary; bytes encode (writer, seq).
        const uint32_t n = 8 + (s * 37 + w) % 500;
        std::memcpy(buf, &w, 4);
        std::memcpy(buf + 4, &s, 4);
        for (uint32_t i = 8; i < n; ++i) buf[i] = char(w * 31 + s + i);
        if (ipc_send(uint32_t(id), buf, n, w) != int(n)) return 11;
      }
      return 0;
    });
  }
  uint32_t next[kWriters] = {};
  int bad = 0;
  for (uint64_t got = 0; got < uint64_t(kWriters) * kPerWriter && bad == 0; ++got) {
    IPC_MESSAGE m;
    const int n = ipc_receive_message(uint32_t(c), &m, 30000);
    if (n < 8) {
      bad = 1;
      break;
    }
    uint32_t w, s;
    std::memcpy(&w, m.payload, 4);
    std::memcpy(&s, m.payload + 4, 4);
    if (w >= kWriters || m.type != w || s != next[w] || uint32_t(n) != 8 + (s * 37 + w) % 500) {
      bad = 2;
      break;
    }
    for (int i = 8; i < n; ++i)
      if (m.payload[i] != char(w * 31 + s + uint32_t(i))) bad = 3;
    ++next[w];
  }
  CHECK(bad == 0);
  for (uint32_t w = 0; w < kWriters; ++w) {
    CHECK(next[w] == kPerWriter);
    CHECK(wait_exit(pids[w]) == 0);
  }
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

TEST_CASE("shouldCarryBatchesInOrderAndConsumeThemOnEveryTransport") {
  for (uint32_t type : kTypes) {
    CAPTURE(type);
    TempRuntime rt;
    auto c = fwipc::Channel::create("batch", type, 0);
    REQUIRE(c.ok());
    constexpr uint32_t kTotal = 1000;
    const pid_t child = spawn([] {
      auto w = fwipc::Channel::open("batch", IPC_MODE_WRITE);
      if (!w.ok()) return 10;
      uint32_t vals[kTotal];
      std::vector<fwipc::Channel::OutMessage> batch;
      for (uint32_t i = 0; i < kTotal; ++i) {
        vals[i] = i;
        batch.push_back({std::as_bytes(std::span(&vals[i], 1)), i % 7});
        if (batch.size() == 37 || i + 1 == kTotal) {
          if (w->send_batch(batch) != int(batch.size())) return 11;
          batch.clear();
        }
      }
      return 0;
    });
    uint32_t next = 0;
    bool in_order = true;
    while (next < kTotal) {
      const int rc = c->consume(
          [&](const fwipc::MsgHeader& h, std::span<const std::byte> p) {
            uint32_t v = ~0u;
            if (p.size() == 4) std::memcpy(&v, p.data(), 4);
            in_order = in_order && v == next && h.type == next % 7 && h.sender == uint32_t(child);
            ++next;
          },
          16, 10000);
      REQUIRE(rc > 0);
      CHECK(rc <= 16);
    }
    CHECK(in_order);
    CHECK(wait_exit(child) == 0);
  }
}

// A reader receives what is sent after it opened. Here the writer filled the channel until
// -EAGAIN before the reader opened: on SOCKET and PIPE those messages still wait in the
// writer's socket or FIFO when the reader joins, and the hub routes them only afterwards
// (as the creator drains); they are not the new reader's, as on QUEUE, where it joins at
// the ring's tail. Only what the writer sends after the reader's open() reaches it.
TEST_CASE("shouldGiveAReaderThatOpensAfterAFullChannelOnlyWhatIsSentAfterItsOpen") {
  for (uint32_t type : kTypes) {
    CAPTURE(type);
    TempRuntime rt;
    const int c = ipc_create_channel("late", type, IPC_BUFFER_MIN);
    REQUIRE(c >= 0);
    Barrier count, go, opened, drained, checked;
    const pid_t writer = spawn([&] { return fill_then_send_after(count, go); });
    uint32_t n = 0;
    REQUIRE(get_u32(count, &n));
    CHECK(n > 0);
    const pid_t reader = spawn([&] {
      const int r = ipc_open_channel("late", IPC_MODE_READ | IPC_MODE_NONBLOCK);
      if (r < 0) return 10;
      opened.signal();
      if (!drained.wait(1)) return 11;
      char buf[8];
      const int early = ipc_receive(uint32_t(r), buf, sizeof buf);  // the hub has routed all n
      checked.signal();
      if (early != -EAGAIN) return 12;
      IPC_MESSAGE m{};
      int got = -EAGAIN;
      for (int i = 0; i < 10'000 && got == -EAGAIN; ++i)
        if ((got = ipc_receive_message(uint32_t(r), &m, 0)) == -EAGAIN) ::usleep(1000);
      uint32_t v = 0;
      std::memcpy(&v, m.payload, 4);
      if (got != 4 || v != kAfter || m.sender != uint32_t(writer)) return 13;
      ::usleep(100'000);
      return ipc_receive_message(uint32_t(r), &m, 0) == -EAGAIN ? 0 : 14;
    });
    REQUIRE(opened.wait(1));
    // The creator, a reader since creation, gets all n; routing them is the hub's work.
    uint32_t got = 0;
    IPC_MESSAGE m;
    for (; got < n; ++got) {
      uint32_t v = ~0u;
      if (ipc_receive_message(uint32_t(c), &m, 10000) != 4) break;
      std::memcpy(&v, m.payload, 4);
      if (v != got || m.sender != uint32_t(writer)) break;
    }
    CHECK(got == n);
    CHECK(ipc_receive_message(uint32_t(c), &m, 0) == -EAGAIN);
    drained.signal();
    REQUIRE(checked.wait(1));
    go.signal();
    REQUIRE(ipc_receive_message(uint32_t(c), &m, 10000) == 4);  // also routes it to the reader
    uint32_t v = 0;
    std::memcpy(&v, m.payload, 4);
    CHECK(v == kAfter);
    CHECK(wait_exit(writer) == 0);
    CHECK(wait_exit(reader) == 0);
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}

// The same backlog, but the message sent after the reader's open() is queued behind it in
// the writer's own buffer: the join filter must skip exactly the older frames, no more.
TEST_CASE("shouldDeliverASendAfterOpenThatWaitsBehindOlderFrames") {
  for (uint32_t type : kTypes) {
    CAPTURE(type);
    TempRuntime rt;
    const int c = ipc_create_channel("late", type, IPC_BUFFER_MIN);
    REQUIRE(c >= 0);
    Barrier count, go, opened;
    const pid_t writer = spawn([&] { return fill_then_send_after(count, go); });
    uint32_t n = 0;
    REQUIRE(get_u32(count, &n));
    const pid_t reader = spawn([&] {
      const int r = ipc_open_channel("late", IPC_MODE_READ);
      if (r < 0) return 10;
      opened.signal();
      IPC_MESSAGE m;
      if (ipc_receive_message(uint32_t(r), &m, 20000) != 4) return 11;
      uint32_t v = 0;
      std::memcpy(&v, m.payload, 4);
      if (v != kAfter || m.sender != uint32_t(writer)) return 12;  // not one of the n before
      return ipc_receive_message(uint32_t(r), &m, 200) == -ETIMEDOUT ? 0 : 13;
    });
    REQUIRE(opened.wait(1));
    go.signal();  // kAfter goes out while the n older messages still wait
    CHECK(take_all_then_after(c, n, writer) == n + 1);
    CHECK(wait_exit(writer) == 0);
    CHECK(wait_exit(reader) == 0);
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}
