#include "transports/bridge/bridge.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>

#include "base/time.h"

namespace fwipc::bridge {
namespace {

constexpr int kSafetyNapMs = 100;      // the longest a wait goes without looking around
constexpr long kSpaceNapNs = 1000000;  // progress thread: how soon to look for ring space again

// What a blocking ring call may wait: timeout_ns itself when it means "forever" (< 0) or
// "do not wait" (0), else the time left, or -ETIMEDOUT once past (one clock read).
int64_t left(const Deadline& deadline, int64_t timeout_ns) {
  if (timeout_ns <= 0) return timeout_ns;
  const int64_t l = deadline.remaining_ns();
  return l > 0 ? l : -ETIMEDOUT;
}

}  // namespace

Bridge::Bridge(std::unique_ptr<shm::ShmRing> ring, int listen_fd, sock::Owner owner, uint32_t cap, pid_t self) noexcept
    : ring_(std::move(ring)) {
  auto hub =
      sock::Hub::create_bridge(listen_fd, owner, cap, self, sock::Hub::BridgeHooks{&sink_, &Bridge::admit, this});
  // Without a hub (no epoll set: out of descriptors or memory) the listening socket is
  // closed, so other uids' open() fails, and this stays a plain ring that never activates.
  if (!hub) return;
  hub_ = std::move(hub.value());
  ring_->watch_bridge_epoch(true);
  // Someone of another uid may have opened the channel before we got here.
  if (ring_->segment().header()->bridge_epoch.load(std::memory_order_acquire) != 0) activate();
}

Bridge::~Bridge() {
  if (registered_) progress::remove(this);  // before anything progress() uses goes
  if (prog_ep_ >= 0) ::close(prog_ep_);
  if (nap_fd_ >= 0) ::close(nap_fd_);
  pumps_.clear();
  hub_.reset();
  if (ep_ >= 0) ::close(ep_);
}

// A reader's hello names the ring entry the registry joined for it; the entry must be
// active and carry that reader's PID (the kernel's word, from the connection).
bool Bridge::admit(void* self, pid_t pid, uint32_t index, uint32_t state) {
  auto* b = static_cast<Bridge*>(self);
  if (index >= shm::kMaxReaders || (state & shm::kEntryActive) == 0) return false;
  const shm::ReaderEntry& e = b->ring_->segment().header()->readers[index];
  return e.state.load(std::memory_order_acquire) == state &&
         e.pid.load(std::memory_order_relaxed) == static_cast<uint32_t>(pid);
}

// Caller holds mu_. `reading`: called from the id's reading thread, the only one that may
// touch the ring's reader side (its notify descriptor).
int Bridge::ensure_epoll(bool reading) noexcept {
  if (ep_ < 0) {
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) return -errno;
    if (active_.load(std::memory_order_relaxed)) watch(hub_->notify_fd());
  }
  if (reading && !ring_watched_) {
    ring_watched_ = true;
    watch(ring_->notify_fd());
  }
  return 0;
}

void Bridge::watch(int fd) noexcept {
  if (ep_ < 0 || fd < 0) return;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
}

void Bridge::activate() noexcept {
  int prog_ep = -1;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!hub_ || active_.load(std::memory_order_relaxed)) return;
    ring_->watch_bridge_epoch(false);
    const bool had_ep = ep_ >= 0;
    active_.store(true, std::memory_order_release);
    if (had_ep) watch(hub_->notify_fd());  // else ensure_epoll() adds it
    // From now on bridged members move whatever the creator does. Without the thread (it
    // could not be made) they move inside the creator's calls, as they always could.
    prog_ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    nap_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (prog_ep_ < 0 || nap_fd_ < 0) return;
    for (const int fd : {hub_->notify_fd(), nap_fd_}) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      if (::epoll_ctl(prog_ep_, EPOLL_CTL_ADD, fd, &ev) != 0) return;
    }
    prog_ep = prog_ep_;
  }
  // Outside mu_: the progress thread takes its registry lock, then ours (progress.h).
  const bool added = progress::add(prog_ep, this) == 0;
  std::lock_guard<std::mutex> lk(mu_);
  registered_ = added;
}

void Bridge::progress() noexcept {
  std::lock_guard<std::mutex> lk(mu_);
  uint64_t expirations;
  (void)!::read(nap_fd_, &expirations, sizeof expirations);
  service();
  arm_progress();
}

// Caller holds mu_. A bridged reader's entry is watched only while its connection has
// room (else its descriptor would stay readable while we may not move anything).
void Bridge::arm_progress() noexcept {
  const std::vector<sock::Hub::ReaderView> readers = hub_->bridged_readers();
  for (auto& [fd, pump] : pumps_) {
    const bool room = std::any_of(readers.begin(), readers.end(),
                                  [&](const sock::Hub::ReaderView& v) { return v.fd == fd && v.room > 0; });
    epoll_event ev{};
    ev.events = room ? EPOLLIN : 0u;
    ev.data.fd = pump.ring->notify_fd();
    if (::epoll_ctl(prog_ep_, EPOLL_CTL_MOD, ev.data.fd, &ev) != 0)
      ::epoll_ctl(prog_ep_, EPOLL_CTL_ADD, ev.data.fd, &ev);
  }
  // Ring space frees without any descriptor telling us: look again soon while writers'
  // frames wait for it.
  itimerspec t{};
  if (!sink_.empty()) t.it_value.tv_nsec = kSpaceNapNs;
  ::timerfd_settime(nap_fd_, 0, &t, nullptr);
}

void Bridge::service() noexcept {
  // Connections, hellos, and bridged writers' frames (into sink_).
  for (int i = 0; i < 64 && hub_->poll(0) > 0; ++i) {
  }
  // Into the ring under the PID the kernel gave for their connection. Full: the rest
  // waits, and the hub stops reading those writers until sink_ has room.
  bool committed = false;
  while (!sink_.empty()) {
    const frame::Frame& f = sink_.front();
    const int rc = ring_->send_as(f.sender, header_of(f), f.payload, 0);
    if (rc == -EAGAIN) break;
    sink_.pop_front();  // sent, or never will be (-EPIPE: channel closed; -EIO: ring corrupt)
    committed = true;
  }
  pump_readers();
  if (committed) hub_->poll(0);  // reading from writers resumes
}

void Bridge::pump_readers() noexcept {
  const std::vector<sock::Hub::ReaderView> readers = hub_->bridged_readers();
  // Pumps of readers that left (or whose connection number was reused) go.
  for (auto it = pumps_.begin(); it != pumps_.end();) {
    const auto r = std::find_if(readers.begin(), readers.end(), [&](const sock::Hub::ReaderView& v) {
      return v.fd == it->first && v.index == it->second.index && v.state == it->second.state;
    });
    it = r == readers.end() ? pumps_.erase(it) : std::next(it);
  }
  for (const sock::Hub::ReaderView& r : readers) {
    auto it = pumps_.find(r.fd);
    if (it == pumps_.end()) {
      auto seg = shm::Segment::attach(ring_->segment().fd());
      if (!seg) continue;
      shm::Roles roles;
      roles.reader_index = static_cast<int>(r.index);
      roles.reader_state = r.state;
      auto ring = std::make_unique<shm::ShmRing>(std::move(seg.value()), roles, r.pid);
      watch(ring->notify_fd());  // armed: a commit for this reader wakes our wait()
      it = pumps_.emplace(r.fd, Pump{r.index, r.state, std::move(ring)}).first;
    }
    // IPC_OVERFLOW_EVICT: a ring writer evicted its entry (it held the ring full too
    // long): it gets what its connection holds, then kEvicted, and nothing more.
    if (it->second.ring->evicted()) {
      hub_->evict_reader(r.fd);
      continue;
    }
    if (r.room == 0) continue;  // its connection's EPOLLOUT (in the hub) wakes us
    // A reader that died is released by the registry when its registry connection drops,
    // maybe before we see its hub connection close: never move an entry that is no longer
    // its (the registry may already have given it to someone else).
    if (!admit(this, r.pid, r.index, r.state)) continue;
    struct Ctx {
      sock::Hub* hub;
      int fd;
    } ctx{hub_.get(), r.fd};
    (void)it->second.ring->consume(
        static_cast<uint32_t>(r.room),
        [](void* c, const MsgHeader* h, const void* payload) {
          auto* x = static_cast<Ctx*>(c);
          x->hub->deliver(x->fd, *h, static_cast<const char*>(payload));
        },
        &ctx, 0);
  }
}

// for_space: waiting for ring space, which has no descriptor: short naps, woken early by
// hub work only (the ring's own descriptor may stay readable while we do not read).
void Bridge::wait(const Deadline& deadline, bool for_space) noexcept {
  std::unique_lock<std::mutex> lk(mu_);
  if (for_space || !sink_.empty() || ensure_epoll(true) < 0) {
    pollfd p{hub_->notify_fd(), POLLIN, 0};
    lk.unlock();
    ::poll(&p, 1, deadline.poll_ms(1));
    return;
  }
  // Pumps whose reader has no room would report their ring descriptor forever: only the
  // others are looked at, and only through the ring entries' pings.
  const std::vector<sock::Hub::ReaderView> readers = hub_->bridged_readers();
  for (auto& [fd, pump] : pumps_) {
    epoll_event ev{};
    ev.data.fd = pump.ring->notify_fd();
    const bool room = std::any_of(readers.begin(), readers.end(),
                                  [&](const sock::Hub::ReaderView& v) { return v.fd == fd && v.room > 0; });
    ev.events = room ? EPOLLIN : 0u;
    ::epoll_ctl(ep_, EPOLL_CTL_MOD, ev.data.fd, &ev);
  }
  const int ep = ep_;
  lk.unlock();
  epoll_event evs[8];
  (void)::epoll_wait(ep, evs, 8, deadline.poll_ms(kSafetyNapMs));
}

// Until bridged: the ring call itself, blocking as asked, until it reports that the
// registry let someone of another uid in (-EINTR). Bridged: hub and bridged readers'
// work around non-blocking ring calls, waiting in between. `writes`: op puts messages in
// the ring, so it may wait for space and its messages are pumped to bridged readers at once.
template <typename Op>
int Bridge::call(Op op, int64_t timeout_ns, bool writes) noexcept {
  const Deadline deadline = Deadline::after_ns(timeout_ns);
  for (;;) {
    if (!active_.load(std::memory_order_acquire)) {
      const int64_t t = left(deadline, timeout_ns);
      const int rc = t == -ETIMEDOUT ? -ETIMEDOUT : op(t);
      if (rc != -EINTR) return rc;
      activate();
      continue;
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      service();
    }
    const int rc = op(0);
    if (rc >= 0 && writes) {
      std::lock_guard<std::mutex> lk(mu_);
      pump_readers();  // bridged readers get it now, not at our next call
    }
    if (rc != -EAGAIN || timeout_ns == 0) return rc;
    if (deadline.expired()) return -ETIMEDOUT;
    wait(deadline, writes);
  }
}

int Bridge::send(const MsgHeader& hdr, const void* payload, int64_t timeout_ns) noexcept {
  return call([&](int64_t t) { return ring_->send(hdr, payload, t); }, timeout_ns, true);
}

int Bridge::send_batch(const MsgHeader* hdrs, const void* const* payloads, uint32_t n, int64_t timeout_ns) noexcept {
  return call([&](int64_t t) { return ring_->send_batch(hdrs, payloads, n, t); }, timeout_ns, true);
}

int Bridge::loan(shm::Loan* out, int64_t timeout_ns) noexcept {
  return call([&](int64_t t) { return ring_->loan(out, t); }, timeout_ns, true);
}

int Bridge::receive(MsgHeader* hdr, void* buf, uint32_t cap, int64_t timeout_ns) noexcept {
  return call([&](int64_t t) { return ring_->receive(hdr, buf, cap, t); }, timeout_ns, false);
}

int Bridge::consume(uint32_t max, Visitor fn, void* ctx, int64_t timeout_ns) noexcept {
  return call([&](int64_t t) { return ring_->consume(max, fn, ctx, t); }, timeout_ns, false);
}

// Readable when the ring has something for us or, once bridged, when the hub or a bridged
// reader's entry needs a call on the channel to make progress.
int Bridge::notify_fd() noexcept {
  std::lock_guard<std::mutex> lk(mu_);
  if (int rc = ensure_epoll(true); rc < 0) return rc;
  return ep_;
}

void Bridge::forget_after_fork() noexcept {
  registered_ = false;  // the progress thread is the parent's
  ring_->forget_after_fork();
  for (auto& [fd, pump] : pumps_) pump.ring->forget_after_fork();
  if (hub_) hub_->forget_after_fork();
}

}  // namespace fwipc::bridge
