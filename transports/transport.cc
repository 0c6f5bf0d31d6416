#include "transports/transport.h"

namespace fwipc {

const char* transport_name(TransportKind k) noexcept {
  switch (k) {
    case TransportKind::kShmRing: return "shm";
    case TransportKind::kSocket: return "socket";
    case TransportKind::kPipe: return "pipe";
  }
  return "unknown";
}

}  // namespace fwipc
