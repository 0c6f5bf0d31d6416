// libFuzzer target: arbitrary request datagrams from one client of a real registry server
// (memfds, FIFOs and sockets really created in a private directory), then a disconnect.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "runtime/registry/daemon/server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/fwipc-fz-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    if (d == nullptr) std::abort();
    return std::string(d);
  }();
  fwipc::registry::fuzz_session(dir, data, size);
  return 0;
}
