#include "runtime/registry/server.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "base/unixsock.h"
#include "base/time.h"
#include "base/names.h"
#include "base/perm.h"
#include "base/proc.h"
#include "base/rundir.h"
#include "runtime/include/ipc.h"
#include "runtime/registry/protocol.h"
#include "transports/frame.h"
#include "transports/shm/membership.h"
#include "transports/transport.h"

namespace fwipc::registry {
namespace {

// Caps on what one client can make the registry allocate.
constexpr size_t kMaxClients = 4096;
constexpr size_t kMaxChannels = 4096;
constexpr size_t kMaxMembershipsPerClient = 1024;

struct Channel {
  uint32_t id = 0;
  std::string name;  // empty once unlinked (creator closed or died)
  uint32_t type = IPC_TYPE_QUEUE;
  uid_t uid = 0;
  gid_t gid = 0;
  uint32_t mode = 0660;
  uint32_t capacity = 0;
  TransportKind transport = TransportKind::kShmRing;
  shm::Segment seg;     // kShmRing
  std::string path;     // kSocket: the socket file the creator's runtime serves
  int members = 0;
  uint32_t next_join = 1;  // PIPE: reader FIFO numbers
  pid_t creator_pid = 0;
  uint64_t creator_start = 0;
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
  ~Channel() {
    for (const auto& [path, k] : keepers) ::close(k.fd);
  }
};

constexpr const char* kStateName = "registry.state";
constexpr int kSweepMs = 200;

// Whether a SOCK_SEQPACKET listener is bound at path.
bool socket_listened(const std::string& path) {
  sockaddr_un a;
  if (unix_address(path, &a) < 0) return false;
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return true;  // cannot tell: keep it
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 || errno == EAGAIN;
  ::close(fd);
  return ok;
}

// A socket file must be connectable by every class that may read or write; what each
// connection may do is then checked by the creator's runtime from its credentials.
uint32_t connect_mode(uint32_t mode) {
  uint32_t m = 0;
  for (int shift : {6, 3, 0})
    if ((mode >> shift) & 6) m |= 6u << shift;
  return m;
}

// Binds and listens on path for a SOCKET channel. The listening descriptor, or -errno.
int bind_channel_socket(const std::string& path, uint32_t mode, uid_t uid, gid_t gid) {
  sockaddr_un a;
  if (int rc = unix_address(path, &a); rc < 0) return rc;
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  ::unlink(path.c_str());  // left by a crashed creator: the name is free in our map
  const mode_t old = ::umask(0777);  // no window in which the file is wider than asked
  const int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::umask(old);
  if (rc != 0 || ::chmod(path.c_str(), connect_mode(mode)) != 0 ||
      (::geteuid() == 0 && ::chown(path.c_str(), uid, gid) != 0) || ::listen(fd, 512) != 0) {
    const int e = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return -e;
  }
  return fd;
}

struct Membership {
  Channel* ch;
  int32_t reader_index;
  uint32_t reader_state;
  int32_t writer_index;
  uint32_t writer_state;
  bool creator;
  std::string reader_fifo;  // PIPE readers: their FIFO, removed with the membership
  std::string writer_fifo;  // PIPE writers: the same
  bool remote_writer = false;  // QUEUE: writes through the creator's bridge
};

// mkfifo with exactly `mode` (no umask window), owned by uid/gid when we are root.
int make_fifo(const std::string& path, uint32_t mode, uid_t uid, gid_t gid) {
  ::unlink(path.c_str());  // left by a crashed creator: the name is free in our map
  const mode_t old = ::umask(0777);
  int rc = ::mkfifo(path.c_str(), 0);
  ::umask(old);
  if (rc == 0) rc = ::chmod(path.c_str(), mode);
  if (rc == 0 && ::geteuid() == 0) rc = ::chown(path.c_str(), uid, gid);
  if (rc != 0) {
    const int e = errno;
    ::unlink(path.c_str());
    return -e;
  }
  return 0;
}

// A new FIFO of channel ch for one member, path ch.path + infix + "." + join id (the next
// free one), opened with `flags`. With O_WRONLY, a read end is also opened and kept in
// ch.keepers, so that writes succeed before the creator's runtime opens the FIFO. *join and
// *path receive the id and the path. Returns the descriptor or -errno.
int member_fifo(Channel& ch, const std::string& infix, int flags, uint32_t* join, std::string* path) {
  std::string p;
  uint32_t id;
  // An adopted channel restarts numbering: skip FIFOs of members joined before.
  struct stat st;
  do {
    id = ch.next_join++;
    p = ch.path + infix + "." + std::to_string(id);
  } while (::lstat(p.c_str(), &st) == 0);
  if (int rc = make_fifo(p, 0600, ch.uid, ch.gid); rc < 0) return rc;
  // O_RDONLY first: a FIFO opens for writing only while it has a reader.
  const int k = flags == O_WRONLY ? ::open(p.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1;
  const int fd = flags != O_WRONLY || k >= 0 ? ::open(p.c_str(), flags | O_NONBLOCK | O_CLOEXEC) : -1;
  if (fd < 0) {
    const int e = errno;
    if (k >= 0) ::close(k);
    ::unlink(p.c_str());
    return -e;
  }
  if (k >= 0) ch.keepers[p] = Channel::Keeper{k, false};
  *join = id;
  *path = std::move(p);
  return fd;
}

struct Client {
  int fd = -1;
  ucred cred{};
  uint64_t start_time = 0;
  uint32_t next_handle = 1;
  std::map<uint32_t, Membership> members;
};

}  // namespace

int remove_stale_files(const std::string& dir, const std::vector<std::string>& in_use) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return -errno;
  int removed = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    const bool ours = (n.size() > 5 && n.compare(n.size() - 5, 5, ".sock") == 0 && n != kSocketName) ||
                      (n.size() > 5 && n.compare(n.size() - 5, 5, ".fifo") == 0) || n.find(".fifo.") != std::string::npos;
    if (!ours) continue;
    // A member's FIFO carries its PID: one whose member lives may not be opened by the
    // creator's runtime yet (a restart between open and JOIN), so it stays.
    const size_t r = n.find(".fifo.r"), w = n.find(".fifo.w");
    if (const size_t at = r != std::string::npos ? r : w; at != std::string::npos) {
      const long pid = std::strtol(n.c_str() + at + 7, nullptr, 10);
      if (pid > 0 && process_alive(static_cast<pid_t>(pid), 0)) continue;
    }
    const std::string path = dir + "/" + n;
    if (std::find(in_use.begin(), in_use.end(), path) != in_use.end()) continue;
    if (::unlink(path.c_str()) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

namespace {

bool permitted(const Client& c, const Channel& ch, bool want_read, bool want_write) {
  return mode_permits(Caller{c.cred.pid, c.cred.uid, c.cred.gid}, ch.uid, ch.gid, ch.mode, want_read, want_write);
}

// Whether c may map a QUEUE channel's ring. A mapping is read-write (readers move their
// cursors in it), so its holder could write any sender PID: only the owner's uid, which
// owns the channel anyway, and root, which could do anything, get one.
bool shares_ring(const Client& c, const Channel& ch) { return c.cred.uid == ch.uid || c.cred.uid == 0; }

class Server {
 public:
  explicit Server(ServerOptions o) : opts_(std::move(o)) {}
  int run();
  // One client session fed from bytes instead of a socket (the protocol fuzzer).
  void fuzz_session(const uint8_t* data, size_t size);

 private:
  void accept_clients();
  void serve(Client& c);
  void handle(Client& c, Request& rq, ssize_t n);
  void drop_client(int fd);
  Reply create(Client& c, const Request& rq);
  Reply open(Client& c, const Request& rq);
  // Attaches fd to the current reply, in order; `ours`: opened only to be passed on, so
  // closed once the reply is sent.
  void pass(int fd, bool ours);
  Reply close(Client& c, const Request& rq);
  void list(Client& c, const Request& rq);
  void unlink_name(Channel* ch);
  void save_state();
  void restore_state();
  bool sweep();
  bool tick();
  void settle_keepers(Channel& ch, bool all);
  int clean_dir();
  void release(Membership& m);
  void reply(int fd, const void* r, size_t len, const int* pass, int npass);

  ServerOptions opts_;
  int listen_fd_ = -1;
  int ep_ = -1;
  uint32_t next_channel_ = 1;
  int pass_[kReplyFds] = {};  // descriptors for the current reply
  bool pass_ours_[kReplyFds] = {};
  int npass_ = 0;
  uint64_t sweeps_ = 0;
  bool ticking_ = false;  // run tick() every kSweepMs
  std::map<int, std::unique_ptr<Client>> clients_;
  std::map<std::string, Channel*> by_name_;
  std::map<uint32_t, std::unique_ptr<Channel>> channels_;
};

int Server::run() {
  if (int rc = ensure_dir(opts_.runtime_dir); rc < 0) return rc;
  const std::string lock_path = opts_.runtime_dir + "/" + kLockName;
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return -errno;
  // The lock is the liveness token: whoever holds it is the registry of this directory.
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) return errno == EWOULDBLOCK ? 1 : -errno;
  restore_state();
  clean_dir();  // everything a crash left that no adopted channel uses

  const std::string path = opts_.runtime_dir + "/" + kSocketName;
  sockaddr_un a;
  if (int rc = unix_address(path, &a); rc < 0) return rc;
  listen_fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) return -errno;
  ::unlink(path.c_str());  // stale from a dead registry: we hold the lock
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -errno;
  ::chmod(path.c_str(), 0666);  // access is checked per request with SO_PEERCRED
  if (::listen(listen_fd_, 128) != 0) return -errno;

  ep_ = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listen_fd_;
  ::epoll_ctl(ep_, EPOLL_CTL_ADD, listen_fd_, &ev);

  int64_t idle_since = monotonic_ns();
  ticking_ = !channels_.empty();
  for (;;) {
    if (ticking_) ticking_ = tick();
    const bool idle = clients_.empty() && channels_.empty();
    if (!idle) idle_since = monotonic_ns();
    int timeout = ticking_ ? kSweepMs : -1;
    if (opts_.idle_exit_ms >= 0 && idle) {
      const int64_t left = opts_.idle_exit_ms - (monotonic_ns() - idle_since) / 1000000;
      if (left <= 0) break;
      timeout = ticking_ ? std::min<int>(timeout, static_cast<int>(left)) : static_cast<int>(left);
    }
    epoll_event evs[64];
    const int n = ::epoll_wait(ep_, evs, 64, timeout);
    if (n < 0 && errno != EINTR) return -errno;
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.fd == listen_fd_) {
        accept_clients();
        continue;
      }
      auto it = clients_.find(evs[i].data.fd);
      if (it == clients_.end()) continue;
      if (evs[i].events & EPOLLIN) serve(*it->second);
      else drop_client(evs[i].data.fd);
    }
  }
  ::unlink(path.c_str());
  return 0;
}

void Server::accept_clients() {
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    auto c = std::make_unique<Client>();
    socklen_t len = sizeof c->cred;
    if (clients_.size() >= kMaxClients || ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) != 0) {
      ::close(fd);
      continue;
    }
    c->fd = fd;
    c->start_time = process_start_time(c->cred.pid);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    clients_[fd] = std::move(c);
  }
}

void Server::reply(int fd, const void* r, size_t len, const int* pass, int npass) {
  iovec iov{const_cast<void*>(r), len};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char ctl[CMSG_SPACE(kReplyFds * sizeof(int))];
  if (npass > 0) {
    m.msg_control = ctl;
    m.msg_controllen = CMSG_SPACE(npass * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(npass * sizeof(int));
    std::memcpy(CMSG_DATA(c), pass, npass * sizeof(int));
  }
  // A client that does not read its replies only hurts itself: never block on it.
  (void)::sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void Server::serve(Client& c) {
  for (;;) {
    Request rq;
    const ssize_t n = ::recv(c.fd, &rq, sizeof rq, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
      drop_client(c.fd);
      return;
    }
    handle(c, rq, n);
  }
}

// n: the datagram's real length (MSG_TRUNC), of which at most sizeof rq is in rq.
void Server::handle(Client& c, Request& rq, ssize_t n) {
  Reply r{};
  r.reader_index = r.writer_index = -1;
  npass_ = 0;
  if (n != static_cast<ssize_t>(sizeof rq) || rq.magic != kProtoMagic) {
    r.status = -EBADMSG;
  } else {
    rq.name[sizeof rq.name - 1] = '\0';
    switch (static_cast<Op>(rq.op)) {
      case Op::kList: return list(c, rq);
      case Op::kClean: r.status = clean_dir(); break;
      case Op::kCreate: r = create(c, rq); break;
      case Op::kOpen: r = open(c, rq); break;
      case Op::kClose: r = close(c, rq); break;
      case Op::kPing: r.status = 0; break;
      default: r.status = -EOPNOTSUPP;
    }
  }
  reply(c.fd, &r, sizeof r, pass_, r.status < 0 ? 0 : npass_);
  for (int i = 0; i < npass_; ++i)
    if (pass_ours_[i]) ::close(pass_[i]);
  npass_ = 0;
}

void Server::pass(int fd, bool ours) {
  if (npass_ == kReplyFds) {  // a bug, not input: never more than the protocol allows
    if (ours) ::close(fd);
    return;
  }
  pass_[npass_] = fd;
  pass_ours_[npass_++] = ours;
}

Reply Server::create(Client& c, const Request& rq) {
  Reply r{};
  r.reader_index = r.writer_index = -1;
  if ((r.status = validate_channel_name(rq.name)) < 0) return r;
  if (rq.type > IPC_TYPE_QUEUE || (rq.perm_mode & ~0777u) != 0) {
    r.status = -EINVAL;
    return r;
  }
  if (by_name_.count(rq.name)) {
    r.status = -EEXIST;
    return r;
  }
  if (channels_.size() >= kMaxChannels || c.members.size() >= kMaxMembershipsPerClient) {
    r.status = -ENOSPC;
    return r;
  }
  auto slots = shm::Segment::slots_for_capacity(rq.capacity);
  if (!slots) {
    r.status = slots.error();
    return r;
  }
  auto ch = std::make_unique<Channel>();
  ch->id = next_channel_++;
  ch->name = rq.name;
  ch->type = rq.type;
  ch->uid = c.cred.uid;
  ch->gid = c.cred.gid;
  ch->mode = rq.perm_mode;
  ch->capacity = rq.capacity;
  ch->creator_pid = c.cred.pid;
  ch->creator_start = c.start_time;
  Membership m{nullptr, -1, 0, -1, 0, true, {}, {}};
  bool on_shm = rq.type == IPC_TYPE_QUEUE && !(rq.flags & kNoShm);
  if (on_shm) {
    auto seg = shm::Segment::create(rq.name, *slots, c.cred.pid);
    if (seg) {
      ch->seg = std::move(seg.value());
      auto idx = shm::join_reader(ch->seg, c.cred.pid, c.start_time, &m.reader_state);
      auto widx = shm::join_writer(ch->seg, c.cred.pid, c.start_time, &m.writer_state);
      if (!idx || !widx) {
        r.status = !idx ? idx.error() : widx.error();
        return r;
      }
      m.reader_index = static_cast<int32_t>(*idx);
      m.writer_index = static_cast<int32_t>(*widx);
      pass(ch->seg.fd(), false);
    } else {
      on_shm = false;  // no memory, no memfd: fall back to a socket, transparently
    }
  }
  if (rq.type == IPC_TYPE_PIPE) {
    ch->transport = TransportKind::kPipe;
    ch->path = opts_.runtime_dir + "/" + ch->name + ".fifo";
    // Only the creator's runtime and the registry ever open it by path; everyone else gets
    // a descriptor from us, so the mode on the file is the owner's alone.
    int rc = make_fifo(ch->path, 0600, ch->uid, ch->gid);
    const int fd = rc < 0 ? -1 : ::open(ch->path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      r.status = rc < 0 ? rc : -errno;
      ::unlink(ch->path.c_str());
      return r;
    }
    pass(fd, true);
  } else {
    if (!on_shm) ch->transport = TransportKind::kSocket;
    // The channel itself (SOCKET), or how processes of other uids reach the ring through
    // the creator's runtime (QUEUE).
    ch->path = opts_.runtime_dir + "/" + ch->name + ".sock";
    const int lfd = bind_channel_socket(ch->path, ch->mode, ch->uid, ch->gid);
    if (lfd < 0) {
      r.status = lfd;
      return r;
    }
    pass(lfd, true);  // ours to close once passed to the creator
  }
  ch->members = 1;
  Channel* raw = ch.get();
  m.ch = raw;
  by_name_[ch->name] = raw;
  channels_[ch->id] = std::move(ch);
  const uint32_t h = c.next_handle++;
  c.members[h] = std::move(m);
  save_state();
  r.handle = h;
  r.channel = raw->id;
  r.transport = static_cast<uint32_t>(raw->transport);
  r.reader_index = m.reader_index;
  r.reader_state = m.reader_state;
  r.writer_index = m.writer_index;
  r.writer_state = m.writer_state;
  return r;
}

Reply Server::open(Client& c, const Request& rq) {
  Reply r{};
  r.reader_index = r.writer_index = -1;
  if ((r.status = validate_channel_name(rq.name)) < 0) return r;
  const bool want_read = rq.flags & kWantRead;
  const bool want_write = rq.flags & kWantWrite;
  if (!want_read && !want_write) {
    r.status = -EINVAL;
    return r;
  }
  auto it = by_name_.find(rq.name);
  if (it == by_name_.end()) {
    r.status = -ENOENT;
    return r;
  }
  Channel* ch = it->second;
  if (!permitted(c, *ch, want_read, want_write)) {
    r.status = -EACCES;
    return r;
  }
  if (c.members.size() >= kMaxMembershipsPerClient) {
    r.status = -ENOSPC;
    return r;
  }
  Membership m{ch, -1, 0, -1, 0, false, {}, {}};
  if (ch->transport == TransportKind::kPipe) {
    // Everyone gets a write end of the channel FIFO, for JOIN frames. A reader also gets its
    // own FIFO, which the creator's runtime opens for writing when the JOIN arrives; a writer
    // gets the write end of its own FIFO, which the creator's runtime opens for reading when
    // that JOIN arrives. Both are named after the member's PID (see Hub::join).
    const int in_w = ::open(ch->path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (in_w < 0) {
      r.status = errno == ENXIO ? -ENOENT : -errno;  // ENXIO: the creator is gone
      return r;
    }
    pass(in_w, true);
    if (want_read) {
      const int rd = member_fifo(*ch, ".r" + std::to_string(c.cred.pid), O_RDWR, &m.reader_state, &m.reader_fifo);
      if (rd < 0) {
        r.status = rd;
        return r;
      }
      pass(rd, true);
    }
    if (want_write) {
      const int wr = member_fifo(*ch, ".w" + std::to_string(c.cred.pid), O_WRONLY, &m.writer_state, &m.writer_fifo);
      if (wr < 0) {
        if (!m.reader_fifo.empty()) ::unlink(m.reader_fifo.c_str());
        r.status = wr;
        return r;
      }
      pass(wr, true);
      ticking_ = true;  // settle_keepers() until the creator's runtime has opened it
    }
  } else if (ch->transport == TransportKind::kShmRing) {
    // Bridged (another uid): its reader entry is joined now (it gets what is sent from now
    // on) and fed by the creator's runtime; as a writer it has no entry: the creator's
    // runtime commits its frames.
    const bool bridged = !shares_ring(c, *ch);
    m.remote_writer = bridged && want_write;
    if (want_write && !bridged) {
      auto idx = shm::join_writer(ch->seg, c.cred.pid, c.start_time, &m.writer_state);
      if (!idx) {
        r.status = idx.error();
        return r;
      }
      m.writer_index = static_cast<int32_t>(*idx);
    }
    if (want_read) {
      auto idx = shm::join_reader(ch->seg, c.cred.pid, c.start_time, &m.reader_state);
      if (!idx) {
        if (m.writer_index >= 0) shm::release_writer(ch->seg, uint32_t(m.writer_index), m.writer_state);
        r.status = idx.error();
        return r;
      }
      m.reader_index = static_cast<int32_t>(*idx);
    }
    if (bridged) shm::poke_bridge(ch->seg);
  }
  ch->members++;
  const uint32_t h = c.next_handle++;
  r.handle = h;
  r.channel = ch->id;
  r.transport = static_cast<uint32_t>(ch->transport);
  r.reader_index = m.reader_index;
  r.reader_state = m.reader_state;
  r.writer_index = m.writer_index;
  r.writer_state = m.writer_state;
  if (ch->transport == TransportKind::kShmRing) {
    if (shares_ring(c, *ch)) pass(ch->seg.fd(), false);
    else r.transport = static_cast<uint32_t>(TransportKind::kSocket);  // to the creator's bridge
  }
  c.members[h] = std::move(m);
  return r;
}

void Server::release(Membership& m) {
  Channel* ch = m.ch;
  if (m.reader_index >= 0) shm::release_reader(ch->seg, static_cast<uint32_t>(m.reader_index), m.reader_state);
  if (m.writer_index >= 0) shm::release_writer(ch->seg, static_cast<uint32_t>(m.writer_index), m.writer_state);
  if (!m.reader_fifo.empty()) ::unlink(m.reader_fifo.c_str());
  if (!m.writer_fifo.empty()) {
    // Not opened by the creator's runtime yet: what it holds is still to be delivered.
    if (auto k = ch->keepers.find(m.writer_fifo); k != ch->keepers.end()) k->second.orphan = true;
    else ::unlink(m.writer_fifo.c_str());
    settle_keepers(*ch, false);
  }
  if (m.creator) unlink_name(ch);
  if (--ch->members == 0 && ch->name.empty()) channels_.erase(ch->id);
}

// The creator's close removes the name; ids still open see -EPIPE on send (a socket
// channel's clients see it when the creator's runtime closes their connections).
void Server::unlink_name(Channel* ch) {
  if (ch->name.empty()) return;
  by_name_.erase(ch->name);
  ch->name.clear();
  if (ch->transport == TransportKind::kShmRing) shm::close_channel(ch->seg);
  if (!ch->path.empty()) ::unlink(ch->path.c_str());
  settle_keepers(*ch, true);  // writers now see EPIPE: no reader is left
  save_state();
}

// Closes the keepers (see Channel) the creator's runtime has taken over, or all of them
// once it is gone.
void Server::settle_keepers(Channel& ch, bool all) {
  for (auto it = ch.keepers.begin(); it != ch.keepers.end();) {
    struct stat st;
    const bool taken = ::fstat(it->second.fd, &st) == 0 && (st.st_mode & 0777) == frame::kFifoTakenMode;
    if (!all && !taken) {
      ++it;
      continue;
    }
    ::close(it->second.fd);
    if (it->second.orphan) ::unlink(it->first.c_str());
    it = ch.keepers.erase(it);
  }
}

// Timed work: sweep() of adopted channels, settle_keepers() of PIPE channels. Returns
// whether any is left for the next tick.
bool Server::tick() {
  bool more = sweep();
  for (auto& [id, ch] : channels_) {
    if (ch->keepers.empty()) continue;
    settle_keepers(*ch, false);
    more = more || !ch->keepers.empty();
  }
  return more;
}

// One line per named channel, replaced atomically: what a restarted registry needs to
// find the channels again (see restore_state).
void Server::save_state() {
  const std::string path = opts_.runtime_dir + "/" + kStateName;
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "we");
  if (f == nullptr) return;
  ::fchmod(::fileno(f), 0600);
  for (const auto& [id, ch] : channels_) {
    if (ch->name.empty()) continue;
    const uint64_t instance = ch->transport == TransportKind::kShmRing ? ch->seg.header()->instance_id : 0;
    std::fprintf(f, "%s %u %u %u %u %o %u %d %llu %llx %s\n", ch->name.c_str(), ch->type,
                 static_cast<uint32_t>(ch->transport), ch->uid, ch->gid, ch->mode, ch->capacity, ch->creator_pid,
                 static_cast<unsigned long long>(ch->creator_start), static_cast<unsigned long long>(instance),
                 ch->path.empty() ? "-" : ch->path.c_str());
  }
  const bool ok = std::fflush(f) == 0;
  std::fclose(f);
  if (ok) ::rename(tmp.c_str(), path.c_str());
}

namespace {
// A descriptor for the memfd segment of `name` held by process pid (opened through
// /proc/PID/fd, which needs the same uid or root), or -errno.
int open_segment_of(pid_t pid, const std::string& name) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  const std::string want = "/memfd:fwipc:" + name + " (deleted)";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return -errno;
  int fd = -ENOENT;
  while (const dirent* e = ::readdir(d)) {
    char target[512];
    const std::string link = dir + "/" + e->d_name;
    const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    if (want != target) continue;
    fd = ::open(link.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) fd = -errno;
    break;
  }
  ::closedir(d);
  return fd;
}
}  // namespace

// Takes over the channels a previous registry left in the state file whose creators are
// still alive; the rest are forgotten (their files go in clean_dir()).
void Server::restore_state() {
  const std::string path = opts_.runtime_dir + "/" + kStateName;
  FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return;
  char line[512];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    char name[80], file[400];
    unsigned type, transport, uid, gid, mode, capacity;
    int pid;
    unsigned long long start, instance;
    if (std::sscanf(line, "%79s %u %u %u %u %o %u %d %llu %llx %399s", name, &type, &transport, &uid, &gid, &mode,
                    &capacity, &pid, &start, &instance, file) != 11)
      continue;
    if (validate_channel_name(name) < 0 || by_name_.count(name) || transport > 2 || channels_.size() >= kMaxChannels ||
        !process_alive(pid, start))
      continue;
    auto ch = std::make_unique<Channel>();
    ch->name = name;
    ch->type = type;
    ch->transport = static_cast<TransportKind>(transport);
    ch->uid = uid;
    ch->gid = gid;
    ch->mode = mode & 0777;
    ch->capacity = capacity;
    ch->creator_pid = pid;
    ch->creator_start = start;
    ch->adopted = true;
    if (ch->transport == TransportKind::kShmRing) {
      const int fd = open_segment_of(pid, name);
      if (fd < 0) continue;
      auto seg = shm::Segment::attach(fd);
      ::close(fd);
      if (!seg || seg->header()->instance_id != instance || seg->header()->closed.load()) continue;
      ch->seg = std::move(seg.value());
      if (file == opts_.runtime_dir + "/" + ch->name + ".sock") ch->path = file;  // the bridge's
    } else {
      const std::string want = opts_.runtime_dir + "/" + ch->name + (transport == 1 ? ".sock" : ".fifo");
      if (want != file) continue;
      ch->path = file;
    }
    ch->id = next_channel_++;
    by_name_[ch->name] = ch.get();
    channels_[ch->id] = std::move(ch);
  }
  std::fclose(f);
  save_state();
}

// Adopted channels have no creator membership: their name goes when the creator dies or
// closes the channel (a closed ring, a socket nobody listens on, a FIFO nobody reads).
// Returns whether any adopted channel remains.
bool Server::sweep() {
  bool any = false;
  ++sweeps_;
  for (auto it = channels_.begin(); it != channels_.end();) {
    Channel* ch = it->second.get();
    if (!ch->adopted || ch->name.empty()) {
      ++it;
      continue;
    }
    bool gone = !process_alive(ch->creator_pid, ch->creator_start);
    if (!gone && ch->transport == TransportKind::kShmRing) {
      gone = ch->seg.header()->closed.load(std::memory_order_acquire) != 0;
      if (!gone) shm::reap_dead_entries(ch->seg);  // nobody else tracks pre-restart members
    } else if (!gone && ch->transport == TransportKind::kSocket) {
      // A probe is a connection the creator's hub must accept and drop: once a second.
      gone = sweeps_ % 5 == 0 && !socket_listened(ch->path);
    } else if (!gone) {
      const int fd = ::open(ch->path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      gone = fd < 0;
      if (fd >= 0) ::close(fd);
    }
    if (gone) {
      unlink_name(ch);
      if (ch->members == 0) {
        it = channels_.erase(it);
        continue;
      }
    } else {
      any = true;
    }
    ++it;
  }
  return any;
}

Reply Server::close(Client& c, const Request& rq) {
  Reply r{};
  r.reader_index = r.writer_index = -1;
  auto it = c.members.find(rq.handle);
  if (it == c.members.end()) {
    r.status = -EBADF;
    return r;
  }
  release(it->second);
  c.members.erase(it);
  return r;
}

void Server::list(Client& c, const Request& rq) {
  ChannelInfo info{};
  info.status = -ENOENT;
  int pass = -1;
  // Unlinked channels (creator gone, members left) are not listed: they have no name.
  for (auto it = channels_.lower_bound(rq.handle); it != channels_.end(); ++it) {
    const Channel& ch = *it->second;
    if (ch.name.empty()) continue;
    info.status = 0;
    info.channel = ch.id;
    info.type = ch.type;
    info.transport = static_cast<uint32_t>(ch.transport);
    info.uid = ch.uid;
    info.gid = ch.gid;
    info.mode = ch.mode;
    info.capacity = ch.capacity;
    std::snprintf(info.name, sizeof info.name, "%s", ch.name.c_str());
    for (const auto& [fd, cl] : clients_) {
      for (const auto& [h, m] : cl->members) {
        if (m.ch != &ch) continue;
        if (info.listed < kInfoMembers) {
          auto& e = info.members[info.listed++];
          e.pid = static_cast<uint32_t>(cl->cred.pid);
          const bool reads = m.reader_index >= 0 || !m.reader_fifo.empty() || m.creator;
          const bool writes = m.writer_index >= 0 || !m.writer_fifo.empty() || m.creator || m.remote_writer ||
                              ch.transport == TransportKind::kSocket;  // its hub knows, not us
          e.flags = (reads ? kMemberRead : 0) | (writes ? kMemberWrite : 0) | (m.creator ? kMemberCreator : 0) |
                    (process_alive(cl->cred.pid, cl->start_time) ? kMemberAlive : 0);
        }
        ++info.member_count;
      }
    }
    if (ch.transport == TransportKind::kShmRing && permitted(c, ch, true, false) && shares_ring(c, ch))
      pass = ch.seg.fd();
    break;
  }
  reply(c.fd, &info, sizeof info, &pass, pass < 0 ? 0 : 1);
}

// Removes socket files and FIFOs in the runtime directory that no channel or membership
// of ours uses (left by a crash of everything). Returns how many were removed.
int Server::clean_dir() {
  std::vector<std::string> in_use;
  for (const auto& [id, ch] : channels_) {
    if (!ch->path.empty()) in_use.push_back(ch->path);
    for (const auto& [path, k] : ch->keepers) in_use.push_back(path);
  }
  for (const auto& [fd, cl] : clients_)
    for (const auto& [h, m] : cl->members)
      for (const std::string* f : {&m.reader_fifo, &m.writer_fifo})
        if (!f->empty()) in_use.push_back(*f);
  return remove_stale_files(opts_.runtime_dir, in_use);
}

void Server::fuzz_session(const uint8_t* data, size_t size) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) return;
  auto owned = std::make_unique<Client>();
  Client& c = *owned;
  c.fd = sv[0];
  socklen_t len = sizeof c.cred;
  ::getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &c.cred, &len);
  c.start_time = process_start_time(c.cred.pid);
  clients_[sv[0]] = std::move(owned);
  // Input: records of [control byte][up to 127 bytes]; control bit 7 stamps the magic so
  // the fuzzer spends its time past the first check.
  while (size > 0) {
    const uint8_t ctl = data[0];
    const size_t n = std::min<size_t>(ctl & 0x7f, size - 1);
    Request rq{};
    std::memcpy(&rq, data + 1, std::min(n, sizeof rq));
    if (ctl & 0x80) rq.magic = kProtoMagic;
    handle(c, rq, static_cast<ssize_t>(n));
    data += 1 + n;
    size -= 1 + n;
    // Drain the reply and close whatever descriptors it carried.
    ChannelInfo sink;
    int fds[kReplyFds];
    while (recv_with_fds(sv[1], &sink, sizeof sink, fds, kReplyFds, MSG_DONTWAIT) >= 0)
      for (int fd : fds)
        if (fd >= 0) ::close(fd);
  }
  drop_client(sv[0]);
  ::close(sv[1]);
}

void Server::drop_client(int fd) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  // The connection closes when the process dies: release its readers so writers are not
  // held back by a dead cursor, and unlink the channels it created.
  for (auto& [h, m] : it->second->members) {
    if (m.ch->transport == TransportKind::kShmRing) {
      shm::release_sleeper(m.ch->seg, it->second->cred.pid);  // died blocked on a full ring
      // Died between claim and commit: readers skip the claim now rather than at their
      // next liveness check (and fd-armed readers get pinged).
      if (m.writer_index >= 0) shm::recover_stalled(m.ch->seg);
    }
    release(m);
  }
  ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  clients_.erase(it);
}

}  // namespace

void fuzz_session(const std::string& dir, const uint8_t* data, size_t size) {
  static Server* s = [&] {
    ensure_dir(dir);
    return new Server(ServerOptions{dir, -1});
  }();
  s->fuzz_session(data, size);
}

int run_server(const ServerOptions& opts) {
  ::signal(SIGPIPE, SIG_IGN);
  Server s(opts);
  return s.run();
}

int spawn_detached(const std::string& dir, int idle_exit_ms) {
  const pid_t child = ::fork();
  if (child < 0) return -errno;
  if (child == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    ::prctl(PR_SET_NAME, "fwipc-registryd");  // grandchild is reparented: no zombie for the caller
    // Detach from the caller's descriptors; keep none of its sockets or pipes alive.
    const int maxfd = static_cast<int>(::sysconf(_SC_OPEN_MAX));
    for (int fd = 0; fd < maxfd && fd < 65536; ++fd) ::close(fd);
    const int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
    }
    for (int s = 1; s < NSIG; ++s) ::signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ServerOptions o;
    o.runtime_dir = dir;
    o.idle_exit_ms = idle_exit_ms;
    ::_exit(run_server(o) < 0 ? 1 : 0);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return 0;
}

}  // namespace fwipc::registry
