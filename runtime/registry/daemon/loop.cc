// The registry's event loop: one epoll over the listening socket, every client
// connection and a signalfd; a client's connection closing is how the registry learns that
// the process died (no heartbeats). Timed work (tick) runs only while some is pending.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/notify.h"
#include "base/proc.h"
#include "base/rundir.h"
#include "base/time.h"
#include "base/unixsock.h"
#include "runtime/registry/daemon/server.h"

namespace fwipc::registry {

namespace {
int epoll_add(int ep, int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  return ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}
}  // namespace

int Server::run() {
  if (int rc = ensure_dir(opts_.runtime_dir); rc < 0) return rc;
  // A directory another uid controls is never served (main.cc says why on stderr).
  if (int rc = check_runtime_dir(opts_.runtime_dir, nullptr); rc < 0) return rc;
  // A policy that cannot be read never falls back to none: a typo must not open a name.
  if (std::string why; load_policy(opts_.policy_path, &policy_, &why) < 0) return -EINVAL;
  // Every client, refused connection and QUEUE segment holds a descriptor: a soft limit of
  // 1024 (a service's default) would stop the registry long before its caps.
  if (rlimit rl; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 65536);
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
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

  // SIGTERM/SIGINT end the loop so the socket is unlinked and clients see a clean EOF;
  // SIGHUP reloads the policy.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGHUP);
  ::sigprocmask(SIG_BLOCK, &stop, nullptr);
  signal_fd_ = ::signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
  ep_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0 || signal_fd_ < 0) return -errno;
  if (int rc = epoll_add(ep_, listen_fd_, EPOLLIN); rc < 0) return rc;
  if (int rc = epoll_add(ep_, signal_fd_, EPOLLIN); rc < 0) return rc;
  // Clients can connect from here on: a service manager (Type=notify) may start the services.
  sd_notify("READY=1");

  int64_t idle_since = monotonic_ns();
  ticking_ = !channels_.empty();
  for (bool stopping = false; !stopping;) {
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
      const int fd = evs[i].data.fd;
      if (fd == listen_fd_) {
        accept_clients();
      } else if (fd == signal_fd_) {
        signalfd_siginfo si;
        while (::read(signal_fd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
          if (si.ssi_signo != SIGHUP) {
            stopping = true;
          } else {
            Policy p;
            std::string why;
            if (load_policy(opts_.policy_path, &p, &why) == 0) policy_ = std::move(p);
            // The daemon's stderr (a journal under systemd); the old policy stays in force.
            else
              std::fprintf(stderr, "fwipc-registryd: policy not reloaded: %s\n", why.c_str());
          }
        }
      } else if (refused_.count(fd)) {
        close_refused(fd);  // its first request (or its hang-up): the Refusal was its answer
      } else if (auto it = clients_.find(fd); it != clients_.end()) {
        if (evs[i].events & EPOLLIN)
          serve(*it->second);
        else
          drop_client(fd);
      }
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
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) != 0) {
      ::close(fd);
      continue;
    }
    // Past its uid's connection limit or the global cap: refused with a reason (quota.cc).
    if (!admit_client(fd, c->cred)) continue;
    if (epoll_add(ep_, fd, EPOLLIN | EPOLLRDHUP) < 0) {
      charge(c->cred.uid, kQuotaConnections, -1);
      ::close(fd);
      continue;
    }
    c->counted = true;
    c->fd = fd;
    c->start_time = process_start_time(c->cred.pid);
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

void Server::drop_client(int fd) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  // The connection closes when the process dies: release its readers so writers are not
  // held back by a dead cursor, and unlink the channels it created.
  for (auto& [h, m] : it->second->members) {
    if (m.ch->transport == TransportKind::kShmRing && !m.ch->v2) {
      shm::release_sleeper(m.ch->seg, it->second->cred.pid);  // died blocked on a full ring
      // Died between claim and commit: readers skip the claim now rather than at their
      // next liveness check (and fd-armed readers get pinged).
      if (m.writer_index >= 0) shm::recover_stalled(m.ch->seg);
    }
    release(m);
  }
  if (it->second->counted) charge(it->second->cred.uid, kQuotaConnections, -1);
  if (ep_ >= 0) ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  clients_.erase(it);
}

// Timed work: sweep() of adopted channels, settle_keepers() of PIPE channels, refused
// connections to close. Returns whether any is left for the next tick.
bool Server::tick() {
  bool more = sweep();
  more = expire_refused() || more;
  for (auto& [id, ch] : channels_) {
    if (ch->v2) more = settle_rings(*ch) || more;  // dead writers' rings readers still hold
    if (ch->keepers.empty()) continue;
    settle_keepers(*ch, false);
    more = more || !ch->keepers.empty();
  }
  return more;
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
  charge(c.cred.uid, kQuotaConnections, 1);
  c.counted = true;
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

void fuzz_session(const std::string& dir, const uint8_t* data, size_t size) {
  // One per layout and fuzzing process, as a registry is one per directory: every input
  // goes to a layout-4 server, then to a ring v2 one (its own ops and memfds).
  static Server* servers[2] = {nullptr, nullptr};
  for (int v2 = 0; v2 < 2; ++v2) {
    if (servers[v2] == nullptr) {
      const std::string d = dir + (v2 ? "/v2" : "/v4");
      ensure_dir(d);
      ServerOptions o{d, -1, ""};
      o.ring_v2 = v2 != 0;
      servers[v2] = new Server(o);
    }
    servers[v2]->fuzz_session(data, size);
  }
}

int run_server(const ServerOptions& opts) {
  ::signal(SIGPIPE, SIG_IGN);
  Server s(opts);
  return s.run();
}

}  // namespace fwipc::registry
