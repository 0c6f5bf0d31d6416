// Per-uid usage against the policy's limits (policy.h), the headroom under the global caps,
// and refused connections. Everything is counted against the uid that asked for it: the
// registry makes every QUEUE segment (memfd) itself, so the creator's cgroup and RLIMITs
// never see that memory; only this count bounds it.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/time.h"
#include "runtime/registry/daemon/server.h"

namespace fwipc::registry {
namespace {

Caller caller_of(const ucred& c) { return Caller{c.pid, c.uid, c.gid}; }

std::string limit_text(uint64_t v) { return v == kQuotaUnlimited ? "unlimited" : std::to_string(v); }

}  // namespace

void Server::charge(uid_t uid, uint32_t key, int64_t delta) {
  Usage& u = usage_[uid];
  u.used[key] = delta < 0 && uint64_t(-delta) > u.used[key] ? 0 : u.used[key] + uint64_t(delta);
  // A uid that holds nothing any more is forgotten: the map never outgrows what is held.
  bool empty = true;
  for (uint64_t v : u.used) empty = empty && v == 0;
  if (empty) usage_.erase(uid);
}

int Server::admit(const Client& c, const uint64_t (&amount)[kQuotaKeys]) {
  const Caller who = caller_of(c.cred);
  const Limits lim = policy_.limits_for(who);
  auto it = usage_.find(c.cred.uid);
  for (uint32_t k = 0; k < kQuotaKeys; ++k) {
    const uint64_t used = it == usage_.end() ? 0 : it->second.used[k];
    if (amount[k] == 0 || lim[k] == kQuotaUnlimited || (used <= lim[k] && amount[k] <= lim[k] - used)) continue;
    ++refused_total_;
    if (it != usage_.end()) ++it->second.refused;
    return -EDQUOT;
  }
  if (it != usage_.end()) it->second.last = who;
  return 0;
}

bool Server::admit_client(int fd, const ucred& cred) {
  const Caller who = caller_of(cred);
  const std::string dir = "registry of " + opts_.runtime_dir + ": ";
  if (clients_.size() >= kMaxClients) {
    refuse_client(fd, -ENOSPC, dir + "all " + std::to_string(kMaxClients) + " connections are in use");
    return false;
  }
  if (clients_.size() >= kMaxClients - kHeadroom && !privileged(who)) {
    refuse_client(fd, -ENOSPC,
                  dir + std::to_string(clients_.size()) + " of " + std::to_string(kMaxClients) +
                      " connections are in use; the last " + std::to_string(kHeadroom) +
                      " are kept for root and the owners of reserved names");
    return false;
  }
  const uint64_t limit = policy_.limits_for(who)[kQuotaConnections];
  auto it = usage_.find(cred.uid);
  const uint64_t used = it == usage_.end() ? 0 : it->second.used[kQuotaConnections];
  if (limit != kQuotaUnlimited && used >= limit) {
    if (it != usage_.end()) ++it->second.refused;
    refuse_client(fd, -EDQUOT,
                  dir + "uid " + std::to_string(cred.uid) + " already holds " + std::to_string(used) + " of its " +
                      limit_text(limit) + " connections (limit connections in " +
                      (policy_.origin() == "built-in" ? std::string("the built-in policy") : policy_.origin()) + ")");
    return false;
  }
  charge(cred.uid, kQuotaConnections, 1);
  usage_[cred.uid].last = who;
  return true;
}

// The client reads the Refusal as the answer to its first request; the connection stays
// open until that request arrived (closing earlier would fail the client's send with
// EPIPE instead), bounded in number and time.
void Server::refuse_client(int fd, int status, const std::string& detail) {
  ++refused_total_;
  Refusal r{};
  r.status = status;
  std::snprintf(r.detail, sizeof r.detail, "%s", detail.c_str());
  (void)::send(fd, &r, sizeof r, MSG_DONTWAIT | MSG_NOSIGNAL);
  // The daemon's stderr (a journal under systemd), at most once a second.
  if (const int64_t now = monotonic_ns(); now - last_refusal_log_ >= 1000000000) {
    last_refusal_log_ = now;
    std::fprintf(stderr, "fwipc-registryd: refused a connection: %s\n", detail.c_str());
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.fd = fd;
  if (refused_.size() >= kMaxRefused || ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    ::close(fd);
    return;
  }
  refused_[fd] = monotonic_ns() + int64_t(kRefusedHoldMs) * 1000000;
  ticking_ = true;
}

void Server::close_refused(int fd) {
  // Read what it sent first: closing a socket with unread data resets its peer, which
  // could then fail to read the Refusal.
  char sink[sizeof(Request)];
  for (int i = 0; i < 8 && ::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
  }
  ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  refused_.erase(fd);
}

bool Server::expire_refused() {
  const int64_t now = monotonic_ns();
  for (auto it = refused_.begin(); it != refused_.end();) {
    const int fd = it->first;
    const bool due = it->second <= now;
    ++it;
    if (due) close_refused(fd);
  }
  return !refused_.empty();
}

void Server::forget_channel(uint32_t id) {
  auto it = channels_.find(id);
  if (it == channels_.end()) return;
  if (it->second->bytes) charge(it->second->uid, kQuotaBytes, -int64_t(it->second->bytes));
  channels_.erase(it);
}

size_t Server::keepers_held() const {
  size_t n = 0;
  for (const auto& [id, ch] : channels_) n += ch->keepers.size();
  return n;
}

void Server::quota(Client& c, const Request& rq) {
  QuotaInfo q{};
  q.status = -ENOENT;
  if (auto it = usage_.lower_bound(rq.handle); it != usage_.end()) {
    const Usage& u = it->second;
    q.status = 0;
    q.uid = it->first;
    const Caller who = u.last.uid == it->first ? u.last : Caller{0, it->first, it->first};
    const Limits lim = policy_.limits_for(who);
    for (uint32_t k = 0; k < kQuotaKeys; ++k) {
      q.used[k] = u.used[k];
      q.limit[k] = lim[k];
    }
    q.flags = (it->first == 0 ? kQuotaRoot : 0) | (privileged(who) ? kQuotaReserved : 0);
    q.refused = u.refused;
  } else if (rq.handle <= kQuotaTotalUid) {
    q.status = 0;
    q.uid = kQuotaTotalUid;
    q.headroom = kHeadroom;
    for (const auto& [uid, u] : usage_) {
      q.used[kQuotaBytes] += u.used[kQuotaBytes];
      q.used[kQuotaMemberships] += u.used[kQuotaMemberships];
    }
    q.used[kQuotaChannels] = channels_.size();
    q.used[kQuotaConnections] = clients_.size();
    q.limit[kQuotaChannels] = kMaxChannels;
    q.limit[kQuotaBytes] = kQuotaUnlimited;  // bounded per uid only
    q.limit[kQuotaConnections] = kMaxClients;
    q.limit[kQuotaMemberships] = kMaxClients * kMaxMembershipsPerClient;
    q.refused = refused_total_;
    q.pending = refused_.size();
    q.keepers = keepers_held();
  }
  reply(c.fd, &q, sizeof q, nullptr, 0);
}

}  // namespace fwipc::registry
