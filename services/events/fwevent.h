/* FreeWorld event bus: publish and subscribe to dot-separated topics over the runtime
 * channel `events` (PROTOCOL.md has the wire format). C99 and C++; prefix fwevent_.
 *
 *   emit       fwevent_emit("security.user.login", "{\"username\":\"user\"}")
 *   subscribe  fwevent_subscribe("security.>", fn, ctx): fn runs on the library's thread
 *   watch      fwevent_watch_*: the same without a thread, for event loops (poll its fd)
 *
 * Topics are 1-255 bytes of segments separated by '.'; a segment is one or more printable
 * ASCII characters other than '.', '*' and '>'. Patterns are topics whose segments may also
 * be `*` (exactly one segment) or, as the last segment only, `>` (one or more segments):
 * NATS's subject grammar. testdata/topics.txt is the grammar's conformance file.
 *
 * Every call returns 0 (or an id, or 1/0 for a yes/no) on success and a negative errno on
 * failure; fwevent_last_error_detail() says what was wrong with an argument. The library
 * never logs and never exits. */
#ifndef FWEVENT_H
#define FWEVENT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FWEVENT_CHANNEL "events"      /* the runtime channel, created by eventsd */
#define FWEVENT_WIRE_TYPE 0x45565401u /* IPC_MESSAGE.type of an event: "EVT" + version 1 */
#define FWEVENT_TOPIC_MAX 255u        /* bytes of a topic or pattern */
#define FWEVENT_PAYLOAD_MAX 512u      /* topic + NUL + JSON: one IPC message (IPC_MAX_PAYLOAD) */
#define FWEVENT_EMIT_WAIT_MS 1000     /* fwevent_emit()'s bound on waiting for room */

/* One received event. The pointers are valid during the callback (or until the next
 * fwevent_watch_next() on the same watch). */
typedef struct {
  const char* topic;   /* NUL-terminated, a valid topic */
  const char* json;    /* NUL-terminated, valid JSON (compact, as the emitter's library wrote it) */
  uint32_t sender_pid; /* the emitter's PID, stamped by the runtime, never taken from its bytes */
  uint32_t gap;        /* > 0: this subscriber lost its place that many times since the event
                          before this one (evicted for not reading, or eventsd restarted):
                          events may be missing before this one */
} fwevent_event;

/* ---- Topics ---------------------------------------------------------------------------- */

/* 1 if valid, 0 if not (fwevent_last_error_detail() says why). */
int fwevent_topic_valid(const char* topic);
int fwevent_pattern_valid(const char* pattern);
/* 1 if topic matches pattern, 0 if not, -EINVAL if either is invalid. */
int fwevent_match(const char* pattern, const char* topic);

/* ---- Emit ------------------------------------------------------------------------------ */

/* Publishes one event: topic must be valid and json a valid JSON text (any value; an object
 * by convention), re-serialised compactly; topic + 1 + compact JSON must fit in
 * FWEVENT_PAYLOAD_MAX bytes (-EMSGSIZE otherwise: events are never fragmented). Waits at
 * most FWEVENT_EMIT_WAIT_MS for room when the channel is full (a subscriber that stops
 * reading is evicted by the channel after eventsd's bound), then -EAGAIN.
 * -EINVAL: bad topic or JSON; -ENOENT: no event bus (eventsd is not running); -EPERM: the
 * channel is served by a uid other than root or ours. Thread-safe. */
int fwevent_emit(const char* topic, const char* json);
/* The same with the wait for room bounded by timeout_ms (0: never wait; < 0: forever). */
int fwevent_emit_timeout(const char* topic, const char* json, int timeout_ms);

/* ---- Subscribe (callbacks on a library thread) ----------------------------------------- */

typedef void (*fwevent_fn)(void* ctx, const fwevent_event* ev);

/* Calls fn(ctx, ev) for every event whose topic matches pattern, emitted after this call
 * returned (if the event bus exists then; otherwise from when it appears). Returns a
 * subscription id (> 0). Callbacks run one at a time on one thread per process (signals
 * blocked there), which the first subscription starts and the last one's removal stops;
 * all subscriptions of a process share one membership of the channel. A callback that
 * takes long delays the others, and past eventsd's eviction bound costs the process its
 * place (the next event then carries gap > 0). Callbacks may subscribe and unsubscribe.
 * -EINVAL: bad pattern or NULL fn. */
int fwevent_subscribe(const char* pattern, fwevent_fn fn, void* ctx);
/* Removes a subscription: once it returns, fn is not running and will not run again
 * (called from a callback, it takes effect after that callback). The last removal closes
 * the process's membership of the channel. -ENOENT for an unknown id. */
int fwevent_unsubscribe(int id);

/* ---- Watch (no thread: for event loops) ------------------------------------------------ */

typedef struct fwevent_watch fwevent_watch;

/* Joins the channel for events matching pattern. If the event bus does not exist yet, the
 * watch retries every 200 ms by itself (its fd wakes for that) and succeeds anyway. */
int fwevent_watch_open(const char* pattern, fwevent_watch** out);
/* A descriptor (stable for the watch's life) that polls readable when fwevent_watch_next()
 * may have something to do; then call it with timeout 0 until -EAGAIN. */
int fwevent_watch_fd(const fwevent_watch* w);
/* 0 with *out filled: the next matching event. -EAGAIN (timeout_ms 0) or -ETIMEDOUT when
 * none came in time (timeout_ms < 0: wait forever); -EINTR when a signal interrupted the
 * wait. Not thread-safe on one watch. */
int fwevent_watch_next(fwevent_watch* w, fwevent_event* out, int timeout_ms);
/* 1 while the watch is a member of the channel, 0 while it waits for the event bus. */
int fwevent_watch_connected(const fwevent_watch* w);
void fwevent_watch_close(fwevent_watch* w);

/* ---- Counters and errors ---------------------------------------------------------------- */

typedef struct {
  uint64_t emitted;       /* events sent by this process */
  uint64_t emit_full;     /* emits that gave up on a full channel (-EAGAIN) */
  uint64_t received;      /* event messages taken from the channel (all watches) */
  uint64_t delivered;     /* events handed to callbacks or returned by fwevent_watch_next */
  uint64_t malformed;     /* messages dropped: not an event, bad topic or JSON, torn slot */
  uint64_t gaps;          /* memberships lost (eviction, eventsd gone) and reopened */
  uint64_t callback_subs; /* live fwevent_subscribe() subscriptions */
} fwevent_stats;
void fwevent_get_stats(fwevent_stats* out);

/* What was wrong with the calling thread's last refused argument or emit (names the
 * field: "topic: empty segment at byte 9", "json: syntax error at byte 3"); "" if none. */
const char* fwevent_last_error_detail(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FWEVENT_H */
