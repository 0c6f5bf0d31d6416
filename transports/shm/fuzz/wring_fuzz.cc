// libFuzzer target for the ring v2 reader (wring.h): whatever a writer leaves in its ring
// (header and records), attach refuses it or every record view lies inside the mapping.
// Build: clang++ -std=c++20 -fsanitize=fuzzer,address,undefined -I. -Iruntime/include
//        transports/shm/fuzz/wring_fuzz.cc transports/shm/wring.cc base/membarrier.cc
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "transports/shm/wring.h"

using namespace fwipc::shm::v2;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr uint64_t kCap = kMinCapacity;
  const uint64_t bytes = ring_bytes(kCap);
  // Exactly the ring, on the heap: ASan flags any read past it.
  std::vector<char> mem(bytes, 0);
  if (format_ring(mem.data(), bytes, kCap, 1, 0, 0) != 0) abort();
  if (size == 0) return 0;
  // First byte: 0 scribbles the records only (tail 0, a valid header), 1 the records
  // and header line 1, else the whole region (header line 0 included).
  const uint8_t mode = data[0] % 3;
  ++data;
  --size;
  const uint64_t from = mode == 0 ? sizeof(RingHeader) : mode == 1 ? 64 : 0;
  for (uint64_t i = 0; from + i < bytes && size > 0; ++i) mem[from + i] = char(data[i % size]);
  if (mode == 0) reinterpret_cast<RingHeader*>(mem.data())->tail.store(0);
  std::atomic<uint64_t> cursor{kDetached};
  std::atomic<uint32_t> bell{0};
  RingReader r;
  if (r.attach(mem.data(), bytes, 1, &cursor, &bell) != 0) return 0;
  const char* lo = mem.data() + sizeof(RingHeader);
  const char* hi = lo + kCap;
  for (int i = 0; i < 1000; ++i) {
    const int rc = r.consume(16, [&](const RecordView& v) {
      if (v.payload < lo || v.payload + v.hdr.size > hi || v.hdr.size > kMaxPayload || v.next <= v.pos) abort();
      volatile char sink = 0;
      for (uint32_t k = 0; k < v.hdr.size; ++k) sink = char(sink ^ v.payload[k]);  // touch every byte
    });
    if (rc < 0) break;
  }
  return 0;
}
