// Consoles with real programs on real pseudo-terminals, through the client library and a
// real csrss daemon.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "fwsvc.h"
#include "services/csrss/csrss_ipc.h"
#include "services/csrss/proto.h"
#include "services/csrss/tests/harness.h"

using namespace csrss::test;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

uint64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

// Reads con's output until `want` appears (or the end, or an anti-hang bound).
std::string read_until(int con, const std::string& want, int bound_ms = 20000) {
  std::string out;
  char buf[4096];
  const uint64_t start = now_ms();
  while (out.find(want) == std::string::npos && now_ms() - start < uint64_t(bound_ms)) {
    const ssize_t n = csrss_console_read(con, buf, sizeof buf, 200);
    if (n == 0) break;
    if (n > 0) out.append(buf, size_t(n));
  }
  return out;
}

// Everything until the end (read returns 0).
std::string read_all(int con, int bound_ms = 20000) {
  std::string out;
  char buf[4096];
  const uint64_t start = now_ms();
  while (now_ms() - start < uint64_t(bound_ms)) {
    const ssize_t n = csrss_console_read(con, buf, sizeof buf, 200);
    if (n == 0) return out;
    if (n > 0) out.append(buf, size_t(n));
  }
  return out + "<no end>";
}

nlohmann::json console_info(int con) {
  std::string buf(1 << 16, '\0');
  const int n = csrss_console_list(buf.data(), buf.size());
  if (n < 0) return nullptr;
  for (auto& c : nlohmann::json::parse(buf.substr(0, size_t(n))))
    if (c["id"] == con) return c;
  return nullptr;
}

const char* const kSh[] = {"/bin/sh", nullptr};

}  // namespace

TEST_CASE("a shell prints what it was told to and its exit code comes back as the shell reports it") {
  Runtime rt;
  Daemon d;
  REQUIRE(d.pid() > 0);
  const int con = csrss_console_create(kSh, 24, 80);
  REQUIRE(con > 0);
  const std::string cmd = "echo hel''lo; exit 3\n";  // the echo of the input says hel''lo
  CHECK(csrss_console_write(con, cmd.data(), cmd.size()) == int(cmd.size()));
  const std::string out = read_all(con);
  CHECK(out.find("hello\r\n") != std::string::npos);
  int st = -1;
  CHECK(csrss_console_wait(con, &st, 10000) == 0);
  CHECK(st == 3);
  // After the end, reads stay at 0.
  char b[16];
  CHECK(csrss_console_read(con, b, sizeof b, 0) == 0);

  // A signal: 128 + its number.
  const char* const killer[] = {"/bin/sh", "-c", "kill -TERM $$", nullptr};
  const int k = csrss_console_create(killer, 24, 80);
  REQUIRE(k > 0);
  CHECK(csrss_console_wait(k, &st, 10000) == 0);
  CHECK(st == 128 + SIGTERM);
  CHECK(read_all(k).find("<no end>") == std::string::npos);
}

TEST_CASE("the program runs in its own session with the PTY as its controlling terminal") {
  Runtime rt;
  Daemon d;
  const char* const argv[] = {"/bin/sh", "-c",
                              "test -t 0 && test -t 1 && ps -o sid= -o tty= -p $$; "
                              "test $$ = $(ps -o sid= -p $$) && echo SESSION-LEADER",
                              nullptr};
  const int con = csrss_console_create(argv, 24, 80);
  REQUIRE(con > 0);
  const std::string out = read_all(con);
  CHECK(out.find("pts/") != std::string::npos);
  CHECK(out.find("SESSION-LEADER") != std::string::npos);
}

TEST_CASE("resize: the program gets SIGWINCH and stty size prints the new size") {
  Runtime rt;
  Daemon d;
  const char* const argv[] = {"/bin/bash", "--norc", "-c",
                              "trap 'echo WINCH $(stty size)' WINCH; echo ready; "
                              "while :; do sleep 0.05; done",
                              nullptr};
  const int con = csrss_console_create(argv, 24, 80);
  REQUIRE(con > 0);
  CHECK(read_until(con, "ready").find("ready") != std::string::npos);
  CHECK(csrss_console_resize(con, 40, 100) == 0);
  CHECK(read_until(con, "WINCH 40 100").find("WINCH 40 100") != std::string::npos);
  CHECK(console_info(con)["rows"] == 40);
  // A storm: the program ends up with the last size.
  const int sh = csrss_console_create(kSh, 24, 80);
  REQUIRE(sh > 0);
  for (int i = 1; i <= 200; i++) REQUIRE(csrss_console_resize(sh, uint16_t(10 + i % 50), uint16_t(20 + i)) == 0);
  CHECK(csrss_console_resize(sh, 33, 111) == 0);
  const std::string cmd = "stty size; exit\n";
  CHECK(csrss_console_write(sh, cmd.data(), cmd.size()) == int(cmd.size()));
  CHECK(read_all(sh).find("33 111\r\n") != std::string::npos);
  CHECK(csrss_console_resize(con, 0, 80) == -EINVAL);
  // Close: SIGHUP ends bash (128 + 1), reaped, the status kept.
  CHECK(csrss_console_close(con) == 0);
  int st = -1;
  CHECK(csrss_console_wait(con, &st, 10000) == 0);
  CHECK(st == 128 + SIGHUP);
  CHECK(csrss_console_close(con) == -EALREADY);
  CHECK(csrss_console_write(con, "x", 1) == -EPIPE);
}

TEST_CASE("stty size in an interactive shell after a resize to 40x100") {
  Runtime rt;
  Daemon d;
  const int con = csrss_console_create(kSh, 24, 80);
  REQUIRE(con > 0);
  CHECK(csrss_console_resize(con, 40, 100) == 0);
  const std::string cmd = "stty size; exit\n";
  CHECK(csrss_console_write(con, cmd.data(), cmd.size()) == int(cmd.size()));
  CHECK(read_all(con).find("40 100\r\n") != std::string::npos);
}

TEST_CASE("cat echoes what is typed, and a large input arrives whole") {
  Runtime rt;
  Daemon d;
  const char* const argv[] = {"/bin/sh", "-c", "stty -echo -icanon; echo ready; exec cat", nullptr};
  const int con = csrss_console_create(argv, 24, 80);
  REQUIRE(con > 0);
  // Typed before stty ran, input would be echoed as well.
  REQUIRE(read_until(con, "ready\r\n") == "ready\r\n");
  // 1 MiB of lines through cat (bigger than the daemon's input buffer and the PTY's).
  std::string in;
  for (int i = 0; in.size() < (1u << 20); i++) in += "line " + std::to_string(i) + "\n";
  // onlcr: each \n comes back as \r\n.
  std::string expect;
  for (char c : in) expect += c == '\n' ? std::string("\r\n") : std::string(1, c);
  std::string out;
  char buf[65536];
  size_t sent = 0;
  const uint64_t start = now_ms();
  while (out.size() < expect.size() && now_ms() - start < 60000) {
    if (sent < in.size()) {
      const size_t k = std::min<size_t>(in.size() - sent, 16384);
      const int w = csrss_console_write(con, in.data() + sent, k);
      REQUIRE(w > 0);
      sent += size_t(w);
    }
    ssize_t n;
    while ((n = csrss_console_read(con, buf, sizeof buf, sent < in.size() ? 0 : 200)) > 0) out.append(buf, size_t(n));
  }
  CHECK(out.size() == expect.size());
  CHECK(out == expect);
  CHECK(csrss_console_close(con) == 0);
}

// FNV-1a over a byte stream.
struct Fnv {
  uint64_t h = 1469598103934665603ull;
  uint64_t n = 0;
  void add(const char* p, size_t k) {
    for (size_t i = 0; i < k; i++) h = (h ^ uint8_t(p[i])) * 1099511628211ull;
    n += k;
  }
};

TEST_CASE("heavy output arrives complete and in order (head -c 64M /dev/urandom | base64)") {
  Runtime rt;
  // A reader that keeps up: the default 8 MiB is ~170 ms of this stream, which a test
  // beside other suites on 2 cores has lost to the scheduler; 64 MiB is over a second.
  Daemon d({"--scrollback", "64M"});
  char file[] = "/tmp/fwipc-csrss-data-XXXXXX";
  const int fd = ::mkstemp(file);
  REQUIRE(fd >= 0);
  ::close(fd);
  const size_t mib = kSanitized ? 8 : 64;  // the sanitizer runs move a smaller stream
  const std::string script =
      "stty -opost; head -c " + std::to_string(mib) + "M /dev/urandom > " + file + " && base64 " + file;
  const char* const argv[] = {"/bin/sh", "-c", script.c_str(), nullptr};
  const uint64_t start = now_ms();
  const int con = csrss_console_create(argv, 24, 80);
  REQUIRE(con > 0);
  Fnv got;
  std::vector<char> buf(1 << 20);
  ssize_t n;
  int gaps = 0;
  uint64_t last = 0, longest = 0;  // the longest wait once output flows, shown on failure
  while ((n = csrss_console_read(con, buf.data(), buf.size(), 60000)) != 0) {
    if (last) longest = std::max(longest, now_ms() - last);
    last = now_ms();
    if (n == -ENOBUFS) gaps++;
    REQUIRE((n > 0 || n == -ENOBUFS));
    if (n > 0) got.add(buf.data(), size_t(n));
  }
  const uint64_t ms = now_ms() - start;
  int st = -1;
  CHECK(csrss_console_wait(con, &st, 10000) == 0);
  CHECK(st == 0);
  INFO("longest wait for output: " << longest << " ms");
  CHECK(gaps == 0);
  // The same bytes, straight from base64 (no terminal in between).
  FILE* p = ::popen((std::string("base64 ") + file).c_str(), "r");
  REQUIRE(p);
  Fnv want;
  size_t k;
  while ((k = std::fread(buf.data(), 1, buf.size(), p)) > 0) want.add(buf.data(), k);
  ::pclose(p);
  ::unlink(file);
  CHECK(want.n > mib * 1300000);
  CHECK(got.n == want.n);
  CHECK(got.h == want.h);
  MESSAGE(mib << " MiB as base64 (" << want.n << " bytes) in " << ms << " ms, longest wait " << longest << " ms");
}

TEST_CASE("a reader that falls behind the scroll-back gets a counted gap, never silently missing bytes") {
  Runtime rt;
  Daemon d({"--scrollback", "64K"});
  const char* const argv[] = {"/bin/sh", "-c", "stty -opost; seq 1 400000", nullptr};
  const int con = csrss_console_create(argv, 24, 80);
  REQUIRE(con > 0);
  int st = -1;
  CHECK(csrss_console_wait(con, &st, 20000) == 0);  // the program was never blocked by us
  CHECK(st == 0);
  // Only now read: the reader's channel (1 MiB) filled, the scroll-back moved on.
  uint64_t data = 0, lost = 0;
  int gaps = 0;
  std::string tail;
  std::vector<char> buf(65536);
  for (;;) {
    uint64_t l = 0;
    const ssize_t n = csrss_console_read_ex(con, buf.data(), buf.size(), 20000, &l);
    if (n == 0) break;
    if (n == -ENOBUFS) {
      gaps++, lost += l;
      continue;
    }
    REQUIRE(n > 0);
    data += uint64_t(n);
    tail.append(buf.data(), size_t(n));
    if (tail.size() > 100) tail.erase(0, tail.size() - 100);
  }
  const uint64_t total = console_info(con)["output_bytes"];
  std::string all;
  for (int i = 1; i <= 400000; i++) all += std::to_string(i) + "\n";
  CHECK(total == all.size());
  CHECK(gaps >= 1);
  CHECK(lost > 0);
  CHECK(data + lost == total);
  CHECK(tail.find("\n400000\n") != std::string::npos);
}

TEST_CASE("close never blocks on output nobody reads; the program gets SIGHUP and is reaped") {
  Runtime rt;
  Daemon d({"--scrollback", "64K"});
  const char* const argv[] = {"yes", "flood", nullptr};
  const int con = csrss_console_create(argv, 24, 80);
  REQUIRE(con > 0);
  // Let it fill every buffer there is: wait until more than the reader's channel was produced.
  const uint64_t start = now_ms();
  while (console_info(con)["output_bytes"].get<uint64_t>() < (4u << 20) && now_ms() - start < 20000) {
    timespec ts{0, 5000000};
    nanosleep(&ts, nullptr);
  }
  CHECK(console_info(con)["running"] == true);  // never blocked by the reader that does not read
  CHECK(csrss_console_close(con) == 0);
  int st = -1;
  CHECK(csrss_console_wait(con, &st, 10000) == 0);
  CHECK(st == 128 + SIGHUP);
}

TEST_CASE("a creator that exits, a second process that attaches, reads new output and writes input") {
  Runtime rt;
  Daemon d;
  int p[2];
  REQUIRE(::pipe(p) == 0);
  const pid_t creator = spawn([&] {
    const int con = csrss_console_create(kSh, 24, 80);
    if (con <= 0) return 1;
    return ::write(p[1], &con, sizeof con) == sizeof con ? 0 : 2;
  });
  ::close(p[1]);
  CHECK(wait_exit(creator) == 0);
  int con = -1;
  REQUIRE(::read(p[0], &con, sizeof con) == sizeof con);
  ::close(p[0]);
  REQUIRE(con > 0);
  CHECK(console_info(con)["running"] == true);
  CHECK(console_info(con)["readers"] == 0);  // the creator's reader went with it
  char b[8];
  CHECK(csrss_console_read(con, b, sizeof b, 0) == -ENOTCONN);
  CHECK(csrss_console_attach(con) == 0);
  CHECK(csrss_console_attach(con) == -EALREADY);
  const std::string cmd = "echo attached-$((6*7))\n";
  CHECK(csrss_console_write(con, cmd.data(), cmd.size()) == int(cmd.size()));
  CHECK(read_until(con, "attached-42\r\n").find("attached-42\r\n") != std::string::npos);
  // A third process reads too (each reader has its own cursor).
  const pid_t third = spawn([&] {
    if (csrss_console_attach(con) != 0) return 1;
    const std::string c2 = "echo third-$((1+1))\n";
    if (csrss_console_write(con, c2.data(), c2.size()) != int(c2.size())) return 2;
    return read_until(con, "third-2\r\n").find("third-2\r\n") != std::string::npos ? 0 : 3;
  });
  CHECK(wait_exit(third) == 0);
  CHECK(read_until(con, "third-2\r\n").find("third-2\r\n") != std::string::npos);
  CHECK(csrss_console_detach(con) == 0);
  CHECK(csrss_console_close(con) == 0);
}

TEST_CASE("another uid is refused; a console runs as its creator's uid") {
  Runtime rt;
  Daemon d;
  const int con = csrss_console_create(kSh, 24, 80);
  REQUIRE(con > 0);
  const pid_t other = spawn([&] {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) return 10;
    if (csrss_console_attach(con) != -EPERM) return 1;
    if (csrss_console_write(con, "id\n", 3) != -EPERM) return 2;
    if (csrss_console_resize(con, 10, 10) != -EPERM) return 3;
    if (csrss_console_close(con) != -EPERM) return 4;
    int st;
    if (csrss_console_wait(con, &st, 0) != -EPERM) return 5;
    char buf[4096];
    if (csrss_console_capture(con, buf, sizeof buf) != -EPERM) return 6;
    const int n = csrss_console_list(buf, sizeof buf);
    if (n < 0 || std::string(buf, size_t(n)) != "[]") return 7;
    // Its own console runs as itself.
    const char* const argv[] = {"/bin/sh", "-c", "echo uid=$(id -u)", nullptr};
    const int mine = csrss_console_create(argv, 24, 80);
    if (mine <= 0) return 8;
    return read_all(mine).find("uid=65534") != std::string::npos ? 0 : 9;
  });
  CHECK(wait_exit(other) == 0);
  CHECK(csrss_console_close(con) == 0);
}

TEST_CASE("bad requests get error replies and change nothing") {
  Runtime rt;
  Daemon d({"--max-consoles", "2"});
  const char* const nosuch[] = {"/nonexistent/program", nullptr};
  CHECK(csrss_console_create(nosuch, 24, 80) == -ENOENT);
  char plain[] = "/tmp/fwipc-csrss-plain-XXXXXX";  // a file without execute bits
  const int pfd = ::mkstemp(plain);
  REQUIRE(pfd >= 0);
  ::fchmod(pfd, 0644);
  ::close(pfd);
  const char* const notexec[] = {plain, nullptr};
  CHECK(csrss_console_create(notexec, 24, 80) == -EACCES);
  ::unlink(plain);
  const char* const nopath[] = {"no-such-program-in-path", nullptr};
  CHECK(csrss_console_create(nopath, 24, 80) == -ENOENT);
  CHECK(csrss_console_create(kSh, 0, 80) == -EINVAL);
  CHECK(csrss_console_create(kSh, 24, 10001) == -EINVAL);
  CHECK(csrss_console_write(999, "x", 1) == -ENOENT);
  CHECK(csrss_console_resize(999, 10, 10) == -ENOENT);
  CHECK(csrss_console_close(999) == -ENOENT);
  CHECK(csrss_console_attach(999) == -ENOENT);
  int st;
  CHECK(csrss_console_wait(999, &st, 0) == -ENOENT);

  // Raw calls: garbage, truncated, trailing bytes, a channel the caller did not create.
  const int ch = fwsvc_open("csrss", 0, 0);
  REQUIRE(ch >= 0);
  char resp[256];
  size_t got = 0;
  auto raw = [&](uint32_t m, const std::string& body) {
    return fwsvc_call(uint32_t(ch), m, body.data(), body.size(), resp, sizeof resp, &got, 5000);
  };
  for (uint32_t m : {1u, 3u, 4u, 5u, 6u, 7u, 9u, 20u, 21u, 22u, 23u, 24u, 30u}) {
    CAPTURE(m);
    CHECK(raw(m, "") == -EBADMSG);
    CHECK(raw(m, std::string(3, '\xff')) == -EBADMSG);
    CHECK(raw(m, std::string(2000, '\x7f')) < 0);
  }
  CHECK(raw(8, "x") == -EBADMSG);
  CHECK(raw(25, "x") == -EBADMSG);
  CHECK(raw(999, "") == -ENOSYS);
  csrss::CreateReq r;
  r.rows = 24, r.cols = 80, r.argv = {"/bin/sh"};
  r.channel = "csrssc.not-a-channel";
  CHECK(raw(csrss::kConCreate, csrss::encode(r)) == -ENOENT);
  r.channel = "../etc";
  CHECK(raw(csrss::kConCreate, csrss::encode(r)) == -EINVAL);
  r.channel = "csrss";  // the service's own channel, not the caller's
  CHECK(raw(csrss::kConCreate, csrss::encode(r)) == -EINVAL);
  std::string huge = csrss::encode(r);
  huge[4] = '\xff', huge[5] = '\xff', huge[6] = '\xff', huge[7] = '\x7f';  // argc 2^31
  CHECK(raw(csrss::kConCreate, huge) == -EINVAL);
  huge = csrss::encode(r);
  huge[8] = '\x7f';  // the channel name's length past the body
  CHECK(raw(csrss::kConCreate, huge) == -EBADMSG);
  ipc_close_channel(uint32_t(ch));

  // Per-uid cap (root is not capped: this runs as nobody).
  const pid_t other = spawn([&] {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) return 10;
    const char* const argv[] = {"/bin/sh", "-c", "read x", nullptr};
    const int a = csrss_console_create(argv, 24, 80), b = csrss_console_create(argv, 24, 80);
    const int c = csrss_console_create(argv, 24, 80);
    const bool ok = a > 0 && b > 0 && c == -EDQUOT;
    csrss_console_close(a), csrss_console_close(b);
    return ok ? 0 : 1;
  });
  CHECK(wait_exit(other) == 0);
  // Still serving.
  const char* const echo[] = {"/bin/echo", "still-here", nullptr};
  const int con = csrss_console_create(echo, 24, 80);
  REQUIRE(con > 0);
  CHECK(read_all(con).find("still-here") != std::string::npos);
}
