// The client side of fragmentation over any one-request-one-reply exchange: fwsvc_call()
// runs it over ipc_call(); tests run it straight into a Dispatcher.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ipc.h"

namespace fwsvc {

// One exchange: sends request, fills *reply, returns >= 0 or a negative errno, within
// timeout_ms (< 0: forever).
using ExchangeFn = int (*)(void* ctx, const IPC_MESSAGE* request, IPC_MESSAGE* reply, int timeout_ms);

// fwsvc_call() over exchange (see fwsvc.h for the contract).
int call_with(ExchangeFn exchange, void* ctx, uint32_t method, const void* req, size_t req_len, void* resp,
              size_t resp_cap, size_t* resp_len, int timeout_ms);

// A transfer id for a new call: never 0, distinct for 2^32 calls of one process.
uint32_t next_transfer_id();

}  // namespace fwsvc
