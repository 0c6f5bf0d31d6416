// The client side over the runtime: fwsvc_open() (a service channel served by the
// expected uid) and fwsvc_call() (call.cc's protocol over ipc_call()).
#include <cerrno>

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

extern "C" int fwsvc_open(const char* name, uint32_t owner_uid, uint32_t mode) {
  const int ch = ipc_open_channel(name, IPC_MODE_WRITE | mode);
  if (ch < 0) return ch;
  IPC_CHANNEL_INFO info;
  const int rc = ipc_channel_info(static_cast<uint32_t>(ch), &info);
  if (rc < 0 || info.owner_uid != owner_uid) {
    ipc_close_channel(static_cast<uint32_t>(ch));
    return rc < 0 ? rc : -EPERM;
  }
  return ch;
}
