// A QUEUE channel on the shm ring, as the registry sees it: the segment is made here and
// passed to the creator; every member that may map it gets a reader and/or writer entry
// joined here, so the registry alone decides who holds which entry.
#include "ipc.h"
#include "runtime/registry/daemon/server.h"

namespace fwipc::registry {

int Server::create_shm(Client& c, Channel& ch, uint32_t slots, bool creator_reads, Membership& m) {
  auto seg = shm::Segment::create(ch.name.c_str(), slots, c.cred.pid,
                                  ch.overflow == IPC_OVERFLOW_EVICT ? ch.evict_after_ms : 0);
  if (!seg) return 1;
  ch.seg = std::move(seg.value());
  // A pure writer (creator_mode without IPC_MODE_READ) has no cursor: it never holds the
  // ring back. It keeps a writer entry either way (it may send at any time).
  if (creator_reads) {
    auto idx = shm::join_reader(ch.seg, c.cred.pid, c.start_time, &m.reader_state);
    if (!idx) return idx.error();
    m.reader_index = static_cast<int32_t>(*idx);
  }
  auto widx = shm::join_writer(ch.seg, c.cred.pid, c.start_time, &m.writer_state);
  if (!widx) return widx.error();
  m.writer_index = static_cast<int32_t>(*widx);
  pass(ch.seg.fd(), false);
  return 0;
}

// Bridged (another uid): its reader entry is joined now (it gets what is sent from now on)
// and fed by the creator's runtime; as a writer it has no entry: the creator's runtime
// commits its frames.
int Server::open_shm(Client& c, Channel& ch, bool want_read, bool want_write, Membership& m) {
  const bool bridged = !shares_ring(c, ch);
  m.remote_writer = bridged && want_write;
  if (want_write && !bridged) {
    auto idx = shm::join_writer(ch.seg, c.cred.pid, c.start_time, &m.writer_state);
    if (!idx) return idx.error();
    m.writer_index = static_cast<int32_t>(*idx);
  }
  if (want_read) {
    auto idx = shm::join_reader(ch.seg, c.cred.pid, c.start_time, &m.reader_state);
    if (!idx) {
      if (m.writer_index >= 0) shm::release_writer(ch.seg, uint32_t(m.writer_index), m.writer_state);
      return idx.error();
    }
    m.reader_index = static_cast<int32_t>(*idx);
  }
  if (bridged)
    shm::poke_bridge(ch.seg);
  else
    pass(ch.seg.fd(), false);
  return 0;
}

void Server::release_shm(Membership& m) {
  if (m.reader_index >= 0) shm::release_reader(m.ch->seg, static_cast<uint32_t>(m.reader_index), m.reader_state);
  if (m.writer_index >= 0) shm::release_writer(m.ch->seg, static_cast<uint32_t>(m.writer_index), m.writer_state);
}

}  // namespace fwipc::registry
