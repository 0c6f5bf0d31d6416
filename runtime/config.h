// Every FWIPC_* environment variable the runtime reads, in one place. They are read when a
// channel is created or opened (not cached for the process's life), so a program, and the
// tests, may change them between calls:
//   FWIPC_RUNTIME_DIR       runtime directory (base/rundir.h has the fallbacks)
//   FWIPC_NO_AUTOSTART      non-empty and not "0": never spawn a registry (-ECONNREFUSED)
//   FWIPC_REGISTRY_IDLE_MS  idle exit of a registry this process spawns (default 10000)
//   FWIPC_REGISTRYD         the fwipc-registryd to spawn (default: registry/client.h search)
//   FWIPC_DISABLE_SHM       non-empty and not "0": QUEUE channels this process creates use a
//                           socket instead of shared memory
//   FWIPC_REGISTRY_UID      a uid (decimal) a registry may run as besides root and our own
//                           effective uid; any other registry is refused with -EPERM
//   FWIPC_SPIN_NS           how long a blocking receive spins before it sleeps (default
//                           50000 ns; 0 sleeps at once); read at the first create or open
#pragma once

#include <cstdint>
#include <string>

#include "runtime/registry/client.h"

namespace fwipc::core {

struct Config {
  std::string runtime_dir;
  registry::ClientOptions registry;
  bool disable_shm = false;
};

Config read_config();

}  // namespace fwipc::core
