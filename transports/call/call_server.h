// The creator's side of request/reply: NAME.call, a SOCK_SEQPACKET socket the registry
// binds with the channel's mode and passes to the creator, served here. Callers are
// accepted only with the write bit of the channel's mode for their kernel credentials;
// each request is stamped with the caller's SO_PEERCRED PID. A reply is one non-blocking
// send: a caller that died or does not read loses it, and the server never waits for one.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "base/perm.h"
#include "base/time.h"
#include "fwipc/types.hpp"
#include "transports/message.h"
#include "transports/shm/stats.h"

namespace fwipc::call {

// Most caller connections one server holds; past it new ones are refused (closed).
inline constexpr size_t kMaxCallers = 4096;

struct ChannelOwner {
  uid_t uid;
  gid_t gid;
  uint32_t mode;
};

class CallServer {
 public:
  // Takes listen_fd (closed on failure too).
  static Result<std::unique_ptr<CallServer>> create(int listen_fd, ChannelOwner owner) noexcept;
  ~CallServer();
  CallServer(const CallServer&) = delete;
  CallServer& operator=(const CallServer&) = delete;

  // Readable while a caller may be connecting or a request may wait.
  int fd() const noexcept { return ep_; }

  // The next request: header (sender: the caller's PID) and payload into buf (cap >= the
  // request's size, else -EMSGSIZE and the request is dropped: a request is 512 bytes at
  // most, so only a buffer smaller than IPC_MAX_PAYLOAD can be too small). *call names it
  // for reply(). -EAGAIN when none waits and the deadline has passed, -ETIMEDOUT, -EINTR.
  int receive(MsgHeader* hdr, void* buf, uint32_t cap, uint64_t* call, Deadline deadline) noexcept;

  // Answers call. 0, -EAGAIN (the caller's socket is full: the reply is dropped), -EPIPE
  // (the caller is gone), -EMSGSIZE, -EINVAL (no such call connection).
  int reply(uint64_t call, const MsgHeader& hdr, const void* payload) noexcept;

  // Counters, for introspection.
  uint64_t refused() const noexcept { return refused_; }
  uint64_t dropped_replies() const noexcept { return dropped_; }
  // Publishes the counters in the channel's stats page from now on (on every change).
  void set_stats(std::shared_ptr<stats::Mapping> page) noexcept;

 private:
  CallServer(int listen_fd, int ep, ChannelOwner owner) noexcept : listen_fd_(listen_fd), ep_(ep), owner_(owner) {}
  void accept_all() noexcept;
  void drop(int fd) noexcept;
  void publish() noexcept;  // caller holds mu_
  // One request from connection fd, if one is there: 1, 0 (none), or -EMSGSIZE.
  int take(int fd, MsgHeader* hdr, void* buf, uint32_t cap, uint64_t* call) noexcept;

  struct Conn {
    uint32_t id;  // never reused: a late reply cannot reach a new caller on the same fd
    pid_t pid;
  };
  std::mutex mu_;  // several server threads may receive and reply at once
  int listen_fd_;
  int ep_;
  ChannelOwner owner_;
  uint32_t next_id_ = 1;
  std::map<int, Conn> by_fd_;
  std::map<uint32_t, int> by_id_;
  uint64_t refused_ = 0;
  uint64_t dropped_ = 0;
  std::shared_ptr<stats::Mapping> stats_;
};

}  // namespace fwipc::call
