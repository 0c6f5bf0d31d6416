/* FreeWorld service layer: the skeleton every system daemon (logd, networkd, csrss) is
 * written on, and the call its client libraries use. C99 and C++; prefix fwsvc_.
 *
 *   loop     an epoll loop over descriptors, timers and signals: SIGTERM and SIGINT end
 *            it cleanly (fwsvc_loop_run() returns 0), SIGHUP runs the reload callback
 *   service  a channel served by method: handlers get a request body of any size up to a
 *            bound and answer it exactly once with fwsvc_reply()
 *   call     fwsvc_call(): the client side, bodies of any size both ways
 *   notify   fwsvc_notify("READY=1"): readiness for systemd ($NOTIFY_SOCKET)
 *
 * Every call returns 0 (or a count, or an id) on success and a negative errno on failure;
 * ipc_strerror() names the codes. Output parameters come last. The library never logs
 * and never exits: what went wrong is in the return values and fwsvc_service_stats().
 *
 * Threads: a loop and the services on it belong to the thread that runs the loop; only
 * fwsvc_loop_quit() may be called from another thread (or a signal handler). fwsvc_call()
 * may be called from any thread, on one channel id from several at once. */
#ifndef FWSVC_H
#define FWSVC_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Loop ---------------------------------------------------------------------------- */

typedef struct fwsvc_loop fwsvc_loop;

/* Descriptor events (the values of EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP and of POLL*). */
#define FWSVC_EVENT_IN 0x001u
#define FWSVC_EVENT_OUT 0x004u
#define FWSVC_EVENT_ERR 0x008u
#define FWSVC_EVENT_HUP 0x010u

typedef void (*fwsvc_fd_fn)(void* ctx, int fd, uint32_t events);
typedef void (*fwsvc_timer_fn)(void* ctx);
typedef void (*fwsvc_reload_fn)(void* ctx);

/* Makes a loop and blocks SIGTERM, SIGINT and SIGHUP in the calling thread, so that they
 * reach the loop's signalfd instead of killing the process. Create the loop before
 * starting other threads (they inherit the mask); the signals stay blocked after
 * fwsvc_loop_free() so that a second SIGTERM cannot kill a daemon while it shuts down.
 * A child the daemon forks inherits the mask too: unblock them there before exec. One
 * loop per process: signals go to whichever loop reads them first. */
int fwsvc_loop_new(fwsvc_loop** out);
void fwsvc_loop_free(fwsvc_loop* loop);

/* Watches fd (level-triggered) for events; fn runs with the events that occurred. One
 * watch per descriptor (-EEXIST). The loop never closes fd. Callbacks may add and remove
 * watches and timers, their own included. */
int fwsvc_loop_add_fd(fwsvc_loop* loop, int fd, uint32_t events, fwsvc_fd_fn fn, void* ctx);
int fwsvc_loop_remove_fd(fwsvc_loop* loop, int fd);

/* Runs fn every interval_ms (repeat != 0) or once after interval_ms (then the timer is
 * gone). Returns a timer id (> 0) for fwsvc_loop_remove_timer(). Expiries the loop could
 * not serve in time are coalesced into one call. */
int fwsvc_loop_add_timer(fwsvc_loop* loop, uint64_t interval_ms, int repeat, fwsvc_timer_fn fn, void* ctx);
int fwsvc_loop_remove_timer(fwsvc_loop* loop, int timer_id);

/* What SIGHUP does (nothing by default). */
void fwsvc_loop_on_reload(fwsvc_loop* loop, fwsvc_reload_fn fn, void* ctx);

/* Dispatches events until SIGTERM or SIGINT (returns 0) or fwsvc_loop_quit() (returns its
 * code). A negative errno when the loop itself fails, or a service on it ends it with the
 * error of its channel. */
int fwsvc_loop_run(fwsvc_loop* loop);
/* Makes fwsvc_loop_run() return code after the callback in progress. Async-signal-safe
 * and callable from any thread. */
void fwsvc_loop_quit(fwsvc_loop* loop, int code);

/* ---- Service (the server side) --------------------------------------------------------- */

typedef struct fwsvc_service fwsvc_service;

typedef struct {
  uint32_t type;                     /* IPC_TYPE_*; IPC_TYPE_QUEUE */
  uint32_t buffer_size;              /* ring capacity as ipc_create_channel(); 0: default */
  uint32_t perm_mode;                /* channel permission bits; 0660 */
  uint32_t max_body_bytes;           /* largest request or reply body; 1 MiB */
  uint32_t max_transfers;            /* incomplete requests plus unfetched replies held; 16 */
  uint32_t max_transfers_per_caller; /* the same, per calling process; 4 */
  uint32_t transfer_timeout_ms;      /* an idle incomplete transfer is dropped after; 5000 */
  uint32_t creator_mode;             /* IPC_MODE_* of the service's own id; read and write.
                                        Without IPC_MODE_READ the service takes no one-way
                                        messages and never holds its channel back (a service
                                        that only answers calls and broadcasts events) */
  uint32_t overflow;                 /* IPC_OVERFLOW_*, as ipc_create_channel_opts() */
  uint32_t evict_after_ms;           /* IPC_OVERFLOW_EVICT's bound */
  uint32_t reserved[2];              /* 0 */
} fwsvc_options;
/* The defaults above; a 0 in any field but type also selects its default. */
void fwsvc_options_init(fwsvc_options* opts);

/* One call as a handler sees it. body is valid until the handler returns. */
typedef struct {
  uint32_t method;
  uint32_t sender_pid; /* the caller, as the kernel reported it to the runtime */
  const void* body;
  size_t body_len;
  void* internal; /* the layer's */
} fwsvc_request;

/* A handler must answer with fwsvc_reply() before it returns; if it does not, the caller
 * gets -EIO. It may call other services, but must not free its own service or loop. */
typedef void (*fwsvc_method_fn)(void* ctx, const fwsvc_request* req);
/* One-way messages (ipc_send() to the service's channel). */
typedef void (*fwsvc_message_fn)(void* ctx, const IPC_MESSAGE* msg);

/* Creates the channel `name` (opts NULL: the defaults) and serves it on loop.
 * Under IPC_OVERFLOW_EVICT the service's own reader is evicted like any other when the
 * loop takes no message for evict_after_ms while writers are held back (a handler that
 * blocks, a stopped process). The service then hands over what its reader still had,
 * counts the eviction (fwsvc_stats.reader_evictions), opens the channel again for reading
 * and goes on serving messages and calls; messages sent between the eviction and the
 * reopening are lost to it. Only if it cannot reopen (e.g. the mode denies this uid read)
 * does the loop end, with that error. Calls are not affected: they have their own socket.
 * fwsvc_service_channel() stays the channel's creator id; a service that receives from it
 * itself (not through fwsvc_service_on_message) gets -ENOBUFS there after an eviction. */
int fwsvc_service_new(fwsvc_loop* loop, const char* name, const fwsvc_options* opts, fwsvc_service** out);
/* Closes the channel (calls not yet taken fail with -EPIPE at their callers). */
void fwsvc_service_free(fwsvc_service* svc);
/* The service's channel id, e.g. to broadcast events with ipc_send(). */
int fwsvc_service_channel(const fwsvc_service* svc);

/* Routes calls of method to fn (-EEXIST if it has one). A call of a method without a
 * handler is answered -ENOSYS, a malformed one -EBADMSG, both without running a handler. */
int fwsvc_service_add_method(fwsvc_service* svc, uint32_t method, fwsvc_method_fn fn, void* ctx);
/* Hands one-way messages to fn; without it they are received and dropped (the creator
 * reads its channel, and must not hold writers back). No effect on a service created
 * without IPC_MODE_READ in creator_mode. */
void fwsvc_service_on_message(fwsvc_service* svc, fwsvc_message_fn fn, void* ctx);

/* Answers req with status (the caller's return value: >= 0, or a negative errno) and
 * len bytes of body. Once per request: -EALREADY after that. -EMSGSIZE past
 * max_body_bytes (nothing is sent; answer again). */
int fwsvc_reply(const fwsvc_request* req, int32_t status, const void* body, size_t len);

typedef struct {
  uint64_t calls;            /* complete requests handed to a handler */
  uint64_t unknown_method;   /* answered -ENOSYS */
  uint64_t malformed;        /* answered -EBADMSG */
  uint64_t refused_busy;     /* transfers refused -EBUSY: max_transfers(_per_caller) reached */
  uint64_t refused_size;     /* bodies over max_body_bytes: -EMSGSIZE */
  uint64_t expired;          /* incomplete requests and unfetched replies dropped after the timeout */
  uint64_t evicted;          /* unfetched replies dropped to make room for a newer one */
  uint64_t reply_failed;     /* replies the runtime could not deliver (caller gone or not reading) */
  uint64_t messages;         /* one-way messages handed to the message handler */
  uint64_t messages_dropped; /* one-way messages received without a message handler */
  uint32_t transfers;        /* incomplete requests and unfetched replies held now */
  uint32_t reader_evictions; /* times the service's reader was evicted and reopened (see
                                fwsvc_service_new: IPC_OVERFLOW_EVICT) */
} fwsvc_stats;
int fwsvc_service_stats(const fwsvc_service* svc, fwsvc_stats* out);

/* ---- Call (the client side) ------------------------------------------------------------ */

/* Body bytes per ipc_call() payload (512 minus the service layer's fragment header). */
#define FWSVC_FRAGMENT_BYTES 492u

/* Opens the service channel `name` for calling (IPC_MODE_WRITE | mode) and checks that
 * it is served by owner_uid (ipc_channel_info): the channel id, or -EPERM (closed again)
 * when another uid created it, or ipc_open_channel()'s error. Service client libraries
 * open their service with this rather than trust whoever took the name. */
int fwsvc_open(const char* name, uint32_t owner_uid, uint32_t mode);

/* Calls method on the service behind channel_id (an id opened with IPC_MODE_WRITE) with
 * req_len bytes of request, and copies the reply body into resp. Returns the handler's
 * status, or a negative errno: -ETIMEDOUT (timeout_ms bounds the whole call however many
 * fragments it takes; < 0 waits forever), -EPIPE (the service is gone), -ENOSYS (no such
 * method), -EBADMSG (the service found the request malformed), -EBUSY (the service holds
 * as many incomplete transfers as it allows), -ESTALE (the service dropped the transfer:
 * expired or evicted), -EPROTO (a reply that breaks the protocol), -EMSGSIZE (the request
 * is larger than the service takes, or the reply is larger than resp_cap: then *resp_len
 * is the size it needed, and the reply is lost; the handler did run). *resp_len is the
 * reply's length whenever one came. A request of one fragment (FWSVC_FRAGMENT_BYTES) with
 * a reply of one fragment is one ipc_call(). */
int fwsvc_call(uint32_t channel_id, uint32_t method, const void* req, size_t req_len, void* resp, size_t resp_cap,
               size_t* resp_len, int timeout_ms);

/* ---- Readiness ----------------------------------------------------------------------- */

/* Sends state (e.g. "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...") as one datagram
 * to $NOTIFY_SOCKET, a socket path or, starting with '@', an abstract name: 1 when sent,
 * 0 when NOTIFY_SOCKET is unset (not run by a service manager), or a negative errno. */
int fwsvc_notify(const char* state);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FWSVC_H */
