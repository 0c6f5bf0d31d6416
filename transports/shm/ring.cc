// The ShmRing handle: which entries it owns, construction and teardown, the process-wide
// spin budget and the bridge-epoch watch. Sending is ring_writer.cc, receiving
// ring_reader.cc, the notify descriptor notify.cc.
#include "transports/shm/ring.h"

#include <unistd.h>

#include <cstdlib>
#include <utility>

#include "transports/shm/notify.h"

namespace fwipc::shm {

namespace {
std::atomic<int64_t>& spin_budget() {
  static std::atomic<int64_t> v{ShmRing::kDefaultSpinNs};
  return v;
}
}  // namespace

int64_t ShmRing::spin_ns() noexcept { return spin_budget().load(std::memory_order_relaxed); }

void ShmRing::set_spin_ns(int64_t ns) noexcept { spin_budget().store(ns, std::memory_order_relaxed); }

ShmRing::ShmRing(Segment seg, Roles roles, pid_t self) noexcept
    : seg_(std::move(seg)), hdr_(seg_.header()), roles_(roles), pid_(static_cast<uint32_t>(self)) {
  evict_ = hdr_->overflow == IPC_OVERFLOW_EVICT && hdr_->evict_after_ms > 0;
  if (roles_.reader_index >= int(kMaxReaders)) roles_.reader_index = -1;
  if (roles_.writer_index >= int(kMaxWriters)) roles_.writer_index = -1;
  if (roles_.writer_index >= 0) wme_ = &hdr_->writers[roles_.writer_index];
  if (roles_.reader_index >= 0) {
    me_ = &hdr_->readers[roles_.reader_index];
    cursor_ = me_->cursor.load(std::memory_order_acquire);        // SYNC POINT READ: cursor (the joiner's)
    prio_seen_ = hdr_->prio_seq.load(std::memory_order_acquire);  // SYNC POINT READ: prio_seq
  }
}

ShmRing::~ShmRing() {
  if (me_ != nullptr) disarm(hdr_, *me_);
  if (notify_fd_ >= 0) ::close(notify_fd_);
}

void ShmRing::watch_bridge_epoch(bool on) noexcept {
  // SYNC POINT READ: bridge epoch
  epoch_seen_.store(hdr_->bridge_epoch.load(std::memory_order_acquire), std::memory_order_relaxed);
  watch_epoch_.store(on, std::memory_order_relaxed);
}

void ShmRing::forget_after_fork() noexcept {
  me_ = nullptr;  // the entries are the parent's: the destructor must not disarm them
  wme_ = nullptr;
}

}  // namespace fwipc::shm
