// The state file (state.h) and the registry's use of it: saved on every change to the
// name map, read once at start to adopt the channels of live creators (ring v2 channels:
// channel_ring2.cc adopt_ring2).
#include "runtime/registry/daemon/state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "base/names.h"
#include "base/proc.h"
#include "runtime/registry/daemon/server.h"

namespace fwipc::registry {

int write_state_file(const std::string& path, const std::vector<StateRecord>& records) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "we");
  if (f == nullptr) return -errno;
  ::fchmod(::fileno(f), 0600);
  for (const StateRecord& r : records)
    std::fprintf(f, "%s %u %u %u %u %o %u %d %llu %llx %s %s\n", r.name.c_str(), r.type, r.transport, r.uid, r.gid,
                 r.mode, r.capacity, r.creator_pid, static_cast<unsigned long long>(r.creator_start),
                 static_cast<unsigned long long>(r.instance_id), r.path.empty() ? "-" : r.path.c_str(),
                 r.v2 ? "v2" : "v4");
  const bool ok = std::fflush(f) == 0 && !std::ferror(f);
  std::fclose(f);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = ok ? errno : EIO;
    ::unlink(tmp.c_str());
    return -e;
  }
  return 0;
}

std::vector<StateRecord> read_state_file(const std::string& path) {
  std::vector<StateRecord> out;
  FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return out;
  char line[512];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    char name[80], file[400], layout[8] = "v4";
    StateRecord r;
    unsigned long long start, instance;
    // The layout field is new: a file without it is a layout 4 registry's.
    const int n = std::sscanf(line, "%79s %u %u %u %u %o %u %d %llu %llx %399s %7s", name, &r.type, &r.transport,
                              &r.uid, &r.gid, &r.mode, &r.capacity, &r.creator_pid, &start, &instance, file, layout);
    if (n != 11 && n != 12) continue;
    r.v2 = std::string(layout) == "v2";
    if (validate_channel_name(name) < 0 || r.transport > static_cast<uint32_t>(TransportKind::kPipe)) continue;
    r.name = name;
    r.mode &= 0777;
    r.creator_start = start;
    r.instance_id = instance;
    if (std::string(file) != "-") r.path = file;
    out.push_back(std::move(r));
  }
  std::fclose(f);
  return out;
}

void Server::save_state() {
  std::vector<StateRecord> records;
  for (const auto& [id, ch] : channels_) {
    if (ch->name.empty()) continue;
    StateRecord r;
    r.name = ch->name;
    r.type = ch->type;
    r.transport = static_cast<uint32_t>(ch->transport);
    r.uid = ch->uid;
    r.gid = ch->gid;
    r.mode = ch->mode;
    r.capacity = ch->capacity;
    r.creator_pid = ch->creator_pid;
    r.creator_start = ch->creator_start;
    r.v2 = ch->v2 != nullptr;
    r.instance_id = r.v2 ? ch->v2->w.header()->instance_id
                    : ch->transport == TransportKind::kShmRing ? ch->seg.header()->instance_id
                                                               : 0;
    r.path = ch->path;
    records.push_back(std::move(r));
  }
  // A failure costs only the adoption after a restart; the channels themselves work.
  (void)write_state_file(opts_.runtime_dir + "/" + kStateName, records);
}

namespace {
// A descriptor for the memfd segment of `name` held by process pid (opened through
// /proc/PID/fd, which needs the same uid or root), or -errno.
int open_segment_of(pid_t pid, const std::string& name) {
  return open_memfd_of(pid, "fwipc:" + name, O_RDWR, false, [](int) { return true; });
}
}  // namespace

// Takes over the channels a previous registry left in the state file whose creators are
// still alive; the rest are forgotten (their files go in clean_dir()).
void Server::restore_state() {
  for (StateRecord& r : read_state_file(opts_.runtime_dir + "/" + kStateName)) {
    if (by_name_.count(r.name) || channels_.size() >= kMaxChannels || !process_alive(r.creator_pid, r.creator_start))
      continue;
    auto ch = std::make_unique<Channel>();
    ch->name = r.name;
    ch->type = r.type;
    ch->transport = static_cast<TransportKind>(r.transport);
    ch->uid = r.uid;
    ch->gid = r.gid;
    ch->mode = r.mode;
    ch->capacity = r.capacity;
    ch->creator_pid = r.creator_pid;
    ch->creator_start = r.creator_start;
    ch->adopted = true;
    if (r.v2) {
      if (r.transport != uint32_t(TransportKind::kShmRing) || !adopt_ring2(*ch, r.instance_id)) continue;
    } else if (ch->transport == TransportKind::kShmRing) {
      const int fd = open_segment_of(r.creator_pid, r.name);
      if (fd < 0) continue;
      auto seg = shm::Segment::attach(fd);
      ::close(fd);
      if (!seg || seg->header()->instance_id != r.instance_id || seg->header()->closed.load()) continue;
      ch->seg = std::move(seg.value());
      if (r.path == opts_.runtime_dir + "/" + ch->name + ".sock") ch->path = r.path;  // the bridge's
    } else {
      const char* suffix = ch->transport == TransportKind::kSocket ? ".sock" : ".fifo";
      if (r.path != opts_.runtime_dir + "/" + ch->name + suffix) continue;
      ch->path = r.path;
    }
    // Its creator still serves the call socket it was given (never in the state file: its
    // name follows from the channel's).
    ch->call_path = opts_.runtime_dir + "/" + ch->name + ".call";
    ch->id = next_channel_++;
    // Still its creator's: counted again, never refused (it exists already).
    {
      auto slots = shm::Segment::slots_for_capacity(ch->capacity);
      const uint32_t n = slots ? *slots : shm::kDefaultSlots;
      ch->counted = true;
      ch->bytes = ch->transport == TransportKind::kShmRing ? shm::segment_bytes(n) : hub_bytes(n);
      charge(ch->uid, kQuotaChannels, 1);
      charge(ch->uid, kQuotaBytes, int64_t(ch->bytes));
    }
    by_name_[ch->name] = ch.get();
    channels_[ch->id] = std::move(ch);
  }
  save_state();
}

}  // namespace fwipc::registry
