#include "tests/channels.h"

#include <sys/prctl.h>
#include <unistd.h>

namespace fwipc::test {

int create_small(const char* name, IPC_CHANNEL_OPTIONS o) {
  o.buffer_size = IPC_BUFFER_MIN;
  return ipc_create_channel_opts(name, &o);
}

pid_t idle_reader(const char* name, const Barrier& joined, const Barrier& release, bool other_uid,
                  const std::function<int(int id)>& then) {
  return spawn([&] {
    if (other_uid) {
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) return 9;
      ::prctl(PR_SET_DUMPABLE, 1);  // its runtime's descriptors stay reachable through /proc
    }
    const int r = ipc_open_channel(name, IPC_MODE_READ);
    if (r < 0) return 10;
    joined.signal();
    if (!release.wait(1)) return 11;
    return then ? then(r) : 0;
  });
}

uint32_t fill(int id, int* rc) {
  uint32_t sent = 0;
  int last;
  while ((last = ipc_send(uint32_t(id), &sent, sizeof sent, 1)) == int(sizeof sent)) ++sent;
  if (rc != nullptr) *rc = last;
  return sent;
}

}  // namespace fwipc::test
