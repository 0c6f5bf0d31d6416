/* FreeWorld IPC: public C API (SPEC section 2). Compiles as C99 and C++.
 *
 * Every call returns a channel id (>= 0), a byte count or 0 on success, and a negative
 * errno on failure; ipc_strerror() names the code. */
#ifndef FWIPC_IPC_H
#define FWIPC_IPC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IPC_TYPE_SOCKET 0 /* Unix domain socket: service daemons              */
#define IPC_TYPE_PIPE 1   /* named pipe: stream-based communication           */
#define IPC_TYPE_QUEUE 2  /* message queue: reliable, ordered; shm ring here  */

#define IPC_MAX_PAYLOAD 512u
#define IPC_NAME_MAX 63u /* channel names: 1-63 chars of [A-Za-z0-9._-] */

/* ipc_open_channel() mode bits. */
#define IPC_MODE_READ 0x1u     /* become a reader: receive what is sent from now on */
#define IPC_MODE_WRITE 0x2u    /* may send */
#define IPC_MODE_NONBLOCK 0x4u /* full queue / empty queue return -EAGAIN */

/* Ring capacity bounds for buffer_size (bytes); 0 selects the default. A ring slot holds
 * one message: a 64-byte-aligned 32-byte header and the payload (IPC_SLOT_BYTES). */
#define IPC_SLOT_BYTES 576u
#define IPC_BUFFER_DEFAULT (256u * IPC_SLOT_BYTES)
#define IPC_BUFFER_MIN (16u * IPC_SLOT_BYTES)
#define IPC_BUFFER_MAX (256u * 1024u * 1024u)

/* Overflow policies (IPC_CHANNEL_INFO.overflow). */
#define IPC_OVERFLOW_BLOCK 0u /* the slowest reader holds writers back */
#define IPC_OVERFLOW_EVICT 1u /* a reader that holds writers back too long is dropped */

/* What really carries a channel: ipc_channel_transport(). */
#define IPC_TRANSPORT_SHM 0u    /* the shared-memory ring */
#define IPC_TRANSPORT_SOCKET 1u /* a Unix socket (SOCKET channels, QUEUE fallback) */
#define IPC_TRANSPORT_PIPE 2u   /* FIFOs */

typedef struct {
  uint32_t type;     /* message type, chosen by the application */
  uint32_t size;     /* payload size, max 512 bytes (IPC_MAX_PAYLOAD) */
  uint32_t sender;   /* sender PID, filled in by the runtime, never by the caller */
  uint32_t receiver; /* receiver PID, 0 = broadcast */
  uint32_t priority; /* message priority, higher first */
  char payload[512];
} IPC_MESSAGE;

/* The header fields of IPC_MESSAGE alone, for the calls that take the payload apart. */
typedef struct {
  uint32_t type;
  uint32_t size;
  uint32_t sender;
  uint32_t receiver;
  uint32_t priority;
} IPC_HEADER;

#ifdef __cplusplus
static_assert(sizeof(IPC_HEADER) == 20, "IPC_HEADER is the first 20 bytes of IPC_MESSAGE");
static_assert(sizeof(IPC_MESSAGE) == 532, "IPC_MESSAGE is a 20-byte header + 512-byte payload");
#else
_Static_assert(sizeof(IPC_HEADER) == 20, "IPC_HEADER is the first 20 bytes of IPC_MESSAGE");
_Static_assert(sizeof(IPC_MESSAGE) == 532, "IPC_MESSAGE is a 20-byte header + 512-byte payload");
#endif

int ipc_create_channel(const char* name, uint32_t type, uint32_t buffer_size);
/* As ipc_create_channel, with the channel's permission bits (the plain call uses 0660). */
int ipc_create_channel_ex(const char* name, uint32_t type, uint32_t buffer_size, uint32_t perm_mode);
/* Creation with every option. Zero-initialise the struct, then set what you need. */
typedef struct {
  uint32_t type;           /* IPC_TYPE_* */
  uint32_t buffer_size;    /* as ipc_create_channel(); 0: the default */
  uint32_t perm_mode;      /* permission bits; 0: 0660 */
  uint32_t creator_mode;   /* IPC_MODE_* of the creator's own id; 0: read and write. Without
                              IPC_MODE_READ the creator is a pure writer: it is not a reader,
                              never holds its channel back, and cannot receive (it can still
                              serve calls) */
  uint32_t overflow;       /* IPC_OVERFLOW_BLOCK (0) or IPC_OVERFLOW_EVICT, see below */
  uint32_t evict_after_ms; /* IPC_OVERFLOW_EVICT's bound: 1 .. 2^31-1 ms (0: -EINVAL);
                              ignored under IPC_OVERFLOW_BLOCK */
  uint32_t reserved[2];    /* 0 */
} IPC_CHANNEL_OPTIONS;
int ipc_create_channel_opts(const char* name, const IPC_CHANNEL_OPTIONS* opts);
/* IPC_OVERFLOW_EVICT, on every type: a reader (an opened id with IPC_MODE_READ, or the
 * creator's own) that keeps writers held back for more than evict_after_ms without taking
 * a single message is dropped from the channel, and the writers go on. "Held back": QUEUE,
 * the ring is full and its cursor is the one in the way (judged by whichever writer finds
 * the ring full: a blocked send, or a non-blocking one that gets -EAGAIN and retries);
 * SOCKET and PIPE, the creator's hub stopped reading from writers and this reader's relay
 * queue (or the creator's inbox) is what keeps it stopped. A reader that takes messages,
 * however slowly, is never evicted: writers go at its pace, and no send waits more than
 * about evict_after_ms on one that takes nothing (a stuck or SIGSTOPped process).
 * The evicted id's receive then returns what it already had (SOCKET/PIPE: what reached
 * its socket or FIFO and its inbox; QUEUE: what it had taken into its priority heap, the
 * ring's slots past its cursor being the writers' again), then -ENOBUFS on every call;
 * its notify descriptor stays readable. Its sends still work. Close it and open the
 * channel again to read what is sent from then on. ipc_channel_info() counts evictions
 * and says whether an id was evicted; `ipcctl list` shows EVICTIONS per channel. */
int ipc_open_channel(const char* name, uint32_t mode);
/* Closes an id. Thread contract: any call may run on any thread, but closing an id while
 * another thread is inside a call on the same id is undefined (its state is freed); stop
 * using an id everywhere before closing it. Closing an id inherited across fork() in the
 * child returns -EBADF and leaves the parent's channel alone. */
int ipc_close_channel(uint32_t channel_id);

/* Sends size bytes with priority 0 to receiver 0 (broadcast). */
int ipc_send(uint32_t channel_id, const void* buffer, uint32_t size, uint32_t type);
/* Sends msg->size bytes of msg->payload with msg->type, msg->priority, msg->receiver.
 * msg->sender is ignored: the runtime fills in the real PID. */
int ipc_send_message(uint32_t channel_id, const IPC_MESSAGE* msg);

/* Copies the next payload for this process into buffer; returns its size. */
int ipc_receive(uint32_t channel_id, void* buffer, uint32_t size);
/* Receives a whole message. timeout_ms < 0 waits forever, 0 does not wait.
 * -ENOBUFS: this id's reader was evicted (IPC_OVERFLOW_EVICT) and has nothing left. */
int ipc_receive_message(uint32_t channel_id, IPC_MESSAGE* msg, int timeout_ms);

/* A descriptor that polls readable while a message is waiting for this id (level-like:
 * it stays readable until a receive finds the channel empty). Owned by the channel. */
int ipc_channel_fd(uint32_t channel_id);

/* IPC_TRANSPORT_* of the id's channel, or -EBADF. */
int ipc_channel_transport(uint32_t channel_id);

/* Who serves a channel, as the registry saw its creator (SO_PEERCRED): a client of a
 * service checks owner_uid before it sends anything (a service name taken by another uid
 * is refused by the registry's name policy, but a client should not rely on the policy
 * of a runtime directory it does not control). */
typedef struct {
  uint32_t type;            /* IPC_TYPE_* as created */
  uint32_t transport;       /* IPC_TRANSPORT_*: what really carries it for this id */
  uint32_t owner_uid;       /* the creator's uid and gid */
  uint32_t owner_gid;
  uint32_t mode;            /* permission bits */
  uint32_t capacity;        /* bytes, rounded to whole IPC_SLOT_BYTES slots */
  uint32_t creator_pid;
  uint32_t overflow;        /* IPC_OVERFLOW_* */
  uint32_t evict_after_ms;  /* IPC_OVERFLOW_EVICT's bound */
  uint32_t evictions;       /* readers evicted so far, as of this call: QUEUE on any id of the
                               owner's uid (the ring counts them), SOCKET/PIPE on the creator's
                               id; 0 where this id cannot see it (ipcctl list shows it all) */
  uint32_t evicted;         /* 1: this id's reader was evicted (receive: -ENOBUFS once drained) */
  uint32_t reserved[1];
  char name[64];
} IPC_CHANNEL_INFO;
/* Fills *out for an open id: 0, -EBADF, or -EFAULT. */
int ipc_channel_info(uint32_t channel_id, IPC_CHANNEL_INFO* out);

/* ---- Request/reply, on every channel type.
 * A call travels on its own socket, NAME.call in the runtime directory, which the
 * registry binds with the channel's mode and the creator's runtime serves: it is separate
 * from the channel's messages, so a caller needs only IPC_MODE_WRITE (write-only ids can
 * call), never reads the server's other traffic, and a server tells calls from one-way
 * messages by how it takes them: ipc_receive_request() for calls, ipc_receive() for
 * messages. Calling needs the write bit of the channel's mode for the caller.
 *
 * ipc_call() sends request (type, size, priority, payload; sender and receiver are set by
 * the runtime) to the channel's creator and waits for the reply to this call only: the reply's
 * payload size with *reply filled (reply->sender is the server's PID as the kernel reports it), -ETIMEDOUT
 * when none comes in time (a reply that comes later is discarded, never handed to another
 * call), -EPIPE when the server is gone. Several threads may call on one id at once. */
int ipc_call(uint32_t channel_id, const IPC_MESSAGE* request, IPC_MESSAGE* reply, int timeout_ms);
/* The same, for event loops (no thread waits): ipc_call_start() sends the request and
 * sets *call (0 or -EAGAIN when the socket to the server is full: try again when the
 * loop next runs; -ENOBUFS with 65,536 calls in flight on the id; -EPIPE, -EMSGSIZE as
 * ipc_call()). ipc_call_fd() is a descriptor, the same for the id's life, that polls
 * readable when a reply may have come; ipc_call_result() then gives a call's reply as
 * ipc_call() does, or -EAGAIN while it has not come, -EPIPE when the server went away,
 * -ENOENT for a handle not in flight (already taken or cancelled). A call is in flight
 * until ipc_call_result() returns other than -EAGAIN for it, or ipc_call_cancel() forgets
 * it (the way to give up after a timeout of your own): its reply, if it comes, is dropped.
 * The descriptor stays readable while a reply nobody has taken waits: watch it only while
 * calls are in flight. */
int ipc_call_start(uint32_t channel_id, const IPC_MESSAGE* request, uint64_t* call);
int ipc_call_fd(uint32_t channel_id);
int ipc_call_result(uint32_t channel_id, uint64_t call, IPC_MESSAGE* reply);
int ipc_call_cancel(uint32_t channel_id, uint64_t call);
/* The creator's side: the next call, with request->sender the caller's PID (kernel
 * credentials) and *call the handle to answer it with. Blocks like ipc_receive_message()
 * (timeout_ms < 0 forever, 0 polls: -EAGAIN). -EBADF on an id that is not the creator's. */
int ipc_receive_request(uint32_t channel_id, IPC_MESSAGE* request, uint64_t* call, int timeout_ms);
/* Answers a call. Never blocks on a client: a caller that died or does not read loses
 * its reply (-EPIPE / -EAGAIN here, nothing else changes). */
int ipc_reply(uint32_t channel_id, uint64_t call, const IPC_MESSAGE* reply);
/* A descriptor that polls readable while a call may be waiting for the creator's id (for
 * event loops: then ipc_receive_request() with timeout 0 until -EAGAIN). */
int ipc_request_fd(uint32_t channel_id);

/* ---- Calls for the C++ API (fwipc/channel.hpp) and for batching C programs. */

/* ipc_send_message() with the header and the payload apart (no 532-byte copy). */
int ipc_send_header(uint32_t channel_id, const IPC_HEADER* hdr, const void* payload);
/* ipc_receive_message() into a header and a separate buffer of `size` bytes. */
int ipc_receive_header(uint32_t channel_id, IPC_HEADER* hdr, void* buffer, uint32_t size, int timeout_ms);

/* Sends hdrs[i] / payloads[i] for i < n, in order. On a QUEUE channel one claim and one
 * wakeup check cover as many messages as the ring has room for. Returns how many were
 * sent (all unless an error stopped it part-way), or a negative errno if none was; an
 * oversize payload anywhere is -EMSGSIZE with none sent. */
int ipc_send_batch(uint32_t channel_id, const IPC_HEADER* hdrs, const void* const* payloads, uint32_t n);

/* Calls fn(ctx, hdr, payload) for up to max waiting messages, waiting for the first like
 * ipc_receive_message(). On a QUEUE channel payload points into the ring (no copy) and is
 * valid only during the call; the messages are released together afterwards. fn must not
 * call back into this id. Returns how many messages fn saw, or a negative errno. */
typedef void (*ipc_visit_fn)(void* ctx, const IPC_HEADER* hdr, const void* payload);
int ipc_consume(uint32_t channel_id, uint32_t max, ipc_visit_fn fn, void* ctx, int timeout_ms);

/* Zero-copy send on a QUEUE channel's ring: ipc_loan() claims a slot (blocking like a send
 * while the ring is full; -EOPNOTSUPP on other transports); fill loan->payload (up to
 * IPC_MAX_PAYLOAD bytes), then ipc_commit() publishes hdr->size bytes of it and returns
 * that size. ipc_abandon() gives a loan back unpublished (readers skip it); a loan must be
 * committed or abandoned, else readers wait for it. */
typedef struct {
  void* payload;      /* IPC_MAX_PAYLOAD writable bytes inside the ring */
  uint64_t opaque[2]; /* the runtime's */
} IPC_LOAN;
int ipc_loan(uint32_t channel_id, IPC_LOAN* loan);
int ipc_commit(uint32_t channel_id, IPC_LOAN* loan, const IPC_HEADER* hdr);
void ipc_abandon(uint32_t channel_id, IPC_LOAN* loan);

/* Details of the calling thread's last refused create or open: for -EPERM which runtime
 * directory or whose registry was refused and why; for -EDQUOT / -ENOSPC the registry's
 * reason (which limit). A library does not print. Valid until the thread's next call. */
const char* ipc_last_error_detail(void);

/* A static, human-readable name for a return code (0, a count, or a negative errno). */
const char* ipc_strerror(int code);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FWIPC_IPC_H */
