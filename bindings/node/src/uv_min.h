// The few libuv calls the addon needs, declared against libuv 1.x's stable ABI.
//
// Why not <uv.h>: node-api-headers (the only headers this package builds against, so one
// build loads in every Node version) does not ship it, and Node's full header tarball
// cannot be downloaded at install time. The Node executable exports these symbols; the
// handle is allocated with uv_handle_size() so its real size comes from the running libuv,
// and only its public first member `data` is touched.
#pragma once

#include <cstddef>

extern "C" {
struct uv_loop_s;
struct uv_handle_s;
typedef struct uv_handle_s uv_handle_t;
typedef struct uv_poll_s uv_poll_t;
typedef void (*uv_poll_cb)(uv_poll_t* handle, int status, int events);
typedef void (*uv_close_cb)(uv_handle_t* handle);

size_t uv_handle_size(int type);
int uv_poll_init(struct uv_loop_s* loop, uv_poll_t* handle, int fd);
int uv_poll_start(uv_poll_t* handle, int events, uv_poll_cb cb);
int uv_poll_stop(uv_poll_t* handle);
void uv_close(uv_handle_t* handle, uv_close_cb close_cb);
}

namespace uvmin {
constexpr int kPollHandle = 8;  // UV_POLL in uv_handle_type since libuv 1.0
constexpr int kReadable = 1;    // UV_READABLE
// uv_handle_t's first member is `void* data` ("libuv does not use this field").
inline void set_data(void* handle, void* data) { *static_cast<void**>(handle) = data; }
inline void* data(void* handle) { return *static_cast<void**>(handle); }
}  // namespace uvmin
