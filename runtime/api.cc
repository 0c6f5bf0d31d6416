// The calls of the C API, as the core sees them: argument checks (so every transport gets
// only valid input), registry requests for create/open/close, then the id's transport.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>

#include "base/names.h"
#include "base/time.h"
#include "ipc.h"
#include "runtime/config.h"
#include "runtime/core.h"
#include "runtime/handle_table.h"
#include "runtime/transport_factory.h"
#include "transports/bridge/bridge.h"
#include "transports/call/call_client.h"
#include "transports/call/call_server.h"
#include "transports/shm/membership.h"
#include "transports/shm/ring.h"
#include "transports/shm/ring2.h"
#include "transports/shm/stats.h"

namespace fwipc::core {

static_assert(kNameMax == IPC_NAME_MAX);
static_assert(sizeof(registry::Request::name) == kNameMax + 1);

namespace {

registry::Request request(registry::Op op, const char* name) {
  registry::Request rq{};
  rq.op = static_cast<uint32_t>(op);
  if (name != nullptr) std::strcpy(rq.name, name);  // validated: at most kNameMaxBytes
  return rq;
}

void close_all(int* fds) {
  for (int i = 0; i < registry::kReplyFds; ++i)
    if (fds[i] >= 0) ::close(fds[i]);
}

// Turns a successful create/open reply into an id; on any failure the registry forgets
// the membership again. Caller holds mu.
int attach(const registry::Reply& rep, int* fds, const char* name, uint32_t mode, const CreateInfo* created) {
  if (rep.status < 0) {
    close_all(fds);  // there should be none
    return rep.status;
  }
  Process& p = proc();
  // The creator's NAME.call is the reply's last descriptor (protocol.h).
  std::unique_ptr<call::CallServer> calls;
  const int after = transport_fds(rep, mode, created != nullptr);  // NAME.call, then stats
  if (created != nullptr) {
    const int at = after;
    if (at >= registry::kReplyFds || fds[at] < 0) {
      close_all(fds);
      return -EPROTO;
    }
    auto server = call::CallServer::create(std::exchange(fds[at], -1),
                                           call::ChannelOwner{::geteuid(), ::getegid(), created->perm_mode});
    if (!server) {
      close_all(fds);
      return server.error();
    }
    calls = std::move(server.value());
  }
  // The stats page follows NAME.call (protocol.h); without one the counters stay local.
  std::shared_ptr<stats::Mapping> page;
  if (created != nullptr && after + 1 < registry::kReplyFds && fds[after + 1] >= 0)
    page = stats::Mapping::map(fds[after + 1], true);
  const uint64_t serial = p.reg.serial();  // the connection rep came on (rpc under p.mu)
  std::shared_ptr<shm::v2::Peers> membership;
  auto t = make_transport(rep, fds, name, mode, created, p.pid, &membership);
  close_all(fds);
  if (t && page) {
    t.value()->set_stats(page);
    if (calls) calls->set_stats(page);
  }
  int rc;
  if (t) {
    auto h = std::make_unique<Handle>();
    h->mode = mode;
    h->reg_handle = rep.handle;
    h->reg_serial = serial;
    h->creator = created != nullptr;
    h->bridge = dynamic_cast<bridge::Bridge*>(t->get());
    h->ring = h->bridge != nullptr ? h->bridge->ring() : dynamic_cast<shm::ShmRing*>(t->get());
    h->ring2 = dynamic_cast<shm::v2::ShmRing2*>(t->get());
    h->membership = std::move(membership);
    h->t = std::move(t.value());
    h->info = IPC_CHANNEL_INFO{rep.type,
                               static_cast<uint32_t>(h->t->kind()),
                               rep.owner_uid,
                               rep.owner_gid,
                               rep.mode,
                               rep.capacity_bytes,
                               rep.creator_pid,
                               rep.overflow,
                               rep.evict_after_ms,
                               0,
                               0,
                               {},
                               {}};
    std::strncpy(h->info.name, name, sizeof h->info.name - 1);
    h->calls = std::move(calls);
    h->caller = std::make_unique<call::CallClient>(read_config().runtime_dir + "/" + name + ".call", rep.creator_pid);
    rc = install(std::move(h));
    if (rc >= 0) return rc;
  } else {
    rc = t.error();
  }
  registry::Request rq = request(registry::Op::kClose, nullptr);
  rq.handle = rep.handle;
  registry::Reply ignored{};
  (void)rpc(rq, &ignored, nullptr, serial);
  return rc;
}

// The reading handle for id and the wait it asks for, or -EBADF.
// The wait a receive on h asks for: 0 on a non-blocking id, else timeout_ms (< 0: forever).
int64_t wait_ns(const Handle& h, int timeout_ms) {
  if (h.mode & IPC_MODE_NONBLOCK) return 0;
  return timeout_ms < 0 ? -1 : int64_t(timeout_ms) * 1000000;
}

int reading(uint32_t id, int timeout_ms, Handle** out, int64_t* timeout_ns) {
  Handle* h = lookup(id);
  if (h == nullptr || !(h->mode & IPC_MODE_READ)) return -EBADF;
  *timeout_ns = wait_ns(*h, timeout_ms);
  *out = h;
  return 0;
}

// A timed wait that runs out is -ETIMEDOUT; a poll (0) or non-blocking id is -EAGAIN.
int wait_result(int rc, int64_t timeout_ns) { return rc == -ETIMEDOUT && timeout_ns == 0 ? -EAGAIN : rc; }

int64_t send_timeout(const Handle& h) { return (h.mode & IPC_MODE_NONBLOCK) ? 0 : -1; }

}  // namespace

int create(const char* name, const IPC_CHANNEL_OPTIONS& o, bool literal_perm) noexcept {
  constexpr uint32_t kModes = IPC_MODE_READ | IPC_MODE_WRITE | IPC_MODE_NONBLOCK;
  if (int rc = validate_channel_name(name); rc < 0) return rc;
  if (o.type > IPC_TYPE_QUEUE || (o.perm_mode & ~0777u) || (o.creator_mode & ~kModes) ||
      o.overflow > IPC_OVERFLOW_EVICT || o.reserved[0] || o.reserved[1])
    return -EINVAL;
  if (o.buffer_size > IPC_BUFFER_MAX) return -EINVAL;
  // EVICT needs a bound: 1 ms to 2^31 - 1 ms (the ring compares times modulo 2^32 ms).
  if (o.overflow == IPC_OVERFLOW_EVICT && (o.evict_after_ms == 0 || o.evict_after_ms > INT32_MAX)) return -EINVAL;
  uint32_t mode = o.creator_mode;
  if (!(mode & (IPC_MODE_READ | IPC_MODE_WRITE))) mode |= IPC_MODE_READ | IPC_MODE_WRITE;
  const uint32_t perm = o.perm_mode || literal_perm ? o.perm_mode : 0660;
  Process& p = proc();
  std::lock_guard<std::recursive_mutex> lk(p.mu);
  registry::Request rq = request(registry::Op::kCreate, name);
  rq.type = o.type;
  rq.capacity = o.buffer_size;
  rq.perm_mode = perm;
  rq.creator_mode = mode;
  rq.overflow = o.overflow;
  rq.evict_after_ms = o.evict_after_ms;
  if (read_config().disable_shm) rq.flags |= registry::kNoShm;
  registry::Reply rep{};
  int fds[registry::kReplyFds];
  if (int rc = rpc(rq, &rep, fds); rc < 0) return rc;
  auto slots = shm::Segment::slots_for_capacity(o.buffer_size);
  const CreateInfo info{perm, slots ? *slots : shm::kDefaultSlots};
  return attach(rep, fds, name, mode, &info);
}

int open(const char* name, uint32_t mode) noexcept {
  if (int rc = validate_channel_name(name); rc < 0) return rc;
  if ((mode & ~(IPC_MODE_READ | IPC_MODE_WRITE | IPC_MODE_NONBLOCK)) || !(mode & (IPC_MODE_READ | IPC_MODE_WRITE)))
    return -EINVAL;
  Process& p = proc();
  std::lock_guard<std::recursive_mutex> lk(p.mu);
  registry::Request rq = request(registry::Op::kOpen, name);
  rq.flags = ((mode & IPC_MODE_READ) ? registry::kWantRead : 0) | ((mode & IPC_MODE_WRITE) ? registry::kWantWrite : 0);
  registry::Reply rep{};
  int fds[registry::kReplyFds];
  if (int rc = rpc(rq, &rep, fds); rc < 0) return rc;
  return attach(rep, fds, name, mode, nullptr);
}

int close(uint32_t id) noexcept {
  Process& p = proc();
  std::lock_guard<std::recursive_mutex> lk(p.mu);
  std::unique_ptr<Handle> h = remove(id);
  if (h == nullptr) return -EBADF;
  // Ring v2: through the registry that answers now, which the membership rejoins if it is
  // not the one that gave it (its transport lets go of its cursors when h goes).
  if (h->membership) {
    (void)h->membership->leave();
    return 0;
  }
  registry::Request rq = request(registry::Op::kClose, nullptr);
  rq.handle = h->reg_handle;
  registry::Reply rep{};
  // Only on the connection that gave the handle: a registry reached since (restarted, or
  // another runtime directory's) may have given its number to another id of ours.
  const int rc = rpc(rq, &rep, nullptr, h->reg_serial);
  if ((rc < 0 || rep.status < 0) && h->ring != nullptr) {
    // The registry that knew this id is gone (restarted): undo our part by hand.
    const shm::Segment& seg = h->ring->segment();
    const shm::Roles& r = h->ring->roles();
    if (r.reader_index >= 0) shm::release_reader(seg, static_cast<uint32_t>(r.reader_index), r.reader_state);
    if (r.writer_index >= 0) shm::release_writer(seg, static_cast<uint32_t>(r.writer_index), r.writer_state);
    if (h->creator) shm::close_channel(seg);
  }
  return 0;
}

int send(uint32_t id, const MsgHeader& hdr, const void* payload) noexcept {
  Handle* h = lookup(id);
  if (h == nullptr || !(h->mode & IPC_MODE_WRITE)) return -EBADF;
  if (hdr.size > kMaxPayloadBytes) return -EMSGSIZE;
  if (payload == nullptr && hdr.size != 0) return -EFAULT;
  return h->t->send(hdr, payload, send_timeout(*h));
}

int send_batch(uint32_t id, const MsgHeader* hdrs, const void* const* payloads, uint32_t n) noexcept {
  Handle* h = lookup(id);
  if (h == nullptr || !(h->mode & IPC_MODE_WRITE)) return -EBADF;
  if (n == 0) return 0;
  if (hdrs == nullptr || payloads == nullptr) return -EFAULT;
  for (uint32_t i = 0; i < n; ++i) {
    if (hdrs[i].size > kMaxPayloadBytes) return -EMSGSIZE;
    if (payloads[i] == nullptr && hdrs[i].size != 0) return -EFAULT;
  }
  return h->t->send_batch(hdrs, payloads, n, send_timeout(*h));
}

int receive(uint32_t id, MsgHeader* hdr, void* buf, uint32_t cap, int timeout_ms) noexcept {
  Handle* h;
  int64_t timeout_ns;
  if (int rc = reading(id, timeout_ms, &h, &timeout_ns); rc < 0) return rc;
  if ((buf == nullptr && cap != 0) || hdr == nullptr) return -EFAULT;
  return wait_result(h->t->receive(hdr, buf, cap, timeout_ns), timeout_ns);
}

int consume(uint32_t id, uint32_t max, Transport::Visitor fn, void* ctx, int timeout_ms) noexcept {
  Handle* h;
  int64_t timeout_ns;
  if (int rc = reading(id, timeout_ms, &h, &timeout_ns); rc < 0) return rc;
  if (fn == nullptr) return -EFAULT;
  return wait_result(h->t->consume(max, fn, ctx, timeout_ns), timeout_ns);
}

int notify_fd(uint32_t id) noexcept {
  Handle* h = lookup(id);
  if (h == nullptr || !(h->mode & IPC_MODE_READ)) return -EBADF;
  return h->t->notify_fd();
}

int loan(uint32_t id, Loan* out) noexcept {
  Handle* h = lookup(id);
  if (h == nullptr || !(h->mode & IPC_MODE_WRITE)) return -EBADF;
  if (h->ring2 != nullptr) {
    shm::v2::WLoan w;
    if (int rc = h->ring2->loan(&w, send_timeout(*h)); rc < 0) return rc;
    *out = Loan{w.pos, reinterpret_cast<uintptr_t>(w.data), w.data};
    return 0;
  }
  if (h->ring == nullptr) return -EOPNOTSUPP;
  shm::Loan l;
  const int rc = h->bridge != nullptr ? h->bridge->loan(&l, send_timeout(*h)) : h->ring->loan(&l, send_timeout(*h));
  if (rc < 0) return rc;
  *out = Loan{l.pos, reinterpret_cast<uintptr_t>(l.slot), l.data()};
  return 0;
}

namespace {
shm::v2::WLoan loan_v2(const Loan& l) { return shm::v2::WLoan{l.pos, reinterpret_cast<char*>(l.token)}; }
shm::Loan loan_v4(const Loan& l) { return shm::Loan{l.pos, reinterpret_cast<shm::Slot*>(l.token)}; }
}  // namespace

int commit(uint32_t id, Loan* l, const MsgHeader& hdr) noexcept {
  Handle* h = lookup(id);
  if (h == nullptr) return -EBADF;
  if (h->ring2 != nullptr) {
    shm::v2::WLoan w = loan_v2(*l);
    return h->ring2->commit(&w, hdr);
  }
  if (h->ring == nullptr) return -EBADF;
  shm::Loan v = loan_v4(*l);
  return h->ring->commit(&v, hdr);
}

void abandon(uint32_t id, Loan* l) noexcept {
  Handle* h = lookup(id);
  if (h == nullptr) return;
  if (h->ring2 != nullptr) {
    shm::v2::WLoan w = loan_v2(*l);
    h->ring2->abandon(&w);
  } else if (h->ring != nullptr) {
    shm::Loan v = loan_v4(*l);
    h->ring->abandon(&v);
  }
}

int call(uint32_t id, const MsgHeader& req, const void* payload, MsgHeader* rep, void* buf, uint32_t cap,
         int timeout_ms) noexcept {
  Handle* h = lookup(id);
  // Calling is writing to the server: the registry checked the write bit at open.
  if (h == nullptr || !(h->mode & IPC_MODE_WRITE)) return -EBADF;
  if (req.size > kMaxPayloadBytes) return -EMSGSIZE;
  if ((payload == nullptr && req.size != 0) || rep == nullptr || (buf == nullptr && cap != 0)) return -EFAULT;
  return h->caller->call(req, payload, rep, buf, cap, Deadline::after_ms(timeout_ms));
}

// Calling is writing to the server: the registry checked the write bit at open.
static call::CallClient* caller_of(uint32_t id) noexcept {
  Handle* h = lookup(id);
  return h != nullptr && (h->mode & IPC_MODE_WRITE) ? h->caller.get() : nullptr;
}

// A call handle is the request's 32-bit sequence number: anything wider was not ours.
int call_start(uint32_t id, const MsgHeader& req, const void* payload, uint64_t* call) noexcept {
  call::CallClient* c = caller_of(id);
  if (c == nullptr) return -EBADF;
  if (req.size > kMaxPayloadBytes) return -EMSGSIZE;
  if ((payload == nullptr && req.size != 0) || call == nullptr) return -EFAULT;
  uint32_t seq = 0;
  const int rc = c->start(req, payload, &seq);
  if (rc == 0) *call = seq;
  return rc;
}

int call_result(uint32_t id, uint64_t call, MsgHeader* rep, void* buf, uint32_t cap) noexcept {
  call::CallClient* c = caller_of(id);
  if (c == nullptr) return -EBADF;
  if (rep == nullptr || (buf == nullptr && cap != 0)) return -EFAULT;
  if (call == 0 || call > UINT32_MAX) return -ENOENT;
  return c->result(static_cast<uint32_t>(call), rep, buf, cap);
}

int call_cancel(uint32_t id, uint64_t call) noexcept {
  call::CallClient* c = caller_of(id);
  if (c == nullptr) return -EBADF;
  if (call != 0 && call <= UINT32_MAX) c->cancel(static_cast<uint32_t>(call));
  return 0;
}

int call_fd(uint32_t id) noexcept {
  call::CallClient* c = caller_of(id);
  return c == nullptr ? -EBADF : c->event_fd();
}

int receive_request(uint32_t id, MsgHeader* hdr, void* buf, uint32_t cap, uint64_t* call, int timeout_ms) noexcept {
  Handle* h = lookup(id);
  if (h == nullptr || h->calls == nullptr) return -EBADF;
  if (hdr == nullptr || call == nullptr || (buf == nullptr && cap != 0)) return -EFAULT;
  const int64_t timeout_ns = wait_ns(*h, timeout_ms);
  return wait_result(h->calls->receive(hdr, buf, cap, call, Deadline::after_ns(timeout_ns)), timeout_ns);
}

int reply(uint32_t id, uint64_t call, const MsgHeader& hdr, const void* payload) noexcept {
  Handle* h = lookup(id);
  if (h == nullptr || h->calls == nullptr) return -EBADF;
  if (hdr.size > kMaxPayloadBytes) return -EMSGSIZE;
  if (payload == nullptr && hdr.size != 0) return -EFAULT;
  return h->calls->reply(call, hdr, payload);
}

int request_fd(uint32_t id) noexcept {
  Handle* h = lookup(id);
  if (h == nullptr || h->calls == nullptr) return -EBADF;
  return h->calls->fd();
}

int info(uint32_t id, IPC_CHANNEL_INFO* out) noexcept {
  Handle* h = lookup(id);
  if (h == nullptr) return -EBADF;
  if (out == nullptr) return -EFAULT;
  *out = h->info;
  const uint64_t n = h->t->evictions();
  out->evictions = n > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(n);
  out->evicted = h->t->was_evicted() ? 1u : 0u;
  return 0;
}

int transport_of(uint32_t id) noexcept {
  Handle* h = lookup(id);
  return h == nullptr ? -EBADF : static_cast<int>(h->t->kind());
}

}  // namespace fwipc::core
