#include "runtime/transport_factory.h"

#include <unistd.h>

#include <cstring>
#include <mutex>
#include <string>
#include <utility>

#include "base/rundir.h"
#include "ipc.h"
#include "runtime/handle_table.h"
#include "transports/bridge/bridge.h"
#include "transports/shm/ring.h"
#include "transports/shm/ring2.h"
#include "transports/socket/hub.h"
#include "transports/socket/pipe_client.h"
#include "transports/socket/socket_client.h"

namespace fwipc::core {

namespace {
// A client's inbox for SOCKET/PIPE channels, in messages.
constexpr uint32_t kClientInboxMsgs = 256;

// A ring v2 handle's requests after open, on its membership, through the process's
// registry connection (under the process lock: the connection is not thread-safe). A
// registry that restarted since the open knows the membership only once we rejoin it
// (kRejoin: the new registry adopted the channel); until then every request fails as if
// no registry answered, and the transport falls back to what it can do without one.
class RegistryPeers final : public shm::v2::Peers {
 public:
  // Made under the process lock, right after the open that gave `handle` on this connection.
  RegistryPeers(uint32_t handle, bool creator) : handle_(handle), serial_(proc().reg.serial()), creator_(creator) {}
  int ring_fd(uint32_t idx, uint64_t state) noexcept override { return fd_op(registry::kRing2Ring, idx, state); }
  int page_fd(uint32_t idx, uint64_t state) noexcept override { return fd_op(registry::kRing2Page, idx, state); }
  int reader_ready(uint32_t idx, uint64_t state) noexcept override {
    return op(registry::Op::kReaderReady, registry::Ring2Args{state, 0, idx, 0}, nullptr);
  }
  void evict(uint32_t reader_idx, uint64_t state, uint64_t cursor) noexcept override {
    (void)op(registry::Op::kEvict, registry::Ring2Args{state, cursor, reader_idx, 0}, nullptr);
  }
  void held(uint64_t instance_id, int32_t ring_index, uint64_t ring_state, int32_t reader_index,
            uint64_t reader_state) noexcept override {
    std::lock_guard<std::recursive_mutex> lk(proc().mu);
    held_ = registry::RejoinArgs{instance_id, ring_state, reader_state, ring_index, reader_index, creator_, 0};
    bound_ = true;
  }
  int leave() noexcept override {
    registry::Request rq{};
    rq.op = static_cast<uint32_t>(registry::Op::kClose);
    return call(rq, nullptr);
  }

 private:
  int fd_op(uint32_t kind, uint32_t idx, uint64_t state) noexcept {
    int fds[registry::kReplyFds];
    const int rc = op(registry::Op::kRingFd, registry::Ring2Args{state, 0, idx, kind}, fds);
    for (int i = 1; i < registry::kReplyFds; ++i)
      if (fds[i] >= 0) ::close(fds[i]);
    if (rc < 0) {
      if (fds[0] >= 0) ::close(fds[0]);
      return rc;
    }
    return fds[0] >= 0 ? fds[0] : -EPROTO;
  }
  int op(registry::Op o, const registry::Ring2Args& a, int* fds) noexcept {
    registry::Request rq{};
    rq.op = static_cast<uint32_t>(o);
    std::memcpy(rq.name, &a, sizeof a);
    return call(rq, fds);
  }
  int call(registry::Request& rq, int* fds) noexcept {
    if (fds != nullptr)
      for (int i = 0; i < registry::kReplyFds; ++i) fds[i] = -1;
    std::lock_guard<std::recursive_mutex> lk(proc().mu);
    registry::Reply rep{};
    rq.handle = handle_;
    // The registry that knew handle_ is gone: the number may be another id's now.
    int rc = rpc(rq, &rep, fds, serial_);
    if (rc == -EPIPE) {
      if (rejoin() < 0) return -EPIPE;
      rq.handle = handle_;
      rc = rpc(rq, &rep, fds, serial_);
    }
    return rc < 0 ? rc : rep.status;
  }
  // A membership for what we hold from the registry that answers now, which never starts
  // one for this (a registry with no channel to adopt could not answer). Under the lock.
  int rejoin() noexcept {
    if (!bound_) return -EPIPE;
    registry::Request rq{};
    rq.op = static_cast<uint32_t>(registry::Op::kRejoin);
    static_assert(sizeof held_ <= sizeof rq.name);
    std::memcpy(rq.name, &held_, sizeof held_);
    registry::Reply rep{};
    const int rc = rpc(rq, &rep, nullptr, 0, false);
    if (rc < 0 || rep.status < 0) return rc < 0 ? rc : rep.status;
    handle_ = rep.handle;
    serial_ = proc().reg.serial();
    return 0;
  }
  uint32_t handle_;
  uint64_t serial_;
  uint32_t creator_;
  registry::RejoinArgs held_{};
  bool bound_ = false;
};

}  // namespace

int transport_fds(const registry::Reply& rep, uint32_t mode, bool created) noexcept {
  if (rep.transport == registry::kTransportRing2)  // directory, bells, own ring, own page
    return 2 + ((mode & IPC_MODE_WRITE) ? 1 : 0) + ((mode & IPC_MODE_READ) ? 1 : 0);
  return rep.transport == static_cast<uint32_t>(TransportKind::kShmRing) ? 2 : 1;
}

Result<std::unique_ptr<Transport>> make_transport(const registry::Reply& rep, int* fds, const char* name, uint32_t mode,
                                                  const CreateInfo* created, pid_t self,
                                                  std::shared_ptr<shm::v2::Peers>* membership) {
  using R = Result<std::unique_ptr<Transport>>;
  const bool reader = mode & IPC_MODE_READ, writer = mode & IPC_MODE_WRITE;
  auto take = [fds](int i) { return std::exchange(fds[i], -1); };
  if (rep.transport == registry::kTransportRing2) {
    shm::v2::Roles2 roles;
    roles.channel = name;
    roles.dir_fd = take(0);
    roles.bells_fd = take(1);
    int at = 2;
    if (writer) {
      roles.ring_fd = take(at++);
      roles.ring_index = rep.writer_index;
      roles.ring_state = rep.writer_state;
    }
    if (reader) {
      roles.page_fd = take(at);
      roles.reader_index = rep.reader_index;
      roles.reader_state = rep.reader_state;
    }
    auto peers = std::make_shared<RegistryPeers>(rep.handle, created != nullptr);
    auto t = shm::v2::ShmRing2::open(roles, peers, self);
    if (!t) return R::error(t.error());
    *membership = std::move(peers);
    return std::unique_ptr<Transport>(std::move(t.value()));
  }
  switch (static_cast<TransportKind>(rep.transport)) {
    case TransportKind::kShmRing: {
      if (fds[0] < 0) return R::error(-EPROTO);
      auto seg = shm::Segment::attach(fds[0]);  // maps a duplicate
      if (!seg) return R::error(seg.error());
      shm::Roles roles;
      if (reader) roles.reader_index = rep.reader_index, roles.reader_state = rep.reader_state;
      if (writer) roles.writer_index = rep.writer_index, roles.writer_state = rep.writer_state;
      auto ring = std::make_unique<shm::ShmRing>(std::move(seg.value()), roles, self);
      if (created == nullptr) return std::unique_ptr<Transport>(std::move(ring));
      // The creator also serves processes of other uids, which never map the ring.
      if (fds[1] < 0) return R::error(-EPROTO);
      const sock::Owner owner{::geteuid(), ::getegid(), created->perm_mode};
      return std::unique_ptr<Transport>(
          std::make_unique<bridge::Bridge>(std::move(ring), take(1), owner, created->capacity_msgs, self));
    }
    case TransportKind::kSocket: {
      if (created != nullptr) {
        if (fds[0] < 0) return R::error(-EPROTO);
        const sock::Owner owner{::geteuid(), ::getegid(), created->perm_mode};
        auto hub = sock::Hub::create_socket(take(0), owner, created->capacity_msgs, self);
        if (!hub) return R::error(hub.error());
        hub.value()->set_creator_reads(reader);
        hub.value()->set_evict_after_ms(rep.overflow == IPC_OVERFLOW_EVICT ? rep.evict_after_ms : 0);
        return std::unique_ptr<Transport>(std::move(hub.value()));
      }
      const std::string path = runtime_dir() + "/" + name + ".sock";
      // A bridged QUEUE channel's reader names the ring entry the registry joined for it.
      const int conn = sock::SocketClient::connect_hub(path.c_str(), reader, writer, reader ? rep.reader_index : -1,
                                                       rep.reader_state);
      if (conn < 0) return R::error(conn);
      return std::unique_ptr<Transport>(
          std::make_unique<sock::SocketClient>(conn, reader, writer, kClientInboxMsgs, self));
    }
    case TransportKind::kPipe: {
      if (fds[0] < 0) return R::error(-EPROTO);
      if (created != nullptr) {
        const std::string prefix = runtime_dir() + "/" + name + ".fifo";
        auto hub = sock::Hub::create_pipe(take(0), prefix, created->capacity_msgs, self);
        if (!hub) return R::error(hub.error());
        hub.value()->set_creator_reads(reader);
        hub.value()->set_evict_after_ms(rep.overflow == IPC_OVERFLOW_EVICT ? rep.evict_after_ms : 0);
        return std::unique_ptr<Transport>(std::move(hub.value()));
      }
      const int rd_at = 1, wr_at = reader ? 2 : 1;  // in that order, those asked for
      if ((reader && fds[rd_at] < 0) || (writer && fds[wr_at] < 0)) return R::error(-EPROTO);
      int rc = reader ? sock::PipeClient::join(fds[0], frame::kJoin, rep.reader_state, self) : 0;
      if (writer && rc == 0) rc = sock::PipeClient::join(fds[0], frame::kWriterJoin, rep.writer_state, self);
      if (rc < 0) return R::error(rc);
      const int in_w = take(0), rd = reader ? take(rd_at) : -1;
      const int wr = writer ? take(wr_at) : -1;
      return std::unique_ptr<Transport>(std::make_unique<sock::PipeClient>(in_w, rd, wr, kClientInboxMsgs, self));
    }
    default: return R::error(-EPROTO);
  }
}

}  // namespace fwipc::core
