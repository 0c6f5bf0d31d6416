// The hub: the creator's side of a SOCKET or PIPE channel, and the socket side of a QUEUE
// channel's bridge. It stamps every message with the sender's PID as the kernel (SOCKET)
// or the registry (PIPE) names it, delivers to the creator and relays to the readers.
// Back-pressure: while any reader's relay queue or the creator's inbox is full, the hub
// stops reading from writers, whose kernel buffers then fill and block them.
// The hub does its work inside the creator's calls on the channel (receive, send, or a
// poll on its descriptor), the way a QUEUE creator holds writers back by not reading.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "base/time.h"
#include "fwipc/types.hpp"
#include "transports/frame.h"
#include "transports/progress/progress.h"
#include "transports/shm/stats.h"
#include "transports/socket/inbox.h"
#include "transports/transport.h"

namespace fwipc::sock {

// Who may do what, as for a file: owner, group (primary or supplementary), other.
struct Owner {
  uid_t uid;
  gid_t gid;
  uint32_t mode;
};

class Hub final : public Transport, private progress::Work {
 public:
  // SOCKET: the listening socket accepts connections; each says in its hello whether it
  // is a writer and/or a reader, and the hub checks that against `owner`.
  // PIPE: the channel FIFO carries only JOIN frames. Each reader gets frames through its
  // own FIFO, fifo_prefix + ".r" + PID + "." + join id; each writer sends through its own,
  // fifo_prefix + ".w" + PID + "." + join id. Only the registry creates files in the
  // runtime directory, and it gives a FIFO to that PID alone, so frames read from a
  // writer's FIFO are that process's: the hub stamps the PID from the name, as SOCKET
  // stamps SO_PEERCRED.
  // BRIDGE: as SOCKET, but writers' frames go to `sink` (into the QUEUE ring) instead of
  // being routed, and a reader must name, in its hello, a ring reader entry that admit()
  // accepts for its PID; the bridge feeds it through deliver().
  enum class Mode : uint8_t { kSocket, kPipe, kBridge };

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

  // Each takes ownership of its descriptor (closed on failure too) and fails only if the
  // hub's epoll set cannot be made.
  static Result<std::unique_ptr<Hub>> create_socket(int listen_fd, Owner owner, uint32_t capacity_msgs,
                                                    pid_t self) noexcept;
  static Result<std::unique_ptr<Hub>> create_bridge(int listen_fd, Owner owner, uint32_t capacity_msgs, pid_t self,
                                                    BridgeHooks hooks) noexcept;
  static Result<std::unique_ptr<Hub>> create_pipe(int in_fd, std::string fifo_prefix, uint32_t capacity_msgs,
                                                  pid_t self) noexcept;

  ~Hub() override;
  TransportKind kind() const noexcept override {
    return mode_ == Mode::kPipe ? TransportKind::kPipe : TransportKind::kSocket;
  }
  int send(const MsgHeader& hdr, const void* payload, int64_t timeout_ns) noexcept override;
  int receive(MsgHeader* hdr, void* buf, uint32_t cap, int64_t timeout_ns) noexcept override;
  int notify_fd() noexcept override;
  uint64_t evictions() const noexcept override {
    std::lock_guard<std::mutex> lk(mu_);
    return evictions_;
  }
  bool was_evicted() const noexcept override {
    std::lock_guard<std::mutex> lk(mu_);
    return creator_evicted_;
  }
  // Descriptors only, closing them is local; the progress thread is the parent's.
  void forget_after_fork() noexcept override { registered_ = false; }

  // A creator without IPC_MODE_READ: nothing is kept for it, so it never holds writers
  // back. Set once, before the first message.
  void set_creator_reads(bool reads) noexcept {
    std::lock_guard<std::mutex> lk(mu_);
    creator_reads_ = reads;
  }

  // IPC_OVERFLOW_EVICT (SOCKET, PIPE): a reader (the creator's inbox included) whose queue
  // keeps writers held back for more than ms without taking a frame is dropped: it gets
  // what is queued for it, then a kEvicted frame. 0: never (IPC_OVERFLOW_BLOCK). Set once,
  // before the first message.
  void set_evict_after_ms(uint32_t ms) noexcept;
  // BRIDGE: the ring evicted reader fd's entry: it gets what is queued, then kEvicted.
  void evict_reader(int fd) noexcept;

  void set_stats(std::shared_ptr<stats::Mapping> page) noexcept override;
  // Counters (bounded queues a client can make this process grow), for ipc_channel_info
  // and the stats page.
  struct Stats {
    uint64_t queued_frames;  // now, in every reader's relay queue and the creator's inbox
    uint64_t queued_bytes;
    uint64_t high_water;     // the longest single queue ever (frames)
    uint64_t evictions;      // readers evicted (IPC_OVERFLOW_EVICT)
    uint64_t dropped_peers;  // peers disconnected: malformed frames, failed writes
    uint32_t peers;
    uint32_t held_back;  // 1 while writers are held back (reading from them is off)
  };
  Stats stats() const noexcept;

  // Bridge mode: one round of hub work, waiting up to timeout_ms; returns how many events
  // it handled.
  int poll(int timeout_ms) noexcept {
    std::lock_guard<std::mutex> lk(mu_);
    return poll_once(timeout_ms);
  }
  std::vector<ReaderView> bridged_readers() const;
  // Queues a message for reader fd (sender as given) and sends what fits.
  void deliver(int fd, const MsgHeader& h, const char* payload) noexcept;

 private:
  // How the hub talks to one peer; which of these a peer is fixes what it may do. No
  // default member initialisers: value-initialised ({}) to zero, so std::variant can
  // default-construct them inside the still-incomplete Hub.
  struct SocketPeer {                   // a SOCK_SEQPACKET connection (SOCKET, BRIDGE): frames both ways
    bool hello;                         // nothing but a hello is accepted before it
    uint16_t intent;                    // frame::kHelloRead | kHelloWrite, from the hello
    uint32_t entry_index, entry_state;  // BRIDGE: the reader's ring entry
  };
  struct ReaderFifo {  // PIPE: a reader's own FIFO, only ever written
    uint32_t join;     // the registry's join id in its name
  };
  struct WriterFifo {  // PIPE: a writer's own FIFO, only ever read, as a byte stream
    uint32_t join;
    frame::StreamDecoder dec;
    bool eof;  // every write end is closed and the FIFO is empty
  };
  using PeerIo = std::variant<SocketPeer, ReaderFifo, WriterFifo>;

  struct Peer {
    int fd;
    ucred cred;  // FIFOs: only pid is known (from the name)
    PeerIo io;
    uint32_t events = 0;           // the epoll interest registered; 0: not in the set
    std::deque<frame::Frame> out;  // readers: frames not yet written
    // Readers: when they joined (their hello or JOIN, at most the hub's clock then). Only
    // frames sent at or after it are routed to them, as a QUEUE reader joins at the tail.
    uint64_t joined_ns = 0;
    // IPC_OVERFLOW_EVICT: since when its queue has held writers back with no frame taken
    // (0: not now); evicted: only kEvicted is left to write, nothing more is routed to it.
    int64_t held_since = 0;
    bool evicted = false;

    bool reads() const noexcept;  // the hub relays messages to it
    bool writes() const noexcept;
  };

  // Connections and FIFOs served at once: each costs the creator a descriptor and a queue,
  // and no client may make it allocate without bound.
  static constexpr size_t kMaxPeers = 4096;

  Hub(Mode mode, int fd, Owner owner, uint32_t cap, pid_t self) noexcept;
  static Result<std::unique_ptr<Hub>> start(std::unique_ptr<Hub> hub) noexcept;
  int poll_once(int timeout_ms) noexcept;
  void take_newcomers() noexcept;
  // On the runtime's progress thread (SOCKET, PIPE): the hub's work whatever the creator
  // is doing, so a creator busy elsewhere never leaves its readers waiting.
  void progress() noexcept override;
  // Waits for the progress thread's next round (or, without one, for hub work) until the
  // deadline, with mu_ released meanwhile.
  void wait_round(std::unique_lock<std::mutex>& lk, const Deadline& deadline) noexcept;
  // PIPE (hub_pipe.cc)
  void read_control() noexcept;
  void join(const frame::Frame& f, bool writer) noexcept;
  void read_writer(Peer& p, WriterFifo& w) noexcept;
  void route_from(Peer& p, WriterFifo& w) noexcept;
  bool route_buffered() noexcept;
  // SOCKET and BRIDGE
  void accept_peers() noexcept;
  void read_peer(Peer& p, SocketPeer& s, bool hello_only) noexcept;
  bool permitted(const ucred& c, bool read, bool write) const noexcept;
  // Every mode
  void flush(Peer& p) noexcept;
  void flush_all() noexcept;
  void drop(int fd) noexcept;
  Peer& add_peer(Peer p) noexcept;
  void route(const frame::Frame& f) noexcept;
  bool backlogged() const noexcept;
  bool any_queue_at(size_t n) const noexcept;
  void set_interest(Peer& p) noexcept;
  void update_inbound() noexcept;
  void switch_inbound() noexcept;
  void inbox_changed() noexcept;
  // IPC_OVERFLOW_EVICT: stamps the readers that hold writers back, evicts those held past
  // the bound (true if any), arms evict_fd_ for the next one due. From update_inbound().
  bool check_evictions() noexcept;
  void evict(Peer& p) noexcept;
  Stats stats_locked() const noexcept;
  // Into the stats page: now if kPublishNs have passed since the last time, else once the
  // pub_fd_ timer fires (so the last change is never left out).
  void publish() noexcept;
  void note_depth(size_t n) noexcept {
    if (n > high_water_) high_water_ = n;
  }

  const Mode mode_;
  const int listen_fd_;           // the listening socket, or the channel FIFO (PIPE)
  std::string fifo_prefix_;       // PIPE
  frame::StreamDecoder decoder_;  // PIPE: the channel FIFO
  uint64_t rejected_ = 0;         // PIPE: malformed bytes, and frames of a kind a FIFO may not carry
  BridgeHooks bridge_{};          // BRIDGE
  // Every member below is guarded by mu_: the creator's threads and the progress thread
  // both work the hub. cv_ is notified after each progress round.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool registered_ = false;  // with the progress thread
  int io_ep_ = -1;           // peers and the listening socket/FIFO: what the hub has to do
  int ep_ = -1;              // notify_fd(): io_ep_ plus evfd_
  int kick_fd_ = -1;         // in io_ep_: PIPE frames buffered while inbound reading was off can move
  int evfd_ = -1;            // made on the first notify_fd(): set while the inbox holds messages
  bool ev_set_ = false;
  bool inbound_on_ = true;        // reading from writers (off under back-pressure)
  bool creator_reads_ = true;     // false: a pure writer, never a reader, never holds writers back
  bool creator_evicted_ = false;  // the creator's inbox was evicted: receive ends in -ENOBUFS
  int64_t inbox_held_since_ = 0;  // as Peer::held_since, for the creator's inbox
  int64_t evict_ns_ = 0;          // IPC_OVERFLOW_EVICT's bound; 0: block
  int evict_fd_ = -1;             // in io_ep_: a timerfd for the next eviction due
  bool evict_armed_ = false;
  uint64_t evictions_ = 0;
  uint64_t held_back_times_ = 0;
  std::shared_ptr<stats::Mapping> stats_;
  int pub_fd_ = -1;  // in io_ep_: a timerfd for the next publication
  bool pub_armed_ = false;
  int64_t published_ns_ = 0;
  uint64_t dropped_ = 0;
  size_t high_water_ = 0;
  const Owner owner_;
  const uint32_t cap_;
  const uint32_t pid_;
  std::map<int, Peer> peers_;    // by descriptor
  std::set<int> hello_pending_;  // SOCKET, BRIDGE: accepted connections whose hello is unread
  // When accept_peers()/read_control() last started: every reader whose open() returned
  // before then is known (its hello or JOIN was written before its open() returned).
  uint64_t newcomers_ns_ = 0;
  Inbox inbox_;
};

}  // namespace fwipc::sock
