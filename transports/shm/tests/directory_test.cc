// Ring v2 channel directory (directory.h) with real processes: the test's parent is the
// registry (the only process that maps the directory writable), writers and readers are
// children of three uids that map the directory read-only. Every message's sender comes
// from the directory's entry for the ring it came through, whatever the writers scribble;
// a writer killed mid-record is drained by the registry and dropped by readers without
// delaying anyone.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <utility>
#include <vector>

#include "base/cpu.h"
#include "base/futex.h"
#include "base/proc.h"
#include "base/time.h"
#include "transports/shm/directory.h"
#include "transports/shm/wring.h"

using fwipc::MsgHeader;
using namespace fwipc::shm::v2;

namespace {

constexpr int64_t kAntiHangNs = 60'000'000'000;  // generous: only a hang trips it
constexpr int kAntiHangMs = 60'000;
constexpr uint32_t kMaxW = 8;  // writers per channel in these tests

// A memfd of `bytes`, sized for good (nobody can shrink it under a reader).
int make_memfd(const char* name, uint64_t bytes) {
  const int fd = ::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, off_t(bytes)) == 0);
  REQUIRE(::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
  return fd;
}

void* map_rw(int fd, uint64_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  return p == MAP_FAILED ? nullptr : p;
}

uint64_t fd_bytes(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? uint64_t(st.st_size) : 0;
}

// A member's read-only mapping of the memfd behind fd: a descriptor reopened O_RDONLY
// (the only kind the registry passes), mapped at the size of the member's own fstat.
const void* map_ro(int fd, uint64_t* bytes) {
  const int ro = fwipc::reopen_read_only(fd);
  if (ro < 0) return nullptr;
  *bytes = fd_bytes(ro);
  void* p = ::mmap(nullptr, *bytes, PROT_READ, MAP_SHARED, ro, 0);
  ::close(ro);
  return p == MAP_FAILED ? nullptr : p;
}

void put_u32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }
void put_u64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t get_u32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t get_u64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Message `seq` of ring `idx`: [idx][claimed pid][seq][filler], every byte checkable.
// `claimed` is what the writer says about itself: a lie for scribblers.
constexpr uint32_t kMsgHead = 16;
uint32_t size_of(uint64_t seq) { return kMsgHead + uint32_t(seq * 37 % 200); }
void fill(char* buf, uint32_t idx, uint32_t claimed, uint64_t seq) {
  put_u32(buf, idx);
  put_u32(buf + 4, claimed);
  put_u64(buf + 8, seq);
  for (uint32_t i = kMsgHead; i < size_of(seq); ++i) buf[i] = char((seq + i + idx) & 0xff);
}
bool filler_ok(const char* buf, uint32_t n, uint32_t idx, uint64_t seq) {
  if (n != size_of(seq)) return false;
  for (uint32_t i = kMsgHead; i < n; ++i)
    if (buf[i] != char((seq + i + idx) & 0xff)) return false;
  return true;
}

void send_all(int fd, const void* p, size_t n) { REQUIRE(::write(fd, p, n) == ssize_t(n)); }
// Child side: a failed write means the parent is gone; the child exits anyway.
bool child_send(int fd, const void* p, size_t n) { return ::write(fd, p, n) == ssize_t(n); }
// Reads exactly n bytes, waiting at most the anti-hang bound; false on EOF or timeout.
bool recv_all(int fd, void* p, size_t n) {
  auto* c = static_cast<char*>(p);
  size_t got = 0;
  const int64_t until = fwipc::monotonic_ns() + kAntiHangNs;
  while (got < n) {
    pollfd pfd{fd, POLLIN, 0};
    const int64_t left_ms = (until - fwipc::monotonic_ns()) / 1'000'000;
    if (left_ms <= 0 || ::poll(&pfd, 1, int(left_ms)) <= 0) return false;
    const ssize_t r = ::read(fd, c + got, n - got);
    if (r <= 0) return false;
    got += size_t(r);
  }
  return true;
}
char recv_byte(int fd) {
  char c = 0;
  return recv_all(fd, &c, 1) ? c : 0;
}

// Forks with nothing buffered in stdio: a child that inherits doctest's pending output
// may print it again when it exits (TSan's _exit flushes).
pid_t fork_clean() {
  std::fflush(stdout);
  std::fflush(stderr);
  return ::fork();
}

int wait_child(pid_t pid) {
  int st = 0;
  if (::waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Drops every supplementary group, then gid and uid; true if the process is now uid.
bool become(uint32_t uid, uint32_t gid) {
  if (::getuid() == uid && ::geteuid() == uid) return true;
  if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) return false;
  return ::getuid() == uid && ::geteuid() == uid;
}

struct Ident {
  uint32_t uid, gid;
};
// root, nobody, daemon when the test runs as root; otherwise our own uid three times.
std::vector<Ident> three_uids() {
  if (::getuid() != 0) {
    MESSAGE("not root: every process keeps uid " << ::getuid());
    return std::vector<Ident>(3, Ident{::getuid(), ::getgid()});
  }
  std::vector<Ident> ids{{0, 0}};
  for (const char* name : {"nobody", "daemon"}) {
    const passwd* pw = ::getpwnam(name);
    REQUIRE(pw != nullptr);
    REQUIRE(pw->pw_uid != 0);
    ids.push_back(Ident{pw->pw_uid, pw->pw_gid});
  }
  return ids;
}

}  // namespace

// ---------------------------------------------------------------- a: the layout and its mutators

TEST_CASE("format and attach refuse what is not a directory of this layout") {
  const DirParams good{77, 1, 250, 1234, 16, 4, 8192};
  const uint64_t bytes = directory_bytes(16, 4);
  CHECK(bytes == 128 + 16 * 32 + 4 * 32);
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(mem != MAP_FAILED);
  auto* h = static_cast<DirHeader*>(mem);

  auto with = [&](auto change) {
    DirParams p = good;
    change(p);
    return DirWriter::format(mem, directory_bytes(p.max_rings, p.max_readers), p);
  };
  CHECK(with([](DirParams& p) { p.max_rings = 0; }) == -EINVAL);
  CHECK(with([](DirParams& p) { p.max_rings = kMaxRings + 1; }) == -EINVAL);
  CHECK(with([](DirParams& p) { p.max_readers = 0; }) == -EINVAL);
  CHECK(with([](DirParams& p) { p.max_readers = kMaxDirReaders + 1; }) == -EINVAL);
  CHECK(with([](DirParams& p) { p.ring_capacity = 3000; }) == -EINVAL);  // not a power of two
  CHECK(with([](DirParams& p) { p.ring_capacity = 2048; }) == -EINVAL);  // below kMinCapacity
  CHECK(with([](DirParams& p) { p.ring_capacity = 0; }) == -EINVAL);
  CHECK(DirWriter::format(mem, bytes - 1, good) == -EINVAL);  // region too small
  CHECK(DirWriter::format(nullptr, bytes, good) == -EINVAL);

  DirReader r;
  CHECK(r.attach(mem, bytes) == -EBADMSG);  // zeroes: no magic
  std::memset(mem, 0xa5, bytes);            // formatting must not rely on a zeroed region
  REQUIRE(DirWriter::format(mem, bytes, good) == 0);
  REQUIRE(r.attach(mem, bytes) == 0);
  CHECK(r.max_rings() == 16);
  CHECK(r.max_readers() == 4);
  CHECK(r.ring_capacity() == 8192);
  CHECK(r.instance_id() == 77);
  CHECK(r.overflow() == 1);
  CHECK(r.evict_after_ms() == 250);
  CHECK(r.creator_pid() == 1234);
  CHECK(r.gen() == 0);
  CHECK_FALSE(r.closed());
  EntryView v;
  for (uint32_t i = 0; i < 16; ++i) {
    REQUIRE(r.ring(i, &v));
    CHECK(v.state == 0);
    CHECK(v.pid == 0);
  }
  for (uint32_t i = 0; i < 4; ++i) {
    REQUIRE(r.reader(i, &v));
    CHECK(v.state == 0);
  }
  CHECK_FALSE(r.ring(16, &v));  // indexes checked against the copied counts
  CHECK_FALSE(r.reader(4, &v));
  CHECK_FALSE(r.ring(~0u, &v));

  // Each word of line 0 that a member relies on, broken one at a time, then restored.
  DirWriter w;
  auto refused = [&](auto&& breakit, auto&& restore) {
    breakit();
    DirReader fresh;
    DirWriter fresh_w;
    const bool both = fresh.attach(mem, bytes) == -EBADMSG && fresh_w.attach(mem, bytes) == -EBADMSG;
    restore();
    DirReader again;
    return both && again.attach(mem, bytes) == 0;
  };
  CHECK(refused([&] { h->magic ^= 1; }, [&] { h->magic ^= 1; }));
  CHECK(refused([&] { h->version = kDirVersion + 1; }, [&] { h->version = kDirVersion; }));
  CHECK(refused([&] { h->header_bytes = 64; }, [&] { h->header_bytes = sizeof(DirHeader); }));
  CHECK(refused([&] { h->max_rings = kMaxRings + 1; }, [&] { h->max_rings = 16; }));
  CHECK(refused([&] { h->max_rings = 0; }, [&] { h->max_rings = 16; }));
  CHECK(refused([&] { h->max_readers = kMaxDirReaders + 1; }, [&] { h->max_readers = 4; }));
  CHECK(refused([&] { h->max_readers = 0; }, [&] { h->max_readers = 4; }));
  CHECK(refused([&] { h->max_rings = 17; }, [&] { h->max_rings = 16; }));    // tables past the mapping
  CHECK(refused([&] { h->max_readers = 5; }, [&] { h->max_readers = 4; }));  // by one entry
  CHECK(refused([&] { h->ring_capacity = 3000; }, [&] { h->ring_capacity = 8192; }));
  CHECK(refused([&] { h->ring_capacity = 2048; }, [&] { h->ring_capacity = 8192; }));
  CHECK(refused([&] { h->ring_capacity = 1u << 31; }, [&] { h->ring_capacity = 8192; }));  // over kMaxCapacity
  DirReader short_map;
  CHECK(short_map.attach(mem, bytes - 1) == -EBADMSG);  // the member's fstat says less than the tables need
  CHECK(short_map.attach(mem, 64) == -EBADMSG);         // not even a header
  CHECK(short_map.attach(nullptr, bytes) == -EBADMSG);
  CHECK(w.attach(mem, bytes) == 0);
  ::munmap(mem, bytes);
}

TEST_CASE("mutators: states, generations, -ESTALE and -ENOSPC, seen through a read-only mapping") {
  const uint64_t bytes = directory_bytes(3, 2);
  const int fd = make_memfd("dir-test", bytes);
  auto* mem = static_cast<DirHeader*>(map_rw(fd, bytes));
  REQUIRE(mem != nullptr);
  REQUIRE(DirWriter::format(mem, bytes, DirParams{9, 0, 0, uint32_t(::getpid()), 3, 2, 4096}) == 0);
  DirWriter w;
  REQUIRE(w.attach(mem, bytes) == 0);
  // The registry mapped it; from now on nobody else can map it writable.
  REQUIRE(::fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) == 0);

  const int ro = fwipc::reopen_read_only(fd);
  REQUIRE(ro >= 0);
  errno = 0;
  CHECK(::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED);
  CHECK(errno == EACCES);
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", ro);
  const int rw = ::open(path, O_RDWR | O_CLOEXEC);  // memfds reopen for writing...
  if (rw >= 0) {
    errno = 0;
    CHECK(::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0) == MAP_FAILED);  // ...the seal holds
    CHECK(errno == EPERM);
    ::close(rw);
  }
  const uint64_t seen = fd_bytes(ro);
  CHECK(seen == bytes);
  const void* rmem = ::mmap(nullptr, seen, PROT_READ, MAP_SHARED, ro, 0);
  REQUIRE(rmem != MAP_FAILED);
  ::close(ro);
  DirReader r;
  REQUIRE(r.attach(rmem, seen) == 0);
  CHECK(r.instance_id() == 9);

  uint64_t g = r.gen();
  CHECK(g == 0);
  auto moved = [&] {  // the generation moved by exactly one since the last call
    const uint64_t now = r.gen();
    const bool one = now == g + 1;
    g = now;
    return one;
  };
  auto still = [&] { return r.gen() == g; };
  // The member's copy equals the registry's own view of the entry.
  auto ring_is = [&](uint32_t idx, uint64_t state, uint32_t pid) {
    EntryView v;
    if (!r.ring(idx, &v)) return false;
    const EntryView mine = w.ring(idx);
    return v.state == state && mine.state == state && v.pid == pid &&
           (v.status() == kFree || (mine.pid == pid && v.uid == pid + 1 && v.start_time == pid * 10ull &&
                                    v.capacity == 4096 && mine.capacity == 4096));
  };

  // Rings: three fit, the fourth does not.
  uint64_t s[3];
  for (uint32_t i = 0; i < 3; ++i) {
    CHECK(w.add_ring(100 + i, 101 + i, (100 + i) * 10ull, &s[i]) == int(i));
    CHECK(entry_status(s[i]) == kActive);
    CHECK((s[i] >> 8) == 1);  // taken: generation 0 -> 1
    CHECK(moved());
    CHECK(ring_is(i, s[i], 100 + i));
  }
  uint64_t none = 0;
  CHECK(w.add_ring(999, 1, 1, &none) == -ENOSPC);
  CHECK(still());

  // Ring 1: a stale state is refused at every step; each step moves the generation once.
  CHECK(w.drain_ring(1, s[1] + 256) == -ESTALE);  // a later membership's
  CHECK(w.free_ring(1, s[1] - 256) == -ESTALE);
  CHECK(w.drain_ring(3, s[1]) == -EINVAL);  // no such index
  CHECK(w.free_ring(3, s[1]) == -EINVAL);
  CHECK(still());
  CHECK(w.drain_ring(1, s[1]) == 0);
  CHECK(moved());
  const uint64_t draining = (s[1] & ~0xffull) | kDraining;
  CHECK(ring_is(1, draining, 101));
  CHECK(w.drain_ring(1, s[1]) == -ESTALE);      // no longer active
  CHECK(w.drain_ring(1, draining) == -ESTALE);  // draining a draining ring
  CHECK(w.free_ring(1, s[1]) == -ESTALE);       // the state moved on
  CHECK(still());
  CHECK(w.free_ring(1, draining) == 0);
  CHECK(moved());
  const uint64_t freed = s[1] & ~0xffull;   // free, the generation kept
  CHECK(ring_is(1, freed, 0));              // a free entry's copy carries no fields
  CHECK(w.free_ring(1, freed) == -ESTALE);  // freeing a free entry
  CHECK(still());

  // Reuse: the next add takes the free index under the next generation.
  uint64_t s1b = 0;
  CHECK(w.add_ring(200, 201, 2000, &s1b) == 1);
  CHECK(moved());
  CHECK(s1b != s[1]);
  CHECK((s1b >> 8) == 2);
  CHECK(ring_is(1, s1b, 200));
  CHECK(w.drain_ring(1, s[1]) == -ESTALE);  // the old membership's word names nothing now
  CHECK(w.free_ring(1, s[1]) == -ESTALE);
  CHECK(still());
  CHECK(w.free_ring(0, s[0]) == 0);  // active -> free directly (registry restart: process gone)
  CHECK(moved());

  // (index, state) names one membership, however often entries are reused.
  std::set<std::pair<int, uint64_t>> names{{0, s[0]}, {1, s[1]}, {2, s[2]}, {1, s1b}};
  bool unique = true;
  for (int round = 0; round < 200; ++round) {
    uint64_t st = 0;
    const int idx = w.add_ring(300, 301, 3000, &st);
    REQUIRE(idx == 0);
    unique = unique && names.insert({idx, st}).second;
    if (round % 2 == 0) {
      REQUIRE(w.drain_ring(0, st) == 0);
      st = (st & ~0xffull) | kDraining;
    }
    REQUIRE(w.free_ring(0, st) == 0);
  }
  CHECK(unique);
  CHECK(names.size() == 4 + 200);
  g = r.gen();

  // Readers: joining -> active -> evicted -> free, stale words refused.
  uint64_t rs[2];
  CHECK(w.add_reader(500, 501, 5000, &rs[0]) == 0);
  CHECK(moved());
  CHECK(entry_status(rs[0]) == kJoining);
  CHECK(w.add_reader(600, 601, 6000, &rs[1]) == 1);
  CHECK(moved());
  CHECK(w.add_reader(700, 701, 7000, &none) == -ENOSPC);
  CHECK(still());
  EntryView v;
  REQUIRE(r.reader(1, &v));
  CHECK(v.state == rs[1]);
  CHECK(v.pid == 600);
  CHECK(v.uid == 601);
  CHECK(v.start_time == 6000);
  CHECK(w.reader(1).pid == 600);
  CHECK(w.evict_reader(0, rs[0]) == -ESTALE);  // joining readers are not counted: nothing to evict
  uint64_t wrong = rs[0] + 256;
  CHECK(w.activate_reader(0, &wrong) == -ESTALE);
  CHECK(wrong == rs[0] + 256);  // untouched when refused
  uint64_t bad_idx = rs[0];
  CHECK(w.activate_reader(2, &bad_idx) == -EINVAL);
  CHECK(w.activate_reader(0, nullptr) == -EINVAL);
  CHECK(still());
  const uint64_t joining = rs[0];
  CHECK(w.activate_reader(0, &rs[0]) == 0);
  CHECK(moved());
  CHECK(entry_status(rs[0]) == kActive);
  CHECK((rs[0] >> 8) == (joining >> 8));  // same membership, same generation
  REQUIRE(r.reader(0, &v));
  CHECK(v.state == rs[0]);
  uint64_t again = joining;
  CHECK(w.activate_reader(0, &again) == -ESTALE);  // activated once only
  CHECK(w.evict_reader(0, joining) == -ESTALE);
  CHECK(w.free_reader(0, joining) == -ESTALE);
  CHECK(still());
  CHECK(w.evict_reader(0, rs[0]) == 0);
  CHECK(moved());
  const uint64_t evicted = (rs[0] & ~0xffull) | kEvicted;
  REQUIRE(r.reader(0, &v));
  CHECK(v.state == evicted);
  CHECK(v.pid == 500);  // the evicted reader is still named: it learns it was evicted
  CHECK(w.evict_reader(0, evicted) == -ESTALE);
  uint64_t ev = evicted;
  CHECK(w.activate_reader(0, &ev) == -ESTALE);
  CHECK(w.free_reader(0, rs[0]) == -ESTALE);
  CHECK(still());
  CHECK(w.free_reader(0, evicted) == 0);
  CHECK(moved());
  CHECK(w.free_reader(1, rs[1]) == 0);  // joining -> free (died before it was ready)
  CHECK(moved());
  uint64_t rs0b = 0;
  CHECK(w.add_reader(800, 801, 8000, &rs0b) == 0);
  CHECK(moved());
  CHECK((rs0b >> 8) == (rs[0] >> 8) + 1);
  CHECK(w.evict_reader(0, rs[0]) == -ESTALE);

  CHECK_FALSE(r.closed());
  w.close();
  CHECK(r.closed());
  CHECK(moved());
  ::munmap(const_cast<void*>(rmem), seen);
  ::munmap(mem, bytes);
  ::close(fd);
}

TEST_CASE("a member's copy of an entry is consistent while the registry keeps changing it") {
  const uint64_t bytes = directory_bytes(1, 1);
  const int fd = make_memfd("dir-churn", bytes);
  auto* mem = static_cast<DirHeader*>(map_rw(fd, bytes));
  REQUIRE(mem != nullptr);
  REQUIRE(DirWriter::format(mem, bytes, DirParams{1, 0, 0, 1, 1, 1, 4096}) == 0);
  DirWriter w;
  REQUIRE(w.attach(mem, bytes) == 0);
  int done[2];
  REQUIRE(::pipe2(done, O_CLOEXEC) == 0);
  constexpr int kCopies = 500'000;
  constexpr uint64_t kGens = 5'000;
  const pid_t child = fork_clean();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Every copy of a taken entry must hold the fields of its own generation g:
    // pid g, uid ~g, start_time 7g, capacity 4096.
    uint64_t bytes_seen = 0;
    const void* m = map_ro(fd, &bytes_seen);
    DirReader r;
    if (m == nullptr || r.attach(m, bytes_seen) != 0) ::_exit(2);
    // Until it has copied kCopies taken entries across kGens generations (the registry
    // starts churning when it likes).
    int torn = 0, taken = 0;
    uint64_t last_gen = 0, gens = 0;
    const int64_t until = fwipc::monotonic_ns() + kAntiHangNs;
    while ((taken < kCopies || gens < kGens) && fwipc::monotonic_ns() < until) {
      EntryView v;
      if (!r.ring(0, &v)) continue;  // the registry kept changing it
      const uint64_t gen = v.state >> 8;
      gens += gen != last_gen;
      last_gen = gen;
      if (v.status() == kFree) {
        torn += v.pid != 0 || v.uid != 0 || v.start_time != 0;
        continue;
      }
      ++taken;
      torn += v.pid != uint32_t(gen) || v.uid != ~uint32_t(gen) || v.start_time != 7 * gen || v.capacity != 4096;
    }
    const char c = 'd';
    child_send(done[1], &c, 1);
    ::_exit(torn != 0 ? 3 : taken < kCopies || gens < kGens ? 4 : 0);
  }
  ::close(done[1]);
  ::fcntl(done[0], F_SETFL, O_NONBLOCK);
  uint64_t changes = 0;
  char c;
  const int64_t until = fwipc::monotonic_ns() + kAntiHangNs;
  while (::read(done[0], &c, 1) < 0 && errno == EAGAIN && fwipc::monotonic_ns() < until) {
    const uint64_t next_gen = (w.ring(0).state >> 8) + 1;
    uint64_t st = 0;
    REQUIRE(w.add_ring(uint32_t(next_gen), ~uint32_t(next_gen), 7 * next_gen, &st) == 0);
    REQUIRE((st >> 8) == next_gen);
    if (changes % 2 == 0) {
      REQUIRE(w.drain_ring(0, st) == 0);
      st = (st & ~0xffull) | kDraining;
    }
    REQUIRE(w.free_ring(0, st) == 0);
    ++changes;
    for (uint64_t i = 0; i < changes % 64; ++i) fwipc::cpu_relax();  // windows of every width
  }
  CHECK(wait_child(child) == 0);
  MESSAGE("registry changes during the member's copies: " << changes);
  CHECK(changes > 0);
  ::close(done[0]);
  ::munmap(mem, bytes);
  ::close(fd);
}

// ---------------------------------------------------------------- b, c: a channel of processes

namespace {

enum WriterKind : uint32_t { kHonest, kScribbler, kDying };

// What the registry (the parent) tells each child after forking them all.
struct WriterCmd {
  uint32_t ring_idx;
  uint32_t forged_pid;  // another writer's PID: what a scribbler claims to be
};
struct ReaderCmd {
  uint32_t reader_idx;
  uint32_t must_drop;  // ring indexes (bits) the reader must see draining and drop
  uint64_t expect[kMaxW];
};
// What each reader reports, in one pipe write (< PIPE_BUF).
struct ReaderResult {
  uint32_t reader_idx, uid, attached, dropped, write_map_refused, fail;
  uint64_t got[kMaxW];
  uint32_t sender_of[kMaxW];  // the directory's PID for each ring index, as the reader copied it
  uint64_t bad_sender, bad_order, bad_payload, forged_seen, errors;
};
static_assert(sizeof(ReaderResult) < 4096);

struct Plan {
  uint64_t cap = 8192;
  std::vector<WriterKind> writers;
  std::vector<Ident> writer_id;
  std::vector<Ident> reader_id;
  uint64_t each = 0;        // messages per honest or scribbling writer
  uint64_t dying_sent = 0;  // committed by a dying writer before its last loan
};

// Memfds, pipes and children of one channel; the destructor kills and reaps whatever a
// failed check left running.
struct Channel {
  static constexpr uint32_t kRings = kMaxW;
  static constexpr uint32_t kReaders = 2;
  const Plan plan;
  int dir_fd = -1, bells_fd = -1;
  std::vector<int> ring_fd, page_fd;
  std::vector<int> ctl_r, ctl_w;  // parent -> child i (writers, then readers)
  int up[2] = {-1, -1};           // children -> parent: one byte per event
  int res[2] = {-1, -1};          // readers -> parent: ReaderResult
  std::vector<pid_t> wpid, rpid;
  DirHeader* dir = nullptr;  // the registry's mapping
  DirWriter dw;
  std::vector<uint64_t> ring_state, reader_state;
  std::vector<uint32_t> ring_idx;

  explicit Channel(Plan p) : plan(std::move(p)) {
    REQUIRE(plan.writers.size() <= kRings);
    dir_fd = make_memfd("fwipc-dir", directory_bytes(kRings, kReaders));
    bells_fd = make_memfd("fwipc-bells", bells_bytes(kRings, kReaders));
    for (size_t w = 0; w < plan.writers.size(); ++w) ring_fd.push_back(make_memfd("fwipc-ring", ring_bytes(plan.cap)));
    for (uint32_t r = 0; r < kReaders; ++r) page_fd.push_back(make_memfd("fwipc-rdr", reader_page_bytes(kRings)));
    for (size_t i = 0; i < plan.writers.size() + kReaders; ++i) {
      int fds[2];
      REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
      ctl_r.push_back(fds[0]);
      ctl_w.push_back(fds[1]);
    }
    REQUIRE(::pipe2(up, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(res, O_CLOEXEC) == 0);
  }
  ~Channel() {
    for (const auto* v : {&wpid, &rpid})
      for (pid_t pid : *v)
        if (pid > 0 && ::kill(pid, SIGKILL) == 0) ::waitpid(pid, nullptr, 0);
    if (dir != nullptr) ::munmap(dir, directory_bytes(kRings, kReaders));
    for (int fd : {dir_fd, bells_fd, up[0], up[1], res[0], res[1]}) ::close(fd);
    for (const auto* v : {&ring_fd, &page_fd, &ctl_r, &ctl_w})
      for (int fd : *v) ::close(fd);
  }
  uint32_t writers() const { return uint32_t(plan.writers.size()); }

  // ------------------------------------------------------------ children

  // Writer w: maps its ring read-write and seals it, the directory and the reader pages
  // read-only, becomes its uid, then on 'g' sends to the readers the directory calls
  // active. Returns the exit code.
  int writer_main(uint32_t w) {
    WriterCmd cmd{};
    if (!recv_all(ctl_r[w], &cmd, sizeof cmd)) return 10;
    const uint32_t idx = cmd.ring_idx;
    for (uint32_t j = 0; j < writers(); ++j)
      if (j != w) ::close(ring_fd[j]);  // only its own ring: the registry passes no other
    auto* ring = static_cast<char*>(map_rw(ring_fd[w], ring_bytes(plan.cap)));
    if (ring == nullptr) return 11;
    auto* rh = reinterpret_cast<RingHeader*>(ring);
    const WriterKind kind = plan.writers[w];
    if (kind == kScribbler) rh->writer_pid = cmd.forged_pid;  // readers must not believe it
    if (::fcntl(ring_fd[w], F_ADD_SEALS, F_SEAL_FUTURE_WRITE) != 0) return 12;
    ::close(ring_fd[w]);
    // The directory: sealed by the registry, so even the descriptor we inherited cannot
    // map it writable; the member's own mapping is read-only.
    if (::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, dir_fd, 0) != MAP_FAILED) return 13;
    uint64_t dir_bytes = 0;
    const void* dm = map_ro(dir_fd, &dir_bytes);
    ::close(dir_fd);
    DirReader dr;
    if (dm == nullptr || dr.attach(dm, dir_bytes) != 0) return 14;
    std::vector<const ReaderPage*> pages;
    for (int fd : page_fd) {
      uint64_t n = 0;
      pages.push_back(static_cast<const ReaderPage*>(map_ro(fd, &n)));
      ::close(fd);
      if (pages.back() == nullptr || n < reader_page_bytes(dr.max_rings())) return 15;
    }
    auto* bells = static_cast<Bell*>(map_rw(bells_fd, bells_bytes(dr.max_rings(), dr.max_readers())));
    if (bells == nullptr) return 16;
    RingWriter wr;
    if (wr.attach(ring, ring_bytes(plan.cap), &bells[idx].word) != 0) return 17;
    if (!become(plan.writer_id[w].uid, plan.writer_id[w].gid)) return 18;
    if (!child_send(up[1], "r", 1)) return 19;
    if (recv_byte(ctl_r[w]) != 'g') return 20;

    // Held back by, and waking, the readers the directory calls active.
    std::vector<ReaderPort> ports;
    for (uint32_t r = 0; r < dr.max_readers(); ++r) {
      EntryView v;
      if (!dr.reader(r, &v)) return 21;
      if (v.status() != kActive) continue;
      ports.push_back(ReaderPort{&pages[r]->cursor[idx], &pages[r]->sleep, &bells[dr.max_rings() + r].word});
    }
    if (ports.size() != plan.reader_id.size()) return 22;
    wr.set_readers(ports.data(), uint32_t(ports.size()));

    const uint32_t me = uint32_t(::getpid());
    const uint32_t claimed = kind == kScribbler ? cmd.forged_pid : me;
    const uint64_t n = kind == kDying ? plan.dying_sent : plan.each;
    char buf[256];
    for (uint64_t seq = 0; seq < n; ++seq) {
      fill(buf, idx, claimed, seq);
      // The header's sender is the caller's to choose and never reaches a reader.
      if (wr.send(MsgHeader{1, size_of(seq), claimed, 0, 0}, buf, kAntiHangNs) != int(size_of(seq))) return 23;
      if (kind == kScribbler && seq % 64 == 0) rh->writer_pid = cmd.forged_pid;  // again and again
    }
    if (kind == kDying) {
      // A record reserved and written but for its commit word; then killed here.
      WLoan l;
      if (wr.loan(&l, kAntiHangNs) != 0) return 24;
      fill(l.data, idx, me, n);
      std::memset(l.data - kRecHeader + 8, 0x5a, kRecHeader - 8);  // type..flags, not the commit word
      if (!child_send(up[1], "m", 1)) return 25;
      for (;;) ::pause();
    }
    return wr.ignored_cursors() == 0 ? 0 : 26;
  }

  // Reader r: maps and seals its page, maps the directory read-only, becomes its uid;
  // on 'a' attaches one RingReader per active ring (sender: the directory's PID for that
  // index), merges them with a RingSet until it has what it was told to expect and has
  // dropped the draining rings it must drop, and reports.
  int reader_main(uint32_t r) {
    ReaderCmd cmd{};
    if (!recv_all(ctl_r[writers() + r], &cmd, sizeof cmd)) return 40;
    ReaderResult out{};
    out.reader_idx = cmd.reader_idx;
    for (uint32_t j = 0; j < kReaders; ++j)
      if (j != r) ::close(page_fd[j]);
    auto* page = static_cast<ReaderPage*>(map_rw(page_fd[r], reader_page_bytes(kRings)));
    if (page == nullptr) return 41;
    if (::fcntl(page_fd[r], F_ADD_SEALS, F_SEAL_FUTURE_WRITE) != 0) return 42;  // the page is ours alone
    ::close(page_fd[r]);
    uint64_t dir_bytes = 0;
    const void* dm = map_ro(dir_fd, &dir_bytes);
    ::close(dir_fd);
    DirReader dr;
    if (dm == nullptr || dr.attach(dm, dir_bytes) != 0) return 43;
    auto* bells = static_cast<Bell*>(map_rw(bells_fd, bells_bytes(dr.max_rings(), dr.max_readers())));
    if (bells == nullptr) return 44;
    if (!become(plan.reader_id[r].uid, plan.reader_id[r].gid)) return 45;
    out.uid = ::getuid();
    if (recv_byte(ctl_r[writers() + r]) != 'a') return 46;

    // Join: every active ring, sealed by its writer, mapped read-only (reopened as this
    // uid), starting at its tail.
    std::vector<RingReader> rr(kRings);
    std::vector<uint64_t> att_state(kRings, 0);
    RingSet set(uint32_t(::getpid()));
    uint64_t seen_gen = dr.gen();
    for (uint32_t idx = 0; idx < dr.max_rings(); ++idx) {
      EntryView v;
      if (!dr.ring(idx, &v)) return 47;
      if (v.status() != kActive) continue;
      if (idx >= writers()) return 48;
      if ((::fcntl(ring_fd[idx], F_GET_SEALS) & F_SEAL_FUTURE_WRITE) == 0) return 49;
      const int ro = fwipc::reopen_read_only(ring_fd[idx]);
      if (ro < 0) return 50;
      ::close(ring_fd[idx]);
      if (::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED && errno == EACCES)
        ++out.write_map_refused;
      const uint64_t n = fd_bytes(ro);
      const void* m = ::mmap(nullptr, n, PROT_READ, MAP_SHARED, ro, 0);
      ::close(ro);
      if (m == MAP_FAILED) return 51;
      if (rr[idx].attach(m, n, v.pid, &page->cursor[idx], &bells[idx].word) != 0) return 52;
      set.add(idx, &rr[idx]);
      att_state[idx] = v.state;
      out.sender_of[idx] = v.pid;
      out.attached |= 1u << idx;
    }
    if (!child_send(up[1], "j", 1)) return 53;

    ReaderSleep sleeper(&page->sleep, &bells[dr.max_rings() + cmd.reader_idx].word);
    std::vector<uint32_t> draining;
    auto done = [&] {
      for (uint32_t idx = 0; idx < kRings; ++idx)
        if (out.got[idx] < cmd.expect[idx]) return false;
      return (out.dropped & cmd.must_drop) == cmd.must_drop;
    };
    char buf[kMaxPayload];
    MsgHeader h;
    const int64_t deadline = fwipc::monotonic_ns() + kAntiHangNs;
    while (fwipc::monotonic_ns() < deadline) {
      const int rc = set.receive(&h, buf, sizeof buf);
      if (rc >= 0) {
        if (uint32_t(rc) < kMsgHead) {
          ++out.bad_payload;
          continue;
        }
        const uint32_t idx = get_u32(buf);
        const uint64_t seq = get_u64(buf + 8);
        if (idx >= kRings || (out.attached & (1u << idx)) == 0) {
          ++out.bad_payload;
          continue;
        }
        // The sender is the directory's PID for the ring the record came through.
        out.bad_sender += h.sender != out.sender_of[idx];
        out.forged_seen += get_u32(buf + 4) != h.sender;
        out.bad_order += seq != out.got[idx];
        out.bad_payload += !filler_ok(buf, uint32_t(rc), idx, seq);
        ++out.got[idx];
        continue;
      }
      if (rc != -EAGAIN) {
        ++out.errors;
        continue;
      }
      // Caught up: look at the directory if it changed, drop drained rings.
      if (const uint64_t g = dr.gen(); g != seen_gen) {
        bool all = true;
        for (uint32_t idx = 0; idx < kRings; ++idx) {
          if ((out.attached & ~out.dropped & (1u << idx)) == 0) continue;
          EntryView v;
          if (!dr.ring(idx, &v)) {
            all = false;  // the registry kept changing it: look again next time
            continue;
          }
          if (v.state == att_state[idx]) continue;
          if (v.status() == kDraining && (v.state >> 8) == (att_state[idx] >> 8)) {
            att_state[idx] = v.state;
            draining.push_back(idx);
          } else {  // gone (freed or reused) without draining: nothing more to take
            set.remove(idx);
            out.dropped |= 1u << idx;
          }
        }
        if (all) seen_gen = g;
      }
      for (uint32_t idx : draining)
        if ((out.dropped & (1u << idx)) == 0 && !rr[idx].ready()) {  // draining and empty
          set.remove(idx);
          out.dropped |= 1u << idx;
        }
      if (done()) break;
      sleeper.sleep([&] { return set.ready() || dr.gen() != seen_gen; }, 20'000'000);
    }
    out.fail = done() ? 0 : 1;
    return child_send(res[1], &out, sizeof out) ? 0 : 54;
  }

  // ------------------------------------------------------------ the registry

  // Forks every child, then does what the registry does: formats the directory, adds an
  // entry per writer (with its PID) and formats its ring, adds and formats the readers'
  // pages, lets writers attach, then readers join, then activates them.
  void start() {
    for (uint32_t w = 0; w < writers(); ++w) {
      const pid_t pid = fork_clean();
      REQUIRE(pid >= 0);
      if (pid == 0) ::_exit(writer_main(w));
      wpid.push_back(pid);
    }
    for (uint32_t r = 0; r < kReaders; ++r) {
      const pid_t pid = fork_clean();
      REQUIRE(pid >= 0);
      if (pid == 0) ::_exit(reader_main(r));
      rpid.push_back(pid);
    }
    const uint64_t bytes = directory_bytes(kRings, kReaders);
    dir = static_cast<DirHeader*>(map_rw(dir_fd, bytes));
    REQUIRE(dir != nullptr);
    REQUIRE(DirWriter::format(
                dir, bytes, DirParams{0xfeed, 0, 0, uint32_t(::getpid()), kRings, kReaders, uint32_t(plan.cap)}) == 0);
    REQUIRE(dw.attach(dir, bytes) == 0);
    REQUIRE(::fcntl(dir_fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) == 0);
    for (uint32_t w = 0; w < writers(); ++w) {
      uint64_t st = 0;
      const int idx = dw.add_ring(uint32_t(wpid[w]), plan.writer_id[w].uid, fwipc::process_start_time(wpid[w]), &st);
      REQUIRE(idx >= 0);
      ring_idx.push_back(uint32_t(idx));
      ring_state.push_back(st);
      REQUIRE(idx == int(w));  // ring_fd[w] is the memfd of ring index w
      void* m = map_rw(ring_fd[w], ring_bytes(plan.cap));
      REQUIRE(m != nullptr);
      REQUIRE(format_ring(m, ring_bytes(plan.cap), plan.cap, uint32_t(wpid[w]), uint32_t(idx), 0xfeed) == 0);
      ::munmap(m, ring_bytes(plan.cap));  // the registry keeps no writable mapping
    }
    for (uint32_t r = 0; r < kReaders; ++r) {
      uint64_t st = 0;
      REQUIRE(dw.add_reader(uint32_t(rpid[r]), plan.reader_id[r].uid, fwipc::process_start_time(rpid[r]), &st) ==
              int(r));
      reader_state.push_back(st);
      void* m = map_rw(page_fd[r], reader_page_bytes(kRings));
      REQUIRE(m != nullptr);
      REQUIRE(format_reader_page(m, reader_page_bytes(kRings), kRings) == 0);
      ::munmap(m, reader_page_bytes(kRings));
    }
    for (uint32_t w = 0; w < writers(); ++w) {
      const WriterCmd cmd{ring_idx[w], uint32_t(wpid[(w + 1) % writers()])};
      send_all(ctl_w[w], &cmd, sizeof cmd);
    }
    for (uint32_t w = 0; w < writers(); ++w) REQUIRE(recv_byte(up[0]) == 'r');  // all sealed
    for (uint32_t r = 0; r < kReaders; ++r) {
      ReaderCmd cmd{};
      cmd.reader_idx = r;
      for (uint32_t w = 0; w < writers(); ++w) {
        cmd.expect[ring_idx[w]] = plan.writers[w] == kDying ? plan.dying_sent : plan.each;
        if (plan.writers[w] == kDying) cmd.must_drop |= 1u << ring_idx[w];
      }
      send_all(ctl_w[writers() + r], &cmd, sizeof cmd);
      send_all(ctl_w[writers() + r], "a", 1);
    }
    for (uint32_t r = 0; r < kReaders; ++r) REQUIRE(recv_byte(up[0]) == 'j');
    for (uint32_t r = 0; r < kReaders; ++r) REQUIRE(dw.activate_reader(r, &reader_state[r]) == 0);
  }

  void go(uint32_t w) { send_all(ctl_w[w], "g", 1); }

  // The registry's wake after a directory change (readers also look every slice).
  void ring_reader_bells() {
    auto* bells = static_cast<Bell*>(map_rw(bells_fd, bells_bytes(kRings, kReaders)));
    REQUIRE(bells != nullptr);
    for (uint32_t r = 0; r < kReaders; ++r) {
      bells[kRings + r].word.fetch_add(1, std::memory_order_release);
      fwipc::futex_wake_all(&bells[kRings + r].word);
    }
    ::munmap(bells, bells_bytes(kRings, kReaders));
  }

  // Every reader's report, by reader index; the readers reaped.
  std::vector<ReaderResult> results() {
    std::vector<ReaderResult> out(kReaders);
    for (uint32_t r = 0; r < kReaders; ++r) {
      ReaderResult one{};
      REQUIRE(recv_all(res[0], &one, sizeof one));
      REQUIRE(one.reader_idx < kReaders);
      out[one.reader_idx] = one;
    }
    for (pid_t& p : rpid) {
      CHECK(wait_child(p) == 0);
      p = -1;
    }
    return out;
  }
};

}  // namespace

TEST_CASE("8 writer processes of 3 uids to 2 readers: every sender is its ring's PID, whatever the writers scribble") {
  const std::vector<Ident> ids = three_uids();
  Plan plan;
  plan.each = 10'000;
  for (uint32_t w = 0; w < 8; ++w) {
    plan.writers.push_back(w % 3 == 2 ? kScribbler : kHonest);  // writers 2 and 5 lie
    plan.writer_id.push_back(ids[w % 3]);
  }
  plan.reader_id = {ids[0], ids[1]};  // root and nobody
  Channel ch(plan);
  const int64_t t0 = fwipc::monotonic_ns();
  ch.start();
  const std::vector<pid_t> pids = ch.wpid;
  for (uint32_t w = 0; w < ch.writers(); ++w) ch.go(w);
  for (uint32_t w = 0; w < ch.writers(); ++w) {
    CHECK(wait_child(ch.wpid[w]) == 0);
    ch.wpid[w] = -1;
  }
  const std::vector<ReaderResult> res = ch.results();
  MESSAGE("8 writers x " << plan.each << " messages to 2 readers: " << (fwipc::monotonic_ns() - t0) / 1'000'000
                         << " ms");

  for (uint32_t r = 0; r < Channel::kReaders; ++r) {
    const ReaderResult& o = res[r];
    INFO("reader " << r);
    CHECK(o.fail == 0);
    CHECK(o.uid == plan.reader_id[r].uid);
    CHECK(o.attached == 0xffu);
    CHECK(o.write_map_refused == 8);  // no ring could be mapped writable through its descriptor
    for (uint32_t w = 0; w < 8; ++w) {
      INFO("writer " << w);
      CHECK(o.sender_of[w] == uint32_t(pids[w]));
      CHECK(o.got[w] == plan.each);  // nothing lost: writers held back on both readers
    }
    CHECK(o.bad_sender == 0);
    CHECK(o.bad_order == 0);  // per-sender order
    CHECK(o.bad_payload == 0);
    CHECK(o.errors == 0);
    CHECK(o.forged_seen == 2 * plan.each);  // the two scribblers' every claim, none believed
  }
  // The senders the readers used are the PIDs the registry recorded, and nothing the
  // writers wrote: the scribblers' ring headers name someone else.
  uint64_t dir_bytes = 0;
  const void* dm = map_ro(ch.dir_fd, &dir_bytes);
  REQUIRE(dm != nullptr);
  DirReader dr;
  REQUIRE(dr.attach(dm, dir_bytes) == 0);
  for (uint32_t w = 0; w < 8; ++w) {
    EntryView v;
    REQUIRE(dr.ring(w, &v));
    CHECK(v.pid == uint32_t(pids[w]));
    CHECK(v.uid == plan.writer_id[w].uid);
    CHECK(v.capacity == plan.cap);
    for (uint32_t r = 0; r < Channel::kReaders; ++r) CHECK(res[r].sender_of[w] == v.pid);
    uint64_t n = 0;
    const auto* rh = static_cast<const RingHeader*>(map_ro(ch.ring_fd[w], &n));
    REQUIRE(rh != nullptr);
    if (plan.writers[w] == kScribbler) {
      CHECK(rh->writer_pid == uint32_t(pids[(w + 1) % 8]));  // a lie nobody believed
    } else {
      CHECK(rh->writer_pid == v.pid);
    }
    ::munmap(const_cast<RingHeader*>(rh), n);
  }
  ::munmap(const_cast<void*>(dm), dir_bytes);
}

TEST_CASE("a writer killed mid-record never delays the other writers; the registry drains its ring, readers drop it") {
  const std::vector<Ident> ids = three_uids();
  Plan plan;
  plan.each = 3000;
  plan.dying_sent = 300;
  plan.writers = {kDying, kHonest, kHonest, kHonest};
  plan.writer_id = {ids[1], ids[0], ids[1], ids[2]};
  plan.reader_id = {ids[0], ids[1]};
  Channel ch(plan);
  ch.start();
  ch.go(0);
  REQUIRE(recv_byte(ch.up[0]) == 'm');  // ring 0's writer holds a reserved, uncommitted record
  // The other writers send everything while it does: with 8 KiB rings that is ~40 laps
  // each, so the readers took their messages past the stuck record all along.
  for (uint32_t w = 1; w < ch.writers(); ++w) ch.go(w);
  for (uint32_t w = 1; w < ch.writers(); ++w) {
    CHECK(wait_child(ch.wpid[w]) == 0);
    ch.wpid[w] = -1;
  }
  REQUIRE(::kill(ch.wpid[0], SIGKILL) == 0);
  CHECK(wait_child(ch.wpid[0]) == 128 + SIGKILL);
  ch.wpid[0] = -1;
  // The registry saw it die: its ring drains.
  CHECK(ch.dw.free_ring(0, ch.ring_state[0] + 256) == -ESTALE);
  REQUIRE(ch.dw.drain_ring(0, ch.ring_state[0]) == 0);
  ch.ring_reader_bells();
  const std::vector<ReaderResult> res = ch.results();
  for (uint32_t r = 0; r < Channel::kReaders; ++r) {
    const ReaderResult& o = res[r];
    INFO("reader " << r);
    CHECK(o.fail == 0);
    CHECK(o.got[0] == plan.dying_sent);  // what it committed, never the torn record
    for (uint32_t w = 1; w < ch.writers(); ++w) CHECK(o.got[w] == plan.each);
    CHECK(o.dropped == 1u);  // ring 0 dropped (draining and empty), no other
    CHECK(o.bad_sender == 0);
    CHECK(o.bad_order == 0);
    CHECK(o.bad_payload == 0);
    CHECK(o.errors == 0);
  }
  // Every reader's cursor for ring 0 is at its tail: the registry may free it now.
  uint64_t n = 0;
  const auto* rh = static_cast<const RingHeader*>(map_ro(ch.ring_fd[0], &n));
  REQUIRE(rh != nullptr);
  const uint64_t tail = rh->tail.load(std::memory_order_acquire);
  CHECK(tail > 0);
  for (uint32_t r = 0; r < Channel::kReaders; ++r) {
    uint64_t pn = 0;
    const auto* page = static_cast<const ReaderPage*>(map_ro(ch.page_fd[r], &pn));
    REQUIRE(page != nullptr);
    CHECK(page->cursor[0].load(std::memory_order_acquire) == tail);
    ::munmap(const_cast<ReaderPage*>(page), pn);
  }
  ::munmap(const_cast<RingHeader*>(rh), n);
  const uint64_t draining = (ch.ring_state[0] & ~0xffull) | kDraining;
  CHECK(ch.dw.free_ring(0, ch.ring_state[0]) == -ESTALE);
  CHECK(ch.dw.free_ring(0, draining) == 0);
  CHECK(ch.dw.ring(0).status() == kFree);
}
