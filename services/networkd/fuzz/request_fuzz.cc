// libFuzzer target: networkd's decoders of other processes' bytes. The first byte picks
// the method (any value, so unknown methods are covered); the rest is the request body,
// also fed to the udhcpc hook-line decoder and, as JSON, to the state file's parser.
#include <cstddef>
#include <cstdint>
#include <string>

#include "services/networkd/config.h"
#include "services/networkd/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint32_t method = data[0] % 12;
  networkd::FieldError err;
  const auto req = networkd::decode_request(method, data + 1, size - 1, &err);
  if (!req && err.code <= 0) __builtin_trap();  // a refusal always carries an errno
  const std::string enc = networkd::encode_error(err);
  (void)networkd::error_text(enc.data(), enc.size());
  (void)networkd::error_text(data + 1, size - 1);
  const std::string line(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string why;
  (void)networkd::decode_hook_event(line, &why);
  const auto j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_discarded()) {
    networkd::Config c;
    networkd::Leases l;
    if (networkd::from_json(j, &c, &why)) {
      networkd::Config back;
      if (!networkd::from_json(networkd::to_json(c), &back, &why) || !(back == c)) __builtin_trap();
    }
    (void)networkd::from_json(j, &l, &why);
  }
  return 0;
}
