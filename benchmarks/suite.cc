// The benchmark suite: every channel type beside the reference mechanisms, in one run.
// Round trips: each row runs interleaved with the raw cache-line floor (alternating chunks)
// and reports its percentiles and its ratio to the floor of the same moments, because the
// floor itself moves on this VM. FWIPC_BENCH_TRIPS sets the samples per row (default
// 100,000, after warm-up).
#include <benchmark/benchmark.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>

#include "benchmarks/harness.h"
#include "benchmarks/links.h"
#include "ipc.h"
#include "transports/shm/ring.h"
#include "transports/shm/ring2.h"

namespace {

using fwipc::bench::interleave;
using fwipc::bench::percentiles;

uint64_t trips() {
  const char* e = std::getenv("FWIPC_BENCH_TRIPS");
  return e && *e ? std::strtoull(e, nullptr, 10) : 100'000;
}

using Row = std::function<std::vector<int64_t>(uint64_t)>;

// Restricts this process to one CPU (-1: all of them). No-op on a one-CPU machine.
void pin_self(int cpu) {
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (long c = 0; c < n; ++c)
    if (cpu < 0 || c == cpu) CPU_SET(c, &set);
  ::sched_setaffinity(0, sizeof set, &set);
}

// Median over chunks of (p50 of a chunk of samples `a` / p50 of the same chunk of `b`).
// The machine switches between modes from one moment to the next (see README): chunk
// pairs measured back to back see the same mode, whole runs do not.
double chunk_ratio(const std::vector<int64_t>& a, const std::vector<int64_t>& b, uint64_t chunk) {
  std::vector<double> ratios;
  for (uint64_t at = 0; at + chunk <= std::min(a.size(), b.size()); at += chunk) {
    const auto part = [&](const std::vector<int64_t>& v) {
      return percentiles(std::vector<int64_t>(v.begin() + int64_t(at), v.begin() + int64_t(at + chunk))).p50_ns;
    };
    ratios.push_back(part(a) / std::max(part(b), 1.0));
  }
  if (ratios.empty()) return 0;
  std::sort(ratios.begin(), ratios.end());
  return ratios[ratios.size() / 2];
}

// Measures `row` interleaved with the floor (and with `ref` if given: x_ref), sets counters.
void measure(benchmark::State& st, const Row& row, const std::function<void()>& warm, const Row& ref = nullptr) {
  fwipc::bench::RawPingPong raw;
  for (int i = 0; i < 10000; ++i) raw.round_trip();
  for (int i = 0; i < 2000; ++i) warm();
  std::vector<std::vector<int64_t>> s;
  const uint64_t n = trips();
  const uint64_t chunk = std::max<uint64_t>(n / 20, 1);
  std::vector<Row> rows{[&](uint64_t k) { return raw.timed(k); }, row};
  if (ref) rows.push_back(ref);
  for (auto _ : st) {
    interleave(n, chunk, rows, &s);
    if (s[1].size() != n || (ref && s[2].size() != n)) {
      st.SkipWithError("round trip failed");
      return;
    }
    const auto p = percentiles(s[1]);
    const auto f = percentiles(s[0]);
    st.SetIterationTime(p.mean_ns * double(n) / 1e9);
    st.counters["p50_ns"] = p.p50_ns;
    st.counters["p99_ns"] = p.p99_ns;
    st.counters["p999_ns"] = p.p999_ns;
    st.counters["max_ns"] = p.max_ns;
    st.counters["floor_p50_ns"] = f.p50_ns;
    st.counters["x_floor"] = chunk_ratio(s[1], s[0], chunk);
    if (ref) st.counters["x_ref"] = chunk_ratio(s[1], s[2], chunk);
    st.counters["trips"] = double(n);
  }
}

void BM_RoundTrip_Raw(benchmark::State& st) {
  fwipc::bench::RawPingPong other;
  measure(
      st, [&](uint64_t k) { return other.timed(k); }, [&] { other.round_trip(); });
}

void BM_RoundTrip_Link(benchmark::State& st, fwipc::bench::LinkKind kind) {
  fwipc::bench::LinkPingPong pp(kind, uint32_t(st.range(0)));
  if (!pp.ok()) {
    st.SkipWithError("setup failed");
    return;
  }
  measure(
      st, [&](uint64_t k) { return pp.timed(k); }, [&] { pp.round_trip(); });
}

// Rows named fwipc_ring2*: the same harness against a registry started with FWIPC_RING=2
// in a runtime directory of its own, so both ring layouts run side by side in one run.
std::string ring2_dir;
class Ring2Scope {
 public:
  Ring2Scope() {
    if (const char* d = std::getenv("FWIPC_RUNTIME_DIR")) saved_ = d;
    ::setenv("FWIPC_RUNTIME_DIR", ring2_dir.c_str(), 1);
    ::setenv("FWIPC_RING", "2", 1);
  }
  ~Ring2Scope() {
    ::setenv("FWIPC_RUNTIME_DIR", saved_.c_str(), 1);
    ::unsetenv("FWIPC_RING");
  }

 private:
  std::string saved_;
};
template <auto Bm, typename... A>
void OnRing2(benchmark::State& st, A... a) {
  Ring2Scope scope;
  Bm(st, a...);
}

void set_spin(int64_t ns) {
  fwipc::shm::ShmRing::set_spin_ns(ns);
  fwipc::shm::v2::ShmRing2::set_spin_ns(ns);
}

void BM_RoundTrip_BareSeq(benchmark::State& st) {
  fwipc::bench::BareSeqPingPong pp(uint32_t(st.range(0)));
  measure(
      st, [&](uint64_t k) { return pp.timed(k); }, [&] { pp.round_trip(); });
}

void BM_RoundTrip_Fwipc(benchmark::State& st, uint32_t type, bool spin, bool zero_copy) {
  static int serial = 0;
  const auto old_spin = fwipc::shm::ShmRing::spin_ns();
  if (!spin) set_spin(0);  // the peer inherits it at fork
  {
    // A sleeping reader is compared with the bare futex round trip, chunk by chunk, with
    // both peers on CPU 1 and us on CPU 0 while they run: whether a wakeup lands on an idle
    // vCPU (tens of us on this VM) or on the waker's own (a few us) is the scheduler's
    // choice otherwise, and it chooses differently for different process pairs.
    if (!spin) pin_self(1);
    fwipc::bench::QueuePingPong pp("suite" + std::to_string(serial++), uint32_t(st.range(0)), type, zero_copy);
    std::unique_ptr<fwipc::bench::LinkPingPong> futex;
    if (!spin)
      futex = std::make_unique<fwipc::bench::LinkPingPong>(fwipc::bench::LinkKind::kFutex, uint32_t(st.range(0)));
    if (!spin) pin_self(-1);
    const auto pinned = [&](auto& what, uint64_t k) {
      if (!spin) pin_self(0);
      auto v = what.timed(k);
      if (!spin) pin_self(-1);
      return v;
    };
    if (!pp.ok() || (futex && !futex->ok())) {
      st.SkipWithError("channel setup failed");
    } else {
      Row ref;
      if (futex) ref = [&](uint64_t k) { return pinned(*futex, k); };
      measure(
          st, [&](uint64_t k) { return pinned(pp, k); }, [&] { pp.round_trip(); }, ref);
    }
  }
  set_spin(old_spin);
}

// A peer of another uid (nobody) than ours: the issue-17 row. Its echo writes into our
// channel, so each round trip has one hop from another uid to us; x_ref is the ratio to
// the same-uid round trip, interleaved chunk by chunk.
void BM_RoundTrip_FwipcOtherUid(benchmark::State& st) {
  static int serial = 0;
  if (::geteuid() != 0) {
    st.SkipWithError("needs root (the peer becomes nobody)");
    return;
  }
  fwipc::bench::QueuePingPong other("xuid" + std::to_string(serial), uint32_t(st.range(0)), IPC_TYPE_QUEUE, false,
                                    65534);
  fwipc::bench::QueuePingPong same("suid" + std::to_string(serial++), uint32_t(st.range(0)));
  if (!other.ok() || !same.ok()) {
    st.SkipWithError("channel setup failed");
    return;
  }
  measure(
      st, [&](uint64_t k) { return other.timed(k); }, [&] { other.round_trip(); },
      [&](uint64_t k) { return same.timed(k); });
}

uint64_t tput_msgs() {
  const char* e = std::getenv("FWIPC_BENCH_MSGS");
  return e && *e ? std::strtoull(e, nullptr, 10) : 2'000'000;
}

// One-way throughput: args are (payload bytes, writers).
void report_rate(benchmark::State& st, double rate, uint64_t n) {
  if (rate <= 0) {
    st.SkipWithError("run failed");
    return;
  }
  st.SetIterationTime(double(n) / rate);
  st.counters["msgs_per_s"] = rate;
  st.counters["GB_per_s"] = rate * double(st.range(0)) / 1e9;
}

// sleeping: the reader does not spin (FWIPC_SPIN_NS=0), so every time it catches up it
// sleeps on the futex and writers must wake it: the row that shows wakeup batching (one
// FUTEX_WAKE per burst, not per message).
void BM_Tput_Fwipc(benchmark::State& st, uint32_t type, fwipc::bench::Path path, bool sleeping) {
  static int serial = 0;
  const uint64_t n = type == IPC_TYPE_QUEUE ? tput_msgs() : tput_msgs() / 10;
  const auto old_spin = fwipc::shm::ShmRing::spin_ns();
  if (sleeping) set_spin(0);
  for (auto _ : st) {
    const double r = fwipc::bench::queue_throughput("tput" + std::to_string(serial++), n, uint32_t(st.range(0)), type,
                                                    int(st.range(1)), path);
    report_rate(st, r, n);
  }
  set_spin(old_spin);
}

void BM_Tput_BareRing(benchmark::State& st) {
  const uint64_t n = tput_msgs() * 4;
  for (auto _ : st) report_rate(st, fwipc::bench::bare_ring_throughput(n, uint32_t(st.range(0)), 32), n);
}

void BM_Tput_Moodycamel(benchmark::State& st) {
  const uint64_t n = tput_msgs() * 2;
  for (auto _ : st) report_rate(st, fwipc::bench::moodycamel_throughput(n, uint32_t(st.range(0)), int(st.range(1))), n);
}

void register_all() {
  auto opts = [](benchmark::internal::Benchmark* b) {
    b->Arg(64)->Arg(512)->Iterations(1)->UseManualTime()->Unit(benchmark::kNanosecond);
  };
  opts(benchmark::RegisterBenchmark("rtt/raw_cacheline", BM_RoundTrip_Raw));
  opts(benchmark::RegisterBenchmark("rtt/bare_seq_ring", BM_RoundTrip_BareSeq));
  opts(benchmark::RegisterBenchmark("rtt/fwipc_queue_spin", BM_RoundTrip_Fwipc, IPC_TYPE_QUEUE, true, false));
  opts(benchmark::RegisterBenchmark("rtt/fwipc_queue_zero_copy_spin", BM_RoundTrip_Fwipc, IPC_TYPE_QUEUE, true, true));
  opts(benchmark::RegisterBenchmark("rtt/fwipc_queue_sleep", BM_RoundTrip_Fwipc, IPC_TYPE_QUEUE, false, false));
  opts(benchmark::RegisterBenchmark("rtt/fwipc_socket", BM_RoundTrip_Fwipc, IPC_TYPE_SOCKET, true, false));
  opts(benchmark::RegisterBenchmark("rtt/fwipc_pipe", BM_RoundTrip_Fwipc, IPC_TYPE_PIPE, true, false));
  opts(benchmark::RegisterBenchmark("rtt/fwipc_queue_other_uid_spin", BM_RoundTrip_FwipcOtherUid));
  opts(benchmark::RegisterBenchmark("rtt/fwipc_ring2_spin", OnRing2<BM_RoundTrip_Fwipc, uint32_t, bool, bool>,
                                    IPC_TYPE_QUEUE, true, false));
  opts(benchmark::RegisterBenchmark("rtt/fwipc_ring2_zero_copy_spin", OnRing2<BM_RoundTrip_Fwipc, uint32_t, bool, bool>,
                                    IPC_TYPE_QUEUE, true, true));
  opts(benchmark::RegisterBenchmark("rtt/fwipc_ring2_sleep", OnRing2<BM_RoundTrip_Fwipc, uint32_t, bool, bool>,
                                    IPC_TYPE_QUEUE, false, false));
  opts(benchmark::RegisterBenchmark("rtt/fwipc_ring2_other_uid_spin", OnRing2<BM_RoundTrip_FwipcOtherUid>));
  for (auto k : fwipc::bench::all_links())
    opts(
        benchmark::RegisterBenchmark((std::string("rtt/") + fwipc::bench::link_name(k)).c_str(), BM_RoundTrip_Link, k));

  auto tput = [](benchmark::internal::Benchmark* b, bool two_writers) {
    b->Args({64, 1})->Args({512, 1});
    if (two_writers) b->Args({64, 2})->Args({512, 2})->Args({64, 4});
    b->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
  };
  tput(benchmark::RegisterBenchmark("tput/bare_ring_batched", BM_Tput_BareRing), false);
  using fwipc::bench::Path;
  tput(benchmark::RegisterBenchmark("tput/fwipc_queue", BM_Tput_Fwipc, IPC_TYPE_QUEUE, Path::kPlain, false), true);
  tput(benchmark::RegisterBenchmark("tput/fwipc_queue_sleeping_reader", BM_Tput_Fwipc, IPC_TYPE_QUEUE, Path::kPlain,
                                    true),
       true);
  tput(
      benchmark::RegisterBenchmark("tput/fwipc_queue_zero_copy", BM_Tput_Fwipc, IPC_TYPE_QUEUE, Path::kZeroCopy, false),
      true);
  tput(benchmark::RegisterBenchmark("tput/fwipc_queue_batch", BM_Tput_Fwipc, IPC_TYPE_QUEUE, Path::kBatch, false),
       true);
  tput(benchmark::RegisterBenchmark("tput/fwipc_queue_batch_sleeping_reader", BM_Tput_Fwipc, IPC_TYPE_QUEUE,
                                    Path::kBatch, true),
       true);
  const auto ring2 = OnRing2<BM_Tput_Fwipc, uint32_t, Path, bool>;
  tput(benchmark::RegisterBenchmark("tput/fwipc_ring2", ring2, IPC_TYPE_QUEUE, Path::kPlain, false), true);
  tput(benchmark::RegisterBenchmark("tput/fwipc_ring2_zero_copy", ring2, IPC_TYPE_QUEUE, Path::kZeroCopy, false), true);
  tput(benchmark::RegisterBenchmark("tput/fwipc_ring2_batch", ring2, IPC_TYPE_QUEUE, Path::kBatch, false), true);
  tput(benchmark::RegisterBenchmark("tput/fwipc_socket", BM_Tput_Fwipc, IPC_TYPE_SOCKET, Path::kPlain, false), true);
  tput(benchmark::RegisterBenchmark("tput/fwipc_pipe", BM_Tput_Fwipc, IPC_TYPE_PIPE, Path::kPlain, false), true);
  tput(benchmark::RegisterBenchmark("tput/moodycamel_inprocess", BM_Tput_Moodycamel), true);
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  if (!std::getenv("FWIPC_RUNTIME_DIR")) {
    char tmpl[] = "/tmp/fwipc-bench-XXXXXX";
    if (::mkdtemp(tmpl)) {
      ::chmod(tmpl, 0755);  // the other-uid row's peer must reach the registry
      ::setenv("FWIPC_RUNTIME_DIR", (dir = tmpl).c_str(), 1);
    }
  }
  ::setenv("FWIPC_REGISTRY_IDLE_MS", "1000", 0);
  {
    char tmpl[] = "/tmp/fwipc-bench2-XXXXXX";
    if (::mkdtemp(tmpl)) {
      ::chmod(tmpl, 0755);
      ring2_dir = tmpl;
    }
  }
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (!dir.empty()) (void)!std::system(("rm -rf " + dir).c_str());
  if (!ring2_dir.empty()) (void)!std::system(("rm -rf " + ring2_dir).c_str());
  return 0;
}
