#include "runtime/core.h"

#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>

#include "base/unixsock.h"
#include "base/names.h"
#include "base/proc.h"
#include "base/result.h"
#include "base/rundir.h"
#include "runtime/include/ipc.h"
#include "runtime/registry/protocol.h"
#include "runtime/registry/server.h"
#include "transports/bridge/bridge.h"
#include "transports/shm/membership.h"
#include "transports/socket/socket_transport.h"

namespace fwipc::core {
namespace {

constexpr uint32_t kIndexBits = 12;
constexpr uint32_t kMaxHandles = 1u << kIndexBits;
constexpr uint32_t kGenMask = (1u << (31 - kIndexBits)) - 1;  // ids stay positive ints

struct Handle {
  uint32_t id;
  uint32_t mode;  // IPC_MODE_* bits
  uint32_t reg_handle;
  bool creator;
  std::unique_ptr<Transport> t;
  shm::ShmRing* ring;      // non-null when t is (or wraps) the shm ring (loan/commit)
  bridge::Bridge* bridge;  // non-null when t is a QUEUE creator's bridge
};

// Process-wide state. After fork() the child gets a fresh copy (see on_fork_child).
struct Process {
  // Recursive: the fork handlers take it, and the registry auto-start forks while holding it.
  std::recursive_mutex mu;  // guards conn, gens, and installing/removing handles
  int conn = -1;
  std::string conn_dir;  // runtime directory conn belongs to
  pid_t pid = 0;
  uint32_t gens[kMaxHandles] = {};
  std::atomic<Handle*> table[kMaxHandles] = {};
};

Process& proc() {
  static Process* p = [] {
    auto* q = new Process();  // never destroyed: usable from atexit handlers and threads
    q->pid = ::getpid();
    pthread_atfork(
        [] { proc().mu.lock(); },
        [] { proc().mu.unlock(); },
        [] {
          // The child inherits ids it may not use: drop them without touching shared
          // state (the parent still owns their reader entries and registry membership).
          Process& p = proc();
          new (&p.mu) std::recursive_mutex();  // the parent's lock state means nothing here
          p.pid = ::getpid();
          if (p.conn >= 0) ::close(p.conn);  // parent keeps its own copy
          p.conn = -1;
          for (uint32_t i = 0; i < kMaxHandles; ++i) {
            Handle* h = p.table[i].exchange(nullptr, std::memory_order_relaxed);
            if (h == nullptr) continue;
            h->t->forget_after_fork();
            delete h;
            p.gens[i] = (p.gens[i] + 1) & kGenMask;  // inherited ids now fail with -EBADF
          }
        });
    return q;
  }();
  return *p;
}

inline Handle* lookup(uint32_t id) noexcept {
  Handle* h = proc().table[id & (kMaxHandles - 1)].load(std::memory_order_acquire);
  return h != nullptr && h->id == id ? h : nullptr;
}

bool autostart_allowed() {
  const char* e = std::getenv("FWIPC_NO_AUTOSTART");
  return e == nullptr || *e == '\0' || std::strcmp(e, "0") == 0;
}

int idle_exit_ms() {
  const char* e = std::getenv("FWIPC_REGISTRY_IDLE_MS");
  return e && *e ? std::atoi(e) : 10000;
}

constexpr int kRegistryTimeoutSec = 10;

// The registry answers in microseconds; one that does not answer for this long is wedged,
// and a caller must get an error, not hang with it.
int connect_once(const std::string& path) { return connect_seqpacket(path, kRegistryTimeoutSec); }

// Connects to the registry of dir, starting one if none runs (unless FWIPC_NO_AUTOSTART).
int connect_registry(const std::string& dir) {
  const std::string path = dir + "/" + registry::kSocketName;
  int fd = connect_once(path);
  if (fd >= 0 || fd == -ENAMETOOLONG || fd == -EACCES) return fd;
  if (!autostart_allowed()) return -ECONNREFUSED;
  if (int rc = ensure_dir(dir); rc < 0) return rc;
  if (int rc = registry::spawn_detached(dir, idle_exit_ms()); rc < 0) return rc;
  // The new registry needs a moment to bind; a concurrent starter may win the lock.
  for (int i = 0; i < 500; ++i) {
    fd = connect_once(path);
    if (fd >= 0) return fd;
    ::usleep(i < 50 ? 1000 : 10000);
  }
  return fd;
}

// One request, one reply with up to kReplyFds descriptors in fds (-1 where none came; all
// closed if fds is null). Reconnects once if the registry went away since the last call (a
// restarted registry serves new requests).
int rpc(registry::Request rq, registry::Reply* rep, int* fds) {
  Process& p = proc();
  rq.magic = registry::kProtoMagic;
  const std::string dir = runtime_dir();
  if (p.conn >= 0 && p.conn_dir != dir) {
    ::close(p.conn);  // FWIPC_RUNTIME_DIR changed: talk to that directory's registry
    p.conn = -1;
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (p.conn < 0) {
      const int fd = connect_registry(dir);
      if (fd < 0) return fd;
      p.conn = fd;
      p.conn_dir = dir;
    }
    if (::send(p.conn, &rq, sizeof rq, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof rq)) {
      ::close(p.conn);
      p.conn = -1;
      continue;
    }
    int got[registry::kReplyFds];
    const ssize_t n = recv_with_fds(p.conn, rep, sizeof *rep, got, registry::kReplyFds, 0);
    if (n != static_cast<ssize_t>(sizeof *rep)) {
      for (int f : got)
        if (f >= 0) ::close(f);
      ::close(p.conn);
      p.conn = -1;
      if (n == 0 || n == -ECONNRESET || n == -EPIPE) continue;  // registry restarted
      return n == -EAGAIN ? -ETIMEDOUT : -EPROTO;
    }
    for (int i = 0; i < registry::kReplyFds; ++i) {
      if (fds) fds[i] = got[i];
      else if (got[i] >= 0) ::close(got[i]);
    }
    return 0;
  }
  return -ECONNREFUSED;
}

// Installs h under a fresh id. Caller holds mu.
int install(std::unique_ptr<Handle> h) {
  Process& p = proc();
  for (uint32_t i = 0; i < kMaxHandles; ++i) {
    if (p.table[i].load(std::memory_order_relaxed) != nullptr) continue;
    p.gens[i] = ((p.gens[i] + 1) & kGenMask) ?: 1;
    h->id = (p.gens[i] << kIndexBits) | i;
    const int id = static_cast<int>(h->id);
    p.table[i].store(h.release(), std::memory_order_release);
    return id;
  }
  return -EMFILE;
}

struct CreateInfo {
  uint32_t perm_mode;
  uint32_t capacity_msgs;
};

// Builds the transport the registry chose for this channel from the reply's descriptors:
// fds[0] the shm segment, the listening socket of a SOCKET channel's creator, or the PIPE
// channel's FIFO; then a PIPE reader's own FIFO, then a PIPE writer's. Takes (and sets
// to -1) the ones it keeps; the caller closes the rest.
Result<std::unique_ptr<Transport>> make_transport(const registry::Reply& rep, int* fds, const char* name,
                                                  uint32_t mode, const CreateInfo* created) {
  using R = Result<std::unique_ptr<Transport>>;
  Process& p = proc();
  const bool reader = mode & IPC_MODE_READ, writer = mode & IPC_MODE_WRITE;
  auto take = [fds](int i) { return std::exchange(fds[i], -1); };
  switch (static_cast<TransportKind>(rep.transport)) {
    case TransportKind::kShmRing: {
      if (fds[0] < 0) return R::error(-EPROTO);
      auto seg = shm::Segment::attach(fds[0]);  // maps a duplicate
      if (!seg) return R::error(seg.error());
      shm::Roles roles;
      if (reader) roles.reader_index = rep.reader_index, roles.reader_state = rep.reader_state;
      if (writer) roles.writer_index = rep.writer_index, roles.writer_state = rep.writer_state;
      auto ring = std::make_unique<shm::ShmRing>(std::move(seg.value()), roles, p.pid);
      if (created == nullptr) return std::unique_ptr<Transport>(std::move(ring));
      // The creator also serves processes of other uids, which never map the ring.
      if (fds[1] < 0) return R::error(-EPROTO);
      const sock::Owner owner{::geteuid(), ::getegid(), created->perm_mode};
      return std::unique_ptr<Transport>(
          std::make_unique<bridge::Bridge>(std::move(ring), take(1), owner, created->capacity_msgs, p.pid));
    }
    case TransportKind::kSocket: {
      if (created != nullptr) {
        if (fds[0] < 0) return R::error(-EPROTO);
        const sock::Owner owner{::geteuid(), ::getegid(), created->perm_mode};
        return std::unique_ptr<Transport>(sock::Hub::socket_hub(take(0), owner, created->capacity_msgs, p.pid));
      }
      const std::string path = runtime_dir() + "/" + name + ".sock";
      // A bridged QUEUE channel's reader names the ring entry the registry joined for it.
      const int conn = sock::SocketClient::connect_hub(path.c_str(), reader, writer, reader ? rep.reader_index : -1,
                                                       rep.reader_state);
      if (conn < 0) return R::error(conn);
      return std::unique_ptr<Transport>(std::make_unique<sock::SocketClient>(conn, reader, writer, 256, p.pid));
    }
    case TransportKind::kPipe: {
      if (fds[0] < 0) return R::error(-EPROTO);
      if (created != nullptr) {
        const std::string prefix = runtime_dir() + "/" + name + ".fifo";
        return std::unique_ptr<Transport>(sock::Hub::pipe_hub(take(0), prefix, created->capacity_msgs, p.pid));
      }
      const int rd_at = 1, wr_at = reader ? 2 : 1;  // in that order, those asked for
      if ((reader && fds[rd_at] < 0) || (writer && fds[wr_at] < 0)) return R::error(-EPROTO);
      int rc = reader ? sock::PipeClient::join(fds[0], frame::kJoin, rep.reader_state, p.pid) : 0;
      if (writer && rc == 0) rc = sock::PipeClient::join(fds[0], frame::kWriterJoin, rep.writer_state, p.pid);
      if (rc < 0) return R::error(rc);
      const int in_w = take(0), rd = reader ? take(rd_at) : -1;
      const int wr = writer ? take(wr_at) : -1;
      return std::unique_ptr<Transport>(std::make_unique<sock::PipeClient>(in_w, rd, wr, 256, p.pid));
    }
    default:
      return R::error(-EPROTO);
  }
}

int attach(const registry::Reply& rep, int* fds, const char* name, uint32_t mode, const CreateInfo* created) {
  auto t = make_transport(rep, fds, name, mode, created);
  for (int i = 0; i < registry::kReplyFds; ++i)
    if (fds[i] >= 0) ::close(fds[i]);
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
  registry::Request rq{};
  rq.op = static_cast<uint32_t>(registry::Op::kClose);
  rq.handle = rep.handle;
  registry::Reply ignored{};
  (void)rpc(rq, &ignored, nullptr);
  return rc;
}

// A failed request's descriptors (there should be none) are closed; otherwise attach().
int attach_reply(const registry::Reply& rep, int* fds, const char* name, uint32_t mode, const CreateInfo* created) {
  if (rep.status >= 0) return attach(rep, fds, name, mode, created);
  for (int i = 0; i < registry::kReplyFds; ++i)
    if (fds[i] >= 0) ::close(fds[i]);
  return rep.status;
}

bool shm_disabled() {
  const char* e = std::getenv("FWIPC_DISABLE_SHM");
  return e != nullptr && *e != '\0' && std::strcmp(e, "0") != 0;
}

}  // namespace

int create(const char* name, uint32_t type, uint32_t buffer_size, uint32_t perm_mode) noexcept {
  if (int rc = validate_channel_name(name); rc < 0) return rc;
  if (type > IPC_TYPE_QUEUE || (perm_mode & ~0777u)) return -EINVAL;
  if (buffer_size > IPC_BUFFER_MAX) return -EINVAL;
  Process& p = proc();
  std::lock_guard<std::recursive_mutex> lk(p.mu);
  registry::Request rq{};
  rq.op = static_cast<uint32_t>(registry::Op::kCreate);
  rq.type = type;
  rq.capacity = buffer_size;
  rq.perm_mode = perm_mode;
  if (shm_disabled()) rq.flags |= registry::kNoShm;
  std::strcpy(rq.name, name);
  registry::Reply rep{};
  int fds[registry::kReplyFds];
  if (int rc = rpc(rq, &rep, fds); rc < 0) return rc;
  auto slots = shm::Segment::slots_for_capacity(buffer_size);
  const CreateInfo info{perm_mode, slots ? *slots : 256u};
  return attach_reply(rep, fds, name, IPC_MODE_READ | IPC_MODE_WRITE, &info);
}

int open(const char* name, uint32_t mode) noexcept {
  if (int rc = validate_channel_name(name); rc < 0) return rc;
  if ((mode & ~(IPC_MODE_READ | IPC_MODE_WRITE | IPC_MODE_NONBLOCK)) ||
      !(mode & (IPC_MODE_READ | IPC_MODE_WRITE)))
    return -EINVAL;
  Process& p = proc();
  std::lock_guard<std::recursive_mutex> lk(p.mu);
  registry::Request rq{};
  rq.op = static_cast<uint32_t>(registry::Op::kOpen);
  rq.flags = ((mode & IPC_MODE_READ) ? registry::kWantRead : 0) | ((mode & IPC_MODE_WRITE) ? registry::kWantWrite : 0);
  std::strcpy(rq.name, name);
  registry::Reply rep{};
  int fds[registry::kReplyFds];
  if (int rc = rpc(rq, &rep, fds); rc < 0) return rc;
  return attach_reply(rep, fds, name, mode, nullptr);
}

int close(uint32_t id) noexcept {
  Process& p = proc();
  std::unique_ptr<Handle> h;
  {
    std::lock_guard<std::recursive_mutex> lk(p.mu);
    Handle* raw = lookup(id);
    if (raw == nullptr) return -EBADF;
    p.table[id & (kMaxHandles - 1)].store(nullptr, std::memory_order_release);
    h.reset(raw);
    registry::Request rq{};
    rq.op = static_cast<uint32_t>(registry::Op::kClose);
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
  }
  return 0;
}

int send(uint32_t id, const MsgHeader& hdr, const void* payload) noexcept {
  Handle* h = lookup(id);
  if (h == nullptr) return -EBADF;
  if (!(h->mode & IPC_MODE_WRITE)) return -EBADF;
  if (hdr.size > IPC_MAX_PAYLOAD) return -EMSGSIZE;
  if (payload == nullptr && hdr.size != 0) return -EFAULT;
  return h->t->send(hdr, payload, (h->mode & IPC_MODE_NONBLOCK) ? 0 : -1);
}

int send_batch(uint32_t id, const MsgHeader* hdrs, const void* const* payloads, uint32_t n) noexcept {
  Handle* h = lookup(id);
  if (h == nullptr || !(h->mode & IPC_MODE_WRITE)) return -EBADF;
  if (n == 0) return 0;
  if (hdrs == nullptr || payloads == nullptr) return -EFAULT;
  for (uint32_t i = 0; i < n; ++i) {
    if (hdrs[i].size > IPC_MAX_PAYLOAD) return -EMSGSIZE;
    if (payloads[i] == nullptr && hdrs[i].size != 0) return -EFAULT;
  }
  return h->t->send_batch(hdrs, payloads, n, (h->mode & IPC_MODE_NONBLOCK) ? 0 : -1);
}

namespace {
// The reading handle for id and the wait it asks for, or -EBADF.
int reading(uint32_t id, int timeout_ms, Handle** out, int64_t* timeout_ns) {
  Handle* h = lookup(id);
  if (h == nullptr || !(h->mode & IPC_MODE_READ)) return -EBADF;
  if (h->mode & IPC_MODE_NONBLOCK) *timeout_ns = 0;
  else if (timeout_ms < 0) *timeout_ns = -1;
  else *timeout_ns = int64_t(timeout_ms) * 1000000;
  *out = h;
  return 0;
}

// A timed wait that runs out is -ETIMEDOUT; a poll (0) or non-blocking id is -EAGAIN.
int wait_result(int rc, int64_t timeout_ns) { return rc == -ETIMEDOUT && timeout_ns == 0 ? -EAGAIN : rc; }
}  // namespace

int receive(uint32_t id, MsgHeader* hdr, void* buf, uint32_t cap, int timeout_ms) noexcept {
  Handle* h;
  int64_t timeout_ns;
  if (int rc = reading(id, timeout_ms, &h, &timeout_ns); rc < 0) return rc;
  if (buf == nullptr && cap != 0) return -EFAULT;
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
  if (h == nullptr) return -EBADF;
  if (!(h->mode & IPC_MODE_READ)) return -EBADF;
  return h->t->notify_fd();
}

int loan(uint32_t id, shm::Loan* out) noexcept {
  Handle* h = lookup(id);
  if (h == nullptr) return -EBADF;
  if (h->ring == nullptr) return -EOPNOTSUPP;
  const int64_t timeout = (h->mode & IPC_MODE_NONBLOCK) ? 0 : -1;
  return h->bridge != nullptr ? h->bridge->loan(out, timeout) : h->ring->loan(out, timeout);
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
