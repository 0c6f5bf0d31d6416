// Multi-process behaviour with real processes, real shared memory and a real registry.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <set>
#include <string>

#include "fwipc/channel.hpp"
#include "ipc.h"
#include "tests/support.h"

using fwipc::test::Barrier;
using fwipc::test::spawn;
using fwipc::test::TempRuntime;
using fwipc::test::wait_exit;

namespace {

struct Record {
  uint32_t writer;
  uint32_t len;  // pattern bytes after the record
  uint64_t seq;
  uint64_t checksum;
};

uint64_t fnv(uint64_t h, const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

uint32_t build(uint32_t writer, uint64_t seq, char* out) {
  Record r{writer, uint32_t(seq % 97), seq, 0};
  char* pat = out + sizeof r;
  for (uint32_t i = 0; i < r.len; ++i) pat[i] = char(seq * 7 + i * 13 + writer);
  r.checksum = fnv(fnv(1469598103934665603ull, &r, 16), pat, r.len);
  std::memcpy(out, &r, sizeof r);
  return uint32_t(sizeof r + r.len);
}

// 0 if the message is intact and next in its writer's sequence.
int verify(const char* buf, int n, uint64_t* next_seq, uint32_t writers) {
  Record r;
  if (n < int(sizeof r)) return 20;
  std::memcpy(&r, buf, sizeof r);
  if (r.writer >= writers || n != int(sizeof r + r.len)) return 21;
  if (fnv(fnv(1469598103934665603ull, &r, 16), buf + sizeof r, r.len) != r.checksum) return 22;
  if (r.seq != next_seq[r.writer]) return 23;  // lost, duplicated or reordered
  next_seq[r.writer]++;
  return 0;
}

}  // namespace

TEST_CASE("shouldBroadcastTwoMillionMessagesFromTwoWritersToTwoReadersIntact") {
  TempRuntime rt;
  constexpr uint32_t kWriters = 2;
  constexpr uint64_t kPerWriter = 1'000'000;
  Barrier readers_ready, go;
  auto reader = [&](bool create) {
    return spawn([&, create] {
      const int id =
          create ? ipc_create_channel("stress", IPC_TYPE_QUEUE, 1024 * 576) : ipc_open_channel("stress", IPC_MODE_READ);
      if (id < 0) return 10;
      readers_ready.signal();
      uint64_t next[kWriters] = {};
      std::map<uint32_t, uint32_t> sender_of;  // writer index -> PID seen
      char buf[IPC_MAX_PAYLOAD];
      for (uint64_t got = 0; got < kWriters * kPerWriter; ++got) {
        IPC_MESSAGE m;
        const int n = ipc_receive_message(uint32_t(id), &m, 30000);
        if (n < 0) return 11;
        std::memcpy(buf, m.payload, size_t(n));
        if (int rc = verify(buf, n, next, kWriters); rc != 0) return rc;
        uint32_t w;
        std::memcpy(&w, buf, 4);
        auto [it, fresh] = sender_of.emplace(w, m.sender);
        if (it->second != m.sender) return 24;  // sender must be the real writer's PID
      }
      for (uint32_t w = 0; w < kWriters; ++w)
        if (next[w] != kPerWriter) return 25;
      return 0;
    });
  };
  const pid_t a = reader(true);
  REQUIRE(readers_ready.wait(1));
  const pid_t b = reader(false);
  REQUIRE(readers_ready.wait(1));
  pid_t writers[kWriters];
  for (uint32_t w = 0; w < kWriters; ++w) {
    writers[w] = spawn([&, w] {
      const int id = ipc_open_channel("stress", IPC_MODE_WRITE);
      if (id < 0) return 30;
      go.wait(1);
      char buf[IPC_MAX_PAYLOAD];
      for (uint64_t s = 0; s < kPerWriter; ++s) {
        const uint32_t n = build(w, s, buf);
        if (ipc_send(uint32_t(id), buf, n, 1) != int(n)) return 31;
      }
      return 0;
    });
  }
  for (uint32_t w = 0; w < kWriters; ++w) go.signal();
  for (pid_t w : writers) CHECK(wait_exit(w) == 0);
  CHECK(wait_exit(a) == 0);
  CHECK(wait_exit(b) == 0);
}

TEST_CASE("shouldUnblockWritersWhenAStalledReaderIsKilled") {
  TempRuntime rt;
  Barrier ready, done;
  const pid_t service = spawn([&] {  // creates and drains, as a service would
    const int id = ipc_create_channel("svc", IPC_TYPE_QUEUE, IPC_BUFFER_MIN);
    if (id < 0) return 10;
    ready.signal();
    char buf[16];
    for (int i = 0; i < 100; ++i)
      if (ipc_receive(uint32_t(id), buf, sizeof buf) != 4) return 11;
    return 0;
  });
  REQUIRE(ready.wait(1));
  const pid_t stalled = spawn([&] {  // opens for reading, then never reads
    if (ipc_open_channel("svc", IPC_MODE_READ) < 0) return 10;
    ready.signal();
    done.wait(1);
    return 0;
  });
  REQUIRE(ready.wait(1));
  const int w = ipc_open_channel("svc", IPC_MODE_WRITE | IPC_MODE_NONBLOCK);
  REQUIRE(w >= 0);
  int sent = 0;
  while (sent < 100 && ipc_send(uint32_t(w), &sent, 4, 0) == 4) ++sent;
  CHECK(sent == 16);  // held back by the stalled reader
  ::kill(stalled, SIGKILL);
  CHECK(wait_exit(stalled) == 128 + SIGKILL);
  while (sent < 100) {
    const int rc = ipc_send(uint32_t(w), &sent, 4, 0);
    if (rc == 4)
      ++sent;
    else if (rc == -EAGAIN)
      ::usleep(1000);
    else
      break;
  }
  CHECK(sent == 100);
  CHECK(wait_exit(service) == 0);
  CHECK(ipc_close_channel(uint32_t(w)) == 0);
}

TEST_CASE("shouldKeepMappedChannelsWorkingAcrossARegistryRestart") {
  TempRuntime rt;
  const int c = ipc_create_channel("survivor", IPC_TYPE_QUEUE, 0);
  REQUIRE(c >= 0);
  Barrier opened, go;
  const pid_t writer = spawn([&] {
    const int w = ipc_open_channel("survivor", IPC_MODE_WRITE);
    if (w < 0) return 10;
    opened.signal();
    go.wait(1);
    for (int i = 0; i < 1000; ++i)
      if (ipc_send(uint32_t(w), &i, 4, 0) != 4) return 11;
    return 0;
  });
  REQUIRE(opened.wait(1));
  const pid_t old_registry = rt.registry_pid();
  REQUIRE(old_registry > 0);
  rt.kill_registry();
  go.signal();
  for (int i = 0; i < 1000; ++i) {
    int v = -1;
    REQUIRE(ipc_receive(uint32_t(c), &v, 4) == 4);
    CHECK(v == i);
  }
  CHECK(wait_exit(writer) == 0);
  // The next call starts a new registry, which serves new channels.
  const int fresh = ipc_create_channel("after", IPC_TYPE_QUEUE, 0);
  CHECK(fresh >= 0);
  CHECK(rt.registry_pid() != old_registry);
  CHECK(ipc_close_channel(uint32_t(fresh)) == 0);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);  // known only to the dead registry
}

TEST_CASE("shouldReleaseADeadReaderEvenWhileTheRegistryIsDown") {
  TempRuntime rt;
  const int c = ipc_create_channel("orphan", IPC_TYPE_QUEUE, IPC_BUFFER_MIN);
  REQUIRE(c >= 0);
  Barrier ready, done;
  const pid_t stalled = spawn([&] {
    if (ipc_open_channel("orphan", IPC_MODE_READ) < 0) return 10;
    ready.signal();
    done.wait(1);
    return 0;
  });
  REQUIRE(ready.wait(1));
  rt.kill_registry();
  int buf;
  for (int i = 0; i < 16; ++i) REQUIRE(ipc_send(uint32_t(c), &i, 4, 0) == 4);
  for (int i = 0; i < 16; ++i) REQUIRE(ipc_receive(uint32_t(c), &buf, 4) == 4);
  ::kill(stalled, SIGKILL);
  CHECK(wait_exit(stalled) == 128 + SIGKILL);
  // Blocking send: the writer's liveness check frees the dead cursor.
  CHECK(ipc_send(uint32_t(c), &buf, 4, 0) == 4);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

TEST_CASE("shouldDeliverAUnicastOnlyToTheAddressedProcess") {
  TempRuntime rt;
  const int c = ipc_create_channel("uni", IPC_TYPE_QUEUE, 0);
  REQUIRE(c >= 0);
  Barrier ready;
  // Each reader reports what it got: the unicast payload, or nothing, then the broadcast.
  auto reader = [&] {
    return spawn([&] {
      const int id = ipc_open_channel("uni", IPC_MODE_READ);
      if (id < 0) return 10;
      ready.signal();
      IPC_MESSAGE m;
      if (ipc_receive_message(uint32_t(id), &m, 10000) < 0) return 11;
      if (m.receiver == uint32_t(::getpid())) {  // the unicast must come first, then the end
        if (std::memcmp(m.payload, "for-you", 7) != 0) return 12;
        if (ipc_receive_message(uint32_t(id), &m, 10000) < 0) return 13;
        return m.receiver == 0 && std::memcmp(m.payload, "end", 3) == 0 ? 1 : 14;
      }
      return m.receiver == 0 && std::memcmp(m.payload, "end", 3) == 0 ? 2 : 15;
    });
  };
  const pid_t a = reader();
  const pid_t b = reader();
  REQUIRE(ready.wait(2));
  IPC_MESSAGE m{};
  m.size = 7;
  m.receiver = uint32_t(b);
  std::memcpy(m.payload, "for-you", 7);
  REQUIRE(ipc_send_message(uint32_t(c), &m) == 7);
  REQUIRE(ipc_send(uint32_t(c), "end", 3, 0) == 3);
  CHECK(wait_exit(a) == 2);  // saw only the broadcast
  CHECK(wait_exit(b) == 1);  // saw the unicast, then the broadcast
  // The creator is not the addressee either.
  CHECK(ipc_receive_message(uint32_t(c), &m, 1000) == 3);
  CHECK(std::memcmp(m.payload, "end", 3) == 0);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

// A writer SIGKILLed between claiming a slot and committing it: readers skip the claim
// (never see its half-written bytes) and everything committed around it arrives (ring v2:
// without waiting for the victim at all). One
// reader blocks in receive, one waits on its pollable descriptor (woken via the registry).
TEST_CASE("shouldSkipTheClaimOfAWriterKilledMidWrite") {
  TempRuntime rt;
  auto owner = fwipc::Channel::create("midwrite", IPC_TYPE_QUEUE, 0);
  REQUIRE(owner.ok());
  auto poller = fwipc::Channel::open("midwrite", IPC_MODE_READ);
  REQUIRE(poller.ok());
  const int pfd = poller->fd();
  REQUIRE(pfd >= 0);
  Barrier claimed;
  const pid_t victim = spawn([&] {
    auto w = fwipc::Channel::open("midwrite", IPC_MODE_WRITE);
    if (!w.ok()) return 10;
    if (w->send(std::as_bytes(std::span("before", 6)), 1) != 6) return 11;
    auto l = w->loan();
    if (!l.ok()) return 12;
    std::memcpy(l->payload().data(), "TORN", 4);
    claimed.signal();
    ::pause();  // killed here, holding the claim
    return 13;
  });
  REQUIRE(claimed.wait(1));
  const int w = ipc_open_channel("midwrite", IPC_MODE_WRITE);
  REQUIRE(w >= 0);
  REQUIRE(ipc_send(uint32_t(w), "after", 5, 1) == 5);
  char buf[16];
  if (fwipc::test::ring_v2()) {
    // A ring per writer: the claim holds back only the victim's own ring, so "after"
    // does not wait for it; the torn record is never delivered.
    auto both = [&](fwipc::Channel& r, int timeout_ms) {
      std::multiset<std::string> got;
      for (int i = 0; i < 2; ++i) {
        const int n = r.receive(std::as_writable_bytes(std::span(buf)), nullptr, timeout_ms);
        if (n > 0) got.insert(std::string(buf, size_t(n)));
      }
      return got == std::multiset<std::string>{"before", "after"};
    };
    CHECK(both(*poller, 0));
    ::kill(victim, SIGKILL);
    CHECK(wait_exit(victim) == 128 + SIGKILL);
    CHECK(both(*owner, 10000));
    CHECK(poller->receive(std::as_writable_bytes(std::span(buf)), nullptr, 0) == -EAGAIN);
    CHECK(owner->receive(std::as_writable_bytes(std::span(buf)), nullptr, 200) == -ETIMEDOUT);
    CHECK(ipc_close_channel(uint32_t(w)) == 0);
    return;
  }
  // The poller drains "before"; "after" waits behind the claim.
  CHECK(poller->receive(std::as_writable_bytes(std::span(buf)), nullptr, 0) == 6);
  CHECK(poller->receive(std::as_writable_bytes(std::span(buf)), nullptr, 0) == -EAGAIN);
  ::kill(victim, SIGKILL);
  CHECK(wait_exit(victim) == 128 + SIGKILL);
  CHECK(owner->receive(std::as_writable_bytes(std::span(buf)), nullptr, 10000) == 6);
  CHECK(std::memcmp(buf, "before", 6) == 0);
  CHECK(owner->receive(std::as_writable_bytes(std::span(buf)), nullptr, 10000) == 5);
  CHECK(std::memcmp(buf, "after", 5) == 0);
  // Woken without calling receive: whoever abandons the claim pings armed readers.
  pollfd p{pfd, POLLIN, 0};
  CHECK(::poll(&p, 1, 10000) == 1);
  CHECK(poller->receive(std::as_writable_bytes(std::span(buf)), nullptr, 0) == 5);
  CHECK(std::memcmp(buf, "after", 5) == 0);
  CHECK(ipc_close_channel(uint32_t(w)) == 0);
}

// A restarted registry takes over the channels of live creators from its state file (new
// openers find them by name, on every transport), forgets them when their creator closes
// them, and removes files a crash left behind.
TEST_CASE("shouldFindChannelsByNameAfterARegistryRestart") {
  TempRuntime rt;
  struct Kind {
    const char* name;
    uint32_t type;
  };
  const Kind kinds[] = {{"kept-q", IPC_TYPE_QUEUE}, {"kept-s", IPC_TYPE_SOCKET}, {"kept-p", IPC_TYPE_PIPE}};
  int ids[3] = {-1, -1, -1};
  for (int i = 0; i < 3; ++i) {
    ids[i] = ipc_create_channel(kinds[i].name, kinds[i].type, 0);
    REQUIRE(ids[i] >= 0);
  }
  const std::string ghost = rt.dir() + "/ghost.sock", ghost_fifo = rt.dir() + "/ghost.fifo.3";
  for (const std::string& g : {ghost, ghost_fifo}) {
    const int fd = ::open(g.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    ::close(fd);
  }
  rt.kill_registry();
  for (int i = 0; i < 3; ++i) {
    const pid_t w = spawn([&, i] {
      const int id = ipc_open_channel(kinds[i].name, IPC_MODE_WRITE);  // auto-starts a registry
      if (id < 0) return 10;
      return ipc_send(uint32_t(id), kinds[i].name, 6, 1) == 6 ? 0 : 11;
    });
    char buf[16] = {};
    CHECK(ipc_receive(uint32_t(ids[i]), buf, sizeof buf) == 6);
    CHECK(std::memcmp(buf, kinds[i].name, 6) == 0);
    CHECK(wait_exit(w) == 0);
  }
  CHECK(::access(ghost.c_str(), F_OK) != 0);
  CHECK(::access(ghost_fifo.c_str(), F_OK) != 0);
  // Closing through a registry that never knew the id: the name goes at its next sweep.
  for (int i = 0; i < 3; ++i) {
    REQUIRE(ipc_close_channel(uint32_t(ids[i])) == 0);
    int rc = 0;
    for (int tries = 0; tries < 300 && (rc = ipc_open_channel(kinds[i].name, IPC_MODE_WRITE)) >= 0; ++tries) {
      ipc_close_channel(uint32_t(rc));
      ::usleep(10000);
    }
    CHECK(rc == -ENOENT);
  }
}
