// Hostile shared memory: a process with access to a channel scribbles random bytes over
// its segment while others use it. Nobody may crash, read out of bounds (run under
// --config=asan) or hang; every call must return a documented code; the channel can then
// be recreated and works.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

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

bool receive_code_ok(int rc) {
  return rc >= 0 || rc == -EAGAIN || rc == -ETIMEDOUT || rc == -EBADMSG || rc == -EIO || rc == -EPIPE;
}

bool send_code_ok(int rc) { return rc >= 0 || rc == -EAGAIN || rc == -ETIMEDOUT || rc == -EIO || rc == -EPIPE; }

int reader_loop(int id) {
  const int64_t end = fwipc::monotonic_ns() + kRunNs;
  IPC_MESSAGE m;
  while (fwipc::monotonic_ns() < end) {
    const int rc = ipc_receive_message(uint32_t(id), &m, 20);
    if (!receive_code_ok(rc)) return 40;
    if (rc >= 0 && uint32_t(rc) > IPC_MAX_PAYLOAD) return 41;
  }
  return 0;
}

}  // namespace

TEST_CASE("shouldSurviveAPeerScribblingOverTheSegment") {
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
      return reader_loop(id);
    });
  }
  for (int i = 0; i < 2; ++i) {
    kids[n++] = spawn([&, i] {
      const int id = ipc_open_channel("scribble", IPC_MODE_WRITE | IPC_MODE_NONBLOCK);
      if (id < 0) return 20;
      ready.signal();
      const int64_t end = fwipc::monotonic_ns() + kRunNs;
      char buf[IPC_MAX_PAYLOAD] = {};
      for (uint32_t k = 0; fwipc::monotonic_ns() < end; ++k) {
        const int rc = ipc_send(uint32_t(id), buf, (k * 37 + uint32_t(i)) % IPC_MAX_PAYLOAD, 1);
        if (!send_code_ok(rc)) return 21;
        if (rc == -EAGAIN) ::usleep(100);
      }
      return 0;
    });
  }
  kids[n++] = spawn([&] {
    const int id = ipc_open_channel("scribble", IPC_MODE_READ | IPC_MODE_WRITE);
    if (id < 0) return 30;
    const int fd = find_segment_fd("scribble");
    struct stat st;
    if (fd < 0 || ::fstat(fd, &st) != 0) return 31;
    auto* p =
        static_cast<unsigned char*>(::mmap(nullptr, size_t(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    if (p == MAP_FAILED) return 32;
    ready.signal();
    if (!go.wait(1)) return 33;  // everyone has joined: scribble from now on
    std::mt19937_64 rng(12345);
    const int64_t end = fwipc::monotonic_ns() + kRunNs;
    // Mostly the header and reader/writer tables (small, where the indices live), then slots.
    const size_t header = sizeof(fwipc::shm::SegmentHeader);
    while (fwipc::monotonic_ns() < end) {
      const size_t span = (rng() & 3) == 0 ? size_t(st.st_size) : std::min(header, size_t(st.st_size));
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
  const int creator_rc = reader_loop(c);
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
