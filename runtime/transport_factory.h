// Builds a channel's transport from the registry's reply. This is the client half of the
// descriptor-order contract in registry/protocol.h.
#pragma once

#include <cstdint>
#include <memory>

#include "fwipc/types.hpp"
#include "runtime/registry/protocol.h"
#include "transports/transport.h"

namespace fwipc::shm::v2 {
class Peers;
}

namespace fwipc::core {

// What only the creator knows.
struct CreateInfo {
  uint32_t perm_mode;
  uint32_t capacity_msgs;
};

// How many of the reply's descriptors are the transport's (those after it: NAME.call and
// the stats page, for a creator).
int transport_fds(const registry::Reply& rep, uint32_t mode, bool created) noexcept;

// Takes (and sets to -1) the descriptors of fds it keeps; the caller closes the rest.
// created is null for an open. Ring v2: *membership is what the id's close goes through
// (Peers::leave: the registry that gave it may have restarted since).
Result<std::unique_ptr<Transport>> make_transport(const registry::Reply& rep, int* fds, const char* name, uint32_t mode,
                                                  const CreateInfo* created, pid_t self,
                                                  std::shared_ptr<shm::v2::Peers>* membership);

}  // namespace fwipc::core
