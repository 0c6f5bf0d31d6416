// fwsvc_call(): call.cc's protocol over the runtime's ipc_call().
#include "fwsvc.h"
#include "service/call.h"

namespace {

int exchange_over_ipc(void* ctx, const IPC_MESSAGE* request, IPC_MESSAGE* reply, int timeout_ms) {
  return ipc_call(*static_cast<const uint32_t*>(ctx), request, reply, timeout_ms);
}

}  // namespace

extern "C" int fwsvc_call(uint32_t channel_id, uint32_t method, const void* req, size_t req_len, void* resp,
                          size_t resp_cap, size_t* resp_len, int timeout_ms) {
  return fwsvc::call_with(exchange_over_ipc, &channel_id, method, req, req_len, resp, resp_cap, resp_len, timeout_ms);
}
