// A service: a channel created by this process, its call descriptor and message
// descriptor watched on a loop, calls answered through the Dispatcher, and the expiry
// timer of held transfers, armed only while the table holds any (an idle daemon does not
// wake up).
#include <cerrno>
#include <cstring>
#include <ctime>
#include <new>
#include <string>

#include "fwsvc.h"
#include "service/dispatch.h"

namespace {

// Calls (or messages) taken per wakeup before the loop gets control back, so that a burst
// of calls cannot starve signals, timers or the other descriptor. The descriptors are
// level-triggered: what is left wakes the loop again.
constexpr int kBatch = 64;

int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Errors after which the same call would fail the same way forever: the service's channel
// is broken, and the loop ends with the error (a daemon exits, its manager restarts it).
// -ENOBUFS from a message receive is not one of them: the reader was evicted
// (IPC_OVERFLOW_EVICT) and is reopened (reader_evicted()).
bool fatal(int rc) { return rc != -EAGAIN && rc != -ETIMEDOUT && rc != -EINTR && rc != -EBADMSG; }

}  // namespace

struct fwsvc_service {
  fwsvc_loop* loop = nullptr;
  std::string name;
  int channel = -1;
  // The id one-way messages are read from: the channel's own until its reader is evicted,
  // then an id opened for reading (IPC_OVERFLOW_EVICT).
  int reader = -1;
  int request_fd = -1;
  int message_fd = -1;
  int expiry_timer = 0;
  fwsvc::Dispatcher dispatcher;
  fwsvc_message_fn message_fn = nullptr;
  void* message_ctx = nullptr;
  uint64_t reply_failed = 0;
  uint64_t messages = 0;
  uint64_t messages_dropped = 0;
  uint32_t reader_evictions = 0;

  explicit fwsvc_service(const fwsvc::Limits& l) : dispatcher(l) {}
};

namespace {

void on_expiry(void* ctx);

void arm_expiry(fwsvc_service* s) {
  if (s->dispatcher.held() == 0 || s->expiry_timer > 0) return;
  // Half the timeout: a transfer is dropped between 1 and 1.5 timeouts after its last use.
  const uint64_t period = s->dispatcher.limits().timeout_ms / 2 + 1;
  const int t = fwsvc_loop_add_timer(s->loop, period, 1, on_expiry, s);
  if (t > 0) s->expiry_timer = t;
}

void on_expiry(void* ctx) {
  auto* s = static_cast<fwsvc_service*>(ctx);
  s->dispatcher.expire(now_ms());
  if (s->dispatcher.held() == 0 && s->expiry_timer > 0) {
    fwsvc_loop_remove_timer(s->loop, s->expiry_timer);
    s->expiry_timer = 0;
  }
}

void on_calls(void* ctx, int, uint32_t) {
  auto* s = static_cast<fwsvc_service*>(ctx);
  for (int i = 0; i < kBatch; ++i) {
    IPC_MESSAGE req;
    uint64_t call = 0;
    const int rc = ipc_receive_request(static_cast<uint32_t>(s->channel), &req, &call, 0);
    if (rc == -EAGAIN) break;
    if (rc < 0) {
      if (fatal(rc)) fwsvc_loop_quit(s->loop, rc);
      break;
    }
    IPC_MESSAGE reply;
    s->dispatcher.handle(req.sender, req, &reply, now_ms());
    if (ipc_reply(static_cast<uint32_t>(s->channel), call, &reply) < 0) ++s->reply_failed;
  }
  arm_expiry(s);
}

void on_messages(void* ctx, int, uint32_t);

// The service's reader was evicted (it held writers back past evict_after_ms: a stuck
// handler, a stopped process) and has handed over all it still had. The evicted id stays
// readable and says -ENOBUFS forever: read from a fresh id instead. What was sent between
// the eviction and now is lost (the channel's evictions count says a reader lost some).
int reader_evicted(fwsvc_service* s) {
  ++s->reader_evictions;
  fwsvc_loop_remove_fd(s->loop, s->message_fd);
  s->message_fd = -1;
  if (s->reader != s->channel) ipc_close_channel(static_cast<uint32_t>(s->reader));
  s->reader = ipc_open_channel(s->name.c_str(), IPC_MODE_READ);
  if (s->reader < 0) return s->reader;
  const int fd = ipc_channel_fd(static_cast<uint32_t>(s->reader));
  if (fd < 0) return fd;
  const int rc = fwsvc_loop_add_fd(s->loop, fd, FWSVC_EVENT_IN, on_messages, s);
  if (rc < 0) return rc;
  s->message_fd = fd;
  return 0;
}

void on_messages(void* ctx, int, uint32_t) {
  auto* s = static_cast<fwsvc_service*>(ctx);
  for (int i = 0; i < kBatch; ++i) {
    IPC_MESSAGE msg;
    const int rc = ipc_receive_message(static_cast<uint32_t>(s->reader), &msg, 0);
    if (rc == -EAGAIN) break;
    if (rc == -ENOBUFS) {
      // A reader that cannot be reopened (the channel's mode no longer lets this uid
      // read, no descriptors left) ends the loop like any broken channel.
      if (const int err = reader_evicted(s); err < 0) fwsvc_loop_quit(s->loop, err);
      break;
    }
    if (rc < 0) {
      if (fatal(rc)) fwsvc_loop_quit(s->loop, rc);
      break;
    }
    if (s->message_fn != nullptr) {
      ++s->messages;
      s->message_fn(s->message_ctx, &msg);
    } else {
      ++s->messages_dropped;
    }
  }
}

}  // namespace

extern "C" {

int fwsvc_service_new(fwsvc_loop* loop, const char* name, const fwsvc_options* opts, fwsvc_service** out) {
  if (out == nullptr) return -EINVAL;
  *out = nullptr;
  if (loop == nullptr || name == nullptr) return -EINVAL;
  fwsvc_options o;
  fwsvc_options_init(&o);
  if (opts != nullptr) {
    o = *opts;  // limits left 0 take their defaults in limits_from()
    if (o.perm_mode == 0) o.perm_mode = 0660;
  }
  auto* s = new (std::nothrow) fwsvc_service(fwsvc::limits_from(o));
  if (s == nullptr) return -ENOMEM;
  s->loop = loop;
  s->name = name;
  IPC_CHANNEL_OPTIONS co{};
  co.type = o.type;
  co.buffer_size = o.buffer_size;
  co.perm_mode = o.perm_mode;
  co.creator_mode = o.creator_mode;
  co.overflow = o.overflow;
  co.evict_after_ms = o.evict_after_ms;
  const bool reads = o.creator_mode == 0 || (o.creator_mode & IPC_MODE_READ) != 0;
  s->channel = ipc_create_channel_opts(name, &co);
  s->reader = s->channel;
  int rc = s->channel < 0 ? s->channel : 0;
  if (rc == 0) rc = s->request_fd = ipc_request_fd(static_cast<uint32_t>(s->channel));
  if (rc >= 0 && reads) rc = s->message_fd = ipc_channel_fd(static_cast<uint32_t>(s->channel));
  if (rc >= 0) rc = fwsvc_loop_add_fd(loop, s->request_fd, FWSVC_EVENT_IN, on_calls, s);
  if (rc >= 0 && reads) rc = fwsvc_loop_add_fd(loop, s->message_fd, FWSVC_EVENT_IN, on_messages, s);
  if (rc < 0) {
    fwsvc_service_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

void fwsvc_service_free(fwsvc_service* svc) {
  if (svc == nullptr) return;
  if (svc->request_fd >= 0) fwsvc_loop_remove_fd(svc->loop, svc->request_fd);
  if (svc->message_fd >= 0) fwsvc_loop_remove_fd(svc->loop, svc->message_fd);
  if (svc->expiry_timer > 0) fwsvc_loop_remove_timer(svc->loop, svc->expiry_timer);
  if (svc->reader >= 0 && svc->reader != svc->channel) ipc_close_channel(static_cast<uint32_t>(svc->reader));
  if (svc->channel >= 0) ipc_close_channel(static_cast<uint32_t>(svc->channel));
  delete svc;
}

int fwsvc_service_channel(const fwsvc_service* svc) { return svc == nullptr ? -EINVAL : svc->channel; }

int fwsvc_service_add_method(fwsvc_service* svc, uint32_t method, fwsvc_method_fn fn, void* ctx) {
  if (svc == nullptr) return -EINVAL;
  return svc->dispatcher.add_method(method, fn, ctx);
}

void fwsvc_service_on_message(fwsvc_service* svc, fwsvc_message_fn fn, void* ctx) {
  if (svc == nullptr) return;
  svc->message_fn = fn;
  svc->message_ctx = ctx;
}

int fwsvc_service_stats(const fwsvc_service* svc, fwsvc_stats* out) {
  if (svc == nullptr || out == nullptr) return -EINVAL;
  std::memset(out, 0, sizeof *out);
  const fwsvc::TransferStats& t = svc->dispatcher.table_stats();
  out->calls = svc->dispatcher.calls();
  out->unknown_method = t.unknown_method;
  out->malformed = t.malformed;
  out->refused_busy = t.refused_busy;
  out->refused_size = t.refused_size;
  out->expired = t.expired;
  out->evicted = t.evicted;
  out->reply_failed = svc->reply_failed;
  out->messages = svc->messages;
  out->messages_dropped = svc->messages_dropped;
  out->transfers = static_cast<uint32_t>(svc->dispatcher.held());
  out->reader_evictions = svc->reader_evictions;
  return 0;
}

}  // extern "C"
