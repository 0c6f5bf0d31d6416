// Ring v2 channel directory: formatting, the registry's mutators, the members' checked
// read-only view. See directory.h.
#include "transports/shm/directory.h"

#include <cerrno>
#include <cstring>
#include <type_traits>

#include "base/cpu.h"
#include "transports/shm/wring.h"

namespace fwipc::shm::v2 {

namespace {

bool capacity_ok(uint64_t c) noexcept { return c >= kMinCapacity && c <= kMaxCapacity && (c & (c - 1)) == 0; }

// Entry fields are plain words in shared memory that the registry writes while a member
// may be copying them (the copy is then thrown away, see copy_entry): relaxed atomic
// accesses keep that a race on words, not undefined behaviour.
template <typename T>
T load_word(const T* p) noexcept {
  return __atomic_load_n(p, __ATOMIC_RELAXED);
}
template <typename T>
void store_word(T* p, T v) noexcept {
  __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

constexpr uint64_t state_of(uint64_t generation, uint32_t status) noexcept { return generation << 8 | status; }
constexpr uint64_t generation_of(uint64_t state) noexcept { return state >> 8; }

// Line 0 as a member sees it: every word read once, then checked.
struct Line0 {
  uint32_t version, header_bytes;
  uint64_t instance_id;
  uint32_t overflow, evict_after_ms, creator_pid, max_rings, max_readers, ring_capacity, ring_records;
};

// -EBADMSG unless mem holds a directory of this layout whose tables fit in bytes.
int read_line0(const void* mem, uint64_t bytes, Line0* l) noexcept {
  if (mem == nullptr || bytes < sizeof(DirHeader)) return -EBADMSG;
  const auto* h = static_cast<const DirHeader*>(mem);
  if (load_word(&h->magic) != kDirMagic) return -EBADMSG;
  // SYNC POINT READ: directory header. Seeing the magic makes line 0 visible.
  std::atomic_thread_fence(std::memory_order_acquire);
  l->version = load_word(&h->version);
  l->header_bytes = load_word(&h->header_bytes);
  l->instance_id = load_word(&h->instance_id);
  l->overflow = load_word(&h->overflow);
  l->evict_after_ms = load_word(&h->evict_after_ms);
  l->creator_pid = load_word(&h->creator_pid);
  l->max_rings = load_word(&h->max_rings);
  l->max_readers = load_word(&h->max_readers);
  l->ring_capacity = load_word(&h->ring_capacity);
  l->ring_records = load_word(&h->ring_records);
  if (l->version != kDirVersion || l->header_bytes != sizeof(DirHeader)) return -EBADMSG;
  if (l->max_rings == 0 || l->max_rings > kMaxRings || l->max_readers == 0 || l->max_readers > kMaxDirReaders)
    return -EBADMSG;
  if (directory_bytes(l->max_rings, l->max_readers) > bytes) return -EBADMSG;
  if (!capacity_ok(l->ring_capacity)) return -EBADMSG;
  return 0;
}

// A seqlock-like copy (the registry writes an entry's fields only while its state says
// free, and a release fence separates that free store from the field stores): state,
// fields, state again; equal states mean the fields belong to that state.
template <typename Entry>
bool copy_entry(const Entry* e, EntryView* out) noexcept {
  for (int attempt = 0; attempt < 16; ++attempt) {
    // SYNC POINT READ: entry state. The fields stored before it are visible.
    const uint64_t s1 = e->state.load(std::memory_order_acquire);
    EntryView v;
    v.state = s1;
    v.pid = load_word(&e->pid);
    v.uid = load_word(&e->uid);
    v.start_time = load_word(&e->start_time);
    if constexpr (std::is_same_v<Entry, RingEntry>) v.capacity = load_word(&e->capacity);
    // SYNC POINT READ: entry recheck. A field of a later membership implies a later state.
    std::atomic_thread_fence(std::memory_order_acquire);
    const uint64_t s2 = e->state.load(std::memory_order_relaxed);
    if (s1 == s2) {
      if (entry_status(s1) == kFree) v = EntryView{s1};  // a free entry's fields mean nothing
      *out = v;
      return true;
    }
    cpu_relax();
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------- the registry

int DirWriter::format(void* mem, uint64_t bytes, const DirParams& p) noexcept {
  if (mem == nullptr || p.max_rings == 0 || p.max_rings > kMaxRings || p.max_readers == 0 ||
      p.max_readers > kMaxDirReaders || !capacity_ok(p.ring_capacity) ||
      bytes < directory_bytes(p.max_rings, p.max_readers))
    return -EINVAL;
  // Whatever the region held, the tables start free at generation 0.
  std::memset(mem, 0, directory_bytes(p.max_rings, p.max_readers));
  auto* h = static_cast<DirHeader*>(mem);
  h->version = kDirVersion;
  h->header_bytes = sizeof(DirHeader);
  h->instance_id = p.instance_id;
  h->overflow = p.overflow;
  h->evict_after_ms = p.evict_after_ms;
  h->creator_pid = p.creator_pid;
  h->max_rings = p.max_rings;
  h->max_readers = p.max_readers;
  h->ring_capacity = p.ring_capacity;
  h->ring_records = p.ring_records;
  h->closed.store(0, std::memory_order_relaxed);
  h->gen.store(0, std::memory_order_relaxed);
  // SYNC POINT WRITE: directory header. Whoever validates the magic sees the rest.
  std::atomic_thread_fence(std::memory_order_release);
  store_word(&h->magic, kDirMagic);
  return 0;
}

int DirWriter::attach(void* mem, uint64_t bytes) noexcept {
  Line0 l;
  if (const int rc = read_line0(mem, bytes, &l); rc < 0) return rc;
  hdr_ = static_cast<DirHeader*>(mem);
  rings_ = reinterpret_cast<RingEntry*>(static_cast<char*>(mem) + sizeof(DirHeader));
  readers_ = reinterpret_cast<DirReaderEntry*>(rings_ + l.max_rings);
  return 0;
}

void DirWriter::bump() noexcept {
  // SYNC POINT WRITE: dir gen. A member that sees it move re-reads the tables.
  hdr_->gen.store(hdr_->gen.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

namespace {

// Takes the first free entry of table[n]: fields while free, then the state of the next
// generation. Index or -ENOSPC.
template <typename Entry, typename Fill>
int take(Entry* table, uint32_t n, uint32_t status, uint64_t* state, Fill fill) noexcept {
  for (uint32_t i = 0; i < n; ++i) {
    Entry* e = &table[i];
    const uint64_t s = e->state.load(std::memory_order_relaxed);
    if (entry_status(s) != kFree) continue;
    // SYNC POINT WRITE: entry fields. Orders the earlier free store before them, so a
    // member whose copy saw one of these fields sees the state change (copy_entry).
    std::atomic_thread_fence(std::memory_order_release);
    fill(e);
    const uint64_t next = state_of(generation_of(s) + 1, status);
    e->state.store(next, std::memory_order_release);  // SYNC POINT WRITE: entry state
    if (state != nullptr) *state = next;
    return int(i);
  }
  return -ENOSPC;
}

// state -> the same generation with status `to`, if the entry holds `state` and its
// status is `from` (any taken status when from is kFree).
template <typename Entry>
int move(Entry* table, uint32_t n, uint32_t idx, uint64_t state, uint32_t from, uint32_t to, uint64_t* out) noexcept {
  if (table == nullptr || idx >= n) return -EINVAL;
  Entry* e = &table[idx];
  const uint64_t s = e->state.load(std::memory_order_relaxed);
  if (s != state || entry_status(s) == kFree || (from != kFree && entry_status(s) != from)) return -ESTALE;
  const uint64_t next = state_of(generation_of(s), to);
  e->state.store(next, std::memory_order_release);  // SYNC POINT WRITE: entry state
  if (out != nullptr) *out = next;
  return 0;
}

}  // namespace

int DirWriter::add_ring(uint32_t pid, uint32_t uid, uint64_t start_time, uint64_t* state) noexcept {
  if (hdr_ == nullptr) return -EINVAL;
  const uint64_t cap = hdr_->ring_capacity;
  const int idx = take(rings_, hdr_->max_rings, kActive, state, [&](RingEntry* e) {
    store_word(&e->pid, pid);
    store_word(&e->uid, uid);
    store_word(&e->start_time, start_time);
    store_word(&e->capacity, cap);
  });
  if (idx >= 0) bump();
  return idx;
}

int DirWriter::add_reader(uint32_t pid, uint32_t uid, uint64_t start_time, uint64_t* state) noexcept {
  if (hdr_ == nullptr) return -EINVAL;
  const int idx = take(readers_, hdr_->max_readers, kJoining, state, [&](DirReaderEntry* e) {
    store_word(&e->pid, pid);
    store_word(&e->uid, uid);
    store_word(&e->start_time, start_time);
    store_word(&e->reserved, uint64_t(0));
  });
  if (idx >= 0) bump();
  return idx;
}

int DirWriter::activate_reader(uint32_t idx, uint64_t* state) noexcept {
  if (state == nullptr || hdr_ == nullptr) return -EINVAL;
  const int rc = move(readers_, hdr_->max_readers, idx, *state, kJoining, kActive, state);
  if (rc == 0) bump();
  return rc;
}

int DirWriter::evict_reader(uint32_t idx, uint64_t state) noexcept {
  if (hdr_ == nullptr) return -EINVAL;
  const int rc = move(readers_, hdr_->max_readers, idx, state, kActive, kEvicted, nullptr);
  if (rc == 0) {
    hdr_->evictions.fetch_add(1, std::memory_order_relaxed);  // statistics
    bump();
  }
  return rc;
}

int DirWriter::drain_ring(uint32_t idx, uint64_t state) noexcept {
  if (hdr_ == nullptr) return -EINVAL;
  const int rc = move(rings_, hdr_->max_rings, idx, state, kActive, kDraining, nullptr);
  if (rc == 0) bump();
  return rc;
}

int DirWriter::free_ring(uint32_t idx, uint64_t state) noexcept {
  if (hdr_ == nullptr) return -EINVAL;
  const int rc = move(rings_, hdr_->max_rings, idx, state, kFree, kFree, nullptr);
  if (rc == 0) bump();
  return rc;
}

int DirWriter::free_reader(uint32_t idx, uint64_t state) noexcept {
  if (hdr_ == nullptr) return -EINVAL;
  const int rc = move(readers_, hdr_->max_readers, idx, state, kFree, kFree, nullptr);
  if (rc == 0) bump();
  return rc;
}

void DirWriter::close() noexcept {
  if (hdr_ == nullptr) return;
  hdr_->closed.store(1, std::memory_order_release);  // SYNC POINT WRITE: closed
  bump();
}

EntryView DirWriter::ring(uint32_t idx) const noexcept {
  EntryView v;
  if (hdr_ == nullptr || idx >= hdr_->max_rings) return v;
  const RingEntry& e = rings_[idx];
  v.state = e.state.load(std::memory_order_relaxed);
  v.pid = e.pid;
  v.uid = e.uid;
  v.start_time = e.start_time;
  v.capacity = e.capacity;
  return v;
}

EntryView DirWriter::reader(uint32_t idx) const noexcept {
  EntryView v;
  if (hdr_ == nullptr || idx >= hdr_->max_readers) return v;
  const DirReaderEntry& e = readers_[idx];
  v.state = e.state.load(std::memory_order_relaxed);
  v.pid = e.pid;
  v.uid = e.uid;
  v.start_time = e.start_time;
  return v;
}

// ---------------------------------------------------------------- members

int DirReader::attach(const void* mem, uint64_t bytes) noexcept {
  Line0 l;
  if (const int rc = read_line0(mem, bytes, &l); rc < 0) return rc;
  hdr_ = static_cast<const DirHeader*>(mem);
  rings_ = reinterpret_cast<const RingEntry*>(static_cast<const char*>(mem) + sizeof(DirHeader));
  readers_ = reinterpret_cast<const DirReaderEntry*>(rings_ + l.max_rings);
  max_rings_ = l.max_rings;
  max_readers_ = l.max_readers;
  ring_capacity_ = l.ring_capacity;
  ring_records_ = l.ring_records;
  instance_id_ = l.instance_id;
  overflow_ = l.overflow;
  evict_after_ms_ = l.evict_after_ms;
  creator_pid_ = l.creator_pid;
  return 0;
}

bool DirReader::ring(uint32_t idx, EntryView* out) const noexcept {
  if (rings_ == nullptr || out == nullptr || idx >= max_rings_) return false;
  return copy_entry(&rings_[idx], out);
}

bool DirReader::reader(uint32_t idx, EntryView* out) const noexcept {
  if (readers_ == nullptr || out == nullptr || idx >= max_readers_) return false;
  return copy_entry(&readers_[idx], out);
}

}  // namespace fwipc::shm::v2
