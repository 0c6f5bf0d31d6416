// logd with real processes: the daemon binary in a private runtime directory, clients in
// forked children linking the client library, logger(1) and a syslog(3) program. The
// parent never uses the runtime itself (no threads before it forks: ThreadSanitizer).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "fwsvc.h"
#include "ipc.h"
#include "logd_ipc.h"
#include "nlohmann/json.hpp"
#include "services/logd/wire.h"
#include "tests/support.h"

using nlohmann::json;

namespace {

using fwipc::test::Barrier;
using fwipc::test::runfile;
using fwipc::test::spawn;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A private runtime directory (tests/support.h) and a log directory in it.
struct Env {
  fwipc::test::TempRuntime rt;
  std::string dir = rt.dir(), logdir = dir + "/log";
};

// Waits for pid within timeout_ms (SIGKILL and -2 after it): its exit code or 128 + signal.
int wait_exit(pid_t pid, int timeout_ms = 120000) { return fwipc::test::wait_exit_within(pid, timeout_ms); }

// A program of the tree or of the system, not awaited.
pid_t spawn_exec(const std::vector<std::string>& args) {
  return spawn([&] {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    return 127;
  });
}

// A daemon started as a child, awaited through its READY=1.
pid_t start_ready(const std::vector<std::string>& args) {
  const pid_t pid = fwipc::test::start_ready(args);
  REQUIRE_MESSAGE(pid > 0, args[0], " did not say READY=1");
  return pid;
}

// logd started as a child, awaited through its READY=1.
struct Logd {
  const Env& env;
  std::vector<std::string> extra;
  pid_t pid = -1;
  Logd(const Env& e, std::vector<std::string> x = {}) : env(e), extra(std::move(x)) { start(); }
  ~Logd() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      wait_exit(pid);
    }
  }
  void start() {
    std::vector<std::string> args = {runfile("services/logd/logd"), "--log-dir", env.logdir};
    args.insert(args.end(), extra.begin(), extra.end());
    pid = start_ready(args);
  }
  // SIGTERM: logd writes what it received and exits 0.
  int stop() {
    kill(pid, SIGTERM);
    const int rc = wait_exit(pid);
    pid = -1;
    return rc;
  }
};

// Every record in the log files, oldest file first.
std::vector<json> read_log(const std::string& logdir) {
  std::vector<std::string> files;
  for (int k = 1000; k >= 1; --k)
    if (std::filesystem::exists(logdir + "/logd.log." + std::to_string(k)))
      files.push_back(logdir + "/logd.log." + std::to_string(k));
  files.push_back(logdir + "/logd.log");
  std::vector<json> out;
  for (const auto& f : files) {
    std::ifstream in(f);
    for (std::string line; std::getline(in, line);) {
      auto j = json::parse(line, nullptr, false);
      REQUIRE_MESSAGE(j.is_object(), "not JSON: ", line);
      out.push_back(j);
    }
  }
  return out;
}

std::vector<json> with_tag(const std::vector<json>& all, const std::string& tag) {
  std::vector<json> out;
  for (const auto& j : all)
    if (j["tag"] == tag) out.push_back(j);
  return out;
}

// A tool run as a child: exit status and standard output.
std::pair<int, std::string> run(const std::vector<std::string>& args) {
  const fwipc::test::Run r = fwipc::test::run(args);
  return {r.status, r.out};
}

std::pair<int, std::string> logctl(std::vector<std::string> args) {
  args.insert(args.begin(), runfile("services/logd/logctl"));
  return run(args);
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

TEST_CASE("4 clients x 10,000 records: all in the files, in per-client order, no loss, no duplicate, across rotation") {
  Env env;
  Logd logd(env, {"--max-bytes", "256K", "--keep", "100"});
  constexpr int kClients = 4, kRecords = 10000;
  std::vector<pid_t> kids;
  for (int c = 0; c < kClients; ++c) {
    kids.push_back(spawn([c] {
      // The burst is faster than any daemon writes: the local queue holds all of it (the
      // default holds 8192), so nothing may be dropped however slow logd is.
      logd_set_queue_limit(kRecords, 64u << 20);
      for (int i = 0; i < kRecords; ++i)
        if (logd_info("load", "client %d record %d", c, i) != 0) return 10;
      logd_client_stats st;
      logd_stats(&st);
      if (st.dropped != 0) return 11;
      return logd_flush(60000) == 0 ? 0 : 12;
    }));
  }
  for (pid_t k : kids) CHECK(wait_exit(k) == 0);
  CHECK(logd.stop() == 0);
  const auto all = read_log(env.logdir);
  CHECK(std::filesystem::exists(env.logdir + "/logd.log.3"));  // rotated several times
  uint64_t last_seq = 0;
  std::map<int, int> next;  // client -> next record
  std::map<int, int64_t> pid_of;
  for (const auto& j : all) {
    CHECK(j["seq"].get<uint64_t>() > last_seq);
    last_seq = j["seq"].get<uint64_t>();
    if (j["tag"] != "load") continue;
    int c = -1, i = -1;
    REQUIRE(sscanf(j["msg"].get<std::string>().c_str(), "client %d record %d", &c, &i) == 2);
    REQUIRE_MESSAGE(i == next[c], "client ", c, " record ", i, " after ", next[c] - 1);
    next[c] = i + 1;
    CHECK(j["level"] == "info");
    CHECK(j["pid"].get<int64_t>() == kids[static_cast<size_t>(c)]);
    CHECK(j["uid"].get<int64_t>() == getuid());
  }
  for (int c = 0; c < kClients; ++c) CHECK(next[c] == kRecords);
}

TEST_CASE("logd SIGKILLed and restarted mid-stream: clients never hang, report drops, and records arrive again") {
  Env env;
  Logd logd(env);
  Barrier up, down, back, done;
  constexpr int kClients = 2;
  std::vector<pid_t> kids;
  for (int c = 0; c < kClients; ++c) {
    kids.push_back(spawn([&, c] {
      logd_set_queue_limit(100, 1 << 20);
      for (int i = 0; i < 1000; ++i) logd_info("phase", "a %d %d", c, i);
      if (logd_flush(30000) != 0) return 10;
      up.signal();
      if (!down.wait(1)) return 11;  // logd is dead now
      const int64_t t0 = now_ms();
      int refused = 0;
      for (int i = 0; i < 500; ++i) refused += logd_info("phase", "b %d %d", c, i) == -ENOBUFS;
      if (now_ms() - t0 > 20000) return 12;  // calls never wait for a missing logd
      if (refused < 300) return 13;
      done.signal();
      if (!back.wait(1)) return 14;  // a new logd runs
      // The queue drains into it by itself (the flush only waits for that), and the
      // records past the queue are reported.
      if (logd_flush(60000) != 0) return 15;
      for (int i = 0; i < 100; ++i) logd_info("phase", "c %d %d", c, i);
      const int rc = logd_flush(60000);
      return rc == 0 ? 0 : 20 - rc;
    }));
  }
  for (int c = 0; c < kClients; ++c) REQUIRE(up.wait(1));
  kill(logd.pid, SIGKILL);
  CHECK(wait_exit(logd.pid) == 128 + SIGKILL);
  logd.pid = -1;
  // Dead for the runtime too (the registry closed its channel): what a client sends
  // before that is taken by the channel and lost uncounted, as the README says.
  bool unlinked = false;
  for (int i = 0; i < 1000 && !unlinked; ++i) {
    const int id = ipc_open_channel("logd", IPC_MODE_WRITE | IPC_MODE_NONBLOCK);
    unlinked = id == -ENOENT;
    if (id >= 0) ipc_close_channel(uint32_t(id));
    if (!unlinked) usleep(10000);  // between looks at the registry; the loop awaits the condition
  }
  REQUIRE(unlinked);
  for (int c = 0; c < kClients; ++c) down.signal();
  for (int c = 0; c < kClients; ++c) REQUIRE(done.wait(1));
  logd.start();
  for (int c = 0; c < kClients; ++c) back.signal();
  for (pid_t k : kids) CHECK(wait_exit(k, 120000) == 0);
  CHECK(logd.stop() == 0);
  const auto all = read_log(env.logdir);
  for (int c = 0; c < kClients; ++c) {
    int a = 0, cs = 0, next_c = 0;
    bool reported = false;
    for (const auto& j : all) {
      if (j["pid"].get<int64_t>() != kids[static_cast<size_t>(c)]) continue;
      const std::string m = j["msg"];
      int cc = -1, i = -1;
      if (sscanf(m.c_str(), "a %d %d", &cc, &i) == 2) ++a;
      if (sscanf(m.c_str(), "c %d %d", &cc, &i) == 2) {
        CHECK(i == next_c);
        next_c = i + 1;
        ++cs;
      }
      unsigned long long n = 0;
      if (j["tag"] == "logd" && sscanf(m.c_str(), "dropped %llu records", &n) == 1) {
        reported = true;
        CHECK(n >= 300);
        CHECK(j["level"] == "warning");
      }
    }
    CHECK(a == 1000);
    CHECK(cs == 100);
    CHECK(reported);
  }
}

TEST_CASE("a SIGSTOPped logd: 10,000 calls complete, and the drops are reported after SIGCONT") {
  Env env;
  Logd logd(env, {"--ring-bytes", "9216"});  // a 16-slot ring: the local queue fills at once
  Barrier hello, stopped, called, resumed;
  int counts[2];
  REQUIRE(pipe(counts) == 0);
  const pid_t kid = spawn([&] {
    if (logd_info("stop", "before") != 0 || logd_flush(30000) != 0) return 10;
    hello.signal();
    if (!stopped.wait(1)) return 11;
    const int64_t t0 = now_ms();
    for (int i = 0; i < 10000; ++i) logd_info("stop", "during %d", i);
    if (now_ms() - t0 > 30000) return 12;  // generous: a call never waits for logd
    logd_client_stats st;
    logd_stats(&st);
    if (st.dropped == 0) return 13;
    (void)!write(counts[1], &st.dropped, sizeof st.dropped);
    called.signal();
    if (!resumed.wait(1)) return 14;
    return logd_flush(60000) == 0 ? 0 : 15;
  });
  REQUIRE(hello.wait(1));
  kill(logd.pid, SIGSTOP);
  stopped.signal();
  REQUIRE(called.wait(1));
  uint64_t dropped = 0;
  REQUIRE(read(counts[0], &dropped, sizeof dropped) == sizeof dropped);
  kill(logd.pid, SIGCONT);
  resumed.signal();
  CHECK(wait_exit(kid) == 0);
  CHECK(logd.stop() == 0);
  close(counts[0]);
  close(counts[1]);
  const auto recs = with_tag(read_log(env.logdir), "stop");
  CHECK(recs.size() == 1 + 10000 - dropped);
  const auto notes = with_tag(read_log(env.logdir), "logd");
  uint64_t reported = 0;
  for (const auto& j : notes) {
    unsigned long long n = 0;
    if (j["pid"].get<int64_t>() == kid && sscanf(j["msg"].get<std::string>().c_str(), "dropped %llu", &n) == 1)
      reported += n;
  }
  CHECK(reported == dropped);
}

TEST_CASE("200 short-lived processes that log once and exit at once: each record has the right pid and comm") {
  Env env;
  Logd logd(env);
  std::map<int64_t, std::string> comm_of;
  for (int i = 0; i < 200; ++i) {
    char name[16];
    snprintf(name, sizeof name, "short%d", i);
    const pid_t pid = spawn([&] {
      prctl(PR_SET_NAME, name);
      logd_info("short", "child %d", i);
      _exit(0);  // no atexit, no flush: gone at once
      return 0;
    });
    comm_of[pid] = name;
    CHECK(wait_exit(pid) == 0);
  }
  CHECK(logd.stop() == 0);  // SIGTERM drains what the children left in the channel
  const auto recs = with_tag(read_log(env.logdir), "short");
  CHECK(recs.size() == 200);
  for (const auto& j : recs) {
    const int64_t pid = j["pid"];
    REQUIRE(comm_of.count(pid) == 1);
    CHECK(j["comm"] == comm_of[pid]);
    int i = -1;
    sscanf(j["msg"].get<std::string>().c_str(), "child %d", &i);
    CHECK(comm_of[pid] == "short" + std::to_string(i));
  }
}

TEST_CASE("syslog socket: logger(1) and a syslog(3) program land with their tag, level and real pid") {
  Env env;
  const std::string sock = env.dir + "/dev-log";
  Logd logd(env, {"--syslog-socket", sock});
  const pid_t lg = spawn_exec({"/usr/bin/logger", "-u", sock, "-t", "myapp", "-p", "user.warning", "hello"});
  CHECK(wait_exit(lg) == 0);
  const pid_t lg5424 = spawn_exec(
      {"/usr/bin/logger", "--rfc5424", "-u", sock, "-t", "myapp5424", "-p", "local3.err", "structured hello"});
  CHECK(wait_exit(lg5424) == 0);
  const pid_t sc = spawn_exec({runfile("services/logd/syslog_client"), sock, "from syslog(3)"});
  const int sc_rc = wait_exit(sc);
  CHECK_MESSAGE(sc_rc == 0, "syslog_client needs a private mount namespace (root)");
  CHECK(logd.stop() == 0);
  const auto all = read_log(env.logdir);
  int seen = 0;
  for (const auto& j : all) {
    if (j["msg"] == "hello") {
      ++seen;
      CHECK(j["tag"] == "myapp");
      CHECK(j["level"] == "warning");
      CHECK(j["facility"] == "user");
      CHECK(j["pid"].get<int64_t>() == lg);
      CHECK(j["uid"].get<int64_t>() == getuid());
    } else if (j["msg"] == "structured hello") {
      ++seen;
      CHECK(j["tag"] == "myapp5424");
      CHECK(j["level"] == "err");
      CHECK(j["facility"] == "local3");
      CHECK(j["pid"].get<int64_t>() == lg5424);
    } else if (j["msg"] == "from syslog(3)") {
      ++seen;
      CHECK(j["tag"] == "myapp");
      CHECK(j["level"] == "warning");
      CHECK(j["pid"].get<int64_t>() == sc);
    }
  }
  CHECK(seen == 3);
}

TEST_CASE("bad input on the channel and on logd.sock is rejected or sanitised, and logd keeps serving") {
  Env env;
  Logd logd(env);
  const pid_t kid = spawn([&] {
    // The client library says HELLO and stays connected; the raw sends use the same channel.
    if (logd_info("good", "first") != 0) return 10;
    const int ch = ipc_open_channel("logd", IPC_MODE_WRITE);
    if (ch < 0) return 11;
    auto raw = [&](const std::string& bytes, uint32_t type = logd::kRecordType) {
      return ipc_send(static_cast<uint32_t>(ch), bytes.data(), static_cast<uint32_t>(bytes.size()), type);
    };
    auto rec = [](uint8_t kind, uint8_t level, const std::string& tag, const std::string& text, uint32_t total,
                  uint32_t offset) {
      logd::RecordHeader h{logd::kVersion, kind, level, static_cast<uint8_t>(tag.size()), total, offset};
      std::string s(reinterpret_cast<const char*>(&h), sizeof h);
      return s + tag + text;
    };
    raw("garbage that is no record at all");
    raw("short", logd::kRecordType);
    raw(std::string(200, '\xff'));
    raw(rec(1, 6, "t", "x", 1, 0), 12345);  // wrong message type
    std::string v2 = rec(1, 6, "t", "x", 1, 0);
    v2[0] = 2;  // unknown version
    raw(v2);
    raw(rec(1, 6, "t", "xyz", 99, 0));                      // total does not match
    raw(rec(3, 6, "", "orphan middle", 100, 10));           // a fragment with no first
    raw(rec(2, 6, "frag", std::string(100, 'a'), 300, 0));  // a first fragment, then a new record
    raw(rec(1, 200, std::string(200, '\x01') + "<script>", "unknown level, bad tag", 22, 0));
    const std::string bad_utf8 = "bad \xC3\x28 \xED\xA0\x80 \xF8\x88 end";
    raw(rec(1, 6, "utf8", bad_utf8, static_cast<uint32_t>(bad_utf8.size()), 0));
    // A record of 64 KiB, whole, and one cut by the client at a UTF-8 boundary.
    std::string big(65536, 'b');
    if (logd_info("big", "%s", big.c_str()) != 0) return 12;
    std::string huge;
    while (huge.size() < 70000) huge += "\xC3\xA9";  // é
    if (logd_info("huge", "%s", huge.c_str()) != 0) return 13;
    // Raw junk straight into logd.sock, the socket every other uid uses.
    const int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, (env.dir + "/logd.sock").c_str(), sizeof a.sun_path - 1);
    if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      (void)!write(s, "\x00\x01\x02junkjunkjunk", 15);
      (void)!write(s, std::string(400, '\x7f').data(), 400);
    }
    close(s);
    // Calls: an unknown method, a malformed query, a flush with a short body.
    char resp[256];
    size_t got = 0;
    if (fwsvc_call(static_cast<uint32_t>(ch), 99, "x", 1, resp, sizeof resp, &got, 5000) != -ENOSYS) return 14;
    if (fwsvc_call(static_cast<uint32_t>(ch), logd::kQuery, "{not json", 9, resp, sizeof resp, &got, 5000) != -EINVAL)
      return 15;
    if (fwsvc_call(static_cast<uint32_t>(ch), logd::kFlush, "x", 1, resp, sizeof resp, &got, 5000) != -EINVAL)
      return 16;
    if (logd_info("good", "last") != 0) return 17;
    return logd_flush(30000) == 0 ? 0 : 18;
  });
  CHECK(wait_exit(kid) == 0);
  CHECK(kill(logd.pid, 0) == 0);  // still serving
  const auto st = logctl({"stats"});
  REQUIRE(st.first == 0);
  const auto stats = json::parse(st.second);
  CHECK(stats["rejected"].get<int>() >= 7);
  CHECK(stats["truncated"].get<int>() >= 1);
  CHECK(stats["bad_level"].get<int>() == 1);
  CHECK(logd.stop() == 0);
  const auto all = read_log(env.logdir);
  CHECK(with_tag(all, "good").size() == 2);
  for (const auto& j : all) {
    const std::string tag = j["tag"], msg = j["msg"];
    if (msg == "unknown level, bad tag") {
      CHECK(j["level"] == "debug");
      CHECK(tag.size() == 32);
      CHECK(tag.find_first_not_of("_") == std::string::npos);
    }
    if (tag == "utf8")
      CHECK(msg == "bad \xEF\xBF\xBD( \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD end");
    if (tag == "big") CHECK(msg == std::string(65536, 'b'));
    if (tag == "huge") {
      CHECK(msg.size() <= 65536);
      CHECK(msg.size() > 65000);
      CHECK(msg.substr(msg.size() - 12) == " [truncated]");
      CHECK(msg.find("\xEF\xBF\xBD") == std::string::npos);  // never cut inside a character
    }
    CHECK(msg.find("orphan") == std::string::npos);
    CHECK(msg != "x");
  }
  CHECK(with_tag(all, "utf8").size() == 1);
  CHECK(with_tag(all, "big").size() == 1);
  CHECK(with_tag(all, "huge").size() == 1);
}

TEST_CASE("logctl query and tail answer from logd, in the file's format; SIGHUP reopens the file") {
  Env env;
  Logd logd(env);
  const pid_t kid = spawn([] {
    for (int i = 0; i < 20; ++i) logd_debug("app.db", "debug %d", i);
    logd_warn("app.net", "link down");
    logd_error("other", "disk failing");
    logd_info("app.db", "ready");
    return logd_flush(30000) == 0 ? 0 : 1;
  });
  REQUIRE(wait_exit(kid) == 0);
  auto q = logctl({"query", "--level", "warning", "--json"});
  CHECK(q.first == 0);
  CHECK(count_lines(q.second) == 2);
  std::ifstream in(env.logdir + "/logd.log");
  std::string file((std::istreambuf_iterator<char>(in)), {});
  CHECK(file.find(q.second) != std::string::npos);  // byte for byte the file's lines
  q = logctl({"query", "--tag", "app.", "-n", "3", "--json"});
  CHECK(count_lines(q.second) == 3);
  CHECK(q.second.find("debug 19") != std::string::npos);
  CHECK(q.second.find("ready") != std::string::npos);
  q = logctl({"query", "--pid", std::to_string(kid), "--since", "2000-01-01T00:00:00Z"});
  CHECK(count_lines(q.second) == 23);
  q = logctl({"query", "--pid", "1"});
  CHECK(count_lines(q.second) == 0);
  q = logctl({"tail", "-n", "2"});
  CHECK(count_lines(q.second) == 2);
  CHECK(q.second.find("err") != std::string::npos);
  CHECK(q.second.find("disk failing") != std::string::npos);
  CHECK(q.second.find("app.db[" + std::to_string(kid) + "] (logd_test): ready") != std::string::npos);
  CHECK(logctl({"query", "--level", "loud"}).first == 2);
  // logrotate: move the file away, SIGHUP, and the next record starts a new logd.log.
  REQUIRE(rename((env.logdir + "/logd.log").c_str(), (env.logdir + "/moved.log").c_str()) == 0);
  kill(logd.pid, SIGHUP);
  const pid_t after = spawn([] { return logd_info("rotated", "after hup") == 0 && logd_flush(30000) == 0 ? 0 : 1; });
  CHECK(wait_exit(after) == 0);
  std::ifstream fresh(env.logdir + "/logd.log");
  std::string text((std::istreambuf_iterator<char>(fresh)), {});
  CHECK(text.find("after hup") != std::string::npos);
  CHECK(text.find("ready") == std::string::npos);
  CHECK(logd.stop() == 0);
}

TEST_CASE("the per-sender rate limit writes a burst, then reports what it suppressed") {
  Env env;
  Logd logd(env, {"--rate-limit", "100/2"});
  const pid_t kid = spawn([] {
    for (int i = 0; i < 300; ++i) logd_info("flood", "%d", i);
    return logd_flush(30000) == 0 ? 0 : 1;
  });
  CHECK(wait_exit(kid) == 0);
  // The report comes once the sender's bucket has a token again (50 a second here).
  std::string out;
  for (int64_t end = now_ms() + 30000; now_ms() < end; poll(nullptr, 0, 50)) {
    out = logctl({"query", "--tag", "logd", "--json"}).second;
    if (out.find("suppressed") != std::string::npos) break;
  }
  const std::string want = " records from " + std::to_string(kid) + " (logd_test)";
  CHECK(out.find(want) != std::string::npos);
  CHECK(logd.stop() == 0);
  const auto flood = with_tag(read_log(env.logdir), "flood");
  CHECK(flood.size() >= 100);
  CHECK(flood.size() < 300);
  unsigned long long n = 0;
  const size_t at = out.find("suppressed ");
  REQUIRE(at != std::string::npos);
  sscanf(out.c_str() + at, "suppressed %llu", &n);
  CHECK(n + flood.size() == 300);
}

TEST_CASE("events: fwevent emit security.user.login lands in logd.log with no logd call in the emitter") {
  Env env;
  const pid_t eventsd = start_ready({runfile("services/events/eventsd")});
  Logd logd(env);  // its watches join the running event bus before it says READY=1
  const pid_t em =
      spawn_exec({runfile("services/events/fwevent"), "emit", "security.user.login", "{\"username\":\"user\"}"});
  CHECK(wait_exit(em) == 0);
  const pid_t em2 = spawn_exec({runfile("services/events/fwevent"), "emit", "error.disk.full", "{\"free\":0}"});
  CHECK(wait_exit(em2) == 0);
  const pid_t em3 = spawn_exec({runfile("services/events/fwevent"), "emit", "app.private", "{}"});
  CHECK(wait_exit(em3) == 0);
  // The events reach logd's watch asynchronously: wait for them through logctl.
  std::string out;
  for (int64_t end = now_ms() + 30000; now_ms() < end; poll(nullptr, 0, 20)) {
    out = logctl({"query", "--json"}).second;
    if (count_lines(out) >= 2) break;
  }
  CHECK(logd.stop() == 0);
  kill(eventsd, SIGTERM);
  CHECK(wait_exit(eventsd) == 0);
  const auto all = read_log(env.logdir);
  const auto sec = with_tag(all, "security");
  REQUIRE(sec.size() == 1);
  CHECK(sec[0]["event"] == "security.user.login");
  CHECK(sec[0]["data"] == json{{"username", "user"}});
  CHECK(sec[0]["level"] == "notice");
  CHECK(sec[0]["pid"].get<int64_t>() == em);
  const auto err = with_tag(all, "error");
  REQUIRE(err.size() == 1);
  CHECK(err[0]["level"] == "err");
  CHECK(err[0]["pid"].get<int64_t>() == em2);
  CHECK(with_tag(all, "app").empty());
}
