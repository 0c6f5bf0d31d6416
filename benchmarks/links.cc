#include "benchmarks/links.h"

#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <cerrno>
#include <cstring>

#include "base/futex.h"
#include "benchmarks/timing.h"

namespace fwipc::bench {
namespace {

namespace bip = boost::interprocess;

constexpr uint32_t kStop = 0xffffffffu;  // a length no real message has

// Shared mailbox: a payload buffer and a futex sequence word.
struct alignas(64) Mailbox {
  std::atomic<uint32_t> seq;
  uint32_t len;
  char data[512];
};

class FutexLink final : public Link {
 public:
  explicit FutexLink(Mailbox* m) : m_(m) {}
  bool send(const void* b, uint32_t n) override {
    m_->len = n;
    std::memcpy(m_->data, b, n);
    m_->seq.fetch_add(1, std::memory_order_release);
    futex_wake_all(&m_->seq);  // always: this row is the bare futex path, no spinning
    return true;
  }
  int recv(void* b, uint32_t cap) override {
    uint32_t s;
    while ((s = m_->seq.load(std::memory_order_acquire)) == seen_) futex_wait(&m_->seq, s, -1);
    seen_ = s;
    if (m_->len > cap) return -1;
    std::memcpy(b, m_->data, m_->len);
    return int(m_->len);
  }

 private:
  Mailbox* m_;
  uint32_t seen_ = 0;
};

class EventfdLink final : public Link {
 public:
  EventfdLink(Mailbox* m, int efd) : m_(m), efd_(efd) {}
  bool send(const void* b, uint32_t n) override {
    m_->len = n;
    std::memcpy(m_->data, b, n);
    const uint64_t one = 1;
    return ::write(efd_, &one, 8) == 8;
  }
  int recv(void* b, uint32_t cap) override {
    uint64_t v;
    if (::read(efd_, &v, 8) != 8 || m_->len > cap) return -1;
    std::memcpy(b, m_->data, m_->len);
    return int(m_->len);
  }

 private:
  Mailbox* m_;
  int efd_;
};

// A descriptor carrying length-prefixed messages (stream) or whole messages (packet).
class FdLink final : public Link {
 public:
  FdLink(int wfd, int rfd, bool stream) : w_(wfd), r_(rfd), stream_(stream) {}
  bool send(const void* b, uint32_t n) override {
    if (!stream_) return ::write(w_, b, n) == ssize_t(n);
    char tmp[4 + 512];
    std::memcpy(tmp, &n, 4);
    std::memcpy(tmp + 4, b, n);
    return ::write(w_, tmp, 4 + n) == ssize_t(4 + n);
  }
  int recv(void* b, uint32_t cap) override {
    if (!stream_) return int(::read(r_, b, cap));
    uint32_t n;
    if (!read_all(&n, 4) || n > cap) return -1;
    return read_all(b, n) ? int(n) : -1;
  }

 private:
  bool read_all(void* b, size_t n) {
    char* p = static_cast<char*>(b);
    while (n > 0) {
      const ssize_t k = ::read(r_, p, n);
      if (k <= 0) return false;
      p += k;
      n -= size_t(k);
    }
    return true;
  }
  int w_, r_;
  bool stream_;
};

class PosixMqLink final : public Link {
 public:
  explicit PosixMqLink(mqd_t q) : q_(q) {}
  bool send(const void* b, uint32_t n) override { return ::mq_send(q_, static_cast<const char*>(b), n, 0) == 0; }
  int recv(void* b, uint32_t cap) override {
    char tmp[512];
    const ssize_t n = ::mq_receive(q_, tmp, sizeof tmp, nullptr);
    if (n < 0 || uint32_t(n) > cap) return -1;
    std::memcpy(b, tmp, size_t(n));
    return int(n);
  }

 private:
  mqd_t q_;
};

class BoostMqLink final : public Link {
 public:
  explicit BoostMqLink(const std::string& name) : name_(name), q_(bip::open_only, name.c_str()) {}
  bool send(const void* b, uint32_t n) override {
    q_.send(b, n, 0);
    return true;
  }
  int recv(void* b, uint32_t cap) override {
    char tmp[512];
    bip::message_queue::size_type n = 0;
    unsigned prio = 0;
    q_.receive(tmp, sizeof tmp, n, prio);
    if (n > cap) return -1;
    std::memcpy(b, tmp, n);
    return int(n);
  }

 private:
  std::string name_;
  bip::message_queue q_;
};

void echo(Link& in, Link& out) {
  char buf[512];
  for (;;) {
    const int n = in.recv(buf, sizeof buf);
    if (n < 0) return;
    uint32_t len = uint32_t(n);
    if (len == 4 && std::memcmp(buf, &kStop, 4) == 0) return;
    if (!out.send(buf, len)) return;
  }
}

}  // namespace

const char* link_name(LinkKind k) {
  switch (k) {
    case LinkKind::kFutex: return "futex";
    case LinkKind::kEventfd: return "eventfd";
    case LinkKind::kUdsSeqpacket: return "uds_seqpacket";
    case LinkKind::kUdsStream: return "uds_stream";
    case LinkKind::kPipe: return "pipe";
    case LinkKind::kPosixMq: return "posix_mq";
    case LinkKind::kBoostMq: return "boost_mq";
  }
  return "?";
}

std::vector<LinkKind> all_links() {
  return {LinkKind::kFutex, LinkKind::kEventfd, LinkKind::kUdsSeqpacket, LinkKind::kUdsStream,
          LinkKind::kPipe,  LinkKind::kPosixMq, LinkKind::kBoostMq};
}

LinkPingPong::LinkPingPong(LinkKind kind, uint32_t bytes) : bytes_(bytes) {
  // Build both directions before the fork; each side keeps the ends it uses.
  std::unique_ptr<Link> a_to_b, b_to_a;  // a = this process, b = the peer
  const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(uintptr_t(this) & 0xffff);
  std::string names[2];
  switch (kind) {
    case LinkKind::kFutex:
    case LinkKind::kEventfd: {
      void* p = ::mmap(nullptr, 2 * sizeof(Mailbox), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) return;
      auto* m = new (p) Mailbox[2]();
      if (kind == LinkKind::kFutex) {
        a_to_b = std::make_unique<FutexLink>(&m[0]);
        b_to_a = std::make_unique<FutexLink>(&m[1]);
      } else {
        a_to_b = std::make_unique<EventfdLink>(&m[0], ::eventfd(0, EFD_CLOEXEC));
        b_to_a = std::make_unique<EventfdLink>(&m[1], ::eventfd(0, EFD_CLOEXEC));
      }
      break;
    }
    case LinkKind::kUdsSeqpacket:
    case LinkKind::kUdsStream: {
      int sv[2];
      const int type = kind == LinkKind::kUdsStream ? SOCK_STREAM : SOCK_SEQPACKET;
      if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) return;
      a_to_b = std::make_unique<FdLink>(sv[0], sv[1], kind == LinkKind::kUdsStream);
      b_to_a = std::make_unique<FdLink>(sv[1], sv[0], kind == LinkKind::kUdsStream);
      break;
    }
    case LinkKind::kPipe: {
      int ab[2], ba[2];
      if (::pipe2(ab, O_CLOEXEC) != 0 || ::pipe2(ba, O_CLOEXEC) != 0) return;
      a_to_b = std::make_unique<FdLink>(ab[1], ab[0], true);
      b_to_a = std::make_unique<FdLink>(ba[1], ba[0], true);
      break;
    }
    case LinkKind::kPosixMq: {
      mq_attr attr{};
      attr.mq_maxmsg = 10;
      attr.mq_msgsize = 512;
      names[0] = "/fwipc-bench-ab-" + tag;
      names[1] = "/fwipc-bench-ba-" + tag;
      const mqd_t ab = ::mq_open(names[0].c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
      const mqd_t ba = ::mq_open(names[1].c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
      ::mq_unlink(names[0].c_str());
      ::mq_unlink(names[1].c_str());
      if (ab == mqd_t(-1) || ba == mqd_t(-1)) return;
      a_to_b = std::make_unique<PosixMqLink>(ab);
      b_to_a = std::make_unique<PosixMqLink>(ba);
      break;
    }
    case LinkKind::kBoostMq: {
      names[0] = "fwipc-bench-ab-" + tag;
      names[1] = "fwipc-bench-ba-" + tag;
      try {
        for (auto& n : names) {
          bip::message_queue::remove(n.c_str());
          bip::message_queue(bip::create_only, n.c_str(), 10, 512);
        }
        a_to_b = std::make_unique<BoostMqLink>(names[0]);
        b_to_a = std::make_unique<BoostMqLink>(names[1]);
      } catch (const std::exception&) {
        return;
      }
      break;
    }
  }
  peer_ = ::fork();
  if (peer_ == 0) {
    echo(*a_to_b, *b_to_a);
    ::_exit(0);
  }
  if (kind == LinkKind::kBoostMq)  // both sides have them open: the names can go
    for (auto& n : names) bip::message_queue::remove(n.c_str());
  to_peer_ = std::move(a_to_b);
  from_peer_ = std::move(b_to_a);
  ok_ = peer_ > 0;
}

LinkPingPong::~LinkPingPong() {
  if (to_peer_) (void)to_peer_->send(&kStop, 4);
  if (peer_ > 0) {
    int st;
    while (::waitpid(peer_, &st, 0) < 0 && errno == EINTR) {
    }
  }
}

bool LinkPingPong::round_trip() {
  return to_peer_->send(buf_, bytes_) && from_peer_->recv(buf_, sizeof buf_) == int(bytes_);
}

std::vector<int64_t> LinkPingPong::timed(uint64_t n) {
  return time_trips(n, [this] { return round_trip(); });
}

}  // namespace fwipc::bench
