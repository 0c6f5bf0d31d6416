// Ring v2 through the public API (registry started with FWIPC_RING=2): writers of three
// uids map the channel themselves, the sender is the ring's, never what a writer wrote,
// and a writer killed mid-record holds back nobody. Runs as root, unsandboxed (setuid).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "ipc.h"
#include "tests/support.h"
#include "transports/shm/wring.h"

using namespace fwipc::test;

namespace {

constexpr uid_t kNobody = 65534, kDaemon = 1;
constexpr int kAntiHangMs = 60000;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;  // a sanitized process costs tens of MiB: fewer of them
#else
constexpr bool kSanitized = false;
#endif

struct Msg {
  uint32_t writer;  // index
  uint32_t pid;     // what the writer says it is (checked against the sender)
  uint32_t seq;
};

bool become(uid_t uid) { return uid == 0 || (::setgid(uid) == 0 && ::setuid(uid) == 0); }

// The ring this process writes, found by its memfd's name in our own mappings: what a
// hostile writer can always reach.
fwipc::shm::v2::RingHeader* own_ring(const char* channel) {
  std::ifstream maps("/proc/self/maps");
  const std::string want = std::string("fwipc-ring:") + channel + " ";
  for (std::string line; std::getline(maps, line);) {
    if (line.find(want.substr(0, want.size() - 1)) == std::string::npos || line.find("rw-s") == std::string::npos)
      continue;
    return reinterpret_cast<fwipc::shm::v2::RingHeader*>(std::strtoull(line.c_str(), nullptr, 16));
  }
  return nullptr;
}

// Reads until every writer's `each` messages came, checking sender against pids (or, for
// a reader that does not know them, against what the writer claims) and per-writer order.
// Returns 0 or a code naming what failed.
int read_all(int c, const std::vector<pid_t>* pids, uint32_t writers, uint32_t each) {
  std::vector<uint32_t> next(writers, 0);
  uint64_t got = 0;
  while (got < uint64_t(writers) * each) {
    IPC_MESSAGE m;
    const int rc = ipc_receive_message(uint32_t(c), &m, kAntiHangMs);
    if (rc != int(sizeof(Msg))) return 20;
    Msg v;
    std::memcpy(&v, m.payload, sizeof v);
    if (v.writer >= writers) return 21;
    const uint32_t real = pids != nullptr ? uint32_t((*pids)[v.writer]) : v.pid;
    if (m.sender != real) return 22;
    if (v.seq != next[v.writer]++) return 23;
    ++got;
  }
  return 0;
}

// A writer's part once it has opened id: says so, waits for go, then sends its each
// messages in order. 0, or a code naming what failed.
int send_on_go(int id, uint32_t w, uint32_t each, const Barrier& opened, const Barrier& go) {
  opened.signal();
  if (!go.wait(1)) return 44;
  for (uint32_t s = 0; s < each; ++s) {
    const Msg v{w, uint32_t(::getpid()), s};
    if (ipc_send(uint32_t(id), &v, sizeof v, 0) != int(sizeof v)) return 45;
  }
  return 0;
}

struct Ring2Runtime {
  Ring2Runtime() { ::setenv("FWIPC_RING", "2", 1); }
  ~Ring2Runtime() { ::unsetenv("FWIPC_RING"); }
};

}  // namespace

TEST_CASE(
    "ring v2: 8 writers of 3 uids to 2 readers map the channel; every sender is its writer's PID, whatever it "
    "scribbles") {
  Ring2Runtime v2;
  TempRuntime rt;
  constexpr uint32_t kWriters = 8, kEach = 3000;
  const int c = ipc_create_channel_ex("mix", IPC_TYPE_QUEUE, 0, 0666);
  REQUIRE(c >= 0);
  IPC_CHANNEL_INFO info{};
  REQUIRE(ipc_channel_info(uint32_t(c), &info) == 0);
  CHECK(info.transport == IPC_TRANSPORT_SHM);
  Barrier reader_up, opened, go;
  // The second reader is nobody: it maps every writer's ring read-only.
  const pid_t other_reader = spawn([&] {
    if (!become(kNobody)) return 30;
    const int r = ipc_open_channel("mix", IPC_MODE_READ);
    if (r < 0) return 31;
    reader_up.signal();
    return read_all(r, nullptr, kWriters, kEach);
  });
  REQUIRE(reader_up.wait(1));
  std::vector<pid_t> pids;
  const uid_t uids[] = {0, kNobody, kDaemon};
  for (uint32_t w = 0; w < kWriters; ++w) {
    pids.push_back(spawn([&, w] {
      if (!become(uids[w % 3])) return 40;
      const int id = ipc_open_channel("mix", IPC_MODE_WRITE);
      if (id < 0) return 41;
      IPC_CHANNEL_INFO i{};
      if (ipc_channel_info(uint32_t(id), &i) != 0 || i.transport != IPC_TRANSPORT_SHM) return 42;  // no bridge
      // Every other writer claims to be someone else in the ring's own words.
      if (w % 2 == 1) {
        auto* h = own_ring("mix");
        if (h == nullptr) return 43;
        h->writer_pid = uint32_t(pids.empty() ? 1 : pids[0]);
        h->ring_index ^= 1;
      }
      return send_on_go(id, w, kEach, opened, go);
    }));
  }
  REQUIRE(opened.wait(int(kWriters)));
  for (uint32_t w = 0; w < kWriters; ++w) go.signal();
  CHECK(read_all(c, &pids, kWriters, kEach) == 0);
  for (pid_t p : pids) CHECK(wait_exit(p) == 0);
  CHECK(wait_exit(other_reader) == 0);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

TEST_CASE("ring v2: a writer killed mid-record delays none of the others; what it committed still arrives") {
  Ring2Runtime v2;
  TempRuntime rt;
  constexpr uint32_t kWriters = 4, kEach = 5000, kBefore = 10;
  const int c = ipc_create_channel("kill", IPC_TYPE_QUEUE, 0);
  REQUIRE(c >= 0);
  Barrier loaned, go;
  // Writer 0 commits kBefore messages, then dies holding a loan it half filled.
  const pid_t dying = spawn([&] {
    const int id = ipc_open_channel("kill", IPC_MODE_WRITE);
    if (id < 0) return 50;
    for (uint32_t s = 0; s < kBefore; ++s) {
      const Msg v{0, uint32_t(::getpid()), s};
      if (ipc_send(uint32_t(id), &v, sizeof v, 0) != int(sizeof v)) return 51;
    }
    IPC_LOAN l{};
    if (ipc_loan(uint32_t(id), &l) != 0) return 52;
    std::memset(l.payload, 0xab, 64);
    loaned.signal();
    ::pause();
    return 53;
  });
  REQUIRE(loaned.wait(1));
  std::vector<pid_t> pids{dying};
  for (uint32_t w = 1; w < kWriters; ++w) {
    pids.push_back(spawn([&, w] {
      const int id = ipc_open_channel("kill", IPC_MODE_WRITE);
      if (id < 0) return 60;
      if (!go.wait(1)) return 61;
      for (uint32_t s = 0; s < kEach; ++s) {
        const Msg v{w, uint32_t(::getpid()), s};
        if (ipc_send(uint32_t(id), &v, sizeof v, 0) != int(sizeof v)) return 62;
      }
      return 0;
    }));
  }
  for (uint32_t w = 1; w < kWriters; ++w) go.signal();
  ::kill(dying, SIGKILL);
  CHECK(wait_exit(dying) == 128 + SIGKILL);
  std::vector<uint32_t> next(kWriters, 0);
  uint64_t got = 0;
  bool ok = true;
  while (got < kBefore + uint64_t(kWriters - 1) * kEach) {
    IPC_MESSAGE m;
    const int rc = ipc_receive_message(uint32_t(c), &m, kAntiHangMs);
    REQUIRE(rc == int(sizeof(Msg)));
    Msg v;
    std::memcpy(&v, m.payload, sizeof v);
    REQUIRE(v.writer < kWriters);
    ok = ok && m.sender == uint32_t(pids[v.writer]) && v.seq == next[v.writer]++;
    ++got;
  }
  CHECK(ok);
  CHECK(next[0] == kBefore);  // the half-written record was never committed
  IPC_MESSAGE m;
  CHECK(ipc_receive_message(uint32_t(c), &m, 0) == -EAGAIN);
  for (uint32_t w = 1; w < kWriters; ++w) CHECK(wait_exit(pids[w]) == 0);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

// IPC_OVERFLOW_EVICT with a writer that never waits in the runtime (IPC_MODE_NONBLOCK: it
// retries -EAGAIN in its own loop, as eventsd's emitters do): the reader that holds it is
// evicted all the same (only blocking sends used to count, so such a writer was held for
// good), keeps what it had taken into its heap, and its directory entry is free again once
// it closes (the registry used to free it by its pre-eviction state and failed), so a
// channel survives more evictions than it has reader entries (64).
TEST_CASE("ring v2: a writer retrying non-blocking sends gets a stuck reader evicted, more times than readers fit") {
  Ring2Runtime v2;
  TempRuntime rt;
  IPC_CHANNEL_OPTIONS o{};
  o.type = IPC_TYPE_QUEUE;
  o.buffer_size = IPC_BUFFER_MIN;
  o.creator_mode = IPC_MODE_WRITE | IPC_MODE_NONBLOCK;
  o.overflow = IPC_OVERFLOW_EVICT;
  o.evict_after_ms = 20;
  const int c = ipc_create_channel_opts("nbevict", &o);
  REQUIRE(c >= 0);
  constexpr uint32_t kRounds = 70, kHeap = 5;
  uint32_t seq = 0;
  for (uint32_t round = 0; round < kRounds; ++round) {
    CAPTURE(round);
    const int r = ipc_open_channel("nbevict", IPC_MODE_READ | IPC_MODE_NONBLOCK);
    REQUIRE(r >= 0);
    IPC_MESSAGE m;
    uint32_t had = 0;
    if (round == 0) {
      // With priorities in play the first receive takes all of them into the heap.
      for (uint32_t i = 0; i < kHeap; ++i) {
        IPC_HEADER h{};
        h.size = sizeof i;
        h.priority = 1;
        REQUIRE(ipc_send_header(uint32_t(c), &h, &i) == int(sizeof i));
      }
      REQUIRE(ipc_receive_message(uint32_t(r), &m, 0) == int(sizeof(uint32_t)));
      had = kHeap - 1;
    }
    // Fill until held back, then retry as a caller's own loop does, until the reader goes.
    int rc;
    while ((rc = ipc_send(uint32_t(c), &seq, sizeof seq, 0)) == int(sizeof seq)) ++seq;
    REQUIRE(rc == -EAGAIN);
    for (int i = 0; i < kAntiHangMs && (rc = ipc_send(uint32_t(c), &seq, sizeof seq, 0)) == -EAGAIN; ++i)
      ::usleep(1000);  // a caller's back-off; the eviction itself is what is awaited
    REQUIRE(rc == int(sizeof seq));
    ++seq;
    for (uint32_t i = 1; i <= had; ++i) {
      REQUIRE(ipc_receive_message(uint32_t(r), &m, 0) == int(sizeof(uint32_t)));
      uint32_t v;
      std::memcpy(&v, m.payload, sizeof v);
      CHECK(v == i);
    }
    CHECK(ipc_receive_message(uint32_t(r), &m, 0) == -ENOBUFS);
    IPC_CHANNEL_INFO info{};
    REQUIRE(ipc_channel_info(uint32_t(r), &info) == 0);
    CHECK(info.evicted == 1);
    REQUIRE(ipc_close_channel(uint32_t(r)) == 0);
  }
  IPC_CHANNEL_INFO info{};
  REQUIRE(ipc_channel_info(uint32_t(c), &info) == 0);
  CHECK(info.evictions == kRounds);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

// A registry gives each connection handles 1, 2, ...: an id of a registry that is gone (here
// another runtime directory's; a restarted one's likewise) must not close the membership
// that has its number in the registry reached since. Layout 4 hardly noticed (its ring is
// shared memory either way); on ring v2 that membership's ring or page goes with it, here
// the creator's, which closed the channel.
namespace {
// What a reader expects from one writer: `count` messages in order from seq `first`.
struct Expect {
  uint32_t writer, first, count;
};

// Reads until every expected message came, each with its writer's PID as sender (writers
// here say who they are truthfully) and in its writer's order. 0 or a code.
int read_expected(int c, const std::vector<Expect>& ex) {
  std::map<uint32_t, uint32_t> next, end;
  uint64_t left = 0;
  for (const Expect& e : ex) next[e.writer] = e.first, end[e.writer] = e.first + e.count, left += e.count;
  for (; left > 0; --left) {
    IPC_MESSAGE m;
    if (ipc_receive_message(uint32_t(c), &m, kAntiHangMs) != int(sizeof(Msg))) return 20;
    Msg v;
    std::memcpy(&v, m.payload, sizeof v);
    if (!next.count(v.writer)) return 21;
    if (m.sender != v.pid) return 22;
    if (v.seq != next[v.writer])
      std::fprintf(stderr, "pid %d: writer %u sent seq %u, expected %u\n", int(::getpid()), v.writer, v.seq,
                   next[v.writer]);
    if (v.seq < next[v.writer]) return 23;  // again, or from before
    if (v.seq > next[v.writer]) return 24;  // lost
    if (v.seq >= end[v.writer]) return 25;
    ++next[v.writer];
  }
  return 0;
}

int send_range(int id, uint32_t w, uint32_t first, uint32_t count) {
  for (uint32_t s = first; s < first + count; ++s) {
    const Msg v{w, uint32_t(::getpid()), s};
    if (ipc_send(uint32_t(id), &v, sizeof v, 0) != int(sizeof v)) return 45;
  }
  return 0;
}
}  // namespace

// RING-V2.md section 6, "Registry restart": the registry that starts after the old one
// died takes the channel over from its members' descriptor tables. Members of before and
// after exchange messages both ways (a pre-restart reader of another uid gets a new
// writer's ring by rejoining), a reader that closed or died meanwhile holds nobody back,
// and the creator's close still removes the name.
TEST_CASE("ring v2: a restarted registry adopts the channel; members of before and after it exchange everything") {
  Ring2Runtime v2;
  TempRuntime rt;
  constexpr uint32_t kBefore = 5, kEach = kSanitized ? 500 : 3000;
  const int c = ipc_create_channel_ex("adopt", IPC_TYPE_QUEUE, 0, 0666);
  REQUIRE(c >= 0);
  Barrier up, go_old, quit, quitted, new_up, go_new;
  const pid_t old_reader = spawn([&] {
    if (!become(kDaemon)) return 30;
    const int r = ipc_open_channel("adopt", IPC_MODE_READ);
    if (r < 0) return 31;
    up.signal();
    return read_expected(r, {{0, 0, kBefore + kEach}, {1, 0, kEach}});
  });
  // Readers that never read: one closes its id once the registry is gone, one dies.
  const pid_t quitter = spawn([&] {
    const int r = ipc_open_channel("adopt", IPC_MODE_READ);
    if (r < 0) return 31;
    up.signal();
    if (!quit.wait(1)) return 32;
    if (ipc_close_channel(uint32_t(r)) != 0) return 33;
    quitted.signal();
    ::pause();
    return 0;
  });
  const pid_t doomed = spawn([&] {
    if (ipc_open_channel("adopt", IPC_MODE_READ) < 0) return 31;
    up.signal();
    ::pause();
    return 0;
  });
  REQUIRE(up.wait(3));
  // The old writer sends its first messages once every reader of before is a member.
  const pid_t old_writer = spawn([&] {
    if (!become(kNobody)) return 40;
    const int id = ipc_open_channel("adopt", IPC_MODE_WRITE);
    if (id < 0) return 41;
    if (int rc = send_range(id, 0, 0, kBefore); rc != 0) return rc;
    up.signal();
    if (!go_old.wait(1)) return 44;
    return send_range(id, 0, kBefore, kEach);
  });
  REQUIRE(up.wait(1));
  rt.kill_registry();
  quit.signal();
  REQUIRE(quitted.wait(1));
  // Opening by name works only if the registry it starts adopted the channel (root: a
  // registry another uid started would not be served here).
  const pid_t new_writer = spawn([&] {
    const int id = ipc_open_channel("adopt", IPC_MODE_WRITE);
    if (id < 0) return 41;
    new_up.signal();
    if (!go_new.wait(1)) return 44;
    return send_range(id, 1, 0, kEach);
  });
  REQUIRE(new_up.wait(1));
  ::kill(doomed, SIGKILL);
  CHECK(wait_exit(doomed) == 128 + SIGKILL);
  const pid_t new_reader = spawn([&] {
    if (!become(kDaemon)) return 30;
    const int r = ipc_open_channel("adopt", IPC_MODE_READ);
    if (r < 0) return 31;
    new_up.signal();
    return read_expected(r, {{0, kBefore, kEach}, {1, 0, kEach}});
  });
  REQUIRE(new_up.wait(1));
  go_old.signal();
  go_new.signal();
  CHECK(read_expected(c, {{0, 0, kBefore + kEach}, {1, 0, kEach}}) == 0);
  CHECK(wait_exit(old_writer) == 0);
  CHECK(wait_exit(new_writer) == 0);
  CHECK(wait_exit(old_reader) == 0);
  CHECK(wait_exit(new_reader) == 0);
  // The creator's close reaches the new registry (it rejoins the id first): the name goes.
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
  CHECK(ipc_open_channel("adopt", IPC_MODE_WRITE) == -ENOENT);
  ::kill(quitter, SIGKILL);
  CHECK(wait_exit(quitter) == 128 + SIGKILL);
}

TEST_CASE("ring v2: closing an id of a registry that is gone closes nothing in the one reached since") {
  Ring2Runtime v2;
  int stale = -1;
  {
    TempRuntime first;
    stale = ipc_create_channel("before", IPC_TYPE_QUEUE, 0);
    REQUIRE(stale >= 0);
  }  // its registry is killed; the id stays open in our table
  TempRuntime rt;
  const int c = ipc_create_channel("after", IPC_TYPE_QUEUE, 0);  // the same handle number, another registry
  REQUIRE(c >= 0);
  CHECK(ipc_close_channel(uint32_t(stale)) == 0);
  const uint32_t v = 7;
  CHECK(ipc_send(uint32_t(c), &v, sizeof v, 0) == int(sizeof v));
  IPC_MESSAGE m;
  CHECK(ipc_receive_message(uint32_t(c), &m, kAntiHangMs) == int(sizeof v));
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

// The scale: a channel with 1,000 writer processes, all members at once (a ring
// each), read by one reader through 16-record rings: every message arrives once, in each
// writer's order, with its writer's PID.
TEST_CASE("ring v2: 1,000 writer processes on one channel at once; every message arrives, in order, sender right") {
  Ring2Runtime v2;
  TempRuntime rt;
  const uint32_t kWriters = kSanitized ? 100 : 1000, kEach = 20;
  const int c = ipc_create_channel_ex("many", IPC_TYPE_QUEUE, IPC_BUFFER_MIN, 0600);
  REQUIRE(c >= 0);
  Barrier opened, go;
  std::vector<pid_t> pids;
  for (uint32_t w = 0; w < kWriters; ++w) {
    pids.push_back(spawn([&, w] {
      const int id = ipc_open_channel("many", IPC_MODE_WRITE);
      if (id < 0) return 41;
      return send_on_go(id, w, kEach, opened, go);
    }));
    REQUIRE(pids.back() > 0);
  }
  REQUIRE(opened.wait(int(kWriters)));  // every writer holds its ring now
  for (uint32_t w = 0; w < kWriters; ++w) go.signal();
  CHECK(read_all(c, &pids, kWriters, kEach) == 0);
  int failed = 0;
  for (pid_t p : pids) failed += wait_exit(p) != 0;
  CHECK(failed == 0);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

// Memory is bounded per uid on ring v2 too: each writer process's ring counts against its
// own uid's bytes quota (here 9 MiB: two 4 MiB rings fit, a third is refused).
TEST_CASE("ring v2: each writer's ring counts against its uid's bytes quota") {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test needs root to switch uid");
  Ring2Runtime v2;
  TempRuntime rt;
  const std::string policy = rt.dir() + "/policy.conf";
  {
    std::ofstream f(policy);
    f << "limit user:nobody bytes=9M\n";
  }
  ::setenv("FWIPC_POLICY_FILE", policy.c_str(), 1);
  const int c = ipc_create_channel_ex("big", IPC_TYPE_QUEUE, 4096 * IPC_SLOT_BYTES, 0666);  // rings of 4 MiB
  ::unsetenv("FWIPC_POLICY_FILE");  // read by the registry this create started
  REQUIRE(c >= 0);
  Barrier opened, done;
  std::vector<pid_t> kept;
  for (int k = 0; k < 3; ++k) {
    const pid_t p = spawn([&] {
      if (!become(kNobody)) return 40;
      const int id = ipc_open_channel("big", IPC_MODE_WRITE);
      if (id == -EDQUOT) return 1;
      if (id < 0) return 41;
      opened.signal();
      return done.wait(1) ? 0 : 42;
    });
    if (k < 2) {
      REQUIRE(opened.wait(1));
      kept.push_back(p);
    } else {
      CHECK(wait_exit(p) == 1);  // the third ring is over nobody's 9 MiB
    }
  }
  for (size_t i = 0; i < kept.size(); ++i) done.signal();
  for (pid_t p : kept) CHECK(wait_exit(p) == 0);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

// Writers that open, send once and exit at once, one after another, reusing ring indexes:
// every message still arrives once (logd's "200 short-lived processes" on ring v2).
TEST_CASE("ring v2: 300 short-lived writers one after another; each one's message arrives once") {
  Ring2Runtime v2;
  TempRuntime rt;
  constexpr uint32_t kWriters = 300;
  const int c = ipc_create_channel_ex("brief", IPC_TYPE_QUEUE, 0, 0600);
  REQUIRE(c >= 0);
  Barrier up;
  // A reader that reads while they come and go as a daemon's event loop does (logd): it
  // polls the channel's descriptor, then drains without waiting.
  const pid_t reader = spawn([&] {
    const int r = ipc_open_channel("brief", IPC_MODE_READ);
    if (r < 0) return 30;
    const int fd = ipc_channel_fd(uint32_t(r));
    if (fd < 0) return 31;
    up.signal();
    std::vector<uint32_t> seen(kWriters, 0);
    uint32_t got = 0;
    for (int idle = 0; got < kWriters && idle < 100;) {
      pollfd p{fd, POLLIN, 0};
      idle = ::poll(&p, 1, 100) > 0 ? 0 : idle + 1;
      IPC_MESSAGE m;
      while (ipc_receive_message(uint32_t(r), &m, 0) == int(sizeof(Msg))) {
        Msg v;
        std::memcpy(&v, m.payload, sizeof v);
        if (v.writer >= kWriters || m.sender != v.pid || seen[v.writer]++ != 0) return 32;  // twice
        ++got;
      }
    }
    return got == kWriters ? 0 : 33;  // one lost
  });
  REQUIRE(up.wait(1));
  // Four at a time: rings drain, are freed and their indexes reused while others join.
  std::vector<pid_t> pids;
  int failed = 0;
  for (uint32_t w = 0; w < kWriters; ++w) {
    pids.push_back(spawn([&, w] {
      const int id = ipc_open_channel("brief", IPC_MODE_WRITE);
      if (id < 0) return 41;
      const Msg v{w, uint32_t(::getpid()), 0};
      if (ipc_send(uint32_t(id), &v, sizeof v, 0) != int(sizeof v)) return 45;
      ::_exit(0);  // no close: the registry learns of it from the connection
    }));
    if (w >= 3) failed += wait_exit(pids[w - 3]) != 0;
  }
  for (uint32_t w = kWriters - 3; w < kWriters; ++w) failed += wait_exit(pids[w]) != 0;
  CHECK(failed == 0);
  CHECK(wait_exit(reader) == 0);
  // The creator drains without waiting, as a daemon does at SIGTERM: a non-blocking
  // receive says -EAGAIN only when nothing committed is left, attached or not.
  uint32_t got = 0;
  IPC_MESSAGE m;
  while (ipc_receive_message(uint32_t(c), &m, 0) == int(sizeof(Msg))) ++got;
  CHECK(got == kWriters);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}
