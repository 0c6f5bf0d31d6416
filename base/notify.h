// Readiness for a service manager, as systemd's sd_notify() does it (used by the registry
// and, through fwsvc_notify(), by every service).
#pragma once

namespace fwipc {

// Sends state ("READY=1", "STOPPING=1", ...) as one datagram to $NOTIFY_SOCKET (a path
// or, with a leading '@', an abstract name): 1 when sent, 0 when NOTIFY_SOCKET is unset,
// or a negative errno.
int sd_notify(const char* state);

}  // namespace fwipc
