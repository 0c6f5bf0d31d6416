// The per-process table of channel ids, and the process's registry connection.
//
// An id is (generation << 12 | slot): a closed id, or one inherited across fork(), never
// names a newer channel. Lookups are lock-free (an acquire load of the slot); installing
// and removing take the process lock, which also serialises registry calls.
// Thread contract (also in ipc.h): any call may run on any thread, but closing an id while
// another thread is inside a call on that id is undefined (the handle is freed).
// fork(): the child keeps no handle and no registry connection of the parent's; its ids
// fail with -EBADF and closing them there leaves the parent's channels alone.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "ipc.h"
#include "runtime/registry/client.h"
#include "transports/transport.h"

namespace fwipc::shm {
class ShmRing;
namespace v2 {
class ShmRing2;
class Peers;
}
}  // namespace fwipc::shm
namespace fwipc::bridge {
class Bridge;
}
namespace fwipc::call {
class CallServer;
class CallClient;
}  // namespace fwipc::call

namespace fwipc::core {

struct Handle {
  uint32_t id = 0;
  uint32_t mode = 0;  // IPC_MODE_* bits
  uint32_t reg_handle = 0;
  uint64_t reg_serial = 0;  // the registry connection reg_handle belongs to (Client::serial)
  bool creator = false;
  std::unique_ptr<Transport> t;
  shm::ShmRing* ring = nullptr;              // non-null when t is (or wraps) the shm ring (loan/commit)
  bridge::Bridge* bridge = nullptr;          // non-null when t is a QUEUE creator's bridge
  shm::v2::ShmRing2* ring2 = nullptr;        // non-null when t is a ring v2 channel
  std::shared_ptr<shm::v2::Peers> membership;  // ring v2: its close goes through it
  IPC_CHANNEL_INFO info{};                   // from the registry's reply (transport: t's)
  std::unique_ptr<call::CallServer> calls;   // the creator's: serves NAME.call
  std::unique_ptr<call::CallClient> caller;  // every id's: calls the creator (connects lazily)
  Handle();
  ~Handle();
};

inline constexpr uint32_t kIndexBits = 12;
inline constexpr uint32_t kMaxHandles = 1u << kIndexBits;

struct Process {
  // Recursive: the fork handlers take it, and a registry call may run under it.
  std::recursive_mutex mu;  // guards reg, gens, and installing/removing handles
  registry::Client reg;
  pid_t pid = 0;
  uint32_t gens[kMaxHandles] = {};
  std::atomic<Handle*> table[kMaxHandles] = {};
};

// The process's state, created on first use with its fork handlers.
Process& proc();

inline Handle* lookup(uint32_t id) noexcept {
  Handle* h = proc().table[id & (kMaxHandles - 1)].load(std::memory_order_acquire);
  return h != nullptr && h->id == id ? h : nullptr;
}

// Installs h under a fresh id; returns it or -EMFILE. Caller holds mu.
int install(std::unique_ptr<Handle> h);

// Removes id from the table and hands its handle over, or null. Caller holds mu.
std::unique_ptr<Handle> remove(uint32_t id);

// One registry request and reply (see registry::Client::call) for the runtime directory
// and settings in force now. Caller holds mu.
// With only_serial, on that connection only (registry::Client::call).
// Without autostart, no registry is started if none answers.
int rpc(const registry::Request& rq, registry::Reply* rep, int* fds, uint64_t only_serial = 0, bool autostart = true);

// What the calling thread's last refused registry call was refused for (the runtime
// directory or the registry's uid, named), or "".
const char* last_error_detail() noexcept;

}  // namespace fwipc::core
