// Permission checks with a real second uid: needs root (setuid), so it runs unsandboxed.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>

#include "ipc.h"
#include "tests/support.h"

using fwipc::test::Barrier;
using fwipc::test::fd_with_target;
using fwipc::test::has;
using fwipc::test::ring_v2;
using fwipc::test::spawn;
using fwipc::test::TempRuntime;
using fwipc::test::wait_exit;
using fwipc::test::write_forged_frame;

namespace {
constexpr uid_t kNobody = 65534;
constexpr uint32_t kBulk = 5000;

// In a child: drops to uid nobody, keeping /proc/self ours to read (a uid change makes the
// process non-dumpable, which hands /proc/self/fd to root).
bool become_nobody() {
  if (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) return false;
  ::prctl(PR_SET_DUMPABLE, 1);
  return true;
}

// Keeps making calls on the creator's id c (which is what serves bridged members) until
// child exits; returns its exit code, or -1 if it did not exit within 20 s.
int serve_until_exit(int c, pid_t child) {
  IPC_MESSAGE m;
  int status = 0;
  for (int i = 0; i < 400; ++i) {
    if (::waitpid(child, &status, WNOHANG) == child) return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    (void)ipc_receive_message(uint32_t(c), &m, 50);
  }
  return -1;
}

// Ring v2: how many of this process's descriptors of the channel's directory could be
// reopened read-write through /proc/self/fd (-1: none held). The directory is not sealed
// against writes (a restarted registry must map it writable): mode 0600, the registry's,
// is what keeps another uid out.
int reopenable_directories(const std::string& channel) {
  int held = 0, writable = 0;
  const std::string want = "/memfd:fwipc-dir:" + channel + " ";
  for (int fd = 0; fd < 1024; ++fd) {
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    char target[256];
    const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    if (n <= 0 || std::string(target, size_t(n)).rfind(want, 0) != 0) continue;
    ++held;
    const int w = ::open(link.c_str(), O_RDWR | O_CLOEXEC);
    if (w >= 0) ++writable, ::close(w);
  }
  return held == 0 ? -1 : writable;
}

// Ring v2 (a reader of any uid maps the channel): how many of this process's mappings of
// the channel's directory or of a writer's ring could be made writable; -1 if none is
// mapped at all. A reader's rings and directory come from read-only descriptors, so
// mprotect() must refuse PROT_WRITE on every one of them.
int writable_ring_mappings(const std::string& channel) {
  std::FILE* f = std::fopen("/proc/self/maps", "re");
  if (f == nullptr) return -2;
  char line[512];
  int mapped = 0, writable = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    const std::string l = line;
    if (!has(l, "fwipc-ring:" + channel + " ") && !has(l, "fwipc-dir:" + channel + " ")) continue;
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line, "%lx-%lx", &lo, &hi) != 2) continue;
    ++mapped;
    if (::mprotect(reinterpret_cast<void*>(lo), hi - lo, PROT_READ | PROT_WRITE) == 0) ++writable;
  }
  std::fclose(f);
  return mapped == 0 ? -1 : writable;
}

// Opens name as uid nobody in a child; returns the child's open() result as exit code.
int open_as_nobody(const char* name, uint32_t mode) {
  const pid_t child = spawn([=] {
    if (!become_nobody()) return 100;
    const int rc = ipc_open_channel(name, mode);
    if (rc >= 0) return 0;
    return rc == -EACCES ? 1 : 2;
  });
  return wait_exit(child);
}
}  // namespace

TEST_CASE("shouldRefuseAnotherUidAccessToA0600Channel") {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test needs root to switch uid");
  for (uint32_t type : {IPC_TYPE_QUEUE, IPC_TYPE_SOCKET, IPC_TYPE_PIPE}) {
    CAPTURE(type);
    TempRuntime rt;
    const int priv = ipc_create_channel_ex("private", type, 0, 0600);
    const int pub = ipc_create_channel_ex("public", type, 0, 0666);
    const int ro = ipc_create_channel_ex("readonly", type, 0, 0644);
    REQUIRE(priv >= 0);
    REQUIRE(pub >= 0);
    REQUIRE(ro >= 0);
    CHECK(open_as_nobody("private", IPC_MODE_READ) == 1);
    CHECK(open_as_nobody("private", IPC_MODE_WRITE) == 1);
    CHECK(open_as_nobody("public", IPC_MODE_READ | IPC_MODE_WRITE) == 0);
    CHECK(open_as_nobody("readonly", IPC_MODE_READ) == 0);
    CHECK(open_as_nobody("readonly", IPC_MODE_WRITE) == 1);
    for (int id : {priv, pub, ro}) CHECK(ipc_close_channel(uint32_t(id)) == 0);
  }
}

// The sender a reader sees is the real PID of a writer of another uid, whatever it writes
// into the descriptors its runtime holds (found as a hostile process would find them).
TEST_CASE("shouldStampTheRealPidOfAWriterOfAnotherUid") {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test needs root to switch uid");
  for (uint32_t type : {IPC_TYPE_SOCKET, IPC_TYPE_PIPE, IPC_TYPE_QUEUE}) {
    CAPTURE(type);
    TempRuntime rt;
    const int c = ipc_create_channel_ex("pub", type, IPC_BUFFER_MIN, 0666);
    REQUIRE(c >= 0);
    const pid_t child = spawn([type] {
      if (!become_nobody()) return 100;
      const int w = ipc_open_channel("pub", IPC_MODE_WRITE);
      if (w < 0) return 10;
      // Layout 4: a QUEUE's ring is never ours to map (the creator's bridge stamps us).
      // Ring v2: we write our own ring, and the sender is the directory's PID for it (a
      // writer forging its ring's words: tests/ring2_test.cc).
      const bool own_ring = type == IPC_TYPE_QUEUE && ring_v2();
      if ((fd_with_target("/memfd:", true) >= 0) != own_ring) return 15;
      if (ipc_send(uint32_t(w), "ok", 2, 0) != 2) return 11;
      if (own_ring) {
        if (ipc_channel_transport(uint32_t(w)) != int(IPC_TRANSPORT_SHM)) return 17;
        if (ipc_send(uint32_t(w), "lie2", 4, 0) != 4) return 14;
      } else if (type == IPC_TYPE_PIPE) {
        const int chan = fd_with_target("/pub.fifo");
        const int own = fd_with_target("/pub.fifo.w" + std::to_string(::getpid()) + ".", true);
        if (chan < 0 || own < 0) return 12;
        if (write_forged_frame(chan, 1, "lie1") <= 0 || write_forged_frame(own, 1, "lie2") <= 0) return 13;
      } else {
        int conn = -1;  // the connection to the creator's hub, not the registry's
        for (int fd = 3; fd < 256 && conn < 0; ++fd) {
          sockaddr_un a{};
          socklen_t len = sizeof a;
          if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0 && std::strstr(a.sun_path, "/pub.sock"))
            conn = fd;
        }
        if (conn < 0 || write_forged_frame(conn, 1, "lie2") <= 0) return 14;
      }
      for (uint32_t i = 0; i < kBulk; ++i)
        if (ipc_send(uint32_t(w), &i, 4, 0) != 4) return 16;
      return 0;
    });
    IPC_MESSAGE m;
    REQUIRE(ipc_receive_message(uint32_t(c), &m, 10000) == 2);
    CHECK(m.sender == uint32_t(child));
    REQUIRE(ipc_receive_message(uint32_t(c), &m, 10000) == 4);
    CHECK(std::string(m.payload, 4) == "lie2");
    CHECK(m.sender == uint32_t(child));
    uint32_t next = 0;  // in order, none lost, through a ring of IPC_BUFFER_MIN
    for (; next < kBulk && ipc_receive_message(uint32_t(c), &m, 10000) == 4 && m.sender == uint32_t(child); ++next) {
      uint32_t v;
      std::memcpy(&v, m.payload, 4);
      if (v != next) break;
    }
    CHECK(next == kBulk);
    CHECK(wait_exit(child) == 0);
    CHECK(ipc_receive_message(uint32_t(c), &m, 200) == -ETIMEDOUT);
    CHECK(ipc_close_channel(uint32_t(c)) == 0);
  }
}

// A reader of another uid never maps a QUEUE channel's ring on layout 4: the creator's
// runtime feeds it from the ring entry the registry joined for it. On ring v2 it maps the
// directory and rings read-only. Either way unicasts arrive, senders intact.
TEST_CASE("shouldServeAQueueReaderOfAnotherUidWithoutMappingTheRing") {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test needs root to switch uid");
  TempRuntime rt;
  const int c = ipc_create_channel_ex("pubq", IPC_TYPE_QUEUE, IPC_BUFFER_MIN, 0666);
  REQUIRE(c >= 0);
  Barrier ready;
  const pid_t parent = ::getpid();
  const pid_t child = spawn([&] {
    if (!become_nobody()) return 100;
    const int r = ipc_open_channel("pubq", IPC_MODE_READ);
    if (r < 0) return 10;
    // Layout 4: fed by the creator's bridge, nothing mapped. Ring v2: mapped, but read-only.
    if (ring_v2() ? writable_ring_mappings("pubq") != 0 : fd_with_target("/memfd:", true) >= 0) return 11;
    if (ring_v2() && reopenable_directories("pubq") != 0) return 12;
    ready.signal();
    IPC_MESSAGE m;
    for (const char* want : {"all", "you"}) {
      if (ipc_receive_message(uint32_t(r), &m, 10000) != 3 || std::memcmp(m.payload, want, 3) != 0) return 12;
      if (m.sender != uint32_t(parent)) return 13;
    }
    // Many ring's worth, read slowly at first: our pace holds the creator back, nothing is lost.
    for (uint32_t i = 0; i < kBulk; ++i) {
      if (i < 64) ::usleep(1000);
      uint32_t v;
      if (ipc_receive_message(uint32_t(r), &m, 10000) != 4) return 15;
      std::memcpy(&v, m.payload, 4);
      if (v != i || m.sender != uint32_t(parent)) return 16;
    }
    return ipc_receive_message(uint32_t(r), &m, 200) == -ETIMEDOUT ? 0 : 14;  // "not" was not for us
  });
  REQUIRE(ready.wait(1));
  IPC_MESSAGE m{};
  m.size = 3;
  std::memcpy(m.payload, "all", 3);
  REQUIRE(ipc_send_message(uint32_t(c), &m) == 3);
  m.receiver = 1;
  std::memcpy(m.payload, "not", 3);
  REQUIRE(ipc_send_message(uint32_t(c), &m) == 3);
  m.receiver = uint32_t(child);
  std::memcpy(m.payload, "you", 3);
  REQUIRE(ipc_send_message(uint32_t(c), &m) == 3);
  REQUIRE(ipc_receive_message(uint32_t(c), &m, 10000) == 3);  // ours of the three: "all"
  for (uint32_t i = 0; i < kBulk; ++i) {
    REQUIRE(ipc_send(uint32_t(c), &i, 4, 0) == 4);
    REQUIRE(ipc_receive_message(uint32_t(c), &m, 10000) == 4);  // the creator is a reader too
  }
  CHECK(serve_until_exit(c, child) == 0);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

// The bridge under the API's threading rules: two threads send on the creator's id while a
// third receives, and a process of another uid reads and writes through the bridge.
TEST_CASE("shouldBridgeWhileTheCreatorSendsFromTwoThreads") {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test needs root to switch uid");
  TempRuntime rt;
  const int c = ipc_create_channel_ex("mt", IPC_TYPE_QUEUE, IPC_BUFFER_MIN, 0666);
  REQUIRE(c >= 0);
  Barrier ready;
  // Checks that every sender's (type) sequence arrives complete and in order.
  auto check_all = [](int id, const std::map<uint32_t, uint32_t>& want, int64_t* bad) {
    std::map<uint32_t, uint32_t> next;
    uint32_t total = 0, expected = 0;
    for (const auto& [t, n] : want) expected += n;
    IPC_MESSAGE m;
    while (total < expected && ipc_receive_message(uint32_t(id), &m, 10000) == 4) {
      uint32_t v;
      std::memcpy(&v, m.payload, 4);
      if (!want.count(m.type) || v != next[m.type]++) ++*bad;
      ++total;
    }
    return total == expected;
  };
  const pid_t child = spawn([&] {
    if (!become_nobody()) return 100;
    const int id = ipc_open_channel("mt", IPC_MODE_READ | IPC_MODE_WRITE);
    if (id < 0) return 10;
    ready.signal();
    std::thread reader([&] {
      int64_t bad = 0;
      // Its own messages come back too: it is a reader of the channel like any other.
      if (!check_all(id, {{0, kBulk}, {1, kBulk}, {7, kBulk}}, &bad) || bad != 0) std::_Exit(11);
    });
    for (uint32_t i = 0; i < kBulk; ++i)
      if (ipc_send(uint32_t(id), &i, 4, 7) != 4) std::_Exit(12);
    reader.join();
    return 0;
  });
  REQUIRE(ready.wait(1));
  std::thread senders[2];
  std::atomic<int> failed_sends{0};
  for (uint32_t t = 0; t < 2; ++t)
    senders[t] = std::thread([c, t, &failed_sends] {
      for (uint32_t i = 0; i < kBulk; ++i)
        if (ipc_send(uint32_t(c), &i, 4, t) != 4) ++failed_sends;
    });
  int64_t bad = 0;
  CHECK(check_all(c, {{0, kBulk}, {1, kBulk}, {7, kBulk}}, &bad));
  CHECK(bad == 0);
  for (auto& t : senders) t.join();
  CHECK(failed_sends == 0);
  CHECK(serve_until_exit(c, child) == 0);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}
