// libFuzzer target for the service layer's fragment reassembly, both sides, no sockets:
//   mode 0: the service's Dispatcher (transfer table plus handlers) fed call payloads
//           from four callers, raw bytes or headers built from the input, with time
//           passing and expiry; every answer must decode and the caps must hold.
//   mode 1: the client's call_with() fed arbitrary replies; it must never write past
//           its reply buffer and must return a status or a negative errno.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "service/call.h"
#include "service/dispatch.h"
#include "service/wire.h"

namespace {

struct Input {
  const uint8_t* p;
  size_t n;
  uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  uint32_t u32() { return byte() | (uint32_t(byte()) << 8) | (uint32_t(byte()) << 16) | (uint32_t(byte()) << 24); }
  size_t take(uint8_t* out, size_t want) {
    const size_t k = want < n ? want : n;
    if (k != 0) std::memcpy(out, p, k);
    p += k;
    n -= k;
    return k;
  }
};

fwsvc::Limits limits() {
  fwsvc::Limits l;
  l.max_body_bytes = 8192;
  l.max_transfers = 4;
  l.max_per_caller = 2;
  l.timeout_ms = 50;
  return l;
}

// What the handler does with the next complete request: set from the input.
struct HandlerPlan {
  uint32_t reply_len = 0;
  uint8_t how = 0;  // 0 reply, 1 no reply, 2 reply twice, 3 oversize then reply
};
HandlerPlan g_plan;
std::vector<uint8_t> g_reply_body(16384, 0xab);
volatile uint8_t g_sink;

void handler(void*, const fwsvc_request* req) {
  if (req->body_len > limits().max_body_bytes) std::abort();
  if (req->body_len != 0 && req->body == nullptr) std::abort();
  // Touch the whole body: ASan checks it is really there.
  uint8_t sum = 0;
  for (size_t i = 0; i < req->body_len; ++i) sum = uint8_t(sum + static_cast<const uint8_t*>(req->body)[i]);
  g_sink = sum;
  switch (g_plan.how) {
    case 1: break;
    case 2:
      fwsvc_reply(req, 1, g_reply_body.data(), g_plan.reply_len);
      if (fwsvc_reply(req, 2, nullptr, 0) != -EALREADY) std::abort();
      break;
    case 3:
      if (fwsvc_reply(req, 0, g_reply_body.data(), 8193) != -EMSGSIZE) std::abort();
      fwsvc_reply(req, 3, g_reply_body.data(), g_plan.reply_len);
      break;
    default: fwsvc_reply(req, 0, g_reply_body.data(), g_plan.reply_len);
  }
}

void fuzz_service(Input in) {
  fwsvc::Dispatcher d(limits());
  for (uint32_t m = 0; m < 3; ++m) d.add_method(m, handler, nullptr);
  int64_t now = 0;
  while (in.n != 0) {
    const uint8_t ctl = in.byte();
    const uint32_t pid = 100 + (ctl & 3);
    now += in.byte();
    if (ctl & 0x80) d.expire(now);
    g_plan.reply_len = in.u32() % (limits().max_body_bytes + 1);
    g_plan.how = in.byte() & 3;
    IPC_MESSAGE req{};
    auto* payload = reinterpret_cast<uint8_t*>(req.payload);
    if (ctl & 0x40) {  // raw bytes
      req.size = static_cast<uint32_t>(in.take(payload, in.byte() * 2 + 1));
    } else {  // a well-formed header with fields from the input, so fragments chain
      const auto op = static_cast<fwsvc::Op>(1 + in.byte() % 3);
      const uint32_t method = in.byte() % 4;
      const uint32_t transfer = 1 + in.byte() % 4;
      const uint32_t offset = (in.byte() % 24) * fwsvc::kFragmentDataBytes;
      const uint32_t total = in.u32() % 12000;
      uint8_t data[fwsvc::kFragmentDataBytes];
      const size_t len = in.take(data, (in.byte() * 2u) % (fwsvc::kFragmentDataBytes + 1));
      const size_t want = total > offset ? total - offset : 0;
      const size_t n = op == fwsvc::kRequest ? (len < want ? len : want) : 0;
      req.size = static_cast<uint32_t>(
          fwsvc::encode(payload, op, method, transfer, offset, total, std::span<const uint8_t>(data, n)));
    }
    IPC_MESSAGE reply{};
    d.handle(pid, req, &reply, now);
    fwsvc::FragmentHeader h{};
    std::span<const uint8_t> data;
    if (reply.size == 0 || !fwsvc::decode(reinterpret_cast<const uint8_t*>(reply.payload), reply.size, &h, &data)) {
      std::abort();  // every call gets one well-formed answer
    }
    if (h.op != fwsvc::kAck && h.op != fwsvc::kReply && h.op != fwsvc::kError) std::abort();
    if (d.held() > limits().max_transfers) std::abort();
  }
}

// Replies for call_with(), from the input.
int fuzzed_exchange(void* ctx, const IPC_MESSAGE* request, IPC_MESSAGE* reply, int) {
  auto* in = static_cast<Input*>(ctx);
  if (in->n == 0) return -EPIPE;
  const uint8_t ctl = in->byte();
  if (ctl == 0xff) return -ETIMEDOUT;
  auto* payload = reinterpret_cast<uint8_t*>(reply->payload);
  if (ctl & 1) {
    reply->size = static_cast<uint32_t>(in->take(payload, in->byte() * 2 + 1));
  } else {
    const auto op = static_cast<fwsvc::Op>(16 + in->byte() % 3);
    const uint32_t word = in->u32();
    const uint32_t offset = (in->byte() % 24) * fwsvc::kFragmentDataBytes;
    const uint32_t total = in->u32() % 12000;
    uint8_t data[fwsvc::kFragmentDataBytes];
    const size_t len = in->take(data, (in->byte() * 2u) % (fwsvc::kFragmentDataBytes + 1));
    const size_t want = total > offset ? total - offset : 0;
    // Mostly the call's own transfer id, so replies chain; sometimes another, which the
    // client must refuse.
    fwsvc::FragmentHeader rh{};
    std::memcpy(&rh, request->payload, sizeof rh);
    const uint32_t transfer = (ctl & 2) != 0 ? in->u32() & 3 : rh.transfer;
    reply->size = static_cast<uint32_t>(fwsvc::encode(payload, op, word, transfer, offset, total,
                                                      std::span<const uint8_t>(data, len < want ? len : want)));
  }
  return static_cast<int>(reply->size);
}

void fuzz_client(Input in) {
  const size_t req_len = in.u32() % 3000;
  const size_t cap = in.u32() % 10000;
  std::vector<uint8_t> req(req_len, 0x5a);
  std::vector<uint8_t> resp(cap);
  size_t len = 0;
  const int rc = fwsvc::call_with(fuzzed_exchange, &in, 1, req.data(), req.size(), resp.data(), cap, &len, -1);
  if (rc >= 0 && len > cap) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  if (in.byte() & 1) {
    fuzz_client(in);
  } else {
    fuzz_service(in);
  }
  return 0;
}
