// Method dispatch (see dispatch.h) and fwsvc_reply(), which writes the handler's answer
// straight into the reply message of the call being handled.
#include "service/dispatch.h"

#include <cerrno>
#include <cstring>

namespace fwsvc {
namespace {

// What fwsvc_request.internal points to while a handler runs.
struct ReplyState {
  TransferTable* table;
  const Complete* done;
  IPC_MESSAGE* out;
  int64_t now_ms;
  bool replied;
};

void prepare(IPC_MESSAGE* reply) {
  reply->type = kMessageType;
  reply->sender = 0;
  reply->receiver = 0;
  reply->priority = 0;
}

}  // namespace

Limits limits_from(const fwsvc_options& o) {
  Limits l;
  if (o.max_body_bytes != 0) l.max_body_bytes = o.max_body_bytes;
  if (o.max_transfers != 0) l.max_transfers = o.max_transfers;
  if (o.max_transfers_per_caller != 0) l.max_per_caller = o.max_transfers_per_caller;
  if (o.transfer_timeout_ms != 0) l.timeout_ms = o.transfer_timeout_ms;
  return l;
}

Dispatcher::Dispatcher(const Limits& limits)
    : table_(limits, [this](uint32_t method) { return methods_.count(method) != 0; }) {}

int Dispatcher::add_method(uint32_t method, fwsvc_method_fn fn, void* ctx) {
  if (fn == nullptr) return -EINVAL;
  return methods_.emplace(method, Method{fn, ctx}).second ? 0 : -EEXIST;
}

void Dispatcher::handle(uint32_t sender, const IPC_MESSAGE& request, IPC_MESSAGE* reply, int64_t now_ms) {
  prepare(reply);
  auto* out = reinterpret_cast<uint8_t*>(reply->payload);
  const size_t n = request.size <= IPC_MAX_PAYLOAD ? request.size : IPC_MAX_PAYLOAD + 1;  // oversize: malformed
  Complete done;
  const size_t answer = table_.accept(sender, reinterpret_cast<const uint8_t*>(request.payload), n, now_ms, &done, out);
  if (answer != 0) {
    reply->size = static_cast<uint32_t>(answer);
    return;
  }
  const Method& m = methods_.at(done.method);  // the table asked known() before completing
  ReplyState st{&table_, &done, reply, now_ms, false};
  fwsvc_request req{done.method, sender, done.body.data(), done.body.size(), &st};
  ++calls_;
  m.fn(m.ctx, &req);
  // Every call gets exactly one answer, also from a handler that forgot to give one.
  if (!st.replied) reply->size = static_cast<uint32_t>(table_.reply(done, -EIO, {}, now_ms, out));
}

}  // namespace fwsvc

extern "C" void fwsvc_options_init(fwsvc_options* opts) {
  if (opts == nullptr) return;
  std::memset(opts, 0, sizeof *opts);
  const fwsvc::Limits l;
  opts->type = IPC_TYPE_QUEUE;
  opts->perm_mode = 0660;
  opts->max_body_bytes = l.max_body_bytes;
  opts->max_transfers = l.max_transfers;
  opts->max_transfers_per_caller = l.max_per_caller;
  opts->transfer_timeout_ms = l.timeout_ms;
}

extern "C" int fwsvc_reply(const fwsvc_request* req, int32_t status, const void* body, size_t len) {
  if (req == nullptr || req->internal == nullptr || (body == nullptr && len != 0)) return -EINVAL;
  auto* st = static_cast<fwsvc::ReplyState*>(req->internal);
  if (st->replied) return -EALREADY;
  if (len > st->table->limits().max_body_bytes) return -EMSGSIZE;
  const std::span<const uint8_t> b(static_cast<const uint8_t*>(body), len);
  st->out->size = static_cast<uint32_t>(
      st->table->reply(*st->done, status, b, st->now_ms, reinterpret_cast<uint8_t*>(st->out->payload)));
  st->replied = true;
  return 0;
}
