#include "runtime/config.h"

#include <sys/types.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "base/rundir.h"
#include "transports/shm/ring.h"
#include "transports/shm/ring2.h"

namespace fwipc::core {
namespace {

bool flag(const char* name) {
  const char* e = std::getenv(name);
  return e != nullptr && *e != '\0' && std::strcmp(e, "0") != 0;
}

}  // namespace

Config read_config() {
  // The spin budget is process-wide state of the ring: set once, before the first channel.
  static std::once_flag spin_once;
  std::call_once(spin_once, [] {
    if (const char* s = std::getenv("FWIPC_SPIN_NS"); s && *s) {
      shm::ShmRing::set_spin_ns(std::strtoll(s, nullptr, 10));
      shm::v2::ShmRing2::set_spin_ns(std::strtoll(s, nullptr, 10));
    }
  });
  Config c;
  c.runtime_dir = runtime_dir();
  c.registry.autostart = !flag("FWIPC_NO_AUTOSTART");
  if (const char* e = std::getenv("FWIPC_REGISTRY_IDLE_MS"); e && *e) c.registry.idle_exit_ms = std::atoi(e);
  if (const char* e = std::getenv("FWIPC_REGISTRYD"); e && *e) c.registry.registryd = e;
  // Only a whole decimal uid: anything else trusts no one more (fails closed).
  if (const char* e = std::getenv("FWIPC_REGISTRY_UID"); e && *e >= '0' && *e <= '9') {
    char* end = nullptr;
    errno = 0;
    const unsigned long uid = std::strtoul(e, &end, 10);
    if (errno == 0 && *end == '\0' && uid < static_cast<uid_t>(-1)) c.registry.registry_uid = static_cast<uid_t>(uid);
  }
  c.disable_shm = flag("FWIPC_DISABLE_SHM");
  return c;
}

}  // namespace fwipc::core
