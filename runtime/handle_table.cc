#include "runtime/handle_table.h"

#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <new>

#include "runtime/config.h"
#include "transports/call/call_client.h"
#include "transports/call/call_server.h"
#include "transports/progress/progress.h"

namespace fwipc::core {
namespace {
constexpr uint32_t kGenMask = (1u << (31 - kIndexBits)) - 1;  // ids stay positive ints
}

// Out of line: the call types are incomplete in the header.
Handle::Handle() = default;
Handle::~Handle() = default;

Process& proc() {
  static Process* p = [] {
    auto* q = new Process();  // never destroyed: usable from atexit handlers and threads
    q->pid = ::getpid();
    pthread_atfork(
        [] {
          // The runtime's lock first (close() holds it while it unregisters a hub from the
          // progress thread), then the progress thread's: no hub or bridge is mid-change.
          proc().mu.lock();
          progress::before_fork();
        },
        [] {
          progress::after_fork_parent();
          proc().mu.unlock();
        },
        [] {
          // The child inherits ids it may not use: drop them without touching shared
          // state (the parent still owns their reader entries and registry membership).
          Process& p = proc();
          new (&p.mu) std::recursive_mutex();  // the parent's lock state means nothing here
          // The progress thread is the parent's: forget it before the hubs below go.
          progress::after_fork_child();
          p.pid = ::getpid();
          p.reg.forget_after_fork();
          for (uint32_t i = 0; i < kMaxHandles; ++i) {
            Handle* h = p.table[i].exchange(nullptr, std::memory_order_relaxed);
            if (h == nullptr) continue;
            h->t->forget_after_fork();
            delete h;
            p.gens[i] = (p.gens[i] + 1) & kGenMask;  // inherited ids now fail with -EBADF
          }
        });
    return q;
  }();
  return *p;
}

int install(std::unique_ptr<Handle> h) {
  Process& p = proc();
  for (uint32_t i = 0; i < kMaxHandles; ++i) {
    if (p.table[i].load(std::memory_order_relaxed) != nullptr) continue;
    p.gens[i] = ((p.gens[i] + 1) & kGenMask) ?: 1;
    h->id = (p.gens[i] << kIndexBits) | i;
    const int id = static_cast<int>(h->id);
    // Release: a thread that finds the handle by its id sees it fully built.
    p.table[i].store(h.release(), std::memory_order_release);
    return id;
  }
  return -EMFILE;
}

std::unique_ptr<Handle> remove(uint32_t id) {
  Handle* raw = lookup(id);
  if (raw == nullptr) return nullptr;
  proc().table[id & (kMaxHandles - 1)].store(nullptr, std::memory_order_release);
  return std::unique_ptr<Handle>(raw);
}

namespace {
thread_local std::string last_detail;
}

int rpc(const registry::Request& rq, registry::Reply* rep, int* fds, uint64_t only_serial, bool autostart) {
  Config c = read_config();
  c.registry.autostart = c.registry.autostart && autostart;
  const uint64_t before = proc().reg.refusals();
  const int rc = proc().reg.call(c.runtime_dir, c.registry, rq, rep, sizeof *rep, fds, only_serial);
  // Refused (the directory, the registry's uid, or the registry's limits): say why.
  last_detail = proc().reg.refusals() != before ? proc().reg.refusal() : std::string();
  return rc;
}

const char* last_error_detail() noexcept { return last_detail.c_str(); }

}  // namespace fwipc::core
