#include "base/membarrier.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mutex>

namespace fwipc {

namespace {

long membarrier(int cmd) noexcept { return ::syscall(__NR_membarrier, cmd, 0, 0); }

bool try_register() noexcept {
  const long q = membarrier(MEMBARRIER_CMD_QUERY);
  return q >= 0 && (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0 &&
         membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
}

// A forked child inherits our flag but maybe not the kernel's registration: ask again
// before it runs anything of ours.
void after_fork_child() noexcept { detail::light_fences.store(try_register(), std::memory_order_relaxed); }

}  // namespace

bool register_fences() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    detail::light_fences.store(try_register(), std::memory_order_relaxed);
    ::pthread_atfork(nullptr, nullptr, after_fork_child);
  });
  return detail::light_fences.load(std::memory_order_relaxed);
}

void heavy_fence() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // Fails only where nobody could register (then every hot side keeps full fences) or
  // where a filter refuses it to us alone (see membarrier.h).
  (void)membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

}  // namespace fwipc
