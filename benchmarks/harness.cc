// Measuring: interleaved chunks of rows, and percentiles. The rows themselves are in
// harness_rtt.cc (round trips) and harness_tput.cc (one-way throughput).
#include "benchmarks/harness.h"
#include "benchmarks/timing.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <ctime>
#include <functional>
#include <numeric>
#include <thread>

#include "base/cpu.h"
#include "base/futex.h"
#include "base/time.h"
#include "concurrentqueue.h"
#include "fwipc/channel.hpp"
#include "ipc.h"
#include "readerwriterqueue.h"

namespace fwipc::bench {

void interleave(uint64_t total, uint64_t chunk, const std::vector<std::function<std::vector<int64_t>(uint64_t)>>& rows,
                std::vector<std::vector<int64_t>>* out) {
  out->assign(rows.size(), {});
  for (uint64_t done = 0; done < total; done += chunk) {
    for (size_t r = 0; r < rows.size(); ++r) {
      auto s = rows[r](std::min(chunk, total - done));
      (*out)[r].insert((*out)[r].end(), s.begin(), s.end());
    }
  }
}

Percentiles percentiles(std::vector<int64_t> s) {
  Percentiles p;
  if (s.empty()) return p;
  std::sort(s.begin(), s.end());
  auto at = [&](double q) { return double(s[std::min(s.size() - 1, size_t(q * double(s.size())))]); };
  p.p50_ns = at(0.50);
  p.p99_ns = at(0.99);
  p.p999_ns = at(0.999);
  p.max_ns = double(s.back());
  p.mean_ns = double(std::accumulate(s.begin(), s.end(), int64_t{0})) / double(s.size());
  return p;
}

}  // namespace fwipc::bench
