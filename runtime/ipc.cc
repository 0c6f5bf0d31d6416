// The C API: a thin shell over the core; nothing here may throw.
#include "ipc.h"

#include <cerrno>
#include <cstring>
#include <type_traits>

#include "runtime/core.h"
#include "runtime/handle_table.h"
#include "transports/shm/ring.h"

using fwipc::MsgHeader;

extern "C" {

int ipc_create_channel(const char* name, uint32_t type, uint32_t buffer_size) {
  return ipc_create_channel_ex(name, type, buffer_size, 0660);
}

int ipc_create_channel_ex(const char* name, uint32_t type, uint32_t buffer_size, uint32_t perm_mode) {
  IPC_CHANNEL_OPTIONS o{};
  o.type = type;
  o.buffer_size = buffer_size;
  o.perm_mode = perm_mode;
  return fwipc::core::create(name, o, /*literal_perm=*/true);  // here 0 means mode 0
}

int ipc_create_channel_opts(const char* name, const IPC_CHANNEL_OPTIONS* opts) {
  if (opts == nullptr) return -EFAULT;
  return fwipc::core::create(name, *opts, /*literal_perm=*/false);
}

int ipc_open_channel(const char* name, uint32_t mode) { return fwipc::core::open(name, mode); }

int ipc_close_channel(uint32_t channel_id) { return fwipc::core::close(channel_id); }

int ipc_send(uint32_t channel_id, const void* buffer, uint32_t size, uint32_t type) {
  return fwipc::core::send(channel_id, MsgHeader{type, size, 0, 0, 0}, buffer);
}

int ipc_send_message(uint32_t channel_id, const IPC_MESSAGE* msg) {
  if (msg == nullptr) return -EFAULT;
  return fwipc::core::send(channel_id, fwipc::header_of(*msg), msg->payload);
}

int ipc_receive(uint32_t channel_id, void* buffer, uint32_t size) {
  MsgHeader h;
  return fwipc::core::receive(channel_id, &h, buffer, size, fwipc::core::kDefaultTimeout);
}

int ipc_receive_message(uint32_t channel_id, IPC_MESSAGE* msg, int timeout_ms) {
  if (msg == nullptr) return -EFAULT;
  MsgHeader h;
  const int rc = fwipc::core::receive(channel_id, &h, msg->payload, sizeof msg->payload, timeout_ms);
  if (rc >= 0) fwipc::put_header(msg, h, h.sender);
  return rc;
}

int ipc_channel_fd(uint32_t channel_id) { return fwipc::core::notify_fd(channel_id); }

int ipc_channel_transport(uint32_t channel_id) { return fwipc::core::transport_of(channel_id); }

int ipc_channel_info(uint32_t channel_id, IPC_CHANNEL_INFO* out) { return fwipc::core::info(channel_id, out); }

int ipc_call(uint32_t channel_id, const IPC_MESSAGE* request, IPC_MESSAGE* reply, int timeout_ms) {
  if (request == nullptr || reply == nullptr) return -EFAULT;
  MsgHeader h;
  const int rc = fwipc::core::call(channel_id, fwipc::header_of(*request), request->payload, &h, reply->payload,
                                   sizeof reply->payload, timeout_ms);
  if (rc >= 0) fwipc::put_header(reply, h, h.sender);
  return rc;
}

int ipc_call_start(uint32_t channel_id, const IPC_MESSAGE* request, uint64_t* call) {
  if (request == nullptr) return -EFAULT;
  return fwipc::core::call_start(channel_id, fwipc::header_of(*request), request->payload, call);
}

int ipc_call_result(uint32_t channel_id, uint64_t call, IPC_MESSAGE* reply) {
  if (reply == nullptr) return -EFAULT;
  MsgHeader h;
  const int rc = fwipc::core::call_result(channel_id, call, &h, reply->payload, sizeof reply->payload);
  if (rc >= 0) fwipc::put_header(reply, h, h.sender);
  return rc;
}

int ipc_call_cancel(uint32_t channel_id, uint64_t call) { return fwipc::core::call_cancel(channel_id, call); }

int ipc_call_fd(uint32_t channel_id) { return fwipc::core::call_fd(channel_id); }

int ipc_receive_request(uint32_t channel_id, IPC_MESSAGE* request, uint64_t* call, int timeout_ms) {
  if (request == nullptr) return -EFAULT;
  MsgHeader h;
  const int rc =
      fwipc::core::receive_request(channel_id, &h, request->payload, sizeof request->payload, call, timeout_ms);
  if (rc >= 0) fwipc::put_header(request, h, h.sender);
  return rc;
}

int ipc_reply(uint32_t channel_id, uint64_t call, const IPC_MESSAGE* reply) {
  if (reply == nullptr) return -EFAULT;
  return fwipc::core::reply(channel_id, call, fwipc::header_of(*reply), reply->payload);
}

int ipc_request_fd(uint32_t channel_id) { return fwipc::core::request_fd(channel_id); }

const char* ipc_last_error_detail(void) { return fwipc::core::last_error_detail(); }

int ipc_send_header(uint32_t channel_id, const IPC_HEADER* hdr, const void* payload) {
  if (hdr == nullptr) return -EFAULT;
  return fwipc::core::send(channel_id, *hdr, payload);
}

int ipc_receive_header(uint32_t channel_id, IPC_HEADER* hdr, void* buffer, uint32_t size, int timeout_ms) {
  return fwipc::core::receive(channel_id, hdr, buffer, size, timeout_ms);
}

int ipc_send_batch(uint32_t channel_id, const IPC_HEADER* hdrs, const void* const* payloads, uint32_t n) {
  return fwipc::core::send_batch(channel_id, hdrs, payloads, n);
}

static_assert(std::is_same_v<ipc_visit_fn, fwipc::Transport::Visitor>);

int ipc_consume(uint32_t channel_id, uint32_t max, ipc_visit_fn fn, void* ctx, int timeout_ms) {
  if (fn == nullptr) return -EFAULT;
  return fwipc::core::consume(channel_id, max, fn, ctx, timeout_ms);
}

// IPC_LOAN carries a core::Loan: opaque[0] its position, opaque[1] its token.
static_assert(sizeof(uintptr_t) <= sizeof(uint64_t));

int ipc_loan(uint32_t channel_id, IPC_LOAN* loan) {
  if (loan == nullptr) return -EFAULT;
  fwipc::core::Loan l;
  const int rc = fwipc::core::loan(channel_id, &l);
  if (rc < 0) return rc;
  loan->payload = l.data;
  loan->opaque[0] = l.pos;
  loan->opaque[1] = l.token;
  return 0;
}

namespace {
fwipc::core::Loan unpack(const IPC_LOAN* loan) {
  fwipc::core::Loan l;
  l.pos = loan->opaque[0];
  l.token = static_cast<uintptr_t>(loan->opaque[1]);
  l.data = static_cast<char*>(loan->payload);
  return l;
}
}  // namespace

int ipc_commit(uint32_t channel_id, IPC_LOAN* loan, const IPC_HEADER* hdr) {
  if (loan == nullptr || hdr == nullptr) return -EFAULT;
  fwipc::core::Loan l = unpack(loan);
  const int rc = fwipc::core::commit(channel_id, &l, *hdr);
  *loan = IPC_LOAN{};  // committed (or refused and given back): the slot is no longer ours
  return rc;
}

void ipc_abandon(uint32_t channel_id, IPC_LOAN* loan) {
  if (loan == nullptr || loan->opaque[1] == 0) return;
  fwipc::core::Loan l = unpack(loan);
  fwipc::core::abandon(channel_id, &l);
  *loan = IPC_LOAN{};
}

const char* ipc_strerror(int code) {
  if (code >= 0) return "success";
  switch (-code) {
    case EINVAL: return "invalid argument (bad name, type, mode or size)";
    case ENOENT: return "no such channel";
    case EEXIST: return "channel already exists";
    case EMSGSIZE: return "message too long (payload > 512 bytes or receive buffer too small)";
    case EAGAIN: return "would block (queue full or empty in non-blocking mode)";
    case ETIMEDOUT: return "timed out";
    case EACCES: return "permission denied by the channel's owner and mode";
    case EPERM:
      return "refused: another user controls the runtime directory or runs its registry (ipc_last_error_detail() says "
             "which)";
    case ENAMETOOLONG: return "channel name longer than 63 characters";
    case EPIPE: return "channel closed by its creator";
    case EBADF: return "unknown channel id, or not opened for this operation";
    case EBADMSG: return "corrupt channel data detected";
    case EFAULT: return "null buffer";
    case EMFILE: return "too many channel ids in this process";
    case EUSERS: return "too many readers on this channel";
    case ENOSPC:
      return "the registry is full (its global caps, the last 10% kept for root and owners of reserved names), or "
             "no memory for the channel";
    case ENOMEM: return "out of memory";
    case ECONNREFUSED: return "no registry running (and auto-start disabled or failed)";
    case EPROTO: return "registry protocol error";
    case EPROTONOSUPPORT: return "channel type not supported in this build";
    case EOPNOTSUPP: return "operation not supported by this channel's transport";
    case EIO: return "I/O error";
    case ENOBUFS:
      return "evicted: this reader held the channel's writers back longer than its evict_after_ms "
             "(IPC_OVERFLOW_EVICT); open the channel again";
    case EDQUOT:
      return "over this user's limit in the registry (channels, channel memory, connections or memberships); "
             "`ipcctl quota` shows usage and limits, the policy's `limit` rules set them";
    case ENOTDIR: return "the runtime directory is not a directory";
    default: return "unknown error";
  }
}

}  // extern "C"
