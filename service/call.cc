// fwsvc_call()'s protocol (wire.h): the request in full fragments, each acknowledged, the
// reply's first fragment with the answer to the last, the rest fetched. One Deadline
// bounds the whole call, however many exchanges it takes.
#include "service/call.h"

#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "base/time.h"
#include "service/wire.h"

namespace fwsvc {
namespace {

struct Exchange {
  ExchangeFn fn;
  void* ctx;
  fwipc::Deadline deadline;
  uint32_t transfer;

  // Sends one fragment and decodes the answer, which must belong to this transfer.
  int run(IPC_MESSAGE* msg, size_t len, FragmentHeader* h, std::span<const uint8_t>* data) const {
    if (deadline.expired()) return -ETIMEDOUT;
    msg->type = kMessageType;
    msg->size = static_cast<uint32_t>(len);
    msg->priority = 0;
    msg->receiver = 0;
    msg->sender = 0;
    IPC_MESSAGE reply;
    const int rc = fn(ctx, msg, &reply, deadline.poll_ms());
    if (rc < 0) return rc;
    if (reply.size > IPC_MAX_PAYLOAD) return -EPROTO;
    // Kept in msg: the caller reads the data span after this returns.
    std::memcpy(msg->payload, reply.payload, reply.size);
    if (!decode(reinterpret_cast<const uint8_t*>(msg->payload), reply.size, h, data)) return -EPROTO;
    if (h->transfer != transfer && !(h->op == kError && h->transfer == 0)) return -EPROTO;
    if (h->op == kError) return static_cast<int32_t>(h->word) < 0 ? static_cast<int32_t>(h->word) : -EPROTO;
    return 0;
  }
};

uint32_t random_seed() {
  uint32_t seed = 0;
  if (::getrandom(&seed, sizeof seed, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof seed)) {
    seed = static_cast<uint32_t>(fwipc::monotonic_ns());
  }
  return seed;
}

}  // namespace

uint32_t next_transfer_id() {
  // Random start: a process that reuses a PID does not meet the ids of its predecessor in
  // a table that still holds them.
  static std::atomic<uint32_t> next{random_seed()};
  uint32_t id;
  do {
    id = next.fetch_add(1, std::memory_order_relaxed);  // only uniqueness matters
  } while (id == 0);
  return id;
}

int call_with(ExchangeFn exchange, void* ctx, uint32_t method, const void* req, size_t req_len, void* resp,
              size_t resp_cap, size_t* resp_len, int timeout_ms) {
  if (exchange == nullptr || (req == nullptr && req_len != 0) || (resp == nullptr && resp_cap != 0)) return -EINVAL;
  if (resp_len != nullptr) *resp_len = 0;
  if (req_len > UINT32_MAX) return -EMSGSIZE;
  const Exchange x{exchange, ctx, fwipc::Deadline::after_ms(timeout_ms), next_transfer_id()};
  const auto total = static_cast<uint32_t>(req_len);
  const auto* in = static_cast<const uint8_t*>(req);
  IPC_MESSAGE msg;
  FragmentHeader h{};
  std::span<const uint8_t> data;

  // The request: each fragment but the last is answered kAck.
  uint32_t sent = 0;
  for (;;) {
    const size_t len = std::min<size_t>(kFragmentDataBytes, total - sent);
    const size_t n = encode(reinterpret_cast<uint8_t*>(msg.payload), kRequest, method, x.transfer, sent, total,
                            std::span<const uint8_t>(in + sent, len));
    const int rc = x.run(&msg, n, &h, &data);
    if (rc < 0) return rc;
    sent += static_cast<uint32_t>(len);
    if (sent == total) break;
    if (h.op != kAck) return -EPROTO;
  }

  // The reply: its first fragment answered the last request fragment.
  if (h.op != kReply || h.offset != 0) return -EPROTO;
  const uint32_t reply_total = h.total;
  const auto status = static_cast<int32_t>(h.word);
  if (resp_len != nullptr) *resp_len = reply_total;
  if (reply_total > resp_cap) {
    if (data.size() < reply_total) {  // the service keeps the rest: let it go now
      const size_t n = encode(reinterpret_cast<uint8_t*>(msg.payload), kCancel, 0, x.transfer, 0, 0);
      (void)x.run(&msg, n, &h, &data);
    }
    return -EMSGSIZE;
  }
  auto* outp = static_cast<uint8_t*>(resp);
  uint32_t got = 0;
  for (;;) {
    if (!data.empty()) std::memcpy(outp + got, data.data(), data.size());
    got += static_cast<uint32_t>(data.size());
    if (got == reply_total) return status;
    const size_t n = encode(reinterpret_cast<uint8_t*>(msg.payload), kFetch, 0, x.transfer, got, reply_total);
    const int rc = x.run(&msg, n, &h, &data);
    if (rc < 0) return rc;
    if (h.op != kReply || h.offset != got || h.total != reply_total || data.empty()) return -EPROTO;
  }
}

}  // namespace fwsvc
