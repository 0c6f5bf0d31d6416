// The calls of the C API, as the core sees them: argument checks (so every transport gets
// only valid input), registry requests for create/open/close, then the id's transport.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>

#include "base/names.h"
#include "ipc.h"
#include "runtime/config.h"
#include "runtime/core.h"
#include "runtime/handle_table.h"
#include "runtime/transport_factory.h"
#include "transports/bridge/bridge.h"
#include "transports/shm/membership.h"
#include "transports/shm/ring.h"

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
  auto t = make_transport(rep, fds, name, mode, created, p.pid);
  close_all(fds);
  int rc;
  if (t) {
    auto h = std::make_unique<Handle>();
    h->mode = mode;
    h->reg_handle = rep.handle;
    h->creator = created != nullptr;
    h->bridge = dynamic_cast<bridge::Bridge*>(t->get());
    h->ring = h->bridge != nullptr ? h->bridge->ring() : dynamic_cast<shm::ShmRing*>(t->get());
    h->t = std::move(t.value());
    rc = install(std::move(h));
    if (rc >= 0) return rc;
  } else {
    rc = t.error();
  }
  registry::Request rq = request(registry::Op::kClose, nullptr);
  rq.handle = rep.handle;
  registry::Reply ignored{};
  (void)rpc(rq, &ignored, nullptr);
  return rc;
}

// The reading handle for id and the wait it asks for, or -EBADF.
int reading(uint32_t id, int timeout_ms, Handle** out, int64_t* timeout_ns) {
  Handle* h = lookup(id);
  if (h == nullptr || !(h->mode & IPC_MODE_READ)) return -EBADF;
  if (h->mode & IPC_MODE_NONBLOCK)
    *timeout_ns = 0;
  else if (timeout_ms < 0)
    *timeout_ns = -1;
  else
    *timeout_ns = int64_t(timeout_ms) * 1000000;
  *out = h;
  return 0;
}

// A timed wait that runs out is -ETIMEDOUT; a poll (0) or non-blocking id is -EAGAIN.
int wait_result(int rc, int64_t timeout_ns) { return rc == -ETIMEDOUT && timeout_ns == 0 ? -EAGAIN : rc; }

int64_t send_timeout(const Handle& h) { return (h.mode & IPC_MODE_NONBLOCK) ? 0 : -1; }

}  // namespace

int create(const char* name, uint32_t type, uint32_t buffer_size, uint32_t perm_mode) noexcept {
  if (int rc = validate_channel_name(name); rc < 0) return rc;
  if (type > IPC_TYPE_QUEUE || (perm_mode & ~0777u)) return -EINVAL;
  if (buffer_size > IPC_BUFFER_MAX) return -EINVAL;
  Process& p = proc();
  std::lock_guard<std::recursive_mutex> lk(p.mu);
  registry::Request rq = request(registry::Op::kCreate, name);
  rq.type = type;
  rq.capacity = buffer_size;
  rq.perm_mode = perm_mode;
  if (read_config().disable_shm) rq.flags |= registry::kNoShm;
  registry::Reply rep{};
  int fds[registry::kReplyFds];
  if (int rc = rpc(rq, &rep, fds); rc < 0) return rc;
  auto slots = shm::Segment::slots_for_capacity(buffer_size);
  const CreateInfo info{perm_mode, slots ? *slots : shm::kDefaultSlots};
  return attach(rep, fds, name, IPC_MODE_READ | IPC_MODE_WRITE, &info);
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
  registry::Request rq = request(registry::Op::kClose, nullptr);
  rq.handle = h->reg_handle;
  registry::Reply rep{};
  const int rc = rpc(rq, &rep, nullptr);
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

int loan(uint32_t id, shm::Loan* out) noexcept {
  Handle* h = lookup(id);
  if (h == nullptr || !(h->mode & IPC_MODE_WRITE)) return -EBADF;
  if (h->ring == nullptr) return -EOPNOTSUPP;
  return h->bridge != nullptr ? h->bridge->loan(out, send_timeout(*h)) : h->ring->loan(out, send_timeout(*h));
}

int commit(uint32_t id, shm::Loan* l, const MsgHeader& hdr) noexcept {
  Handle* h = lookup(id);
  if (h == nullptr || h->ring == nullptr) return -EBADF;
  return h->ring->commit(l, hdr);
}

void abandon(uint32_t id, shm::Loan* l) noexcept {
  if (Handle* h = lookup(id); h != nullptr && h->ring != nullptr) h->ring->abandon(l);
}

int transport_of(uint32_t id) noexcept {
  Handle* h = lookup(id);
  return h == nullptr ? -EBADF : static_cast<int>(h->t->kind());
}

}  // namespace fwipc::core
