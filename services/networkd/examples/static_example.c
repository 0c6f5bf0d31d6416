/* The seed's networkd example in C: a static address with a default route on IFACE
 * (eth0 unless given), then the state. Build: //services/networkd:static_example. */
#include <stdio.h>

#include "services/networkd/networkd_ipc.h"

int main(int argc, char** argv) {
  const char* iface = argc > 1 ? argv[1] : "eth0";
  int rc = networkd_configure_static(iface, "192.168.1.100", "255.255.255.0", "192.168.1.1");
  if (rc != 0) {
    fprintf(stderr, "static_example: %s\n", networkd_last_error()); /* e.g. "iface: eth9: no such interface" */
    return 1;
  }
  rc = networkd_wait_online(iface, 5000);
  if (rc != 0) {
    fprintf(stderr, "static_example: not online: %s\n", networkd_last_error());
    return 1;
  }
  static char state[1 << 16];
  if (networkd_get_state(state, sizeof state) == 0) printf("%s\n", state);
  return 0;
}
