// The demo: a registry in a temporary runtime directory, real processes talking over QUEUE
// channels, and what was measured.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "base/time.h"
#include "benchmarks/harness.h"
#include "ipc.h"
#include "logd_ipc.h"
#include "runtime/registry/client.h"
#include "transports/shm/ring.h"

namespace {

int wait_pid(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void print_rtt(const char* what, const fwipc::bench::Percentiles& p, double floor_p50) {
  std::printf("  %-34s p50 %7.0f ns  p99 %8.0f ns  p99.9 %8.0f ns", what, p.p50_ns, p.p99_ns, p.p999_ns);
  if (floor_p50 > 0) std::printf("  (%.2fx floor)", p.p50_ns / floor_p50);
  std::printf("\n");
}

// One writer process broadcasts n messages; each of `readers` processes checks it got all
// of them in order. Returns the number of readers that verified everything.
int broadcast(uint64_t n, int readers, double* secs) {
  int ready[2];
  if (::pipe(ready) != 0) return 0;
  pid_t pids[8];
  for (int r = 0; r < readers; ++r) {
    pids[r] = ::fork();
    if (pids[r] == 0) {
      const int id = r == 0 ? ipc_create_channel("demo.events", IPC_TYPE_QUEUE, 1024 * 576)
                            : ipc_open_channel("demo.events", IPC_MODE_READ);
      (void)!::write(ready[1], "r", 1);
      if (id < 0) ::_exit(1);
      for (uint64_t i = 0; i < n; ++i) {
        uint64_t v;
        if (ipc_receive(uint32_t(id), &v, sizeof v) != sizeof v || v != i) ::_exit(2);
      }
      ::_exit(0);
    }
    char b;
    (void)!::read(ready[0], &b, 1);
  }
  const int w = ipc_open_channel("demo.events", IPC_MODE_WRITE);
  const int64_t t0 = fwipc::monotonic_ns();
  for (uint64_t i = 0; i < n && w >= 0; ++i) {
    if (ipc_send(uint32_t(w), &i, sizeof i, 1) != sizeof i) break;
  }
  int ok = 0;
  for (int r = 0; r < readers; ++r) ok += wait_pid(pids[r]) == 0;
  *secs = double(fwipc::monotonic_ns() - t0) / 1e9;
  if (w >= 0) ipc_close_channel(uint32_t(w));
  ::close(ready[0]);
  ::close(ready[1]);
  return ok;
}

}  // namespace

// logd: the system log daemon, a process logging through the client library, the file
// filling, and logctl asking logd (services/logd/README.md).
void logd_demo(const std::string& rundir) {
  const std::string bin =
      std::filesystem::path(std::filesystem::read_symlink("/proc/self/exe")).parent_path().parent_path().string();
  const std::string logd = bin + "/services/logd/logd", logctl = bin + "/services/logd/logctl";
  const std::string logdir = rundir + "/log";
  std::printf("\nlogd, the system log (services/logd/logd --log-dir %s)\n", logdir.c_str());
  const pid_t d = ::fork();
  if (d == 0) {
    ::execl(logd.c_str(), logd.c_str(), "--log-dir", logdir.c_str(), "--no-events", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 400 && ::access((rundir + "/logd.call").c_str(), F_OK) != 0; ++i) ::usleep(5000);
  const pid_t app = ::fork();
  if (app == 0) {
    logd_info("myapp", "Application started");
    logd_debug("myapp.db", "opened %s", "/var/lib/myapp.db");
    logd_warn("myapp.net", "link %s down, retrying in %d s", "eth0", 5);
    logd_error("myapp", "could not write %s: %s", "/var/lib/myapp.db", std::strerror(ENOSPC));
    ::_exit(logd_flush(5000) == 0 ? 0 : 1);  // every record above is in the file now
  }
  const int app_rc = wait_pid(app);
  std::printf("  a process (pid %d) logged 4 records with logd_info/debug/warn/error; logd_flush: %s\n", int(app),
              app_rc == 0 ? "0, all in the file" : "failed");
  std::printf("  %s/logd.log:\n", logdir.c_str());
  std::fflush(stdout);
  (void)!std::system(("sed 's/^/    /' " + logdir + "/logd.log").c_str());
  std::printf("  logctl query --level warning:\n");
  std::fflush(stdout);
  (void)!std::system((logctl + " query --level warning | sed 's/^/    /'").c_str());
  ::kill(d, SIGTERM);
  std::printf("  logd stopped on SIGTERM, exit status %d\n", wait_pid(d));
}

int main() {
  char tmpl[] = "/tmp/fwipc-demo-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  ::setenv("FWIPC_RUNTIME_DIR", tmpl, 1);
  ::setenv("FWIPC_NO_AUTOSTART", "1", 1);  // the demo starts its registry itself

  const char* configured = std::getenv("FWIPC_REGISTRYD");
  const std::string exe = fwipc::registry::find_registryd(configured ? configured : "");
  if (exe.empty()) {
    std::fprintf(stderr, "demo: fwipc-registryd not found (bazel build //runtime:fwipc, or set FWIPC_REGISTRYD)\n");
    return 1;
  }
  const pid_t reg = ::fork();
  if (reg == 0) {
    ::execl(exe.c_str(), exe.c_str(), "--dir", tmpl, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 200 && ::access((std::string(tmpl) + "/registry.sock").c_str(), F_OK) != 0; ++i) ::usleep(5000);
  std::printf("FreeWorld IPC demo\n  runtime dir %s, registry pid %d, %ld cores\n\n", tmpl, int(reg),
              ::sysconf(_SC_NPROCESSORS_ONLN));

  constexpr uint64_t kBroadcast = 1'000'000;
  double secs = 0;
  const int ok = broadcast(kBroadcast, 2, &secs);
  std::printf("Broadcast: 1 writer -> 2 reader processes, %llu x 8 B messages each\n",
              static_cast<unsigned long long>(kBroadcast));
  std::printf("  %d/2 readers received every message in order; %.2f s, %.1f M msg/s delivered\n\n", ok, secs,
              2.0 * double(kBroadcast) / secs / 1e6);

  constexpr uint64_t kTrips = 100'000;
  std::printf("Round trip between two processes (%llu trips per row after warm-up, rows interleaved)\n",
              static_cast<unsigned long long>(kTrips));
  {
    fwipc::bench::RawPingPong raw;
    fwipc::bench::QueuePingPong q64("demo.rtt64", 64), q512("demo.rtt512", 512);
    if (!q64.ok() || !q512.ok()) {
      std::printf("  QUEUE channel setup failed\n");
      return 1;
    }
    for (int i = 0; i < 10000; ++i) raw.round_trip(), q64.round_trip(), q512.round_trip();
    std::vector<std::vector<int64_t>> s;
    fwipc::bench::interleave(kTrips, 5000,
                             {[&](uint64_t n) { return raw.timed(n); }, [&](uint64_t n) { return q64.timed(n); },
                              [&](uint64_t n) { return q512.timed(n); }},
                             &s);
    const auto floor = fwipc::bench::percentiles(s[0]);
    print_rtt("raw cache-line ping-pong (floor)", floor, 0);
    print_rtt("QUEUE 64 B, spinning reader", fwipc::bench::percentiles(s[1]), floor.p50_ns);
    print_rtt("QUEUE 512 B, spinning reader", fwipc::bench::percentiles(s[2]), floor.p50_ns);
  }
  {
    fwipc::shm::ShmRing::set_spin_ns(0);  // both ends sleep on the futex at once
    fwipc::bench::QueuePingPong pp("demo.sleep", 64);
    if (pp.ok()) {
      for (int i = 0; i < 200; ++i) pp.round_trip();
      print_rtt("QUEUE 64 B, sleeping reader (futex)", fwipc::bench::percentiles(pp.timed(5000)), 0);
    }
    fwipc::shm::ShmRing::set_spin_ns(50'000);
  }
  for (uint32_t type : {uint32_t(IPC_TYPE_SOCKET), uint32_t(IPC_TYPE_PIPE)}) {
    fwipc::bench::QueuePingPong pp(type == IPC_TYPE_SOCKET ? "demo.sock" : "demo.fifo", 64, type);
    if (!pp.ok()) continue;
    for (int i = 0; i < 200; ++i) pp.round_trip();
    print_rtt(type == IPC_TYPE_SOCKET ? "SOCKET channel 64 B" : "PIPE channel 64 B",
              fwipc::bench::percentiles(pp.timed(5000)), 0);
  }

  std::printf("\nOne-way throughput, 1 writer -> 1 reader process\n");
  const struct {
    fwipc::bench::Path path;
    const char* label;
  } paths[] = {{fwipc::bench::Path::kPlain, "ipc_send/ipc_receive"},
               {fwipc::bench::Path::kBatch, "C++ send_batch/consume"}};
  for (const auto& p : paths) {
    for (uint32_t bytes : {64u, 512u}) {
      const uint64_t n = 2'000'000;
      const double rate =
          fwipc::bench::queue_throughput("demo.tput" + std::to_string(bytes), n, bytes, IPC_TYPE_QUEUE, 1, p.path);
      std::printf("  QUEUE %3u B, %-23s %6.2f M msg/s  %6.2f GB/s\n", bytes, p.label, rate / 1e6, rate * bytes / 1e9);
    }
  }

  logd_demo(tmpl);

  ::kill(reg, SIGTERM);
  wait_pid(reg);
  (void)!std::system((std::string("rm -rf ") + tmpl).c_str());
  return ok == 2 ? 0 : 1;
}
