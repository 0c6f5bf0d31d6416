// logd against rsyslogd and spdlog, side by side in one run: 4 client processes x N
// records of ~100 bytes into a file until all are on disk.
//   logd     the client library (logd_info) into a logd started here
//   rsyslog  Debian's rsyslogd started here in the foreground with a private config: an
//            imuxsock socket and an omfile action, fed the way syslog(3) feeds /dev/log
//            (one blocking datagram per record, "<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG")
//   spdlog   spdlog's async file logger in one process with 4 threads: the ceiling
// Reported: records/s end to end (first call to last record in the file), the client
// call's p50/p99/p99.9, records lost.
//   logd_bench [--records N] [--only logd|rsyslog|spdlog]   (N per client, default 100000)
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "logd_ipc.h"
#include "spdlog/async.h"
#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/spdlog.h"

namespace {

constexpr int kClients = 4;

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

struct Result {
  std::string name;
  double records_per_s = 0;
  double p50_us = 0, p99_us = 0, p999_us = 0;
  long lost = 0;
  std::string note;
};

std::string g_dir;
long g_n = 100000;

std::string beside(const std::string& rel) {
  // bazel-bin/benchmarks/logd/logd_bench -> bazel-bin/<rel>
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  return std::filesystem::path(self).parent_path().parent_path().parent_path().string() + "/" + rel;
}

// A ~100-byte record text.
int record_text(char* buf, size_t cap, int client, long i) {
  return snprintf(buf, cap, "client %d record %08ld: the quick brown fox jumps over the lazy dog, padding to 100 b", client,
                  i);
}

void percentiles(std::vector<uint32_t>& v, Result* r) {
  if (v.empty()) return;
  auto at = [&](double q) {
    const size_t k = std::min(v.size() - 1, size_t(q * double(v.size())));
    std::nth_element(v.begin(), v.begin() + long(k), v.end());
    return double(v[k]) / 1000.0;
  };
  r->p50_us = at(0.5);
  r->p99_us = at(0.99);
  r->p999_us = at(0.999);
}

// Runs fn(client, latencies) in kClients forked processes that start together; returns the
// merged latencies and the time from the start to the last exit.
std::vector<uint32_t> run_clients(void (*fn)(int, std::vector<uint32_t>&), double* secs) {
  int go[2];
  if (pipe(go) != 0) abort();
  std::vector<pid_t> kids;
  for (int c = 0; c < kClients; ++c) {
    const pid_t pid = fork();
    if (pid == 0) {
      close(go[1]);
      char b;
      if (read(go[0], &b, 1) != 1) _exit(1);
      std::vector<uint32_t> lat;
      lat.reserve(size_t(g_n));
      fn(c, lat);
      const std::string f = g_dir + "/lat." + std::to_string(c);
      FILE* out = fopen(f.c_str(), "wb");
      fwrite(lat.data(), sizeof(uint32_t), lat.size(), out);
      fclose(out);
      _exit(0);
    }
    kids.push_back(pid);
  }
  close(go[0]);
  const uint64_t t0 = now_ns();
  if (write(go[1], "gggg", kClients) != kClients) abort();
  close(go[1]);
  for (pid_t k : kids) waitpid(k, nullptr, 0);
  *secs = double(now_ns() - t0) / 1e9;
  std::vector<uint32_t> all;
  for (int c = 0; c < kClients; ++c) {
    std::ifstream in(g_dir + "/lat." + std::to_string(c), std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
    const size_t n = bytes.size() / sizeof(uint32_t);
    const size_t old = all.size();
    all.resize(old + n);
    std::memcpy(all.data() + old, bytes.data(), n * sizeof(uint32_t));
  }
  return all;
}

long count_lines_with(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  long n = 0;
  for (std::string line; std::getline(in, line);) n += line.find(what) != std::string::npos;
  return n;
}

bool wait_for_path(const std::string& p, int ms) {
  for (int i = 0; i < ms / 10; ++i) {
    if (access(p.c_str(), F_OK) == 0) return true;
    usleep(10000);
  }
  return false;
}

pid_t spawn(const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

void logd_client(int c, std::vector<uint32_t>& lat) {
  // A queue that holds a whole burst, as the ring does: the run measures throughput to
  // disk, and anything dropped still counts as lost.
  logd_set_queue_limit(65536, 64u << 20);
  char buf[160];
  for (long i = 0; i < g_n; ++i) {
    record_text(buf, sizeof buf, c, i);
    const uint64_t t = now_ns();
    logd_info("bench", "%s", buf);
    lat.push_back(uint32_t(std::min<uint64_t>(now_ns() - t, UINT32_MAX)));
  }
  logd_flush(600000);
}

Result bench_logd() {
  Result r{"logd"};
  const std::string logdir = g_dir + "/logd";
  const pid_t d = spawn({beside("services/logd/logd"), "--log-dir", logdir, "--max-bytes", "4G", "--rate-limit",
                         "0/0", "--ring-bytes", "128M", "--no-events"});
  if (!wait_for_path(g_dir + "/logd.call", 10000)) {
    r.note = "logd did not start";
    return r;
  }
  double secs = 0;
  auto lat = run_clients(logd_client, &secs);
  kill(d, SIGTERM);
  waitpid(d, nullptr, 0);
  const long got = count_lines_with(logdir + "/logd.log", "\"tag\":\"bench\"");
  r.lost = long(kClients) * g_n - got;
  r.records_per_s = double(got) / secs;
  percentiles(lat, &r);
  return r;
}

std::string g_rsys_sock;

void rsyslog_client(int c, std::vector<uint32_t>& lat) {
  // What glibc's syslog(3) does: a datagram socket connected to the log socket, one
  // blocking send per record with the BSD header.
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, g_rsys_sock.c_str(), sizeof a.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
  char text[160], msg[320];
  const int pid = getpid();
  for (long i = 0; i < g_n; ++i) {
    record_text(text, sizeof text, c, i);
    const uint64_t t = now_ns();
    const time_t now = time(nullptr);
    struct tm tm;
    localtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%h %e %T", &tm);
    const int n = snprintf(msg, sizeof msg, "<14>%s bench[%d]: %s", stamp, pid, text);
    while (send(fd, msg, size_t(n), 0) < 0 && (errno == EINTR || errno == ENOBUFS || errno == EAGAIN)) {
    }
    lat.push_back(uint32_t(std::min<uint64_t>(now_ns() - t, UINT32_MAX)));
  }
  close(fd);
}

Result bench_rsyslog() {
  Result r{"rsyslog"};
  g_rsys_sock = g_dir + "/rsys.sock";
  const std::string out = g_dir + "/rsyslog.log", conf = g_dir + "/rsyslog.conf";
  {
    std::ofstream f(conf);
    f << "global(workDirectory=\"" << g_dir << "\" maxMessageSize=\"8k\")\n"
      << "module(load=\"imuxsock\" SysSock.Use=\"off\")\n"
      << "input(type=\"imuxsock\" Socket=\"" << g_rsys_sock << "\" RateLimit.Interval=\"0\")\n"
      << "template(name=\"plain\" type=\"string\" string=\"%TIMESTAMP% %syslogtag%%msg%\\n\")\n"
      << "*.* action(type=\"omfile\" file=\"" << out << "\" template=\"plain\")\n";
  }
  const pid_t d = spawn({"/usr/sbin/rsyslogd", "-n", "-f", conf, "-i", g_dir + "/rsyslogd.pid"});
  if (!wait_for_path(g_rsys_sock, 10000)) {
    r.note = "rsyslogd did not start";
    kill(d, SIGKILL);
    waitpid(d, nullptr, 0);
    return r;
  }
  const uint64_t t0 = now_ns();
  double secs = 0;
  auto lat = run_clients(rsyslog_client, &secs);
  // All sent; the file is complete when it has every record or stops growing for 3 s.
  const long want = long(kClients) * g_n;
  long got = 0, last = -1;
  uint64_t still_since = now_ns();
  for (;;) {
    got = count_lines_with(out, "bench[");
    if (got >= want) break;
    if (got != last) {
      last = got;
      still_since = now_ns();
    } else if (now_ns() - still_since > 3000000000u) {
      break;
    }
    usleep(20000);
  }
  const double total = double(now_ns() - t0) / 1e9 - (got >= want ? 0 : 3.0);
  kill(d, SIGTERM);
  waitpid(d, nullptr, 0);
  r.lost = want - got;
  r.records_per_s = double(got) / std::max(total, secs);
  percentiles(lat, &r);
  return r;
}

Result bench_spdlog() {
  Result r{"spdlog async (1 process, 4 threads)"};
  spdlog::init_thread_pool(65536, 1);
  const std::string out = g_dir + "/spdlog.log";
  auto logger = spdlog::basic_logger_mt<spdlog::async_factory>("bench", out);
  std::vector<std::vector<uint32_t>> lats(kClients);
  const uint64_t t0 = now_ns();
  std::vector<std::thread> ts;
  for (int c = 0; c < kClients; ++c) {
    ts.emplace_back([&, c] {
      auto& lat = lats[size_t(c)];
      lat.reserve(size_t(g_n));
      char buf[160];
      for (long i = 0; i < g_n; ++i) {
        record_text(buf, sizeof buf, c, i);
        const uint64_t t = now_ns();
        logger->info("bench {}", buf);
        lat.push_back(uint32_t(std::min<uint64_t>(now_ns() - t, UINT32_MAX)));
      }
    });
  }
  for (auto& t : ts) t.join();
  logger->flush();
  spdlog::shutdown();  // joins the pool: everything is in the file
  const double secs = double(now_ns() - t0) / 1e9;
  const long got = count_lines_with(out, "] bench client");
  r.lost = long(kClients) * g_n - got;
  r.records_per_s = double(got) / secs;
  std::vector<uint32_t> all;
  for (auto& l : lats) all.insert(all.end(), l.begin(), l.end());
  percentiles(all, &r);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--records" && i + 1 < argc) {
      g_n = atol(argv[++i]);
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      fprintf(stderr,
              "usage: logd_bench [--records N] [--only logd|rsyslog|spdlog]\n"
              "  4 client processes x N records (default 100000) of ~100 bytes into a file, side by side:\n"
              "  logd, rsyslogd (private config, fed like syslog(3)), spdlog async (the ceiling)\n");
      return 2;
    }
  }
  if (g_n <= 0) return 2;
  char tmpl[] = "/tmp/fwipc-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  g_dir = tmpl;
  chmod(tmpl, 0755);
  setenv("FWIPC_RUNTIME_DIR", g_dir.c_str(), 1);
  setenv("FWIPC_REGISTRYD", beside("runtime/registry/daemon/fwipc-registryd").c_str(), 1);
  std::vector<Result> rs;
  // Forking runs first, the threaded spdlog run last.
  if (only.empty() || only == "logd") rs.push_back(bench_logd());
  if (only.empty() || only == "rsyslog") rs.push_back(bench_rsyslog());
  if (only.empty() || only == "spdlog") rs.push_back(bench_spdlog());
  printf("logd benchmark: %d clients x %ld records of ~100 B, until all are in the file\n", kClients, g_n);
  printf("| %-36s | %12s | %9s | %9s | %9s | %8s |\n", "system", "records/s", "p50 us", "p99 us", "p99.9 us", "lost");
  printf("|%s|%s|%s|%s|%s|%s|\n", std::string(38, '-').c_str(), std::string(14, '-').c_str(),
         std::string(11, '-').c_str(), std::string(11, '-').c_str(), std::string(11, '-').c_str(),
         std::string(10, '-').c_str());
  for (const auto& r : rs)
    printf("| %-36s | %12.0f | %9.2f | %9.2f | %9.2f | %8ld |%s\n", r.name.c_str(), r.records_per_s, r.p50_us,
           r.p99_us, r.p999_us, r.lost, r.note.empty() ? "" : (" " + r.note).c_str());
  double lg = 0, rsy = 0;
  for (const auto& r : rs) {
    if (r.name == "logd") lg = r.records_per_s;
    if (r.name == "rsyslog") rsy = r.records_per_s;
  }
  if (lg > 0 && rsy > 0) printf("logd / rsyslog throughput: %.1fx (target >= 3x)\n", lg / rsy);
  std::error_code ec;
  std::filesystem::remove_all(g_dir, ec);
  return 0;
}
