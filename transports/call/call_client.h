// The caller's side of request/reply: one connection to the channel's NAME.call per
// channel id, made at the first call. Calls from several threads share it: each call has
// a sequence number, one thread at a time reads the socket and hands replies to the
// threads waiting for them, and a reply nobody waits for any more (its call timed out) is
// dropped, so it can never answer a later call.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "base/time.h"
#include "transports/frame.h"
#include "transports/message.h"

namespace fwipc::call {

class CallClient {
 public:
  // path: the channel's NAME.call; server_pid: the creator's PID as the registry reported
  // it (the listening socket was made by the registry, so SO_PEERCRED would name the
  // registry, not the server), set as the reply's sender.
  CallClient(std::string path, uint32_t server_pid) : path_(std::move(path)), server_pid_(server_pid) {}
  ~CallClient();
  CallClient(const CallClient&) = delete;
  CallClient& operator=(const CallClient&) = delete;

  // Sends a request and waits for its reply: the reply's payload size (header in *rep,
  // payload in buf), -EMSGSIZE (cap too small: the reply is dropped, rep->size says its
  // size), -ETIMEDOUT, -EPIPE (the server is gone, closed the channel, or hung up on us),
  // -EACCES from connecting.
  int call(const MsgHeader& req, const void* payload, MsgHeader* rep, void* buf, uint32_t cap,
           Deadline deadline) noexcept;

  // In a forked child: the connection is the parent's.
  void forget_after_fork() noexcept;

 private:
  int connect_locked() noexcept;
  void fail_all_locked() noexcept;

  const std::string path_;
  const uint32_t server_pid_;
  std::mutex mu_;
  std::condition_variable cv_;
  int fd_ = -1;
  bool reading_ = false;   // one thread reads the socket at a time
  uint32_t next_seq_ = 1;  // 0 is never a call
  std::map<uint32_t, std::optional<frame::Frame>> waiting_;  // calls in flight, and their reply once in
};

}  // namespace fwipc::call
