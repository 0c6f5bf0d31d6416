// SOCKET transport: the channel's creator hosts a SOCK_SEQPACKET socket (bound by the
// registry with the channel's mode and handed over), stamps every message with the
// connection's SO_PEERCRED PID, delivers to itself and relays to the other readers.
// Back-pressure: while any reader's relay queue or the creator's inbox is full, the hub
// stops reading from writers, whose kernel buffers then fill and block them.
// The hub does its work inside the creator's calls on the channel (receive, send, or a
// poll on its descriptor), the way a QUEUE creator holds writers back by not reading.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "transports/frame.h"
#include "transports/socket/inbox.h"
#include "transports/socket/pipe_client.h"
#include "transports/socket/socket_client.h"
#include "transports/transport.h"

namespace fwipc::sock {

// Who may do what, as for a file: owner, group (primary or supplementary), other.
struct Owner {
  uid_t uid;
  gid_t gid;
  uint32_t mode;
};

// The creator's side of a SOCKET or PIPE channel.
// SOCKET: listen_fd accepts connections; each is a writer and/or a reader.
// PIPE: in_fd is the channel FIFO, which carries only JOIN frames. Each reader gets frames
// through its own FIFO, fifo_prefix + ".r" + PID + "." + join id; each writer sends through
// its own, fifo_prefix + ".w" + PID + "." + join id. Only the registry creates files in the
// runtime directory, and it gives a FIFO to that PID alone, so frames read from a writer's
// FIFO are that process's: the hub stamps the PID from the name, as SOCKET stamps
// SO_PEERCRED.
class Hub final : public Transport {
 public:
  // Bridge mode: the hub of a QUEUE channel's creator for members of another uid (see
  // transports/bridge). Writers' frames go to `sink` instead of being routed, and a reader
  // must name, in its hello, a ring reader entry that admit() accepts for its PID.
  struct BridgeHooks {
    std::deque<frame::Frame>* sink;
    bool (*admit)(void* ctx, pid_t pid, uint32_t index, uint32_t state);
    void* ctx;
  };
  // A bridged reader, for the bridge to fill its queue from the ring.
  struct ReaderView {
    int fd;
    pid_t pid;
    uint32_t index, state;
    size_t room;  // frames its queue takes before it counts as full
  };

  static Hub* socket_hub(int listen_fd, Owner owner, uint32_t capacity_msgs, pid_t self) noexcept;
  static Hub* bridge_hub(int listen_fd, Owner owner, uint32_t capacity_msgs, pid_t self, BridgeHooks hooks) noexcept;
  static Hub* pipe_hub(int in_fd, std::string fifo_prefix, uint32_t capacity_msgs, pid_t self) noexcept;
  ~Hub() override;
  TransportKind kind() const noexcept override { return pipe_ ? TransportKind::kPipe : TransportKind::kSocket; }
  int send(const MsgHeader& hdr, const void* payload, int64_t timeout_ns) noexcept override;
  int receive(MsgHeader* hdr, void* buf, uint32_t cap, int64_t timeout_ns) noexcept override;
  int notify_fd() noexcept override;
  void forget_after_fork() noexcept override;

  // Bridge mode: one round of hub work without waiting; returns how many events it handled.
  int poll(int timeout_ms) noexcept { return poll_once(timeout_ms); }
  std::vector<ReaderView> bridged_readers() const;
  // Queues a message for reader fd (sender as given) and sends what fits.
  void deliver(int fd, const MsgHeader& h, const char* payload) noexcept;

 private:
  struct Peer {
    int fd;
    ucred cred;
    bool hello = false;
    bool reader = false;
    bool writer = false;
    bool want_out = false;    // EPOLLOUT registered
    bool registered = true;   // in the epoll set
    bool out_only = false;    // a PIPE reader's FIFO: never read from
    bool in_fifo = false;     // a PIPE writer's FIFO: only read from
    bool eof = false;         // in_fifo: every write end is closed
    uint32_t join = 0;        // PIPE: the registry's join id of its FIFO
    uint32_t entry_index = 0, entry_state = 0;  // bridge mode: the reader's ring entry
    frame::StreamDecoder dec;  // in_fifo: the writer's byte stream
    std::deque<frame::Frame> out;
  };
  Hub(int fd, bool pipe, Owner owner, uint32_t cap, pid_t self) noexcept;
  int poll_once(int timeout_ms) noexcept;
  void read_control() noexcept;
  void join(const frame::Frame& f, bool writer) noexcept;
  void read_writer(Peer& p) noexcept;
  void route_from(Peer& p) noexcept;
  void accept_peers() noexcept;
  void read_peer(Peer& p, bool hello_only) noexcept;
  void flush(Peer& p) noexcept;
  void flush_all() noexcept;
  void drop(int fd) noexcept;
  void route(const frame::Frame& f) noexcept;
  bool backlogged() const noexcept;
  bool any_queue_at(size_t n) const noexcept;
  void set_interest(Peer& p) noexcept;
  void update_inbound() noexcept;
  void inbox_changed() noexcept;
  bool permitted(const ucred& c, bool read, bool write) const noexcept;

  int listen_fd_;  // the listening socket, or the channel FIFO (PIPE)
  bool pipe_;
  std::string fifo_prefix_;
  frame::StreamDecoder decoder_;  // the channel FIFO
  uint64_t rejected_ = 0;  // PIPE: malformed bytes, and frames of a kind a FIFO may not carry
  int ep_ = -1;
  int evfd_ = -1;
  bool ev_set_ = false;
  bool inbound_on_ = true;
  Owner owner_;
  uint32_t cap_;
  uint32_t pid_;
  std::map<int, Peer> peers_;
  Inbox inbox_;
  BridgeHooks bridge_{};  // sink == nullptr: not a bridge
};

}  // namespace fwipc::sock
