// Times round trips one by one; stops early (fewer samples) when a trip fails.
#pragma once

#include <cstdint>
#include <vector>

#include "base/time.h"

namespace fwipc::bench {

template <typename Trip>
std::vector<int64_t> time_trips(uint64_t n, Trip&& trip) {
  std::vector<int64_t> out;
  out.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    const int64_t t0 = monotonic_ns();
    if (!trip()) break;
    out.push_back(monotonic_ns() - t0);
  }
  return out;
}

}  // namespace fwipc::bench
