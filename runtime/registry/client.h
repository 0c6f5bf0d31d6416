// The registry client: one request, one reply over a SOCK_SEQPACKET connection to the
// registry of a runtime directory, and the auto-start of fwipc-registryd. Used by the
// runtime (through its handle table) and by ipcctl; never linked with the daemon.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>

#include "runtime/registry/protocol.h"

namespace fwipc::registry {

// The registry answers in microseconds; one that does not answer for this long is wedged,
// and a caller must get an error, not hang with it.
inline constexpr int kCallTimeoutSec = 10;

struct ClientOptions {
  bool autostart = true;     // spawn fwipc-registryd when none answers
  int idle_exit_ms = 10000;  // passed to a spawned registry
  std::string registryd;     // its path; empty: find_registryd()
  // A registry must run as root or as our effective uid (anyone else could read what is
  // sent on the channels it makes); this names one more uid it may run as.
  std::optional<uid_t> registry_uid;
};

// A connection to the registry of one runtime directory. Not thread-safe: the runtime
// serialises calls under its process lock.
class Client {
 public:
  Client() = default;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client() { reset(); }

  // Sends rq to the registry of dir and receives one answer of exactly reply_len bytes
  // into reply, with up to kReplyFds descriptors into fds[] (-1 where none came; closed
  // if fds is null). Connects (starting a registry if allowed) when not connected or when
  // dir changed, and reconnects once if the registry went away since the last call (a
  // restarted registry serves new requests). Before connecting or starting a registry it
  // checks dir (check_runtime_dir in base/rundir.h), and after connecting the registry's
  // SO_PEERCRED uid (see ClientOptions::registry_uid); either failing is -EPERM (or
  // -ENOTDIR), nothing is sent, and the reason goes to refusal().
  // 0, or -ECONNREFUSED (none runs and none may be started), -ETIMEDOUT (wedged), -EPROTO,
  // -EPERM, or a connect errno.
  // With only_serial (a serial() a membership handle came from): on that connection or not
  // at all (-EPIPE), never connecting, since the handle means nothing to another one.
  int call(const std::string& dir, const ClientOptions& o, Request rq, void* reply, size_t reply_len, int* fds,
           uint64_t only_serial = 0);

  // Closes the connection; the registry releases every membership made through it.
  void reset() noexcept;
  // In a forked child: the connection is the parent's; drop our copy of the descriptor.
  void forget_after_fork() noexcept { reset(); }
  // Why the runtime directory or its registry was last refused (names the directory);
  // empty if never.
  const std::string& refusal() const { return refusal_; }
  // Counts refusals (of the directory, the registry, or by the registry): a caller tells
  // whether refusal() is about its own call.
  uint64_t refusals() const { return refusals_; }
  // Counts the connections made. A membership handle is the connection's that got it: on a
  // later one (a restarted registry, another runtime directory) the same number can name
  // another membership of ours, so a caller compares this before reusing a handle.
  uint64_t serial() const noexcept { return serial_; }

 private:
  int conn_ = -1;
  std::string dir_;      // runtime directory conn_ belongs to
  std::string refusal_;  // see refusal()
  uint64_t refusals_ = 0;
  uint64_t serial_ = 0;
};

// The fwipc-registryd to spawn, by a documented search: $FWIPC_REGISTRYD; then beside the
// object that holds this code (libfwipc.so, or a statically linked program), as built in
// the tree (bazel-bin/runtime/libfwipc.so -> bazel-bin/runtime/registry/daemon/) or as
// installed (PREFIX/lib -> PREFIX/libexec, PREFIX/bin); then /usr/libexec, /usr/bin,
// /usr/local/libexec, /usr/local/bin. Empty if none is executable.
std::string find_registryd(const std::string& configured);

// Starts exe --dir dir --idle-exit-ms ms as a detached daemon (new session, no inherited
// descriptors, reparented so the caller never sees it as a child). 0 once it is started
// (the caller retries its connect), or -errno.
int spawn_registryd(const std::string& exe, const std::string& dir, int idle_exit_ms);

}  // namespace fwipc::registry
