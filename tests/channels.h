// Helpers for the tests that fill channels on every transport (evict_test,
// queue_stats_test): small channels, readers that join and then take nothing, filling
// until the writer is held back. Over the runtime (//runtime:core); see support.h for the
// processes and the runtime directory.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>

#include "ipc.h"
#include "tests/support.h"

namespace fwipc::test {

// Every channel type, for the tests that run once per transport.
inline constexpr uint32_t kAllTypes[] = {IPC_TYPE_QUEUE, IPC_TYPE_SOCKET, IPC_TYPE_PIPE};

// ipc_create_channel_opts() with o as given but buffer_size IPC_BUFFER_MIN: 16 ring slots,
// or 16 frames per relay queue, so that a reader that takes nothing is soon in the way.
int create_small(const char* name, IPC_CHANNEL_OPTIONS o);

// A child that opens name for reading (as uid/gid 65534 when other_uid), signals joined,
// takes nothing until release is signalled, then returns then(id) (0 without one).
// Exit codes of its own: 9 setuid, 10 open, 11 release never came.
pid_t idle_reader(const char* name, const Barrier& joined, const Barrier& release, bool other_uid = false,
                  const std::function<int(int id)>& then = {});

// Sends 4-byte counters 0, 1, ... on id until a send fails: how many were sent; *rc the
// failure (-EAGAIN when a non-blocking writer is held back).
uint32_t fill(int id, int* rc = nullptr);

}  // namespace fwipc::test
