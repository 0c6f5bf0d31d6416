// The spin-wait hint of the processor, for bounded busy-waits.
#pragma once

namespace fwipc {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace fwipc
