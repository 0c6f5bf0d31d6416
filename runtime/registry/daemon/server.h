// fwipc-registryd's state and its one class. The daemon is split by job, one file each:
//   loop.cc            event loop: accept, read requests, signals, timers, client death
//   dispatch.cc        what each request means: create/open/close/list, membership records
//   channel_shm.cc     what create/open/release mean for a QUEUE channel on the shm ring
//   channel_socket.cc  ... for a SOCKET channel (and a QUEUE channel's bridge socket)
//   channel_pipe.cc    ... for a PIPE channel: the FIFOs, named after members' PIDs
//   state.cc           registry.state: what a restarted registry adopts
//   sweep.cc           adopted channels' liveness, stale files in the runtime directory
//   quota.cc           per-uid usage against the policy's limits, the global caps' headroom,
//                      refused connections, the kQuota answer
//   main.cc            the executable
// Nothing here is linked into libfwipc.so: the library only spawns this executable.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/registry/daemon/policy.h"
#include "runtime/registry/protocol.h"
#include "runtime/registry/stale_files.h"
#include "transports/frame.h"
#include "transports/shm/directory.h"
#include "transports/shm/membership.h"
#include "transports/shm/ring.h"
#include "transports/transport.h"

namespace fwipc::registry {

struct ServerOptions {
  std::string runtime_dir;
  int idle_exit_ms = -1;    // exit after this long with no clients and no channels; < 0: never
  std::string policy_path;  // empty: $FWIPC_POLICY_FILE, else the default (policy.h)
  bool ring_v2 = false;     // QUEUE channels on ring v2 ($FWIPC_RING=2 at start)
};

// Runs until SIGTERM/SIGINT, a fatal error or idle exit. Returns 0, or 1 when another
// registry already holds the runtime directory's lock (not an error for an auto-start
// race), or -errno.
int run_server(const ServerOptions& opts);

// The protocol fuzzer's entry: one client session of a process-wide server for dir, its
// requests taken from data, released at the end as on a disconnect.
void fuzz_session(const std::string& dir, const uint8_t* data, size_t size);

// Whether fd's owner sealed it against writes (F_SEAL_FUTURE_WRITE): only then can no
// holder of a read-only descriptor reopen it writable through /proc (RING-V2.md section
// 2), so only then does the registry pass a ring on (channel_ring2.cc; reader pages are
// protected by their mode instead: 0600, their reader's uid's).
bool sealed_for_writes(int fd);

// Caps on what clients can make the registry allocate. The last kHeadroom of the clients
// and channels are kept for root and the owners of reserved names (Policy::owns_reserved):
// no uid, whatever its limits, can lock the system's services out.
inline constexpr size_t kMaxClients = 4096;
inline constexpr size_t kMaxChannels = 4096;
inline constexpr size_t kHeadroom = 410;  // 10% of each
inline constexpr size_t kMaxMembershipsPerClient = 1024;
// Refused connections held until they have read their Refusal (protocol.h); beyond this,
// or after kRefusedHoldMs, a refused connection is closed at once.
inline constexpr size_t kMaxRefused = 64;
inline constexpr int kRefusedHoldMs = 1000;
// PIPE writer FIFOs the registry holds a read end of until the creator's runtime takes them
// (Channel::keepers), across all channels: each is a descriptor and a FIFO, and a creator
// that never runs would otherwise let its writers pile them up. Past it, a writer's open
// is -ENOSPC.
inline constexpr size_t kMaxKeepers = 4096;
inline constexpr const char* kStateName = "registry.state";
inline constexpr int kSweepMs = 200;

// A QUEUE channel on ring v2 (channel_ring2.cc, RING-V2.md): the directory (mapped
// read-write here only, members get it read-only), the bells, every writer's ring (never
// mapped here after formatting) and every reader's page (mapped: the registry sets a
// reader's cursor for a ring it adds and reads them to know when a dead writer's ring is
// finished).
struct Ring2 {
  struct Mem {
    int fd = -1;
    void* mem = nullptr;
    uint64_t bytes = 0;
    uint64_t state = 0;  // the directory entry's, for rings and pages
    bool draining = false;
    int users = 0;  // rings: writer memberships of its process that write through it
    // A previous registry's member that has not rejoined (adopt_ring2): no connection
    // tells us it ended, sweep_ring2 checks its PID. A ring stays adopted: its process may
    // write on through ids that never rejoin, so it drains only when that process dies.
    bool adopted = false;
  };
  Mem dir, bells;
  shm::v2::DirWriter w;
  std::vector<Mem> rings;  // by ring index
  std::vector<Mem> pages;  // by reader index
  Ring2() = default;
  Ring2(const Ring2&) = delete;
  Ring2& operator=(const Ring2&) = delete;
  ~Ring2();
};

struct Channel {
  uint32_t id = 0;
  std::string name;   // empty once unlinked (creator closed or died)
  uint32_t type = 2;  // IPC_TYPE_*
  uid_t uid = 0;
  gid_t gid = 0;
  uint32_t mode = 0660;
  uint32_t capacity = 0;        // bytes asked for at creation
  uint32_t overflow = 0;        // IPC_OVERFLOW_*
  uint32_t evict_after_ms = 0;  // IPC_OVERFLOW_EVICT's bound
  TransportKind transport = TransportKind::kShmRing;
  shm::Segment seg;           // kShmRing
  std::unique_ptr<Ring2> v2;  // kShmRing on ring v2 (then seg is empty)
  std::string path;           // kSocket: the socket the creator's runtime serves; kPipe: the channel FIFO
  std::string call_path;      // NAME.call: request/reply, served by the creator's runtime
  // The stats page the creator's runtime publishes its queue counters in (transports/
  // stats.h): made here, passed to the creator and (read-only) to observers; never mapped.
  struct OwnedFd {
    int fd = -1;
    OwnedFd() = default;
    OwnedFd(const OwnedFd&) = delete;
    OwnedFd& operator=(const OwnedFd&) = delete;
    ~OwnedFd() {
      if (fd >= 0) ::close(fd);
    }
  } stats;
  int members = 0;
  uint32_t next_join = 1;  // PIPE: member FIFO numbers
  pid_t creator_pid = 0;
  uint64_t creator_start = 0;
  // Counted against uid (quota.cc): the channel while it is named, its memory until the
  // registry forgets it (the last membership closed).
  bool counted = false;
  uint64_t bytes = 0;
  // Taken over from a previous registry (state file): no membership stands for the
  // creator, so sweep() watches it instead.
  bool adopted = false;
  // PIPE: read ends of writers' FIFOs the creator's runtime has not opened yet, so that
  // what a writer sends waits in its FIFO even if the writer exits (see member_fifo).
  // orphan: the writer's membership is gone; the path goes with the read end.
  struct Keeper {
    int fd;
    bool orphan;
  };
  std::map<std::string, Keeper> keepers;

  Channel() = default;
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  ~Channel();
};

struct Membership {
  Channel* ch = nullptr;
  int32_t reader_index = -1;
  uint32_t reader_state = 0;
  int32_t writer_index = -1;
  uint32_t writer_state = 0;
  bool creator = false;
  bool creator_reads = true;   // creator_mode had IPC_MODE_READ
  std::string reader_fifo;     // PIPE readers: their FIFO, removed with the membership
  std::string writer_fifo;     // PIPE writers: the same
  bool remote_writer = false;  // QUEUE: writes through the creator's bridge
  uint64_t ring_state = 0;     // ring v2: the directory states of writer_index/reader_index
  uint64_t page_state = 0;
  uid_t uid = 0;       // the member's: counted against it (quota.cc)
  uint64_t bytes = 0;  // the queue a hub or bridge keeps for this reader
};

struct Client {
  int fd = -1;
  ucred cred{};
  uint64_t start_time = 0;
  uint32_t next_handle = 1;
  std::map<uint32_t, Membership> members;
  bool counted = false;  // a connection of its uid (quota.cc)
};

// What one uid holds in the registry, by QuotaKey (protocol.h).
struct Usage {
  uint64_t used[kQuotaKeys] = {};
  uint64_t refused = 0;
  Caller last{};  // its latest process to connect or ask: whose groups the limits follow
};

// Whether c may map a QUEUE channel's ring. A mapping is read-write (readers move their
// cursors in it), so its holder could write any sender PID: only the owner's uid, which
// owns the channel anyway, and root, which could do anything, get one.
inline bool shares_ring(const Client& c, const Channel& ch) { return c.cred.uid == ch.uid || c.cred.uid == 0; }

// The memory a SOCKET or PIPE hub (or a QUEUE channel's bridge) may queue for one reader,
// or as the creator's inbox: `slots` whole frames. Counted like a segment (quota.cc).
inline uint64_t hub_bytes(uint32_t slots) { return uint64_t(slots) * frame::kMaxFrame; }

// A socket file must be connectable by every class that may read or write; what each
// connection may do is then checked by the creator's runtime from its credentials.
uint32_t connect_mode(uint32_t mode);
// Whether a SOCK_SEQPACKET listener is bound at path.
bool socket_listened(const std::string& path);

class Server {
 public:
  explicit Server(ServerOptions o) : opts_(std::move(o)), policy_(Policy::builtin()) {}
  int run();
  // One client session fed from bytes instead of a socket (the protocol fuzzer).
  void fuzz_session(const uint8_t* data, size_t size);

 private:
  // loop.cc
  void accept_clients();
  void serve(Client& c);
  void drop_client(int fd);
  bool tick();
  void reply(int fd, const void* r, size_t len, const int* pass, int npass);
  // dispatch.cc
  void handle(Client& c, Request& rq, ssize_t n);
  Reply create(Client& c, const Request& rq);
  Reply open(Client& c, const Request& rq);
  Reply close(Client& c, const Request& rq);
  Reply rejoin(Client& c, const Request& rq);  // kRejoin (ring v2 after a restart)
  void list(Client& c, const Request& rq);
  void release(Membership& m);
  void unlink_name(Channel* ch);
  // Attaches fd to the current reply, in order; `ours`: opened only to be passed on, so
  // closed once the reply is sent.
  void pass(int fd, bool ours);
  // channel_*.cc: each returns 0 or -errno (create_shm: 1 when no segment can be made,
  // so the channel falls back to a socket), and passes the reply's descriptors in the
  // order protocol.h documents.
  int create_shm(Client& c, Channel& ch, uint32_t slots, bool creator_reads, Membership& m);
  int open_shm(Client& c, Channel& ch, bool want_read, bool want_write, Membership& m);
  void release_shm(Membership& m);
  // Ring v2 (channel_ring2.cc): create/open pass [directory, bells, own ring, own page];
  // the ops members use after open; releasing a membership; freeing finished rings.
  int create_ring2(Client& c, Channel& ch, uint32_t creator_mode, Membership& m);
  int open_ring2(Client& c, Channel& ch, bool want_read, bool want_write, Membership& m);
  // The memory a ring v2 membership makes: its ring (writers), its page (readers).
  static uint64_t ring2_bytes(const Channel& ch, bool want_read, bool want_write);
  Reply ring2_op(Client& c, const Request& rq);
  void release_ring2(Membership& m);
  void close_ring2(Channel& ch);
  bool settle_rings(Channel& ch);  // whether draining rings remain
  // After a restart: takes over a ring v2 channel from its members' descriptor tables
  // (false: it could not, and is forgotten); kRejoin gives such a member a membership for
  // what it holds; sweep_ring2 ends what members that never rejoin leave behind (whether
  // any is left to watch).
  bool adopt_ring2(Channel& ch, uint64_t instance_id);
  int rejoin_ring2(Client& c, Channel& ch, const RejoinArgs& a, Membership& m);
  bool sweep_ring2(Channel& ch);
  int create_socket(Channel& ch);
  int create_call_socket(Channel& ch);
  int create_pipe(Channel& ch);
  int open_pipe(Client& c, Channel& ch, bool want_read, bool want_write, Membership& m);
  void release_pipe(Membership& m);
  void settle_keepers(Channel& ch, bool all);
  // state.cc
  void save_state();
  void restore_state();
  // sweep.cc
  bool sweep();
  int clean_dir();
  // quota.cc. amount: what a request would add, by QuotaKey. 0, or -EDQUOT (counted as a
  // refusal of c's uid) when any key would pass c's limit.
  int admit(const Client& c, const uint64_t (&amount)[kQuotaKeys]);
  void charge(uid_t uid, uint32_t key, int64_t delta);
  bool privileged(const Caller& c) const { return policy_.owns_reserved(c); }
  // Whether a new client of cred may be served; if not, it gets a Refusal and is held
  // (bounded) until it has read it.
  bool admit_client(int fd, const ucred& cred);
  void refuse_client(int fd, int status, const std::string& detail);
  void close_refused(int fd);
  bool expire_refused();  // whether any are still held
  void quota(Client& c, const Request& rq);
  // Erases channel id (no membership left), releasing its memory from its uid's count.
  void forget_channel(uint32_t id);
  size_t keepers_held() const;

  ServerOptions opts_;
  Policy policy_;
  int listen_fd_ = -1;
  int signal_fd_ = -1;
  int ep_ = -1;
  uint32_t next_channel_ = 1;
  int pass_[kReplyFds] = {};  // descriptors for the current reply
  bool pass_ours_[kReplyFds] = {};
  int npass_ = 0;
  uint64_t sweeps_ = 0;
  bool ticking_ = false;  // run tick() every kSweepMs
  std::map<int, std::unique_ptr<Client>> clients_;
  std::map<uid_t, Usage> usage_;
  std::map<int, int64_t> refused_;  // refused connections: fd -> when to close it
  uint64_t refused_total_ = 0;      // refusals since start, global caps included
  int64_t last_refusal_log_ = 0;
  std::map<std::string, Channel*> by_name_;
  std::map<uint32_t, std::unique_ptr<Channel>> channels_;
};

}  // namespace fwipc::registry
