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

  // Calls for an event loop, on one thread or several, beside call() on others:
  // start() sends the request without waiting for room (-EAGAIN when the socket is full)
  // and sets *seq; event_fd() polls readable when a reply may have come for some call;
  // result() is the reply's size (as call()), -EAGAIN while it has not come, -EPIPE when
  // the connection it went out on broke, -ENOENT for a seq not in flight (taken or
  // cancelled); cancel() forgets a call, so its reply is dropped when it comes.
  // At most kMaxAsyncCalls are in flight per channel id (-ENOBUFS beyond).
  static constexpr size_t kMaxAsyncCalls = 65536;
  int start(const MsgHeader& req, const void* payload, uint32_t* seq) noexcept;
  int result(uint32_t seq, MsgHeader* rep, void* buf, uint32_t cap) noexcept;
  void cancel(uint32_t seq) noexcept;
  // An epoll descriptor holding the current connection: stable for the id's life (the
  // connection behind it may be replaced), so an event loop can watch it once.
  int event_fd() noexcept;

  // In a forked child: the connection is the parent's.
  void forget_after_fork() noexcept;

 private:
  struct Waiter {
    uint64_t conn;  // the connection the request went out on (conn_)
    bool async;     // from start(): counted in async_, taken by result()
    std::optional<frame::Frame> reply;
  };
  int connect_locked() noexcept;
  void fail_all_locked() noexcept;
  uint32_t next_seq_locked() noexcept;
  int send_locked(const frame::Frame& f) noexcept;
  void take_reply_locked(const frame::Frame& in, bool by_result) noexcept;
  int fill_reply(const frame::Frame& r, MsgHeader* rep, void* buf, uint32_t cap) const noexcept;

  const std::string path_;
  const uint32_t server_pid_;
  std::mutex mu_;
  std::condition_variable cv_;
  int fd_ = -1;
  int epfd_ = -1;                       // event_fd(), made at its first use
  int wake_ = -1;                       // in epfd_: a reply for start() taken by a thread in call()
  uint64_t conn_ = 0;                   // counts connections made, so a call knows whether its broke
  bool reading_ = false;                // one thread reads the socket at a time
  uint32_t next_seq_ = 1;               // 0 is never a call
  size_t async_ = 0;                    // calls in flight from start()
  std::map<uint32_t, Waiter> waiting_;  // calls in flight, and their reply once in
};

}  // namespace fwipc::call
