// registry.state: one line per named channel, what a restarted registry needs to find the
// channels whose creators still live. Text, so an administrator can read it; replaced
// atomically (write to .tmp, rename), mode 0600.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fwipc::registry {

struct StateRecord {
  std::string name;
  uint32_t type = 0;       // IPC_TYPE_*
  uint32_t transport = 0;  // TransportKind
  uint32_t uid = 0, gid = 0, mode = 0, capacity = 0;
  int32_t creator_pid = 0;
  uint64_t creator_start = 0;
  uint64_t instance_id = 0;  // QUEUE: the segment's random id, to recognise it again
  std::string path;          // socket or FIFO; empty for none
  bool v2 = false;           // QUEUE on ring v2: instance_id is its directory's
};

// 0 or -errno. Nothing is replaced unless the whole file was written.
int write_state_file(const std::string& path, const std::vector<StateRecord>& records);

// The well-formed records of the file (malformed lines and unknown transports are
// skipped: the file may come from another build). Missing file: empty.
std::vector<StateRecord> read_state_file(const std::string& path);

}  // namespace fwipc::registry
