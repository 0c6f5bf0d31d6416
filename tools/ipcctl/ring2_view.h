// ipcctl on a ring v2 channel (transports/shm/RING-V2.md): an observer, never a reader.
// The registry passes the channel's directory with kList and, through kObserve, every
// ring and reader page read-only to whoever may read the channel. Nothing here writes
// shared memory or joins the channel: no writer ever waits for ipcctl, no reader loses a
// message to it. Every word read from a ring or a page is checked before use, as a
// reader does (a writer may scribble its own ring, a reader its own page).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/registry/client.h"
#include "transports/shm/directory.h"
#include "transports/shm/wring.h"

namespace fwipc::ipcctl {

struct Peer;
struct RingStats;

// A read-only mapping of a whole descriptor (its size from fstat), unmapped on destruction.
struct RoMap {
  const void* mem = nullptr;
  uint64_t bytes = 0;
  RoMap() = default;
  RoMap(const RoMap&) = delete;
  RoMap& operator=(const RoMap&) = delete;
  ~RoMap();
  // Maps fd (not closed here). 0 or -errno.
  int map(int fd);
};

class Ring2Observer {
 public:
  // One writer's ring as the directory names it.
  struct Ring {
    uint32_t idx = 0;
    uint64_t state = 0;  // the directory entry's when it was passed
    uint32_t pid = 0;    // the sender of everything in it (the directory's, never the ring's)
    uint64_t start_time = 0;
    uint64_t cap = 0;  // bytes of records, copied and checked once (its writer may rewrite the header)
    RoMap map;
    const shm::v2::RingHeader* hdr() const { return static_cast<const shm::v2::RingHeader*>(map.mem); }
    // The writer's tail (acquire), or kDetached if it is not a record boundary.
    uint64_t tail() const;
  };
  struct Page {
    uint32_t idx = 0;
    uint64_t state = 0;
    RoMap map;
    uint32_t rings = 0;  // cursor words the mapping holds, checked
    // The reader's cursor for ring i, or kDetached (also for words the page cannot hold).
    uint64_t cursor(uint32_t ring) const;
  };

  // Takes over dir_fd (the directory from kList, read-only; closed here). channel: its
  // registry number, for kObserve. Null if it is not a directory of this layout.
  static std::unique_ptr<Ring2Observer> open(int dir_fd, uint32_t channel);

  // Maps the rings and pages the directory lists that are not mapped yet (or whose entry
  // was reused), drops those that are gone. 0, or the -errno of the registry call that
  // failed (what was mapped before stays).
  int refresh(registry::Client& conn, const std::string& dir);

  const shm::v2::DirReader& dir() const { return dir_; }
  const std::map<uint32_t, std::unique_ptr<Ring>>& rings() const { return rings_; }
  const std::map<uint32_t, std::unique_ptr<Page>>& pages() const { return pages_; }

  // The channel's counters (see RingStats): depth and per-reader lag counted record by
  // record from the readers' cursors; messages exact for rings that never wrapped, else
  // estimated (RingStats::messages_exact). Active readers (with their lag) and writers
  // into readers and writers when not null.
  RingStats stats(std::vector<Peer>* readers, std::vector<Peer>* writers) const;

  // Active readers' cursors for ring r that a writer would count (checked as a writer
  // does: not past its tail, not more than a lap behind), as (reader index, cursor).
  std::vector<std::pair<uint32_t, uint64_t>> cursors_of(const Ring& r, uint64_t tail) const;

 private:
  int ask(registry::Client& conn, const std::string& dir, uint32_t kind, uint32_t first, registry::ObserveInfo* out,
          int* fds);
  int fetch(registry::Client& conn, const std::string& dir, uint32_t kind, const std::map<uint32_t, uint64_t>& want);

  uint32_t channel_ = 0;
  RoMap dir_map_;
  shm::v2::DirReader dir_;
  std::map<uint32_t, std::unique_ptr<Ring>> rings_;
  std::map<uint32_t, std::unique_ptr<Page>> pages_;
};

// Records of ring r in [from, tail): the count, and the ordinal of every position in
// `at` (sorted) that is a record boundary of the walk (positions not met get the count
// of records before the next boundary). Walks read-only with a local cursor; *whole:
// false if the writer overwrote part of [from, tail) meanwhile (the count then covers
// what was still there).
uint64_t count_records(const Ring2Observer::Ring& r, uint64_t from, uint64_t tail, const std::vector<uint64_t>& at,
                       std::vector<uint64_t>* ordinal, bool* whole);

}  // namespace fwipc::ipcctl
