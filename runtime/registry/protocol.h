// Registry wire protocol: one fixed-size Request per SOCK_SEQPACKET datagram, one Reply
// back, the channel's segment descriptor attached with SCM_RIGHTS. Any datagram that is
// not exactly a Request with the right magic is answered with -EBADMSG.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fwipc::registry {

inline constexpr uint32_t kProtoMagic = 0x46575233;  // "FWR3"
inline constexpr const char* kSocketName = "registry.sock";
inline constexpr const char* kLockName = "registry.lock";

enum class Op : uint32_t {
  kCreate = 1,
  kOpen = 2,
  kClose = 3,
  kPing = 4,
  kList = 5,
  kClean = 6,
  kQuota = 7,
  // Ring v2 (RING-V2.md section 7), on a membership (Request.handle), arguments in
  // Ring2Args at Request.name:
  kRingFd = 8,       // a reader asks for ring `index` (read-only), a writer for reader page `index`
  kReaderReady = 9,  // a joining reader has set its cursors: count it
  kEvict = 10,       // IPC_OVERFLOW_EVICT: reader `index` holds the asker's ring full at `cursor`
  // An observer (ipcctl) of ring v2 channel number Request.handle, which it may read, asks
  // for its rings (kind kRing2Ring) or reader pages (kRing2Page) from Ring2Args.index on,
  // read-only; answered with an ObserveInfo. No membership: it holds nobody back.
  kObserve = 11,
  // After a registry restart, a member of a ring v2 channel the new registry adopted asks
  // for a membership for the ring and/or reader page it holds (RejoinArgs at Request.name;
  // the directory must name the asker's PID and start time there). Answered like kOpen,
  // without descriptors: Reply.handle is the membership's number on this connection.
  kRejoin = 12,
};

// Reply.transport for a QUEUE channel on ring v2 (ipc_channel_info reports IPC_TRANSPORT_SHM).
inline constexpr uint32_t kTransportRing2 = 16;

struct Ring2Args {
  uint64_t state;   // the directory entry's state word the asker knows
  uint64_t cursor;  // kEvict
  uint32_t index;
  uint32_t kind;  // kRingFd: kRing2Ring or kRing2Page
};
struct RejoinArgs {
  uint64_t instance_id;  // the channel directory's
  uint64_t ring_state;   // of ring_index's entry
  uint64_t page_state;   // of reader_index's entry
  int32_t ring_index;    // -1: none
  int32_t reader_index;  // -1: none
  uint32_t creator;      // 1: this id created the channel (its close unlinks the name)
  uint32_t reserved;     // 0
};
inline constexpr uint32_t kRing2Ring = 0;
inline constexpr uint32_t kRing2Page = 1;

// Request.flags
inline constexpr uint32_t kWantRead = 1u;
inline constexpr uint32_t kWantWrite = 2u;
inline constexpr uint32_t kNoShm = 4u;  // kCreate: a QUEUE channel must not use shared memory

struct Request {
  uint32_t magic;
  uint32_t op;
  uint32_t type;            // kCreate: IPC_TYPE_*
  uint32_t capacity;        // kCreate: ring bytes
  uint32_t perm_mode;       // kCreate: permission bits
  uint32_t flags;           // kOpen: kWantRead | kWantWrite
  uint32_t handle;          // kClose: membership handle from a Reply
  uint32_t creator_mode;    // kCreate: IPC_MODE_* of the creator's own id
  uint32_t overflow;        // kCreate: IPC_OVERFLOW_*
  uint32_t evict_after_ms;  // kCreate: IPC_OVERFLOW_EVICT's bound
  uint32_t reserved[2];
  char name[64];  // NUL-terminated
};

// Most descriptors a Reply carries (SCM_RIGHTS). Their order is part of the protocol
// (the client half is runtime/transport_factory.cc), by Reply.transport:
//   every     create: after the transport's, the listening socket NAME.call (request/reply),
//                     served by the creator's runtime, then the channel's stats page
//                     (transports/shm/stats.h, read-write) when the registry could make one
//   kShmRing  create: [0] the segment (memfd), [1] the listening socket of the channel's
//                     bridge, served by the creator's runtime for other uids, [2] NAME.call,
//                     [3] the stats page
//             open:   [0] the segment (only the owner's uid and root; everyone else gets
//                     transport kSocket and connects to NAME.sock, the bridge)
//   kSocket   create: [0] the listening socket NAME.sock, [1] NAME.call, [2] stats; open: none
//                     (connect by path)
//   kPipe     create: [0] the channel FIFO, read-write (JOIN frames come in on it), [1]
//                     NAME.call, [2] stats
//             open:   [0] a write end of the channel FIFO, then, of those asked for, [1]
//                     the reader's own FIFO (read end), then the writer's own FIFO (write
//                     end): a writer-only open has its FIFO at [1]
//   kTransportRing2 create and open: [0] the directory (read-only), [1] the bells, then the
//             member's own ring (writers, read-write) and own reader page (readers), in
//             that order; create then adds NAME.call and the stats page
//             kRingFd: [0] the ring or page asked for, read-only
//             kObserve: up to kReplyFds rings or pages, read-only, as ObserveInfo lists them
inline constexpr int kReplyFds = 6;

struct Reply {
  int32_t status;         // 0 or a negative errno
  uint32_t handle;        // membership handle (this connection only)
  uint32_t channel;       // registry-wide channel number
  uint32_t transport;     // TransportKind actually used
  int32_t reader_index;   // -1: not a reader
  uint32_t reader_state;  // QUEUE: the reader entry's state; PIPE: the reader FIFO's join id
  int32_t writer_index;   // -1: not a writer (QUEUE only)
  uint32_t writer_state;  // QUEUE: the writer entry's state; PIPE: the writer FIFO's join id
  // Who serves the channel, as the registry knows it (SO_PEERCRED of the creator): what
  // ipc_channel_info() reports, so a client can refuse a service run by the wrong uid.
  uint32_t type;  // IPC_TYPE_*
  uint32_t owner_uid;
  uint32_t owner_gid;
  uint32_t mode;            // permission bits
  uint32_t capacity_bytes;  // as created, rounded to whole slots
  uint32_t creator_pid;
  uint32_t overflow;  // IPC_OVERFLOW_*
  uint32_t evict_after_ms;
};

// kList answer (instead of a Reply): the first channel whose number is >= Request.handle,
// or status -ENOENT past the last. A QUEUE channel's segment comes along (SCM_RIGHTS) when
// the caller may map it, for the statistics in its header (ring v2: the directory,
// read-only, when the caller may read the channel), and the channel's stats page
// (read-only) when the caller may read the channel: in that order, each flagged in
// ChannelInfo.attached.
inline constexpr uint32_t kInfoMembers = 16;
// ChannelInfo.members[].flags
inline constexpr uint32_t kMemberRead = 1u;
inline constexpr uint32_t kMemberWrite = 2u;
inline constexpr uint32_t kMemberCreator = 4u;
inline constexpr uint32_t kMemberAlive = 8u;
// ChannelInfo.attached
inline constexpr uint32_t kAttachedSegment = 1u;
inline constexpr uint32_t kAttachedStats = 2u;
// Ring v2: the channel's directory (read-only) where the segment would be; its rings and
// reader pages then come through kObserve.
inline constexpr uint32_t kAttachedRing2 = 4u;

struct ChannelInfo {
  int32_t status;
  uint32_t channel;
  uint32_t type;       // IPC_TYPE_*
  uint32_t transport;  // TransportKind
  uint32_t uid;
  uint32_t gid;
  uint32_t mode;
  uint32_t capacity;      // bytes asked for at creation
  uint32_t member_count;  // all memberships; the first kInfoMembers are listed
  uint32_t listed;
  uint32_t overflow;  // IPC_OVERFLOW_*
  uint32_t attached;  // kAttached*: the descriptors that came with this answer, in that order
  char name[64];
  struct Member {
    uint32_t pid;
    uint32_t flags;
  } members[kInfoMembers];
};

// kObserve answer (instead of a Reply): `count` descriptors came with it, the ring or page
// of directory index index[i] whose entry held state[i] when it was passed, in index order.
// Only entries in use whose owner has sealed them against writes (RING-V2.md section 2)
// are passed. Ask again from `next` until it reaches `table` (max_rings or max_readers).
// status: 0, -ENOENT (no such channel), -EACCES (the caller may not read it), -EOPNOTSUPP
// (not on ring v2), -EINVAL (bad kind).
struct ObserveInfo {
  int32_t status;
  uint32_t count;
  uint32_t next;
  uint32_t table;
  uint32_t index[kReplyFds];
  uint64_t state[kReplyFds];
};

// kQuota answer (instead of a Reply): per-uid usage against the uid's limits (the policy's
// `limit` rules, runtime/registry/daemon/policy.h), for the first uid >= Request.handle that
// holds anything in the registry, or past the last uid the registry-wide row (uid
// kQuotaTotalUid: everything held, against the global caps), then status -ENOENT.
enum QuotaKey : uint32_t { kQuotaChannels = 0, kQuotaBytes = 1, kQuotaConnections = 2, kQuotaMemberships = 3 };
inline constexpr uint32_t kQuotaKeys = 4;
inline constexpr uint64_t kQuotaUnlimited = UINT64_MAX;  // a limit that is none
inline constexpr uint32_t kQuotaTotalUid = UINT32_MAX;
// QuotaInfo.flags
inline constexpr uint32_t kQuotaRoot = 1u;      // root: counted, never limited
inline constexpr uint32_t kQuotaReserved = 2u;  // owns a reserved name: may use the headroom

struct QuotaInfo {
  int32_t status;
  uint32_t uid;
  uint32_t flags;
  uint32_t headroom;           // total row: channels and connections only root and owners of
                               // reserved names may use (the last of each global cap)
  uint64_t used[kQuotaKeys];   // by QuotaKey: channels created, bytes of channel memory,
                               // registry connections, memberships (every open id)
  uint64_t limit[kQuotaKeys];  // kQuotaUnlimited: none
  uint64_t refused;            // requests and connections refused (-EDQUOT; total row: also -ENOSPC)
  uint64_t pending;            // total row: refused connections the registry still holds (bounded)
  uint64_t keepers;            // total row: PIPE writer FIFOs held open for their creator (bounded)
};

// What a refused connection receives, at once, instead of service: one datagram whose
// first four bytes are a negative errno (-EDQUOT: the uid has all the connections its
// limit allows; -ENOSPC: the registry's global cap, past the headroom) where every answer
// has its status, so a client waiting for any answer (Reply, ChannelInfo, QuotaInfo) reads
// a failure, and the reason as text at kRefusalDetail (a client that wants it receives at
// least sizeof(Refusal) bytes). The registry reads the client's first request, then closes
// the connection.
struct Refusal {
  int32_t status;
  uint32_t reserved[63];
  char detail[256];  // NUL-terminated
};
inline constexpr size_t kRefusalDetail = 256;

static_assert(sizeof(QuotaInfo) == 104);
static_assert(offsetof(Refusal, detail) == kRefusalDetail && kRefusalDetail >= sizeof(ChannelInfo) &&
              kRefusalDetail >= sizeof(QuotaInfo) && kRefusalDetail >= sizeof(ObserveInfo) && sizeof(Refusal) == 512);
static_assert(sizeof(ObserveInfo) == 16 + 12 * kReplyFds && offsetof(ObserveInfo, state) == 40);
static_assert(sizeof(Request) == 112 && offsetof(Request, name) == 48);
static_assert(sizeof(Ring2Args) <= sizeof(Request::name));
static_assert(sizeof(ChannelInfo) == 48 + 64 + 8 * kInfoMembers);
static_assert(sizeof(Reply) == 64 && offsetof(Reply, type) == 32);

}  // namespace fwipc::registry
