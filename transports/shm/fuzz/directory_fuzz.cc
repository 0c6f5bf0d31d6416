// libFuzzer target for a member's view of the ring v2 directory (directory.h): whatever
// the mapping holds, attach refuses it or every entry copy stays inside the mapping, and
// a reader page (wring.h) a writer maps is only trusted as far as page_ok() checks.
// Build: clang++ -std=c++20 -fsanitize=fuzzer,address,undefined -I. -Iruntime/include
//        transports/shm/fuzz/directory_fuzz.cc transports/shm/directory.cc
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "transports/shm/directory.h"

using namespace fwipc::shm::v2;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // First byte: the table sizes of a well-formed header the rest then scribbles over
  // (from byte 64 on when odd: line 0 kept), so attach gets past its first checks.
  const uint32_t rings = 1 + data[0] % 16, readers = 1 + (data[0] >> 4);
  const bool keep_line0 = data[1] & 1;
  data += 2;
  size -= 2;
  const uint64_t bytes = directory_bytes(rings, readers) + (size % 3) * 32;  // sometimes more than the tables
  std::vector<char> mem(bytes, 0);  // exactly the mapping: ASan flags any read past it
  DirParams p;
  p.max_rings = rings;
  p.max_readers = readers;
  p.ring_capacity = 4096;  // wring.h kMinCapacity
  if (DirWriter::format(mem.data(), bytes, p) != 0) abort();
  const uint64_t from = keep_line0 ? 64 : 0;
  for (uint64_t i = 0; from + i < bytes && size > 0; ++i) mem[from + i] = char(data[i % size]);
  DirReader r;
  if (r.attach(mem.data(), bytes) != 0) return 0;
  if (directory_bytes(r.max_rings(), r.max_readers()) > bytes) abort();
  (void)r.gen();
  (void)r.closed();
  for (uint32_t i = 0; i < r.max_rings() + 2; ++i) {
    EntryView e;
    if (r.ring(i, &e) && i >= r.max_rings()) abort();
  }
  for (uint32_t i = 0; i < r.max_readers() + 2; ++i) {
    EntryView e;
    if (r.reader(i, &e) && i >= r.max_readers()) abort();
  }
  return 0;
}
