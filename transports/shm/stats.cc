#include "transports/shm/stats.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace fwipc::stats {

int create_page(const char* debug_name) noexcept {
  char name[96];
  std::snprintf(name, sizeof name, "fwipc-stats:%s", debug_name);
  const int fd = ::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -errno;
  auto fail = [fd] {
    const int e = errno;
    ::close(fd);
    return -e;
  };
  if (::ftruncate(fd, kPageBytes) != 0) return fail();
  // Sealed size: no holder can shrink it under an observer's mapping (no SIGBUS there).
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) return fail();
  Page head{};
  head.magic = kMagic;
  head.version = kVersion;
  if (::pwrite(fd, &head, sizeof head, 0) != static_cast<ssize_t>(sizeof head)) return fail();
  return fd;
}

std::unique_ptr<Mapping> Mapping::map(int fd, bool writable) noexcept {
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != static_cast<off_t>(kPageBytes)) return nullptr;
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & F_SEAL_SHRINK) == 0) return nullptr;
  void* p = ::mmap(nullptr, kPageBytes, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return nullptr;
  auto* page = static_cast<Page*>(p);
  if (page->magic != kMagic || page->version != kVersion) {
    ::munmap(p, kPageBytes);
    return nullptr;
  }
  return std::unique_ptr<Mapping>(new Mapping(page));
}

Mapping::~Mapping() { ::munmap(page_, kPageBytes); }

Snapshot read(const Page& p) noexcept {
  constexpr auto r = std::memory_order_relaxed;
  return Snapshot{
      p.publisher_pid.load(r), p.updated_ns.load(r),    p.queued_frames.load(r),   p.queued_bytes.load(r),
      p.high_water.load(r),    p.queue_bound.load(r),   p.held_back.load(r),       p.held_back_times.load(r),
      p.evictions.load(r),     p.dropped_peers.load(r), p.peers.load(r),           p.peers_bound.load(r),
      p.callers.load(r),       p.callers_bound.load(r), p.callers_refused.load(r), p.replies_dropped.load(r)};
}

}  // namespace fwipc::stats
