// Ring v2 core (wring.h) with real processes: the writer maps its ring read-write, the
// reader maps it read-only through a descriptor reopened O_RDONLY via /proc/self/fd, the
// reader's cursor page is the reader's alone. A writer killed mid-record stops its ring
// only; a writer scribbling its ring makes its reader report corruption, never crash.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "base/proc.h"
#include "base/time.h"
#include "transports/shm/wring.h"

using fwipc::MsgHeader;
using namespace fwipc::shm::v2;

namespace {

constexpr uint64_t kPage = 4096;
constexpr int64_t kAntiHangNs = 60'000'000'000;  // generous: only a hang trips it

uint64_t page_round(uint64_t n) { return (n + kPage - 1) & ~(kPage - 1); }

// A sealed memfd of `bytes` (size fixed: nobody can shrink it under a reader).
int make_memfd(uint64_t bytes) {
  const int fd = ::memfd_create("wring-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, off_t(bytes)) == 0);
  REQUIRE(::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
  return fd;
}

void* map_rw(int fd, uint64_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  REQUIRE(p != MAP_FAILED);
  return p;
}

// Maps fd read-only between two PROT_NONE guard pages, so a read past either end faults.
const char* map_ro_guarded(int fd, uint64_t bytes) {
  const uint64_t span = page_round(bytes);
  void* area = ::mmap(nullptr, span + 2 * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(area != MAP_FAILED);
  void* p = ::mmap(static_cast<char*>(area) + kPage, span, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
  REQUIRE(p != MAP_FAILED);
  return static_cast<const char*>(p);
}

void put_u64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint64_t get_u64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Message `seq` of writer `w`: its size, and a payload every byte of which is checkable.
uint32_t size_of(uint64_t seq) { return uint32_t(8 + (seq * 37) % (kMaxPayload - 7)); }
void fill(char* buf, uint32_t w, uint64_t seq) {
  const uint32_t n = size_of(seq);
  put_u64(buf, seq);
  for (uint32_t i = 8; i < n; ++i) buf[i] = char((seq + i + w) & 0xff);
}
bool check(const char* buf, uint32_t n, uint32_t w, uint64_t seq) {
  if (n != size_of(seq) || get_u64(buf) != seq) return false;
  for (uint32_t i = 8; i < n; ++i)
    if (buf[i] != char((seq + i + w) & 0xff)) return false;
  return true;
}

void send_byte(int fd, char c) { REQUIRE(::write(fd, &c, 1) == 1); }
char recv_byte(int fd) {
  char c = 0;
  return ::read(fd, &c, 1) == 1 ? c : 0;
}

int wait_child(pid_t pid) {
  int st = 0;
  if (::waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Everything a channel of `rings` writers and one reader needs, made by the "registry"
// (the test's parent) before it forks the writers.
struct Channel {
  uint64_t cap;
  uint32_t rings;
  std::vector<int> ring_fd;
  int page_fd = -1;
  ReaderPage* page = nullptr;  // the reader's (the parent's) read-write mapping
  Bell* bells = nullptr;       // [rings] writer bells, then the reader's
  uint64_t page_bytes() const { return reader_page_bytes(rings); }

  Channel(uint64_t capacity, uint32_t n) : cap(capacity), rings(n) {
    for (uint32_t i = 0; i < n; ++i) {
      const int fd = make_memfd(ring_bytes(cap));
      void* p = map_rw(fd, ring_bytes(cap));
      REQUIRE(format_ring(p, ring_bytes(cap), cap, 0, i, 42) == 0);
      ::munmap(p, ring_bytes(cap));  // the registry keeps no writable mapping
      ring_fd.push_back(fd);
    }
    page_fd = make_memfd(page_bytes());
    page = static_cast<ReaderPage*>(map_rw(page_fd, page_bytes()));
    REQUIRE(format_reader_page(page, page_bytes(), n) == 0);
    // Only the reader's mapping can write its page from now on.
    REQUIRE(::fcntl(page_fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) == 0);
    void* b = ::mmap(nullptr, sizeof(Bell) * (n + 1), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(b != MAP_FAILED);
    bells = static_cast<Bell*>(b);
  }
  std::atomic<uint32_t>* reader_bell() { return &bells[rings].word; }

  // In writer child i: map its ring read-write, seal it (no other process can ever map
  // it writable), map the reader's page read-only, attach. Returns the ring's mapping.
  char* writer_attach(uint32_t i, RingWriter* w, uint32_t pid, const ReaderPage** page_out = nullptr) {
    void* p = map_rw(ring_fd[i], ring_bytes(cap));
    static_cast<RingHeader*>(p)->writer_pid = ~pid;  // a lie: readers must not believe it
    if (::fcntl(ring_fd[i], F_ADD_SEALS, F_SEAL_FUTURE_WRITE) != 0) ::_exit(90);
    const int ro = fwipc::reopen_read_only(page_fd);
    const void* pg = ro >= 0 ? ::mmap(nullptr, page_bytes(), PROT_READ, MAP_SHARED, ro, 0) : MAP_FAILED;
    if (pg == MAP_FAILED) ::_exit(91);
    const auto* rp = static_cast<const ReaderPage*>(pg);
    if (w->attach(p, ring_bytes(cap), &bells[i].word) != 0) ::_exit(92);
    const ReaderPort port{&rp->cursor[i], &rp->sleep, reader_bell()};
    w->set_readers(&port, 1);
    if (page_out != nullptr) *page_out = rp;
    return static_cast<char*>(p);
  }

  // In the reader: waits until ring i's writer has sealed it (it does so before it
  // waits for 'g'), so a reader attaching after this knows no one else can write it.
  void wait_sealed(uint32_t i, int64_t until) const {
    while ((::fcntl(ring_fd[i], F_GET_SEALS) & F_SEAL_FUTURE_WRITE) == 0) REQUIRE(fwipc::monotonic_ns() < until);
  }

  // Forks a writer child per ring: child w attaches to ring w, waits for 'g' on go, and
  // exits with body(writer, w). Returns the children's PIDs, by ring.
  template <class Body>
  std::vector<pid_t> fork_writers(int go, Body body) {
    std::vector<pid_t> pids;
    for (uint32_t w = 0; w < rings; ++w) {
      const pid_t pid = ::fork();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        RingWriter wr;
        writer_attach(w, &wr, uint32_t(::getpid()));
        if (recv_byte(go) != 'g') ::_exit(2);
        ::_exit(body(wr, w));
      }
      pids.push_back(pid);
    }
    return pids;
  }

  // In the reader: attaches readers[w] to every ring w once its writer has sealed it,
  // and adds it to the set.
  void attach_set(RingSet* set, std::vector<RingReader>* readers, const std::vector<pid_t>& pids, int64_t until) {
    for (uint32_t w = 0; w < rings; ++w) {
      wait_sealed(w, until);
      reader_attach(w, &(*readers)[w], pids[w]);
      set->add(w, &(*readers)[w]);
    }
  }

  // In the reader: map ring i read-only (after its writer sealed it) and attach.
  // sender: the writer's PID as the registry knows it (here: from fork).
  const char* reader_attach(uint32_t i, RingReader* r, pid_t sender) {
    const int ro = fwipc::reopen_read_only(ring_fd[i]);
    REQUIRE(ro >= 0);
    const char* m = map_ro_guarded(ro, ring_bytes(cap));
    ::close(ro);
    REQUIRE(r->attach(m, ring_bytes(cap), uint32_t(sender), &page->cursor[i], &bells[i].word) == 0);
    return m;
  }
};

// In a writer child: sends messages 0..n-1 of writer w (fill()'s payloads); false if a
// send fails.
bool send_filled(RingWriter& wr, uint32_t w, uint64_t n) {
  char buf[kMaxPayload];
  for (uint64_t seq = 0; seq < n; ++seq) {
    fill(buf, w, seq);
    if (wr.send(MsgHeader{1, size_of(seq), 0, 0, 0}, buf, kAntiHangNs) < 0) return false;
  }
  return true;
}

}  // namespace

// A smallest ring in this process's memory, its writer (PID 1234 in the directory) and one
// reader attached at its start.
struct LocalRing {
  std::vector<char> mem = std::vector<char>(ring_bytes(kMinCapacity), 0);
  std::atomic<uint32_t> wbell{0}, rbell{0}, sleep{0};
  std::atomic<uint64_t> cursor{kDetached};
  RingWriter w;
  RingReader r;
  ReaderPort port{&cursor, &sleep, &rbell};
  LocalRing() {
    REQUIRE(format_ring(mem.data(), mem.size(), kMinCapacity, 1234, 0, 0) == 0);
    REQUIRE(w.attach(mem.data(), mem.size(), &wbell) == 0);
    REQUIRE(r.attach(mem.data(), mem.size(), 1234, &cursor, &wbell) == 0);
    w.set_readers(&port, 1);
  }
};

TEST_CASE("format and attach refuse what is not a ring of this layout") {
  std::vector<char> mem(ring_bytes(kMinCapacity) + 64, 0);
  CHECK(format_ring(mem.data(), mem.size(), 3000, 1, 0, 0) == -EINVAL);              // not a power of two
  CHECK(format_ring(mem.data(), mem.size(), 2048, 1, 0, 0) == -EINVAL);              // below the minimum
  CHECK(format_ring(mem.data(), mem.size(), kMinCapacity * 2, 1, 0, 0) == -EINVAL);  // region too small
  std::atomic<uint64_t> cursor{kDetached};
  std::atomic<uint32_t> bell{0};
  RingReader r;
  CHECK(r.attach(mem.data(), mem.size(), 7, &cursor, &bell) == -EBADMSG);  // zeroes: no magic
  REQUIRE(format_ring(mem.data(), mem.size(), kMinCapacity, 7, 0, 0) == 0);
  auto* h = reinterpret_cast<RingHeader*>(mem.data());
  CHECK(r.attach(mem.data(), sizeof(RingHeader) + 100, 7, &cursor, &bell) ==
        -EBADMSG);  // mapping shorter than the ring
  h->capacity = 1ull << 40;
  CHECK(r.attach(mem.data(), mem.size(), 7, &cursor, &bell) == -EBADMSG);
  h->capacity = kMinCapacity;
  h->version = kRingVersion + 1;
  CHECK(r.attach(mem.data(), mem.size(), 7, &cursor, &bell) == -EBADMSG);
  h->version = kRingVersion;
  h->tail.store(5);  // not a record boundary
  CHECK(r.attach(mem.data(), mem.size(), 7, &cursor, &bell) == -EBADMSG);
  h->tail.store(0);
  CHECK(r.attach(mem.data(), mem.size(), 7, &cursor, &bell) == 0);
  CHECK(cursor.load() == 0);
}

TEST_CASE("one process: records, sizes, back-pressure, loans") {
  LocalRing ring;
  RingWriter& w = ring.w;
  RingReader& r = ring.r;

  char buf[kMaxPayload + 1] = {};
  MsgHeader h{7, 0, 999, 0, 3};
  CHECK(w.send(h, buf, 0) == 0);
  h.size = 64;
  std::memset(buf, 'x', 64);
  CHECK(w.send(h, buf, 0) == 64);
  h.size = kMaxPayload + 1;
  CHECK(w.send(h, buf, 0) == -EMSGSIZE);
  CHECK(w.tail() == 32 + 96);  // compact: 0 B takes 32, 64 B takes 96

  MsgHeader got{};
  char out[kMaxPayload];
  CHECK(r.read(&got, out, sizeof out) == 0);
  CHECK(got.sender == 1234);  // the ring's writer, not the 999 the caller passed
  CHECK(got.type == 7);
  CHECK(got.priority == 3);
  CHECK(r.read(&got, out, 10) == -EMSGSIZE);  // kept
  CHECK(got.size == 64);
  CHECK(r.read(&got, out, sizeof out) == 64);
  CHECK(std::memcmp(out, buf, 64) == 0);
  CHECK(r.read(&got, out, sizeof out) == -EAGAIN);

  // Full: a reader that takes nothing holds the writer to one lap.
  h.size = 64;
  int sent = 0;
  while (w.send(h, buf, 0) == 64) ++sent;
  CHECK(sent == int((kMinCapacity - kRecAlign) / 96));
  CHECK(w.send(h, buf, 0) == -EAGAIN);
  CHECK(w.send(h, buf, 1'000'000) == -ETIMEDOUT);
  CHECK(r.consume(5, [](const RecordView&) {}) == 5);
  CHECK(w.send(h, buf, 0) == 64);
  int left = 0;
  while (r.read(&got, out, sizeof out) == 64) ++left;
  CHECK(left == sent - 5 + 1);

  // Loans: abandoned publishes nothing, committed publishes its size; pads on the way.
  for (int round = 0; round < 200; ++round) {
    WLoan l;
    REQUIRE(w.loan(&l, 0) == 0);
    std::memset(l.data, 'a' + round % 26, kMaxPayload);
    if (round % 3 == 0) {
      w.abandon(&l);
      CHECK(r.read(&got, out, sizeof out) == -EAGAIN);
      continue;
    }
    h.size = uint32_t(round);
    CHECK(w.commit(&l, h) == round);
    REQUIRE(r.read(&got, out, sizeof out) == round);
    CHECK((round == 0 || out[round - 1] == char('a' + round % 26)));
  }
  WLoan stale;
  stale.data = buf;
  stale.pos = w.tail() + 32;
  CHECK(w.commit(&stale, h) == -EINVAL);
  CHECK(w.ignored_cursors() == 0);
}

TEST_CASE("a record window: never more than n unread, whatever the sizes, pads and batches") {
  LocalRing ring;
  RingWriter& w = ring.w;
  RingReader& r = ring.r;
  w.set_max_records(5);  // not a power of two: the ends' ring is larger than the window

  char buf[kMaxPayload] = {};
  MsgHeader got{};
  char out[kMaxPayload];
  uint64_t sent = 0, read = 0;
  std::mt19937 rng(7);
  // Many laps of 4 KiB: sizes from 0 to the largest (so pads at most lap ends), the reader
  // taking a random number each round; a send succeeds exactly while fewer than 5 are unread.
  for (int round = 0; round < 3000; ++round) {
    for (;;) {
      const uint32_t size = uint32_t(rng() % (kMaxPayload + 1));
      put_u64(buf, sent);
      MsgHeader h{1, std::max<uint32_t>(size, 8), 0, 0, 0};
      if (round % 4 == 0) {  // a batch of 3: its first commit is stored last
        const MsgHeader hs[3] = {h, h, h};
        char b1[kMaxPayload], b2[kMaxPayload];
        put_u64(b1, sent + 1);
        put_u64(b2, sent + 2);
        const void* ps[3] = {buf, b1, b2};
        const int n = w.send_batch(hs, ps, 3, 0);
        if (n == -EAGAIN) break;
        REQUIRE(n > 0);
        sent += uint64_t(n);
        if (n < 3) break;
      } else {
        const int rc = w.send(h, buf, 0);
        if (rc == -EAGAIN) break;
        REQUIRE(rc == int(h.size));
        ++sent;
      }
      REQUIRE(sent - read <= 5);
    }
    // Refused only for the window (or a full lap, which 5 of at most 544 B never fill).
    REQUIRE(sent - read == 5);
    const uint32_t take = 1 + rng() % 5;
    for (uint32_t i = 0; i < take; ++i) {
      REQUIRE(r.read(&got, out, sizeof out) > 0);
      CHECK(get_u64(out) == read);
      ++read;
    }
  }
  CHECK(w.tail() > 100 * kMinCapacity);  // many laps
  while (r.read(&got, out, sizeof out) > 0) CHECK(get_u64(out) == read++);
  CHECK(read == sent);
}

TEST_CASE("a writer process and a reader on a read-only mapping: every message, in order") {
  constexpr uint64_t kMsgs = 200'000;
  Channel ch(kMinCapacity, 1);  // small: laps, pads, a full ring and sleeps on both sides
  int go[2];
  REQUIRE(::pipe(go) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    RingWriter w;
    ch.writer_attach(0, &w, uint32_t(::getpid()));
    if (recv_byte(go[0]) != 'g') ::_exit(2);
    char buf[kMaxPayload];
    static char bbuf[16][kMaxPayload];
    for (uint64_t seq = 0; seq < kMsgs;) {
      const int mode = int(seq / 1000 % 3);
      MsgHeader h{1, size_of(seq), 0, 0, 0};
      if (mode == 0) {
        fill(buf, 0, seq);
        if (w.send(h, buf, kAntiHangNs) != int(h.size)) ::_exit(3);
        ++seq;
      } else if (mode == 1) {
        WLoan l;
        if (w.loan(&l, kAntiHangNs) != 0) ::_exit(4);
        fill(l.data, 0, seq);
        if (w.commit(&l, h) != int(h.size)) ::_exit(5);
        ++seq;
      } else {
        MsgHeader hs[16];
        const void* ps[16];
        const uint32_t k = uint32_t(std::min<uint64_t>(16, kMsgs - seq));
        for (uint32_t j = 0; j < k; ++j) {
          fill(bbuf[j], 0, seq + j);
          hs[j] = MsgHeader{1, size_of(seq + j), 0, 0, 0};
          ps[j] = bbuf[j];
        }
        const int n = w.send_batch(hs, ps, k, kAntiHangNs);
        if (n <= 0) ::_exit(6);
        seq += uint64_t(n);
      }
    }
    ::_exit(w.ignored_cursors() == 0 ? 0 : 7);
  }
  ::close(go[0]);

  // The read-only descriptor cannot give a writable mapping, nor can a reopen for writing
  // once the writer sealed its ring (wait for its attach: the page write below needs it).
  RingReader r;
  ch.wait_sealed(0, fwipc::monotonic_ns() + kAntiHangNs);
  const int ro = fwipc::reopen_read_only(ch.ring_fd[0]);
  REQUIRE(ro >= 0);
  errno = 0;
  CHECK(::mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED);
  CHECK(errno == EACCES);
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", ro);
  const int rw = ::open(path, O_RDWR | O_CLOEXEC);  // memfds reopen for writing...
  if (rw >= 0) {
    errno = 0;
    CHECK(::mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0) == MAP_FAILED);  // ...but the seal holds
    CHECK(errno == EPERM);
    ::close(rw);
  }
  ::close(ro);
  const char* m = ch.reader_attach(0, &r, pid);
  CHECK(r.writer_pid() == uint32_t(pid));
  send_byte(go[1], 'g');

  ReaderSleep sleeper(&ch.page->sleep, ch.reader_bell());
  uint64_t next = 0, bad = 0, sleeps = 0, missed = 0;
  char out[kMaxPayload];
  const int64_t deadline = fwipc::monotonic_ns() + kAntiHangNs;
  while (next < kMsgs && fwipc::monotonic_ns() < deadline) {
    int rc;
    if (next % 2 == 0) {
      MsgHeader h;
      rc = r.read(&h, out, sizeof out);
      if (rc >= 0) {
        bad += !check(out, uint32_t(rc), 0, next) || h.sender != uint32_t(pid);
        ++next;
      }
    } else {
      rc = r.consume(64, [&](const RecordView& v) {
        bad += v.payload < m || v.payload + v.hdr.size > m + ring_bytes(ch.cap);
        bad += !check(v.payload, v.hdr.size, 0, next);
        ++next;
      });
    }
    if (rc == -EAGAIN) {
      ++sleeps;
      // A whole slice asleep with a record there: the writer committed it after our sleep
      // word went odd and did not wake us (the Dekker pair of base/membarrier.h failed).
      if (sleeper.sleep([&] { return r.ready(); }, 100'000'000) == -ETIMEDOUT && r.ready()) ++missed;
    } else if (rc < 0) {
      FAIL("read failed: " << rc);
    }
  }
  CHECK(next == kMsgs);
  CHECK(bad == 0);
  CHECK(missed == 0);
  CHECK_FALSE(r.corrupt());
  CHECK(wait_child(pid) == 0);
  MESSAGE("reader went to sleep " << sleeps << " times");
  ::close(go[1]);
}

TEST_CASE("a writer killed mid-record stops its own ring only") {
  constexpr uint64_t kHonest = 50'000;
  Channel ch(1u << 20, 2);  // room for all the dying writer sends before anyone reads
  int go[2], go0[2], mid[2];
  REQUIRE(::pipe(go) == 0);
  REQUIRE(::pipe(go0) == 0);
  REQUIRE(::pipe(mid) == 0);
  // Ring 0: a writer that sends 1000 messages, starts a record (header and payload
  // written, commit word not), says so, and is killed there.
  const pid_t dying = ::fork();
  REQUIRE(dying >= 0);
  if (dying == 0) {
    RingWriter w;
    ch.writer_attach(0, &w, uint32_t(::getpid()));
    if (recv_byte(go0[0]) != 'g') ::_exit(4);
    if (!send_filled(w, 0, 1000)) ::_exit(2);
    WLoan l;
    if (w.loan(&l, kAntiHangNs) != 0) ::_exit(3);
    std::memset(l.data - kRecHeader + 8, 0x5a, kRecHeader - 8 + kMaxPayload);  // all but the commit word
    send_byte(mid[1], 'm');
    for (;;) ::pause();
  }
  // Ring 1: an honest writer, started once the other is dead.
  const pid_t honest = ::fork();
  REQUIRE(honest >= 0);
  if (honest == 0) {
    RingWriter w;
    ch.writer_attach(1, &w, uint32_t(::getpid()));
    if (recv_byte(go[0]) != 'g') ::_exit(2);
    ::_exit(send_filled(w, 1, kHonest) ? 0 : 3);
  }
  RingReader r0, r1;
  ch.reader_attach(0, &r0, dying);  // before it sends: its ring is still at tail 0
  send_byte(go0[1], 'g');
  REQUIRE(recv_byte(mid[0]) == 'm');
  REQUIRE(::kill(dying, SIGKILL) == 0);
  CHECK(wait_child(dying) == 128 + SIGKILL);
  ch.wait_sealed(1, fwipc::monotonic_ns() + kAntiHangNs);
  ch.reader_attach(1, &r1, honest);
  send_byte(go[1], 'g');

  ReaderSleep sleeper(&ch.page->sleep, ch.reader_bell());
  char out[kMaxPayload];
  MsgHeader h;
  uint64_t got0 = 0, got1 = 0, bad = 0;
  const int64_t deadline = fwipc::monotonic_ns() + kAntiHangNs;
  while (got1 < kHonest && fwipc::monotonic_ns() < deadline) {
    bool any = false;
    for (int rc; (rc = r0.read(&h, out, sizeof out)) >= 0; any = true) bad += !check(out, uint32_t(rc), 0, got0++);
    for (int rc; (rc = r1.read(&h, out, sizeof out)) >= 0; any = true) bad += !check(out, uint32_t(rc), 1, got1++);
    if (!any) sleeper.sleep([&] { return r0.ready() || r1.ready(); }, 100'000'000);
  }
  CHECK(got0 == 1000);  // everything committed before the kill, nothing of the torn record
  CHECK(got1 == kHonest);
  CHECK(bad == 0);
  CHECK(r0.read(&h, out, sizeof out) == -EAGAIN);  // stopped, not corrupt
  CHECK_FALSE(r0.corrupt());
  CHECK(wait_child(honest) == 0);
  ::close(go[1]);
}

TEST_CASE("a writer scribbling its ring: its reader reports corruption, the other writer's messages are intact") {
  constexpr uint64_t kHonest = 100'000;
  Channel ch(kMinCapacity * 2, 2);
  int stop[2], go[2];
  REQUIRE(::pipe2(stop, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
  const pid_t hostile = ::fork();
  REQUIRE(hostile >= 0);
  if (hostile == 0) {
    // Writes whatever it likes into its own ring (all it can write): random bytes anywhere
    // (header included), plausible and impossible commit words and pads at the reader's
    // cursor (which it can read), a few honest records. Then, until told to stop, a commit
    // word no record can have, at the reader's cursor.
    ::close(stop[1]);
    RingWriter w;
    const ReaderPage* rp = nullptr;
    char* ring = ch.writer_attach(0, &w, uint32_t(::getpid()), &rp);
    if (recv_byte(go[0]) != 'g') ::_exit(4);  // the reader attaches to a well-formed ring first
    char* base = ring + sizeof(RingHeader);
    auto* hdr = reinterpret_cast<RingHeader*>(ring);
    const uint64_t mask = ch.cap - 1;
    auto word_at = [&](uint64_t pos) { return reinterpret_cast<std::atomic<uint64_t>*>(base + (pos & mask & ~31ull)); };
    std::mt19937_64 rng(uint64_t(::getpid()));
    char buf[kMaxPayload] = {};
    for (int i = 0; i < 300'000; ++i) {
      const uint64_t c = rp->cursor[0].load(std::memory_order_relaxed);
      switch (rng() % 9) {
        case 0: {
          const uint64_t off = rng() % (ring_bytes(ch.cap) - 64);
          for (int k = 0; k < 8; ++k) put_u64(ring + off + 8 * k, rng());
          break;
        }
        case 1: word_at(c)->store(c + kRecHeader + rng() % (kMaxPayload + 1), std::memory_order_release); break;
        case 2: word_at(c)->store(c + kRecHeader + kMaxPayload + 1 + rng() % 100'000, std::memory_order_release); break;
        case 3: word_at(c)->store(kPad | (c + rng() % 10'000), std::memory_order_release); break;
        case 4: word_at(c)->store((1ull << 62) | (c + 64), std::memory_order_release); break;
        case 5: hdr->capacity = rng(); break;
        case 6: hdr->tail.store(rng(), std::memory_order_relaxed); break;
        default: (void)w.send(MsgHeader{1, uint32_t(rng() % (kMaxPayload + 1)), 0, 0, 0}, buf, 0); break;
      }
    }
    // Then a word no record can have (reserved bit 62) everywhere a record may start,
    // whatever the reader's position (its published cursor may lag its local one).
    ::fcntl(stop[0], F_SETFL, O_NONBLOCK);
    char b;
    while (::read(stop[0], &b, 1) < 0 && errno == EAGAIN) {
      for (uint64_t off = 0; off < ch.cap; off += kRecAlign) word_at(off)->store(1ull << 62, std::memory_order_release);
      ::usleep(1000);
    }
    ::_exit(0);
  }
  const pid_t honest = ::fork();
  REQUIRE(honest >= 0);
  if (honest == 0) {
    ::close(stop[1]);
    RingWriter w;
    ch.writer_attach(1, &w, uint32_t(::getpid()));
    if (recv_byte(go[0]) != 'g') ::_exit(4);
    ::_exit(send_filled(w, 1, kHonest) ? 0 : 3);
  }
  ::close(stop[0]);
  const int64_t until = fwipc::monotonic_ns() + kAntiHangNs;
  for (uint32_t i = 0; i < 2; ++i) ch.wait_sealed(i, until);
  RingReader r0, r1;
  const char* m0 = ch.reader_attach(0, &r0, hostile);
  ch.reader_attach(1, &r1, honest);
  send_byte(go[1], 'g');  // one each
  send_byte(go[1], 'g');
  ::close(go[1]);
  const char* lo = m0 + sizeof(RingHeader);
  const char* hi = lo + ch.cap;

  ReaderSleep sleeper(&ch.page->sleep, ch.reader_bell());
  char out[kMaxPayload];
  MsgHeader h;
  uint64_t got1 = 0, bad = 0, junk = 0, out_of_bounds = 0;
  bool corrupt_seen = false;
  const int64_t deadline = fwipc::monotonic_ns() + kAntiHangNs;
  while ((got1 < kHonest || !corrupt_seen) && fwipc::monotonic_ns() < deadline) {
    bool any = false;
    // The hostile ring: whatever it holds, every view lies inside the mapping's records.
    const int rc0 = r0.consume(256, [&](const RecordView& v) {
      out_of_bounds += v.payload < lo || v.payload + v.hdr.size > hi || v.hdr.size > kMaxPayload;
      out_of_bounds += v.hdr.sender != uint32_t(hostile);
      ++junk;
    });
    if (rc0 > 0) any = true;
    if (rc0 == -EBADMSG) corrupt_seen = true;
    for (int k = 0, rc; k < 256 && (rc = r1.read(&h, out, sizeof out)) >= 0; ++k, any = true)
      bad += !check(out, uint32_t(rc), 1, got1++) || h.sender != uint32_t(honest);
    if (!any && !corrupt_seen) sleeper.sleep([&] { return r0.ready() || r1.ready(); }, 10'000'000);
  }
  CHECK(got1 == kHonest);
  CHECK(bad == 0);
  CHECK(corrupt_seen);
  CHECK(r0.corrupt());
  CHECK(r0.read(&h, out, sizeof out) == -EBADMSG);  // sticky: the ring is never read again
  CHECK(out_of_bounds == 0);
  // A reader attaching to the scribbled ring now either refuses it or stays in bounds.
  std::atomic<uint64_t> cursor{kDetached};
  std::atomic<uint32_t> bell{0};
  RingReader late;
  const int arc = late.attach(m0, ring_bytes(ch.cap), uint32_t(hostile), &cursor, &bell);
  CHECK((arc == 0 || arc == -EBADMSG));
  if (arc == 0) {
    for (int k = 0; k < 1000 && late.consume(64,
                                             [&](const RecordView& v) {
                                               out_of_bounds += v.payload < lo || v.payload + v.hdr.size > hi;
                                             }) > 0;
         ++k) {
    }
    CHECK(out_of_bounds == 0);
  }
  MESSAGE("records taken from the hostile ring before it was found corrupt: " << junk);
  send_byte(stop[1], 's');
  CHECK(wait_child(hostile) == 0);
  CHECK(wait_child(honest) == 0);
  ::close(stop[1]);
}

TEST_CASE("8 writer processes, one reader merging: senders, per-sender order, priorities, unicast") {
  constexpr uint32_t kWriters = 8;
  constexpr uint64_t kEach = 300;
  Channel ch(1u << 16, kWriters);  // room for everything: all is committed before the first receive
  int go[2], done[2];
  REQUIRE(::pipe(go) == 0);
  REQUIRE(::pipe(done) == 0);
  const uint32_t me = uint32_t(::getpid());
  auto prio_of = [](uint64_t i) { return i % 3 == 0 ? 2u : 0u; };
  auto receiver_of = [me](uint64_t i) { return i % 5 == 0 ? 1u : i % 7 == 0 ? me : 0u; };  // 1: not us
  const std::vector<pid_t> pids = ch.fork_writers(go[0], [&](RingWriter& wr, uint32_t w) {
    char buf[16];
    for (uint64_t i = 0; i < kEach; ++i) {
      put_u64(buf, w);
      put_u64(buf + 8, i);
      if (wr.send(MsgHeader{5, 16, 0, receiver_of(i), prio_of(i)}, buf, kAntiHangNs) != 16) return 3;
    }
    send_byte(done[1], 'd');
    return 0;
  });
  std::vector<RingReader> readers(kWriters);
  RingSet set(me);
  ch.attach_set(&set, &readers, pids, fwipc::monotonic_ns() + kAntiHangNs);
  for (uint32_t w = 0; w < kWriters; ++w) send_byte(go[1], 'g');
  for (uint32_t w = 0; w < kWriters; ++w) REQUIRE(recv_byte(done[0]) == 'd');

  std::vector<int64_t> last(kWriters * 3, -1);  // per (writer, priority): last seq seen
  uint64_t got = 0, order_bad = 0, sender_bad = 0, not_ours = 0, prio_inversions = 0;
  uint32_t last_prio = 2;
  char out[64];
  MsgHeader h;
  for (int rc; (rc = set.receive(&h, out, sizeof out)) >= 0;) {
    REQUIRE(rc == 16);
    const uint64_t w = get_u64(out), i = get_u64(out + 8);
    REQUIRE(w < kWriters);
    sender_bad += h.sender != uint32_t(pids[w]);
    not_ours += h.receiver != 0 && h.receiver != me;
    order_bad += int64_t(i) <= last[w * 3 + h.priority];
    last[w * 3 + h.priority] = int64_t(i);
    prio_inversions += h.priority > last_prio;
    last_prio = h.priority;
    ++got;
  }
  uint64_t want = 0;
  for (uint64_t i = 0; i < kEach; ++i) want += receiver_of(i) != 1u;
  CHECK(got == want * kWriters);
  CHECK(sender_bad == 0);
  CHECK(not_ours == 0);
  CHECK(order_bad == 0);
  CHECK(prio_inversions == 0);  // everything was there at once: all of priority 2 first
  CHECK(set.queued() == 0);
  for (pid_t p : pids) CHECK(wait_child(p) == 0);
  ::close(go[1]);
}

TEST_CASE("4 writers streaming to one reader through a RingSet: nothing lost, per-sender order") {
  constexpr uint32_t kWriters = 4;
  constexpr uint64_t kEach = 50'000;
  Channel ch(kMinCapacity * 2, kWriters);  // small rings: everyone blocks and sleeps now and then
  int go[2];
  REQUIRE(::pipe(go) == 0);
  const std::vector<pid_t> pids =
      ch.fork_writers(go[0], [&](RingWriter& wr, uint32_t w) { return send_filled(wr, w, kEach) ? 0 : 3; });
  std::vector<RingReader> readers(kWriters);
  RingSet set(uint32_t(::getpid()));
  const int64_t until = fwipc::monotonic_ns() + kAntiHangNs;
  ch.attach_set(&set, &readers, pids, until);
  for (uint32_t w = 0; w < kWriters; ++w) send_byte(go[1], 'g');
  ReaderSleep sleeper(&ch.page->sleep, ch.reader_bell());
  std::vector<uint64_t> next(kWriters, 0);
  std::map<pid_t, uint32_t> index;
  for (uint32_t w = 0; w < kWriters; ++w) index[pids[w]] = w;
  uint64_t got = 0, bad = 0;
  char out[kMaxPayload];
  MsgHeader h;
  while (got < kWriters * kEach && fwipc::monotonic_ns() < until) {
    const int rc = set.receive(&h, out, sizeof out);
    if (rc == -EAGAIN) {
      sleeper.sleep([&] { return set.ready(); }, 100'000'000);
      continue;
    }
    REQUIRE(rc >= 0);
    const auto it = index.find(pid_t(h.sender));
    REQUIRE(it != index.end());
    const uint32_t w = it->second;
    bad += !check(out, uint32_t(rc), w, next[w]++);
    ++got;
  }
  CHECK(got == kWriters * kEach);
  CHECK(bad == 0);
  for (pid_t p : pids) CHECK(wait_child(p) == 0);
  ::close(go[1]);
}
