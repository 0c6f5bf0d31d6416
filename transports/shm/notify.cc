// The readers' notify socket: one abstract-namespace datagram socket per reader entry and
// membership, so a reader can wait in poll()/epoll alongside other descriptors.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "base/unixsock.h"
#include "transports/shm/notify.h"
#include "transports/shm/ring.h"

namespace fwipc::shm {

namespace {

// Abstract-namespace datagram address of reader idx's notify socket. Abstract names need
// no cleanup: they vanish with the socket.
socklen_t notify_addr(const SegmentHeader* h, uint32_t idx, uint32_t state, sockaddr_un* a) {
  std::memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  const int n = std::snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "fwipc/%016llx/%u/%u",
                              static_cast<unsigned long long>(h->instance_id), idx, state);
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
}

}  // namespace

bool disarm(SegmentHeader* h, ReaderEntry& e) noexcept {
  uint32_t one = 1;
  if (e.armed.load(std::memory_order_relaxed) == 0 ||
      !e.armed.compare_exchange_strong(one, 0, std::memory_order_acq_rel))
    return false;
  h->data_waiters.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

void ping(const SegmentHeader* h, uint32_t idx, uint32_t state) noexcept {
  sockaddr_un a;
  ping_datagram(a, notify_addr(h, idx, state, &a));
}

void notify_readers(const Segment& seg) noexcept {
  SegmentHeader* h = seg.header();
  h->data_futex.fetch_add(1, std::memory_order_release);  // SYNC POINT WRITE: data futex
  futex_wake_all(&h->data_futex);
  const uint32_t n =
      std::min(h->reader_count.load(std::memory_order_acquire), kMaxReaders);  // SYNC POINT READ: entry count
  for (uint32_t i = 0; i < n; ++i) {
    ReaderEntry& e = h->readers[i];
    if (disarm(h, e)) ping(h, i, e.state.load(std::memory_order_acquire));
  }
}

// ---- pollable descriptor
//
// Invariant: while a message waits for this reader, either the notify socket holds a ping
// or the reader is armed (a writer will ping on its next commit). A receive that finds the
// ring empty drains the pings and re-arms; if data raced in meanwhile it pings itself.

void ShmRing::rearm_notify() noexcept {
  char b[64];
  while (::recv(notify_fd_, b, sizeof b, MSG_DONTWAIT) > 0) {
  }
  uint32_t zero = 0;
  // SYNC POINT STORE-LOAD: data sleep, for an fd-armed reader: armed and counted, then the
  // re-check below; the store half of the Dekker pair with end_claim, so seq_cst stays.
  if (me_->armed.compare_exchange_strong(zero, 1, std::memory_order_seq_cst))
    hdr_->data_waiters.fetch_add(1, std::memory_order_seq_cst);
  clear_pending(hdr_->wake_pending);
  if (data_ready() && disarm(hdr_, *me_)) ping(hdr_, static_cast<uint32_t>(roles_.reader_index), roles_.reader_state);
}

int ShmRing::notify_fd() noexcept {
  if (me_ == nullptr) return -EBADF;
  if (notify_fd_ >= 0) return notify_fd_;
  sockaddr_un a;
  const int fd =
      bind_datagram(a, notify_addr(hdr_, static_cast<uint32_t>(roles_.reader_index), roles_.reader_state, &a));
  if (fd < 0) return fd;
  notify_fd_ = fd;
  rearm_notify();
  return notify_fd_;
}

}  // namespace fwipc::shm
