// libFuzzer target for csrss's request decoders (the bytes another process sends the
// daemon): the first byte picks a method, the rest is the body. Each decoded request is
// encoded again and must decode to the same thing; json_str() must stay valid JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "services/csrss/proto.h"

using namespace csrss;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

template <class T>
void roundtrip(const uint8_t* p, size_t n) {
  T r;
  if (decode(p, n, &r) != 0) return;
  const std::string e = encode(r);
  T again;
  check(decode(e.data(), e.size(), &again) == 0);
  check(encode(again) == e);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t* p = data + 1;
  const size_t n = size - 1;
  switch (data[0] % 9) {
    case 0: roundtrip<CreateReq>(p, n); break;
    case 1: roundtrip<ConReq>(p, n); break;
    case 2: {
      WriteReq w;
      if (decode(p, n, &w) == 0)
        check(w.len + 4 == n && (w.len == 0 || w.data == reinterpret_cast<const char*>(p) + 4));
      break;
    }
    case 3: roundtrip<ResizeReq>(p, n); break;
    case 4: roundtrip<AttachReq>(p, n); break;
    case 5: roundtrip<WinCreateReq>(p, n); break;
    case 6: roundtrip<WinMoveReq>(p, n); break;
    case 7: roundtrip<WinTitleReq>(p, n); break;
    case 8: {
      roundtrip<EventsReq>(p, n);
      const std::string j = json_str(std::string(reinterpret_cast<const char*>(p), n));
      check(j.size() >= 2 && j.front() == '"' && j.back() == '"');
      for (unsigned char c : j) check(c >= 0x20 && c != 0x7f);
      break;
    }
  }
  return 0;
}
