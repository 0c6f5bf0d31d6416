// The service layer over the real runtime: a service in a child process (it reports
// READY=1 on a notify socket the test binds), callers in this process or in more
// children. Bodies of every size on every channel type; one-way messages; expiry of an
// abandoned transfer on the loop's timer; SIGTERM in the middle of a burst of calls; a
// service whose own reader is evicted (IPC_OVERFLOW_EVICT) reopening it and serving on.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "fwsvc.h"
#include "service/test_support.h"
#include "service/wire.h"

using fwipc::test::Barrier;
using fwsvc::test::spawn;
using fwsvc::test::TempRuntime;
using fwsvc::test::wait_exit;

namespace {

constexpr uint32_t kEcho = 1;
constexpr uint32_t kStats = 2;

void echo(void*, const fwsvc_request* req) { fwsvc_reply(req, 0, req->body, req->body_len); }

void stats(void* ctx, const fwsvc_request* req) {
  fwsvc_stats st;
  fwsvc_service_stats(*static_cast<fwsvc_service**>(ctx), &st);
  fwsvc_reply(req, 0, &st, sizeof st);
}

using Setup = std::function<void(fwsvc_loop*, fwsvc_service*)>;

// A service in a child process, ready when this returns (it said READY=1). The child
// exits 0 when its loop returned 0, 100 + |errno| when setting up failed.
pid_t start_service(const std::string& name, uint32_t type, const Setup& setup, const fwsvc_options* opts = nullptr) {
  const fwipc::test::NotifySocket notify;
  const pid_t pid = spawn([&] {
    ::setenv("NOTIFY_SOCKET", notify.path().c_str(), 1);
    fwsvc_options o;
    fwsvc_options_init(&o);
    if (opts != nullptr) o = *opts;
    o.type = type;
    fwsvc_loop* loop = nullptr;
    fwsvc_service* svc = nullptr;
    int rc = fwsvc_loop_new(&loop);
    if (rc == 0) rc = fwsvc_service_new(loop, name.c_str(), &o, &svc);
    if (rc < 0) return 100 - rc;
    fwsvc_service* self = svc;
    fwsvc_service_add_method(svc, kEcho, echo, nullptr);
    fwsvc_service_add_method(svc, kStats, stats, &self);
    if (setup) setup(loop, svc);
    if (fwsvc_notify("READY=1") != 1) return 99;
    rc = fwsvc_loop_run(loop);
    fwsvc_service_free(svc);
    fwsvc_loop_free(loop);
    return rc == 0 ? 0 : (rc < 0 ? 100 - rc : rc);
  });
  if (!notify.wait_ready(pid, 10000)) {
    ::kill(pid, SIGKILL);
    FAIL("the service never said READY=1: exit " << wait_exit(pid));
  }
  return pid;
}

std::vector<uint8_t> body(size_t n, uint32_t seed) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t((i * 131 + seed) >> 1);
  return b;
}

fwsvc_stats stats_of(int ch) {
  fwsvc_stats st{};
  size_t len = 0;
  REQUIRE(fwsvc_call(uint32_t(ch), kStats, nullptr, 0, &st, sizeof st, &len, 5000) == 0);
  REQUIRE(len == sizeof st);
  return st;
}

}  // namespace

TEST_CASE("shouldCarryBodiesOf0_1_512_513And64KiBIntactOnEveryChannelType") {
  TempRuntime rt;
  for (uint32_t type : {IPC_TYPE_QUEUE, IPC_TYPE_SOCKET, IPC_TYPE_PIPE}) {
    CAPTURE(type);
    const std::string name = "sizes" + std::to_string(type);
    const pid_t svc = start_service(name, type, nullptr);
    const int ch = ipc_open_channel(name.c_str(), IPC_MODE_WRITE);
    REQUIRE(ch >= 0);
    for (size_t n : {size_t(0), size_t(1), size_t(512), size_t(513), size_t(64 * 1024)}) {
      CAPTURE(n);
      const auto b = body(n, uint32_t(n));
      std::vector<uint8_t> r(64 * 1024 + 1);
      size_t len = 0;
      CHECK(fwsvc_call(uint32_t(ch), kEcho, b.data(), b.size(), r.data(), r.size(), &len, 10000) == 0);
      REQUIRE(len == n);
      r.resize(len);
      CHECK(r == b);
    }
    CHECK(fwsvc_call(uint32_t(ch), 77, "x", 1, nullptr, 0, nullptr, 5000) == -ENOSYS);
    // Served by this test's uid: fwsvc_open takes it for that uid only.
    CHECK(fwsvc_open(name.c_str(), ::getuid() + 1, 0) == -EPERM);
    const int checked = fwsvc_open(name.c_str(), ::getuid(), 0);
    CHECK(checked >= 0);
    CHECK(fwsvc_call(uint32_t(checked), kEcho, "y", 1, nullptr, 0, nullptr, 5000) == -EMSGSIZE);
    ipc_close_channel(uint32_t(checked));
    CHECK(fwsvc_open("no-such-service", ::getuid(), 0) == -ENOENT);
    const fwsvc_stats st = stats_of(ch);
    CHECK(st.calls == 5 + 1 + 1);  // 5 echoes, the echo into no room, this stats call
    CHECK(st.unknown_method == 1);
    CHECK(st.transfers == 0);
    CHECK(ipc_close_channel(uint32_t(ch)) == 0);
    ::kill(svc, SIGTERM);
    CHECK(wait_exit(svc, 10000) == 0);
  }
}

TEST_CASE("shouldHandOneWayMessagesToTheMessageHandler") {
  TempRuntime rt;
  const pid_t svc = start_service("oneway", IPC_TYPE_QUEUE, [](fwsvc_loop* loop, fwsvc_service* s) {
    static fwsvc_loop* l;
    static int seen;
    l = loop;
    fwsvc_service_on_message(
        s,
        [](void*, const IPC_MESSAGE* m) {
          // The three messages in order; then the loop ends with 0.
          if (m->size != 1 || m->payload[0] != char('a' + seen)) fwsvc_loop_quit(l, 50);
          if (++seen == 3) fwsvc_loop_quit(l, 0);
        },
        nullptr);
  });
  const int ch = ipc_open_channel("oneway", IPC_MODE_WRITE);
  REQUIRE(ch >= 0);
  for (char c : {'a', 'b', 'c'}) CHECK(ipc_send(uint32_t(ch), &c, 1, 5) == 1);
  CHECK(wait_exit(svc, 10000) == 0);
  ipc_close_channel(uint32_t(ch));
}

TEST_CASE("shouldAnswerGarbageAndExpireAnAbandonedTransferOnTheLoopsTimer") {
  TempRuntime rt;
  fwsvc_options o;
  fwsvc_options_init(&o);
  o.transfer_timeout_ms = 100;
  const pid_t svc = start_service("expiry", IPC_TYPE_QUEUE, nullptr, &o);
  const int ch = ipc_open_channel("expiry", IPC_MODE_WRITE);
  REQUIRE(ch >= 0);
  // The first fragment of a 2-fragment request, and nothing after it.
  IPC_MESSAGE req{}, reply{};
  std::vector<uint8_t> data(fwsvc::kFragmentDataBytes, 1);
  req.size = uint32_t(fwsvc::encode(reinterpret_cast<uint8_t*>(req.payload), fwsvc::kRequest, kEcho, 77, 0,
                                    2 * fwsvc::kFragmentDataBytes, data));
  REQUIRE(ipc_call(uint32_t(ch), &req, &reply, 5000) >= 0);
  CHECK(stats_of(ch).transfers == 1);
  // Garbage gets an error answer, not silence, and changes nothing else.
  IPC_MESSAGE junk{};
  junk.size = 40;
  std::memset(junk.payload, 0x5a, junk.size);
  REQUIRE(ipc_call(uint32_t(ch), &junk, &reply, 5000) >= 0);
  fwsvc::FragmentHeader h{};
  std::span<const uint8_t> d;
  REQUIRE(fwsvc::decode(reinterpret_cast<const uint8_t*>(reply.payload), reply.size, &h, &d));
  CHECK(h.op == fwsvc::kError);
  CHECK(int32_t(h.word) == -EBADMSG);
  CHECK(stats_of(ch).malformed == 1);
  ::usleep(400 * 1000);  // > 1.5 timeouts
  const fwsvc_stats st = stats_of(ch);
  CHECK(st.transfers == 0);
  CHECK(st.expired == 1);
  ::kill(svc, SIGTERM);
  CHECK(wait_exit(svc, 10000) == 0);
  ipc_close_channel(uint32_t(ch));
}

TEST_CASE("shouldServeCallsWithoutHoldingItsChannelBackWhenCreatedWithoutRead") {
  TempRuntime rt;
  fwsvc_options o;
  fwsvc_options_init(&o);
  o.creator_mode = IPC_MODE_WRITE;
  o.buffer_size = IPC_BUFFER_MIN;  // 16 slots
  const pid_t svc = start_service("writer", IPC_TYPE_QUEUE, nullptr, &o);
  const int ch = ipc_open_channel("writer", IPC_MODE_WRITE | IPC_MODE_NONBLOCK);
  REQUIRE(ch >= 0);
  // Far more than the ring holds: no reader, so nothing waits for the service to read.
  for (int i = 0; i < 200; ++i) REQUIRE(ipc_send(uint32_t(ch), "m", 1, 0) == 1);
  const auto b = body(2000, 3);
  std::vector<uint8_t> r(2000);
  size_t len = 0;
  CHECK(fwsvc_call(uint32_t(ch), kEcho, b.data(), b.size(), r.data(), r.size(), &len, 5000) == 0);
  CHECK(r == b);
  const fwsvc_stats st = stats_of(ch);
  CHECK(st.messages_dropped == 0);  // it never received them
  ::kill(svc, SIGTERM);
  CHECK(wait_exit(svc, 10000) == 0);
  ipc_close_channel(uint32_t(ch));
}

namespace {

// Burst records: (client, seq) pairs appended to a file, one 8-byte write each (O_APPEND
// writes of one record never interleave).
struct Record {
  uint32_t client;
  uint32_t seq;
  bool operator<(const Record& o) const { return std::pair(client, seq) < std::pair(o.client, o.seq); }
};

void append(int fd, Record r) { (void)!::write(fd, &r, sizeof r); }

std::vector<Record> read_records(const std::string& path) {
  std::vector<Record> out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  Record r;
  while (fd >= 0 && ::read(fd, &r, sizeof r) == sizeof r) out.push_back(r);
  if (fd >= 0) ::close(fd);
  return out;
}

off_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : 0;
}

int g_handled_fd = -1;

// Logs (client, seq) from the body's first 8 bytes, then echoes.
void logged_echo(void*, const fwsvc_request* req) {
  Record r{};
  if (req->body_len >= sizeof r) std::memcpy(&r, req->body, sizeof r);
  append(g_handled_fd, r);
  fwsvc_reply(req, 0, req->body, req->body_len);
}

}  // namespace

TEST_CASE("shouldEndTheLoopOnSigtermDuringABurstWithEveryAnsweredCallAnsweredOnce") {
  TempRuntime rt;
  const std::string handled = rt.dir() + "/handled";
  const std::string answered = rt.dir() + "/answered";
  constexpr uint32_t kMethod = 3;
  constexpr int kClients = 3;
  const pid_t svc = start_service("burst", IPC_TYPE_QUEUE, [&](fwsvc_loop*, fwsvc_service* s) {
    g_handled_fd = ::open(handled.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    fwsvc_service_add_method(s, kMethod, logged_echo, nullptr);
  });
  std::vector<pid_t> clients;
  // Every client opens before the SIGTERM can come: the first two could otherwise answer 300
  // calls before the third has started, and it would find the name gone (-ENOENT).
  fwipc::test::Barrier opened;
  for (uint32_t c = 1; c <= kClients; ++c) {
    clients.push_back(spawn([&, c] {
      const int afd = ::open(answered.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      const int ch = ipc_open_channel("burst", IPC_MODE_WRITE);
      if (afd < 0) return 2;
      if (ch < 0) return 100 - ch;  // 100 + errno
      opened.signal();
      std::vector<uint8_t> r(4096);
      for (uint32_t seq = 0;; ++seq) {
        // Every third call takes three fragments each way.
        auto b = body(seq % 3 == 0 ? 1200 : 16, seq);
        const Record rec{c, seq};
        std::memcpy(b.data(), &rec, sizeof rec);
        size_t len = 0;
        const int rc = fwsvc_call(uint32_t(ch), kMethod, b.data(), b.size(), r.data(), r.size(), &len, 5000);
        if (rc == -EPROTO || rc == -EBADMSG) return 3;  // the protocol broke: never acceptable
        if (rc < 0) return 0;                           // the service is gone
        if (rc != 0 || len != b.size() || std::memcmp(r.data(), b.data(), len) != 0) return 4;
        append(afd, rec);
      }
    }));
  }
  REQUIRE(opened.wait(kClients));
  // SIGTERM once the burst is well under way.
  for (int i = 0; i < 2000 && file_size(answered) < off_t(300 * sizeof(Record)); ++i) ::usleep(5000);
  REQUIRE(file_size(answered) >= off_t(300 * sizeof(Record)));
  ::kill(svc, SIGTERM);
  CHECK(wait_exit(svc, 10000) == 0);
  for (pid_t c : clients) CHECK(wait_exit(c, 20000) == 0);

  const auto h = read_records(handled);
  const auto a = read_records(answered);
  const std::set<Record> hs(h.begin(), h.end());
  const std::set<Record> as(a.begin(), a.end());
  CHECK(hs.size() == h.size());                        // no handler ran twice for one call
  CHECK(as.size() == a.size());                        // no call was answered twice
  for (const Record& r : as) CHECK(hs.count(r) == 1);  // every answer came from a handled call
  // Handled but unanswered: at most the one call per client in flight at the SIGTERM.
  CHECK(hs.size() - as.size() <= size_t(kClients));
  MESSAGE(as.size() << " calls answered before SIGTERM, " << hs.size() - as.size() << " handled in flight");
}

namespace {

constexpr uint32_t kHold = 7;       // message type: the handler blocks until released
constexpr uint32_t kAfterType = 8;  // message type: sent once the reader was reopened
constexpr uint32_t kSeen = 4;       // method: how many kAfterType messages, in order or not

// What a service child saw of the messages sent after its reader was reopened.
struct Seen {
  const fwipc::test::Barrier* hold = nullptr;
  uint32_t after = 0;
  uint32_t in_order = 1;
};

void on_evictable_message(void* ctx, const IPC_MESSAGE* m) {
  auto* seen = static_cast<Seen*>(ctx);
  if (m->type == kHold) {
    seen->hold->wait(1);  // a stuck handler: the loop takes nothing meanwhile
  } else if (m->type == kAfterType) {
    uint32_t seq = 0;
    std::memcpy(&seq, m->payload, sizeof seq);
    if (seq != seen->after) seen->in_order = 0;
    ++seen->after;
  }
}

void seen_method(void* ctx, const fwsvc_request* req) {
  const auto* seen = static_cast<const Seen*>(ctx);
  const uint32_t r[2] = {seen->after, seen->in_order};
  fwsvc_reply(req, 0, r, sizeof r);
}

}  // namespace

// IPC_OVERFLOW_EVICT: a service whose loop is stuck in a handler while writers are held
// back has its own reader evicted. It takes what it still had, counts the eviction,
// reads from a reopened id and answers calls as before: it does not quit.
TEST_CASE("shouldReopenItsEvictedReaderAndKeepServingOnEveryChannelType") {
  constexpr uint32_t kBurst = 3000;  // more than the kernel buffers between writer and hub
  constexpr uint32_t kAfter = 50;
  TempRuntime rt;
  const std::vector<uint32_t> types = {IPC_TYPE_QUEUE, IPC_TYPE_SOCKET, IPC_TYPE_PIPE};
  fwipc::test::Barrier hold[3];
  std::vector<pid_t> svcs;
  // Every service is forked before this process opens a channel of this test.
  for (size_t i = 0; i < types.size(); ++i) {
    fwsvc_options o;
    fwsvc_options_init(&o);
    o.buffer_size = IPC_BUFFER_MIN;
    o.overflow = IPC_OVERFLOW_EVICT;
    o.evict_after_ms = 300;  // generous: a healthy loop under a sanitizer is never this late
    const Barrier* h = &hold[i];
    svcs.push_back(start_service(
        "evict" + std::to_string(types[i]), types[i],
        [h](fwsvc_loop*, fwsvc_service* s) {
          static Seen seen;
          seen.hold = h;
          fwsvc_service_on_message(s, on_evictable_message, &seen);
          fwsvc_service_add_method(s, kSeen, seen_method, &seen);
        },
        &o));
  }
  for (size_t i = 0; i < types.size(); ++i) {
    CAPTURE(types[i]);
    const std::string name = "evict" + std::to_string(types[i]);
    const int ch = ipc_open_channel(name.c_str(), IPC_MODE_WRITE);
    REQUIRE(ch >= 0);
    REQUIRE(ipc_send(uint32_t(ch), "h", 1, kHold) == 1);
    // Blocks on the stuck service until its reader is evicted, then goes on.
    char rec[64] = {};
    for (uint32_t n = 0; n < kBurst; ++n) REQUIRE(ipc_send(uint32_t(ch), rec, sizeof rec, 1) == int(sizeof rec));
    hold[i].signal();
    // It drains what it had, meets -ENOBUFS and reopens (awaited through its counter).
    fwsvc_stats st{};
    for (int tries = 0; tries < 1000 && (st = stats_of(ch)).reader_evictions == 0; ++tries) ::usleep(10000);
    REQUIRE(st.reader_evictions == 1);
    CHECK(st.messages >= 1);          // the hold message, at least
    CHECK(st.messages < 1 + kBurst);  // it cannot have had the whole burst
    for (uint32_t seq = 0; seq < kAfter; ++seq) REQUIRE(ipc_send(uint32_t(ch), &seq, sizeof seq, kAfterType) == 4);
    uint32_t seen[2] = {};
    size_t len = 0;
    for (int tries = 0; tries < 1000; ++tries) {
      REQUIRE(fwsvc_call(uint32_t(ch), kSeen, nullptr, 0, seen, sizeof seen, &len, 5000) == 0);
      if (seen[0] >= kAfter) break;
      ::usleep(10000);
    }
    CHECK(seen[0] == kAfter);  // every message after the reopening, in order
    CHECK(seen[1] == 1);
    const auto b = body(1500, 9);
    std::vector<uint8_t> r(1500);
    CHECK(fwsvc_call(uint32_t(ch), kEcho, b.data(), b.size(), r.data(), r.size(), &len, 5000) == 0);
    CHECK(r == b);
    CHECK(stats_of(ch).reader_evictions == 1);  // the reopened reader keeps up: not evicted again
    CHECK(ipc_close_channel(uint32_t(ch)) == 0);
    ::kill(svcs[i], SIGTERM);
    CHECK(wait_exit(svcs[i], 10000) == 0);  // it was serving all along, and ends cleanly
  }
}
