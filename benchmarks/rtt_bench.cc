// Round trip between two processes: the QUEUE channel beside the raw cache-line floor,
// in the same run. Each iteration is one round trip; percentiles come from per-trip
// timestamps (the same clock overhead on both rows).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "benchmarks/harness.h"

namespace {

void report(benchmark::State& st, const std::vector<int64_t>& s) {
  const auto p = fwipc::bench::percentiles(s);
  st.counters["p50_ns"] = p.p50_ns;
  st.counters["p99_ns"] = p.p99_ns;
  st.counters["p999_ns"] = p.p999_ns;
  st.counters["max_ns"] = p.max_ns;
}

void BM_RawCacheLinePingPong(benchmark::State& st) {
  fwipc::bench::RawPingPong pp;
  for (int i = 0; i < 10000; ++i) pp.round_trip();  // warm-up
  std::vector<int64_t> samples;
  for (auto _ : st) {
    auto s = pp.timed(1);
    samples.push_back(s[0]);
  }
  report(st, samples);
}

void BM_QueueRoundTrip(benchmark::State& st) {
  static int run = 0;
  fwipc::bench::QueuePingPong pp("bench" + std::to_string(::getpid()) + "." + std::to_string(run++),
                                 uint32_t(st.range(0)));
  if (!pp.ok()) {
    st.SkipWithError("channel setup failed");
    return;
  }
  for (int i = 0; i < 10000; ++i) pp.round_trip();
  std::vector<int64_t> samples;
  for (auto _ : st) {
    auto s = pp.timed(1);
    if (s.empty()) {
      st.SkipWithError("round trip failed");
      return;
    }
    samples.push_back(s[0]);
  }
  report(st, samples);
}

}  // namespace

BENCHMARK(BM_RawCacheLinePingPong)->Iterations(200000)->UseRealTime();
BENCHMARK(BM_QueueRoundTrip)->Arg(64)->Arg(512)->Iterations(200000)->UseRealTime();

int main(int argc, char** argv) {
  // A private runtime directory unless the caller chose one.
  std::string dir;
  if (!std::getenv("FWIPC_RUNTIME_DIR")) {
    char tmpl[] = "/tmp/fwipc-bench-XXXXXX";
    if (::mkdtemp(tmpl)) ::setenv("FWIPC_RUNTIME_DIR", (dir = tmpl).c_str(), 1);
  }
  ::setenv("FWIPC_REGISTRY_IDLE_MS", "1000", 0);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (!dir.empty()) (void)!std::system(("rm -rf " + dir).c_str());
  return 0;
}
