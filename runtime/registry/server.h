// The registry: maps channel names to segments, checks callers (SO_PEERCRED) against each
// channel's owner and mode, and releases what a client held when its connection closes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fwipc::registry {

struct ServerOptions {
  std::string runtime_dir;
  int idle_exit_ms = -1;  // exit after this long with no clients and no channels; < 0: never
};

// Runs until a fatal error or idle exit. Returns 0, or 1 when another registry already
// holds the runtime directory's lock (not an error for an auto-start race), or -errno.
int run_server(const ServerOptions& opts);

// Forks a detached registry process for dir (double fork, new session). Returns 0 once
// the child is started; the caller retries its connect.
int spawn_detached(const std::string& dir, int idle_exit_ms);

// Unlinks channel socket files and FIFOs in dir (by their naming pattern) except in_use.
// Returns how many, or -errno. The caller must be the registry or hold its lock.
int remove_stale_files(const std::string& dir, const std::vector<std::string>& in_use);

// The protocol fuzzer's entry: one client session of a process-wide server for dir, its
// requests taken from data (see Server::fuzz_session), released at the end as on a
// disconnect. Not for production use.
void fuzz_session(const std::string& dir, const uint8_t* data, size_t size);

}  // namespace fwipc::registry
