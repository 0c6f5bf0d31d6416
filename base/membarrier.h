// Asymmetric store-load fences over sys_membarrier(2). A Dekker pair (a sleeper stores
// "asleep" then loads the data word; a waker stores the data word then loads "asleep")
// needs a full fence on both sides. With MEMBARRIER_CMD_GLOBAL_EXPEDITED the side that is
// about to sleep pays for both: its barrier runs a full fence on every running thread of
// every registered process, so the hot side (a writer's every send, a reader's every
// cursor publication) needs only to keep the compiler from reordering its store and load.
//
// Every process on either side must be registered before it takes part: register_fences()
// at attach. A process the kernel (or a seccomp filter) refuses keeps full fences on its
// hot side; a sleeper whose barrier call fails falls back to its own full fence, and a
// wakeup it then misses costs one bounded sleep slice, never a message.
#pragma once

#include <atomic>

namespace fwipc {

namespace detail {
inline std::atomic<bool> light_fences{false};  // this process is a registered target
}

// Registers this process (once; again in a forked child). Whether hot sides may use
// light_fence() as a compiler barrier.
bool register_fences() noexcept;

// The hot side of the pair, between its store and its load.
inline void light_fence() noexcept {
  if (detail::light_fences.load(std::memory_order_relaxed))
    std::atomic_signal_fence(std::memory_order_seq_cst);
  else
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

// The sleeping side, between its store and its load: a full fence here and on every
// running thread of every registered process.
void heavy_fence() noexcept;

}  // namespace fwipc
