// Hostile shared memory: a process with access to a channel scribbles random bytes over
// its segment (ring v2: over everything of the channel it may write) while others use
// it. Nobody may crash, read out of bounds (run under --config=asan) or hang; every call
// must return a documented code; the channel can then be recreated and works. On ring v2
// the other writers' messages also all arrive, in order.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "base/time.h"
#include "ipc.h"
#include "tests/support.h"
#include "transports/shm/layout.h"

using fwipc::test::Barrier;
using fwipc::test::spawn;
using fwipc::test::TempRuntime;
using fwipc::test::wait_exit_within;

namespace {

constexpr int64_t kRunNs = 2'000'000'000;

// A descriptor of this process's mapping of channel `name` (the runtime keeps the memfd).
int find_segment_fd(const std::string& name) {
  const std::string want = "/memfd:fwipc:" + name;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(e.path(), ec).string();
    if (!ec && target.rfind(want, 0) == 0) return std::stoi(e.path().filename().string());
  }
  return -1;
}

// Ring v2: every shared mapping of channel `name` this process may write (its own ring,
// its reader page, the bells), from /proc/self/maps. The directory and other writers'
// rings are mapped read-only: a peer cannot reach them.
std::vector<std::pair<unsigned char*, size_t>> writable_v2_mappings(const std::string& name) {
  std::vector<std::pair<unsigned char*, size_t>> out;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.find(" rw-s ") == std::string::npos || line.find("fwipc-") == std::string::npos ||
        line.find(":" + name + " ") == std::string::npos)
      continue;
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2)
      out.emplace_back(reinterpret_cast<unsigned char*>(lo), hi - lo);
  }
  return out;
}

// What the well-behaved writers send: whose, and which of theirs.
struct Stamp {
  uint32_t magic;
  uint32_t pid;
  uint32_t seq;
};
constexpr uint32_t kMagic = 0x5eed5eed;

bool receive_code_ok(int rc) {
  return rc >= 0 || rc == -EAGAIN || rc == -ETIMEDOUT || rc == -EBADMSG || rc == -EIO || rc == -EPIPE;
}

bool send_code_ok(int rc) { return rc >= 0 || rc == -EAGAIN || rc == -ETIMEDOUT || rc == -EIO || rc == -EPIPE; }

// Ring v2 (`whole`): a scribbler reaches only its own ring, so every message of a
// well-behaved writer (its stamp's pid is the sender) arrives, in order, none twice,
// from the first one this reader saw. Layout 4 promises only documented codes.
int reader_loop(int id, bool whole) {
  const int64_t end = fwipc::monotonic_ns() + kRunNs;
  std::map<uint32_t, uint32_t> next;  // writer pid -> the seq due
  IPC_MESSAGE m;
  while (fwipc::monotonic_ns() < end) {
    const int rc = ipc_receive_message(uint32_t(id), &m, 20);
    if (!receive_code_ok(rc)) return 40;
    if (rc >= 0 && uint32_t(rc) > IPC_MAX_PAYLOAD) return 41;
    Stamp st;
    if (!whole || rc < int(sizeof st)) continue;
    std::memcpy(&st, m.payload, sizeof st);
    if (st.magic != kMagic || st.pid != m.sender) continue;  // not a well-behaved writer's
    auto it = next.find(st.pid);
    if (it != next.end() && st.seq != it->second) return 42;
    next[st.pid] = st.seq + 1;
  }
  return whole && next.size() < 2 ? 43 : 0;  // both writers' messages came through
}

}  // namespace

TEST_CASE("shouldSurviveAPeerScribblingOverTheSegment") {
  const bool v2 = fwipc::test::ring_v2();
  TempRuntime rt;
  const int c = ipc_create_channel("scribble", IPC_TYPE_QUEUE, IPC_BUFFER_MIN);
  REQUIRE(c >= 0);
  Barrier ready, go;
  pid_t kids[5];
  int n = 0;
  for (int i = 0; i < 2; ++i) {
    kids[n++] = spawn([&] {
      const int id = ipc_open_channel("scribble", IPC_MODE_READ);
      if (id < 0) return 10;
      ready.signal();
      return reader_loop(id, v2);
    });
  }
  for (int i = 0; i < 2; ++i) {
    kids[n++] = spawn([&, i] {
      const int id = ipc_open_channel("scribble", IPC_MODE_WRITE | IPC_MODE_NONBLOCK);
      if (id < 0) return 20;
      ready.signal();
      const int64_t end = fwipc::monotonic_ns() + kRunNs;
      char buf[IPC_MAX_PAYLOAD] = {};
      Stamp st{kMagic, uint32_t(::getpid()), 0};
      for (uint32_t k = 0; fwipc::monotonic_ns() < end; ++k) {
        std::memcpy(buf, &st, sizeof st);
        const uint32_t size = sizeof st + (k * 37 + uint32_t(i)) % (IPC_MAX_PAYLOAD - sizeof st);
        const int rc = ipc_send(uint32_t(id), buf, size, 1);
        if (!send_code_ok(rc)) return 21;
        if (rc >= 0) ++st.seq;
        if (rc == -EAGAIN) ::usleep(100);
      }
      return 0;
    });
  }
  kids[n++] = spawn([&] {
    const int id = ipc_open_channel("scribble", IPC_MODE_READ | IPC_MODE_WRITE);
    if (id < 0) return 30;
    // Layout 4: the one segment. Ring v2: whatever of the channel we can write (our ring
    // needs a send to exist).
    std::vector<std::pair<unsigned char*, size_t>> targets;
    if (v2) {
      if (ipc_send(uint32_t(id), "x", 1, 1) != 1) return 34;
      targets = writable_v2_mappings("scribble");
      if (targets.size() < 2) return 31;  // at least our ring and our reader page
    } else {
      const int fd = find_segment_fd("scribble");
      struct stat st;
      if (fd < 0 || ::fstat(fd, &st) != 0) return 31;
      auto* p =
          static_cast<unsigned char*>(::mmap(nullptr, size_t(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
      if (p == MAP_FAILED) return 32;
      targets.emplace_back(p, size_t(st.st_size));
    }
    ready.signal();
    if (!go.wait(1)) return 33;  // everyone has joined: scribble from now on
    std::mt19937_64 rng(12345);
    const int64_t end = fwipc::monotonic_ns() + kRunNs;
    // Mostly the headers (small, where the indices live), then anywhere.
    const size_t header = v2 ? 4096 : sizeof(fwipc::shm::SegmentHeader);
    while (fwipc::monotonic_ns() < end) {
      const auto [p, bytes] = targets[rng() % targets.size()];
      const size_t span = (rng() & 3) == 0 ? bytes : std::min(header, bytes);
      const size_t off = rng() % (span - 64);
      for (size_t b = 0; b < 64; b += 8) {
        const uint64_t v = rng();
        std::memcpy(p + off + b, &v, 8);
      }
      ::usleep(200);
    }
    return 0;
  });
  const bool all_ready = ready.wait(n);
  go.signal();
  REQUIRE(all_ready);
  const int creator_rc = reader_loop(c, v2);
  CHECK(creator_rc == 0);
  for (int i = 0; i < n; ++i) CHECK(wait_exit_within(kids[i], 30000) == 0);
  // Recreate under the same name: the damaged segment goes away with its last holder.
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
  const int fresh = ipc_create_channel("scribble", IPC_TYPE_QUEUE, IPC_BUFFER_MIN);
  REQUIRE(fresh >= 0);
  const int w = ipc_open_channel("scribble", IPC_MODE_WRITE);
  REQUIRE(w >= 0);
  REQUIRE(ipc_send(uint32_t(w), "clean", 5, 1) == 5);
  char buf[8];
  CHECK(ipc_receive(uint32_t(fresh), buf, sizeof buf) == 5);
  CHECK(std::memcmp(buf, "clean", 5) == 0);
  CHECK(ipc_close_channel(uint32_t(w)) == 0);
  CHECK(ipc_close_channel(uint32_t(fresh)) == 0);
}
