/* logd's client library (liblogd_ipc.so): log records to the system log daemon.
 *
 *   #include "logd_ipc.h"
 *   logd_info("myapp", "Application started, %d workers", n);
 *
 * Build: cc app.c -Iservices/logd -Iruntime/include -Lbazel-bin/services/logd
 *        -Lbazel-bin/runtime -llogd_ipc -lfwipc
 *
 * A logging call never blocks for long: a record goes straight into logd's channel when
 * logd keeps up; otherwise (logd slow, stopped or absent) it waits in a bounded queue of
 * this process, which a background thread drains in order as soon as logd takes records
 * again (reconnecting to a restarted logd by itself). Records that did not fit are counted
 * and reported to logd in a "dropped N records" record; debug records are dropped first.
 * pid, uid and comm are stamped by logd, never taken from the record.
 *
 * Every call returns 0 or a negative errno: -ENOBUFS (dropped: the local queue is full),
 * -EINVAL (no tag or format, or a level outside 0..7), -ETIMEDOUT (logd_flush).
 * Thread-safe; usable in a forked child at once. C99 and C++. */
#ifndef LOGD_IPC_H
#define LOGD_IPC_H

#include <stdarg.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* syslog severities. */
#define LOGD_EMERG 0
#define LOGD_ALERT 1
#define LOGD_CRIT 2
#define LOGD_ERR 3
#define LOGD_WARNING 4
#define LOGD_NOTICE 5
#define LOGD_INFO 6
#define LOGD_DEBUG 7

/* The longest text of one record (bytes); longer text is cut at a UTF-8 boundary and
 * ends with " [truncated]". */
#define LOGD_MAX_TEXT 65536

#if defined(__GNUC__)
#define LOGD_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define LOGD_PRINTF(f, a)
#endif

int logd_log(int level, const char* tag, const char* fmt, ...) LOGD_PRINTF(3, 4);
int logd_vlog(int level, const char* tag, const char* fmt, va_list ap) LOGD_PRINTF(3, 0);
int logd_debug(const char* tag, const char* fmt, ...) LOGD_PRINTF(2, 3);
int logd_info(const char* tag, const char* fmt, ...) LOGD_PRINTF(2, 3);
int logd_notice(const char* tag, const char* fmt, ...) LOGD_PRINTF(2, 3);
int logd_warn(const char* tag, const char* fmt, ...) LOGD_PRINTF(2, 3);
int logd_error(const char* tag, const char* fmt, ...) LOGD_PRINTF(2, 3);
int logd_crit(const char* tag, const char* fmt, ...) LOGD_PRINTF(2, 3);

/* Records less severe than level (a LOGD_* value) are not sent. Returns the previous
 * level, or -EINVAL. The default is LOGD_DEBUG (everything). */
int logd_set_level(int level);

/* Waits until every record this process logged before the call is in logd's file:
 * 0, -ETIMEDOUT, or -EPIPE when logd restarted and lost records this process had sent
 * it. timeout_ms < 0 waits as long as it takes. */
int logd_flush(int timeout_ms);

/* The local queue's bounds (records and bytes). Defaults: 8192 records, 8 MiB. */
int logd_set_queue_limit(uint32_t records, uint32_t bytes);

/* Counters of this process's client. */
typedef struct {
  uint64_t logged;   /* calls that returned 0 */
  uint64_t direct;   /* records that went straight into logd's channel */
  uint64_t queued;   /* records that waited in the local queue */
  uint64_t dropped;  /* records dropped (queue full), debug evictions included */
  uint64_t reported; /* dropped records reported to logd so far */
  uint64_t reconnects;
  uint32_t queue_records; /* waiting now */
  uint32_t queue_bytes;
} logd_client_stats;
int logd_stats(logd_client_stats* out);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LOGD_IPC_H */
