// libFuzzer target: the SOCKET packet check, the NAME.call packet check (requests and
// replies) and the PIPE stream decoder on hostile bytes.
// Invariants: never crash or over-read (ASan), every frame handed out is well formed,
// the decoder always makes progress, and well-formed frames fed in arbitrary chunks come
// out intact.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "transports/frame.h"

using fwipc::frame::Frame;

static void require(bool ok) {
  if (!ok) std::abort();
}

static void check_frame(const Frame& f) {
  require(f.magic == fwipc::frame::kMagic);
  require(f.size <= fwipc::frame::kMaxPayload);
  // kEvicted (a hub's notice to an evicted reader) carries no payload.
  require((f.kind >= fwipc::frame::kData && f.kind <= fwipc::frame::kWriterJoin) ||
          (f.kind == fwipc::frame::kEvicted && f.size == 0));
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Frame f;
  if (fwipc::frame::check_packet(data, size, &f) == 0) check_frame(f);
  // Calls and replies: only their own kind, a bounded size, and checked in place too (the
  // call server and client reuse the receive buffer).
  for (const uint16_t kind : {uint16_t(fwipc::frame::kCall), uint16_t(fwipc::frame::kReply)}) {
    if (fwipc::frame::check_call_packet(data, size, kind, &f) == 0) {
      require(f.magic == fwipc::frame::kMagic && f.kind == kind && f.size <= fwipc::frame::kMaxPayload);
      require(f.wire_bytes() == size && std::memcmp(f.payload, data + fwipc::frame::kHeaderBytes, f.size) == 0);
    }
    Frame in_place;
    const size_t n = size < sizeof in_place ? size : sizeof in_place;
    std::memcpy(&in_place, data, n);
    if (fwipc::frame::check_call_packet(&in_place, n, kind, &in_place) == 0) require(in_place.kind == kind);
  }
  require(fwipc::frame::check_call_packet(data, size, fwipc::frame::kData, &f) < 0);  // never a data frame

  // Hostile stream, fed in chunks whose sizes come from the input itself.
  fwipc::frame::StreamDecoder dec;
  size_t off = 0;
  while (off < size) {
    const size_t chunk = 1 + data[off] % 97;
    const size_t n = chunk < size - off ? chunk : size - off;
    dec.feed(data + off, n);
    off += n;
    for (int guard = 0; guard < 100000; ++guard) {
      const size_t before = dec.buffered();
      const int rc = dec.next(&f);
      if (rc == 0) break;
      if (rc == 1) check_frame(f);
      require(dec.buffered() < before);  // progress: no endless loop on garbage
    }
  }

  // Well-formed frames built from the input survive any chunking.
  fwipc::frame::StreamDecoder good;
  Frame out[8];
  int built = 0;
  for (size_t p = 0; p + 2 <= size && built < 8; p += 2) {
    Frame& g = out[built++];
    std::memset(&g, 0, sizeof g);
    g.magic = fwipc::frame::kMagic;
    g.kind = fwipc::frame::kData;
    g.size = (data[p] * 7u + data[p + 1]) % (fwipc::frame::kMaxPayload + 1);
    g.type = data[p];
    g.time_ns = (uint64_t(data[p]) << 56) | (uint64_t(data[p + 1]) << 8) | p;  // any value is legal
    for (uint32_t i = 0; i < g.size; ++i) g.payload[i] = static_cast<char>(data[p + 1] + i);
  }
  int got = 0;
  for (int i = 0; i < built; ++i) {
    const char* b = reinterpret_cast<const char*>(&out[i]);
    const size_t len = out[i].wire_bytes();
    const size_t step = 1 + (size ? data[i % size] % 64 : 0);
    for (size_t q = 0; q < len; q += step) good.feed(b + q, step < len - q ? step : len - q);
    while (good.next(&f) == 1) {
      require(got < built && f.size == out[got].size && f.type == out[got].type && f.time_ns == out[got].time_ns &&
              std::memcmp(f.payload, out[got].payload, f.size) == 0);
      ++got;
    }
  }
  require(got == built);
  return 0;
}
