// The N-API addon under index.js: one NativeChannel per channel id, over the public C API
// (runtime/include/ipc.h) only.
//
// Design: nothing here blocks the JavaScript thread. Sends use a non-blocking id and report
// -EAGAIN to index.js, which waits and retries (visible back-pressure). Receiving watches
// ipc_channel_fd() and ipc_request_fd() with uv_poll on Node's own loop and drains a bounded
// batch per wakeup, so no thread sits in a blocking receive and the loop stays responsive.
// Only ipc_call(), which has no descriptor to watch, runs on libuv's thread pool; the id
// is closed only once no such call is in flight (closing an id under a call is undefined).
#include <errno.h>
#include <ipc.h>
#include <napi.h>
#include <string.h>
#include <time.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "uv_min.h"

namespace {

constexpr uint32_t kHeaderBytes = 20;  // packed IPC_HEADER in a drained batch
constexpr uint32_t kMaxBatch = 1024;
constexpr int64_t kDefaultSpinNs = 20000;  // see Drain()

// An Error whose code is the errno name ("EAGAIN"), errno the negative number (as Node's
// own system errors), syscall the C call; `what` names the channel where that helps.
Napi::Error ipc_error(Napi::Env env, int rc, const std::string& syscall, const std::string& what = "") {
  const int e = rc < 0 ? -rc : rc;
  const char* name = strerrorname_np(e);
  const std::string code = name != nullptr ? name : "E" + std::to_string(e);
  std::string msg = code + ": " + ipc_strerror(rc < 0 ? rc : -rc) + ", " + syscall;
  if (!what.empty()) msg += " '" + what + "'";
  if (rc == -EPERM || rc == -EDQUOT || rc == -ENOSPC) {
    const char* detail = ipc_last_error_detail();
    if (detail != nullptr && *detail != '\0') msg += std::string(" (") + detail + ")";
  }
  Napi::Error err = Napi::Error::New(env, msg);
  err.Set("code", Napi::String::New(env, code));
  err.Set("errno", Napi::Number::New(env, rc < 0 ? rc : -rc));
  err.Set("syscall", Napi::String::New(env, syscall));
  return err;
}

uint32_t u32(const Napi::Value& v, const char* field) {
  if (v.IsUndefined() || v.IsNull()) return 0;
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(field) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d)))
    throw Napi::RangeError::New(v.Env(), std::string(field) + " must be an integer in 0..4294967295");
  return static_cast<uint32_t>(d);
}

// The bytes of a Buffer, TypedArray, DataView, ArrayBuffer or (UTF-8) string. A string
// is copied into scratch (IPC_MAX_PAYLOAD bytes); a longer one only reports its length.
void bytes_of(const Napi::Value& v, char* scratch, const void** data, size_t* len) {
  napi_env env = v.Env();
  if (v.IsString()) {
    size_t n = 0;
    NAPI_THROW_IF_FAILED_VOID(env, napi_get_value_string_utf8(env, v, nullptr, 0, &n));
    *len = n;
    *data = scratch;
    if (n <= IPC_MAX_PAYLOAD) {
      char tmp[IPC_MAX_PAYLOAD + 1];
      NAPI_THROW_IF_FAILED_VOID(env, napi_get_value_string_utf8(env, v, tmp, sizeof tmp, &n));
      std::memcpy(scratch, tmp, n);
    }
    return;
  }
  if (v.IsTypedArray()) {
    napi_typedarray_type t;
    size_t count = 0, offset = 0;
    void* p = nullptr;
    NAPI_THROW_IF_FAILED_VOID(env, napi_get_typedarray_info(env, v, &t, &count, &p, nullptr, &offset));
    *data = p;
    *len = count * v.As<Napi::TypedArray>().ElementSize();
    return;
  }
  if (v.IsDataView()) {
    size_t n = 0;
    void* p = nullptr;
    NAPI_THROW_IF_FAILED_VOID(env, napi_get_dataview_info(env, v, &n, &p, nullptr, nullptr));
    *data = p;
    *len = n;
    return;
  }
  if (v.IsArrayBuffer()) {
    auto ab = v.As<Napi::ArrayBuffer>();
    *data = ab.Data();
    *len = ab.ByteLength();
    return;
  }
  throw Napi::TypeError::New(env, "data must be a Buffer, TypedArray, DataView, ArrayBuffer or string");
}

Napi::Object message_object(Napi::Env env, const IPC_MESSAGE& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", m.type);
  o.Set("size", m.size);
  o.Set("sender", m.sender);
  o.Set("receiver", m.receiver);
  o.Set("priority", m.priority);
  o.Set("payload", Napi::Buffer<char>::Copy(env, m.payload, m.size));
  return o;
}

// A uv_poll handle on one descriptor of the channel; freed by uv_close's callback.
struct Poller {
  uv_poll_t* handle = nullptr;
  bool active = false;
};

struct AddonData {
  Napi::FunctionReference channel_ctor;
};

class NativeChannel : public Napi::ObjectWrap<NativeChannel> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeChannel",
                       {
                           InstanceMethod<&NativeChannel::Send>("send"),
                           InstanceMethod<&NativeChannel::Drain>("drain"),
                           InstanceMethod<&NativeChannel::Watch>("watch"),
                           InstanceMethod<&NativeChannel::WatchRequests>("watchRequests"),
                           InstanceMethod<&NativeChannel::TakeRequest>("takeRequest"),
                           InstanceMethod<&NativeChannel::Reply>("reply"),
                           InstanceMethod<&NativeChannel::CallStart>("callStart"),
                           InstanceMethod<&NativeChannel::CallResult>("callResult"),
                           InstanceMethod<&NativeChannel::CallCancel>("callCancel"),
                           InstanceMethod<&NativeChannel::WatchCalls>("watchCalls"),
                           InstanceMethod<&NativeChannel::Info>("info"),
                           InstanceMethod<&NativeChannel::Transport>("transport"),
                           InstanceMethod<&NativeChannel::Close>("close"),
                           InstanceAccessor<&NativeChannel::Id>("id"),
                       });
  }

  explicit NativeChannel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeChannel>(info) {
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "internal constructor");
    id_ = info[0].As<Napi::Number>().Uint32Value();
    open_ = true;
    napi_status st = napi_get_uv_event_loop(info.Env(), &loop_);
    if (st != napi_ok) {
      ipc_close_channel(id_);
      open_ = false;
      throw Napi::Error::New(info.Env(), "no event loop");
    }
    ctx_ = std::make_unique<Napi::AsyncContext>(info.Env(), "fwipc.channel");
  }

  // Garbage-collected without close(): nothing of ours can be running (an active watch,
  // as while calls are in flight, holds a reference), so the id is closed here.
  ~NativeChannel() override {
    ReleasePoll(&msg_);
    ReleasePoll(&req_);
    ReleasePoll(&calls_);
    if (open_) ipc_close_channel(id_);
  }

  uint32_t id() const { return id_; }

 private:
  Napi::Value Id(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), id_); }

  // send(data, type, priority, receiver) -> 0 or a negative errno (-EAGAIN: full).
  // The hot path: a Buffer and three uint32 numbers cost four Node-API calls.
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!open_) return Napi::Number::New(env, -EBADF);
    char scratch[IPC_MAX_PAYLOAD];
    const void* data = nullptr;
    size_t len = 0;
    napi_typedarray_type ta;
    size_t count = 0;
    void* p = nullptr;
    uint32_t hdr[3];
    if (napi_get_typedarray_info(env, info[0], &ta, &count, &p, nullptr, nullptr) == napi_ok &&
        (ta == napi_uint8_array || ta == napi_int8_array || ta == napi_uint8_clamped_array) &&
        napi_get_value_uint32(env, info[1], &hdr[0]) == napi_ok &&
        napi_get_value_uint32(env, info[2], &hdr[1]) == napi_ok &&
        napi_get_value_uint32(env, info[3], &hdr[2]) == napi_ok) {
      if (count > IPC_MAX_PAYLOAD) return Napi::Number::New(env, -EMSGSIZE);
      IPC_HEADER h{};
      h.type = hdr[0];
      h.size = static_cast<uint32_t>(count);
      h.priority = hdr[1];
      h.receiver = hdr[2];
      return Napi::Number::New(env, ipc_send_header(id_, &h, p));
    }
    bytes_of(info[0], scratch, &data, &len);
    if (len > IPC_MAX_PAYLOAD) return Napi::Number::New(env, -EMSGSIZE);
    IPC_HEADER h{};
    h.type = u32(info[1], "type");
    h.size = static_cast<uint32_t>(len);
    h.priority = u32(info[2], "priority");
    h.receiver = u32(info[3], "receiver");
    return Napi::Number::New(env, ipc_send_header(id_, &h, data));
  }

  // drain(max) -> a Buffer of packed records (20-byte header, then size payload bytes),
  // or a negative errno (-EAGAIN when nothing waits: the descriptor is re-armed).
  Napi::Value Drain(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!open_) return Napi::Number::New(env, -EBADF);
    uint32_t max = u32(info[0], "max");
    if (max == 0 || max > kMaxBatch) max = kMaxBatch;
    scratch_.resize(size_t(max) * (kHeaderBytes + IPC_MAX_PAYLOAD));
    struct Sink {
      char* out;
      size_t used;
    } sink{scratch_.data(), 0};
    auto visit = [](void* ctx, const IPC_HEADER* h, const void* payload) {
      Sink* s = static_cast<Sink*>(ctx);
      const uint32_t n = h->size <= IPC_MAX_PAYLOAD ? h->size : IPC_MAX_PAYLOAD;
      IPC_HEADER copy = *h;
      copy.size = n;
      std::memcpy(s->out + s->used, &copy, kHeaderBytes);
      std::memcpy(s->out + s->used + kHeaderBytes, payload, n);
      s->used += kHeaderBytes + n;
    };
    // Until the batch is full or the channel empty: an empty channel re-arms the
    // descriptor, so a reader that keeps up costs one wakeup per burst, not two.
    // A reader that found a burst (more than one message) looks again for up to spin_ns_
    // after the last one before it lets the descriptor re-arm: a streaming writer then
    // seldom pays the wakeup syscall, and a burst arrives as one batch (the runtime's own
    // readers spin likewise, FWIPC_SPIN_NS). A lone message is returned at once: request/
    // reply traffic would pay the spin on every hop. The loop is held for at most spin_ns_
    // per wakeup.
    uint32_t got = 0;
    int rc = 0;
    int64_t last_ns = 0;
    while (got < max) {
      rc = ipc_consume(id_, max - got, visit, &sink, 0);
      if (rc > 0) {
        got += static_cast<uint32_t>(rc);
        last_ns = 0;
        continue;
      }
      if (rc != -EAGAIN || got <= 1 || spin_ns_ <= 0) break;
      const int64_t now = now_ns();
      if (last_ns == 0) last_ns = now;
      if (now - last_ns >= spin_ns_) break;
    }
    if (got == 0) return Napi::Number::New(env, rc < 0 ? rc : -EAGAIN);
    return Napi::Buffer<char>::Copy(env, scratch_.data(), sink.used);  // an error comes next time
  }

  Napi::Value Watch(const Napi::CallbackInfo& info) {
    SetWatch(info, &msg_, "ipc_channel_fd", &ipc_channel_fd, &OnMessagePoll);
    return info.Env().Undefined();
  }
  Napi::Value WatchRequests(const Napi::CallbackInfo& info) {
    SetWatch(info, &req_, "ipc_request_fd", &ipc_request_fd, &OnRequestPoll);
    return info.Env().Undefined();
  }

  // Starts or stops the uv_poll on one of the id's descriptors (fd_of, named fd_call in
  // errors). While any poll is active the wrapper holds a reference to itself, so a
  // channel that someone listens on is not collected.
  void SetWatch(const Napi::CallbackInfo& info, Poller* p, const char* fd_call, int (*fd_of)(uint32_t), uv_poll_cb cb) {
    Napi::Env env = info.Env();
    const bool on = info[0].ToBoolean();
    if (!on) {
      StopPoll(p);
      return;
    }
    if (!open_) throw ipc_error(env, -EBADF, fd_call);
    if (p->active) return;
    if (p->handle == nullptr) {
      const int fd = fd_of(id_);
      if (fd < 0) throw ipc_error(env, fd, fd_call);
      auto* h = static_cast<uv_poll_t*>(std::calloc(1, uv_handle_size(uvmin::kPollHandle)));
      if (h == nullptr) throw ipc_error(env, -ENOMEM, "uv_poll_init");
      if (int rc = uv_poll_init(loop_, h, fd); rc < 0) {
        std::free(h);
        throw ipc_error(env, rc, "uv_poll_init");
      }
      uvmin::set_data(h, this);
      p->handle = h;
    }
    if (int rc = uv_poll_start(p->handle, uvmin::kReadable, cb); rc < 0) throw ipc_error(env, rc, "uv_poll_start");
    p->active = true;
    if (++active_polls_ == 1) Ref();
  }

  void StopPoll(Poller* p) {
    if (!p->active) return;
    uv_poll_stop(p->handle);
    p->active = false;
    if (--active_polls_ == 0) Unref();
  }

  // Stops and closes the handle (uv_close removes the descriptor from epoll at once, so
  // the id may be closed right after).
  void ReleasePoll(Poller* p) {
    if (p->handle == nullptr) return;
    if (p->active) {
      uv_poll_stop(p->handle);
      p->active = false;
      --active_polls_;
    }
    uvmin::set_data(p->handle, nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(p->handle), [](uv_handle_t* h) { std::free(h); });
    p->handle = nullptr;
  }

  static void OnMessagePoll(uv_poll_t* h, int status, int) { Dispatch(h, status, "onreadable"); }
  static void OnRequestPoll(uv_poll_t* h, int status, int) { Dispatch(h, status, "onrequest"); }
  static void OnCallPoll(uv_poll_t* h, int status, int) { Dispatch(h, status, "oncallready"); }

  // Calls this.<method>(status) on the wrapper, with the async context Node needs to run
  // microtasks after it; an exception from JavaScript becomes an uncaught exception.
  static void Dispatch(uv_poll_t* h, int status, const char* method) {
    auto* self = static_cast<NativeChannel*>(uvmin::data(h));
    if (self == nullptr) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    try {
      Napi::Object obj = self->Value();
      Napi::Value fn = obj.Get(method);
      if (!fn.IsFunction()) return;
      fn.As<Napi::Function>().MakeCallback(obj, {Napi::Number::New(env, status)}, *self->ctx_);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }

  // takeRequest() -> {call, type, size, sender, receiver, priority, payload} or a negative errno.
  Napi::Value TakeRequest(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!open_) return Napi::Number::New(env, -EBADF);
    IPC_MESSAGE req;
    uint64_t call = 0;
    const int rc = ipc_receive_request(id_, &req, &call, 0);
    if (rc < 0) return Napi::Number::New(env, rc);
    Napi::Object o = message_object(env, req);
    o.Set("call", Napi::BigInt::New(env, call));
    return o;
  }

  // reply(call, data, type, priority) -> 0 or a negative errno.
  Napi::Value Reply(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!open_) return Napi::Number::New(env, -EBADF);
    const uint64_t call = call_handle(info[0]);
    IPC_MESSAGE m{};
    if (!message_of(info, 1, &m)) return Napi::Number::New(env, -EMSGSIZE);
    return Napi::Number::New(env, ipc_reply(id_, call, &m));
  }

  // callStart(data, type, priority) -> the call's handle (a bigint), or a negative errno
  // (-EAGAIN: the socket to the server is full, try again later).
  Napi::Value CallStart(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!open_) return Napi::Number::New(env, -EBADF);
    IPC_MESSAGE req{};
    if (!message_of(info, 0, &req)) return Napi::Number::New(env, -EMSGSIZE);
    uint64_t call = 0;
    const int rc = ipc_call_start(id_, &req, &call);
    if (rc < 0) return Napi::Number::New(env, rc);
    return Napi::BigInt::New(env, call);
  }

  // Fills *m from (data, type, priority) at info[at..at+2]; false when data is over
  // IPC_MAX_PAYLOAD bytes.
  static bool message_of(const Napi::CallbackInfo& info, size_t at, IPC_MESSAGE* m) {
    const void* data = nullptr;
    size_t len = 0;
    bytes_of(info[at], m->payload, &data, &len);
    if (len > IPC_MAX_PAYLOAD) return false;
    if (data != m->payload && len > 0) std::memcpy(m->payload, data, len);
    m->size = static_cast<uint32_t>(len);
    m->type = u32(info[at + 1], "type");
    m->priority = u32(info[at + 2], "priority");
    return true;
  }

  static uint64_t call_handle(const Napi::Value& v) {
    if (!v.IsBigInt()) throw Napi::TypeError::New(v.Env(), "call must be a bigint");
    bool lossless = false;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }

  // callResult(call) -> the reply message, or a negative errno (-EAGAIN: not yet).
  Napi::Value CallResult(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!open_) return Napi::Number::New(env, -EBADF);
    IPC_MESSAGE rep{};
    const int rc = ipc_call_result(id_, call_handle(info[0]), &rep);
    if (rc < 0) return Napi::Number::New(env, rc);
    return message_object(env, rep);
  }

  Napi::Value CallCancel(const Napi::CallbackInfo& info) {
    if (open_) ipc_call_cancel(id_, call_handle(info[0]));
    return info.Env().Undefined();
  }

  // watchCalls(on): polls ipc_call_fd() and calls this.oncallready(status) (index.js
  // watches only while calls are in flight: a dropped reply keeps the descriptor readable).
  Napi::Value WatchCalls(const Napi::CallbackInfo& info) {
    SetWatch(info, &calls_, "ipc_call_fd", &ipc_call_fd, &OnCallPoll);
    return info.Env().Undefined();
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!open_) throw ipc_error(env, -EBADF, "ipc_channel_info");
    IPC_CHANNEL_INFO ci{};
    if (int rc = ipc_channel_info(id_, &ci); rc < 0) throw ipc_error(env, rc, "ipc_channel_info");
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", Napi::String::New(env, ci.name, strnlen(ci.name, sizeof ci.name)));
    o.Set("type", ci.type);
    o.Set("transport", ci.transport);
    o.Set("ownerUid", ci.owner_uid);
    o.Set("ownerGid", ci.owner_gid);
    o.Set("mode", ci.mode);
    o.Set("capacity", ci.capacity);
    o.Set("creatorPid", ci.creator_pid);
    o.Set("overflow", ci.overflow);
    o.Set("evictAfterMs", ci.evict_after_ms);
    return o;
  }

  Napi::Value Transport(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), open_ ? ipc_channel_transport(id_) : -EBADF);
  }

  // Idempotent.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (!open_) return info.Env().Undefined();
    open_ = false;
    const bool had_polls = active_polls_ > 0;
    ReleasePoll(&msg_);
    ReleasePoll(&req_);
    ReleasePoll(&calls_);
    if (had_polls) Unref();
    ipc_close_channel(id_);
    return info.Env().Undefined();
  }

  static int64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  }

  uint32_t id_ = 0;
  int64_t spin_ns_ = kDefaultSpinNs;
  bool open_ = false;
  int active_polls_ = 0;
  uv_loop_s* loop_ = nullptr;
  Poller msg_, req_, calls_;
  std::unique_ptr<Napi::AsyncContext> ctx_;
  std::vector<char> scratch_;
};

Napi::Object NewChannel(Napi::Env env, int id) {
  return env.GetInstanceData<AddonData>()->channel_ctor.New({Napi::Number::New(env, id)});
}

// create(name, type, bufferSize, permMode, creatorMode, overflow, evictAfterMs) -> NativeChannel
Napi::Value Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "name must be a string");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  IPC_CHANNEL_OPTIONS o{};
  o.type = u32(info[1], "type");
  o.buffer_size = u32(info[2], "bufferSize");
  o.perm_mode = u32(info[3], "mode");
  o.creator_mode = u32(info[4], "creatorMode");
  o.overflow = u32(info[5], "overflow");
  o.evict_after_ms = u32(info[6], "evictAfterMs");
  const int id = ipc_create_channel_opts(name.c_str(), &o);
  if (id < 0) throw ipc_error(env, id, "ipc_create_channel_opts", name);
  return NewChannel(env, id);
}

// open(name, mode) -> NativeChannel
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "name must be a string");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const int id = ipc_open_channel(name.c_str(), u32(info[1], "mode"));
  if (id < 0) throw ipc_error(env, id, "ipc_open_channel", name);
  return NewChannel(env, id);
}

// error(rc, syscall, what) -> Error, for the codes index.js sees as return values.
Napi::Value MakeError(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int rc = info[0].As<Napi::Number>().Int32Value();
  const std::string syscall = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "ipc";
  const std::string what = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  return ipc_error(env, rc, syscall, what).Value();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->channel_ctor = Napi::Persistent(NativeChannel::Init(env));
  env.SetInstanceData(data);
  exports.Set("create", Napi::Function::New(env, Create));
  exports.Set("open", Napi::Function::New(env, Open));
  exports.Set("error", Napi::Function::New(env, MakeError));
  Napi::Object c = Napi::Object::New(env);
  c.Set("IPC_TYPE_SOCKET", IPC_TYPE_SOCKET);
  c.Set("IPC_TYPE_PIPE", IPC_TYPE_PIPE);
  c.Set("IPC_TYPE_QUEUE", IPC_TYPE_QUEUE);
  c.Set("IPC_MODE_READ", IPC_MODE_READ);
  c.Set("IPC_MODE_WRITE", IPC_MODE_WRITE);
  c.Set("IPC_MODE_NONBLOCK", IPC_MODE_NONBLOCK);
  c.Set("IPC_MAX_PAYLOAD", IPC_MAX_PAYLOAD);
  c.Set("IPC_SLOT_BYTES", IPC_SLOT_BYTES);
  c.Set("IPC_BUFFER_DEFAULT", IPC_BUFFER_DEFAULT);
  c.Set("IPC_BUFFER_MIN", IPC_BUFFER_MIN);
  c.Set("IPC_BUFFER_MAX", IPC_BUFFER_MAX);
  c.Set("IPC_OVERFLOW_BLOCK", IPC_OVERFLOW_BLOCK);
  c.Set("IPC_OVERFLOW_EVICT", IPC_OVERFLOW_EVICT);
  c.Set("IPC_TRANSPORT_SHM", IPC_TRANSPORT_SHM);
  c.Set("IPC_TRANSPORT_SOCKET", IPC_TRANSPORT_SOCKET);
  c.Set("IPC_TRANSPORT_PIPE", IPC_TRANSPORT_PIPE);
  c.Set("EAGAIN", -EAGAIN);
  c.Set("EPIPE", -EPIPE);
  c.Set("EBADF", -EBADF);
  c.Set("EMSGSIZE", -EMSGSIZE);
  exports.Set("constants", c);
  return exports;
}

}  // namespace

NODE_API_MODULE(fwipc, Init)
