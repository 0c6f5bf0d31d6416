/* csrss client library: consoles on real pseudo-terminals and a window list, served by the
 * csrss daemon on channel `csrss` ($FWIPC_RUNTIME_DIR/csrss.sock). C99 and C++; prefix
 * csrss_. Link: libcsrss_ipc.so (pkg-config csrss_ipc).
 *
 * Every call returns >= 0 on success and a negative errno on failure (ipc_strerror() names
 * it); -ECONNREFUSED: no csrss serves the runtime directory. The library never logs and
 * never exits. Calls may be made from any thread. The library trusts a csrss run by root or
 * by the caller's own uid only (-EPERM otherwise).
 *
 * Console output reaches each reading process through a QUEUE channel of its own that the
 * library creates (mode 0600, so only its uid and root can read it) and the daemon writes
 * without ever blocking: output the reader has not taken yet stays in the console's
 * scroll-back, and a reader that falls further behind than the scroll-back holds gets
 * -ENOBUFS once from csrss_console_read() (the number of bytes it lost from
 * csrss_console_read_ex()), then the output that is still there. Nothing is dropped
 * silently. */
#ifndef CSRSS_IPC_H
#define CSRSS_IPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Consoles ------------------------------------------------------------------------ */

/* Starts argv[0] (searched in the daemon's PATH unless it contains '/'; argv ends with
 * NULL) in a new pseudo-terminal of rows x cols (1-10000 each): its own session, the PTY as
 * its controlling terminal, running as the caller's uid, gids and working directory. The
 * caller becomes a reader of its output (from the first byte). Returns the console id
 * (> 0), or -ENOENT / -EACCES (argv[0] cannot be executed), -EINVAL (bad size or argv),
 * -EDQUOT (the uid has as many consoles as the daemon allows), ... */
int csrss_console_create(const char* const argv[], uint16_t rows, uint16_t cols);

/* Sends n bytes of input to the console (as typed: the terminal echoes and edits them).
 * Returns n, or fewer if the program stopped reading its terminal for 5 seconds. */
int csrss_console_write(int con, const void* buf, size_t n);

/* Output, in order: up to cap bytes; 0 once the program has exited and everything was
 * read; -ETIMEDOUT after timeout_ms with nothing (< 0 waits forever, 0 does not wait:
 * -EAGAIN); -ENOBUFS once when this reader fell behind the scroll-back (bytes were lost,
 * see csrss_console_read_ex); -ENOTCONN if this process neither created nor attached it. */
ssize_t csrss_console_read(int con, void* buf, size_t cap, int timeout_ms);
/* The same; *lost_bytes (may be NULL) is the number of bytes lost when it returns -ENOBUFS. */
ssize_t csrss_console_read_ex(int con, void* buf, size_t cap, int timeout_ms, uint64_t* lost_bytes);
/* A descriptor that polls readable while csrss_console_read() has something (output, a gap
 * or the end) for this process; owned by the library (valid until detach). */
int csrss_console_fd(int con);

/* The program sees the new size and gets SIGWINCH (from the kernel). */
int csrss_console_resize(int con, uint16_t rows, uint16_t cols);

/* Waits for the program to end: *exit_status is its exit code 0-255, or 128 + the signal
 * number if a signal ended it (as shells report). -ETIMEDOUT after timeout_ms (< 0 waits
 * forever, 0 polls once). */
int csrss_console_wait(int con, int* exit_status, int timeout_ms);

/* Hangs the console up: the program gets SIGHUP (SIGKILL 3 s later if it has not ended),
 * is reaped, and its status stays for csrss_console_wait(). Never waits for output to be
 * read; what was already in the scroll-back can still be read. */
int csrss_console_close(int con);

/* Makes this process a reader and writer of an existing console of its uid (root: any):
 * it reads output produced from now on. -EPERM for another uid's console, -ENOENT for an
 * unknown id, -EALREADY if this process already reads it. */
int csrss_console_attach(int con);
/* Stops reading (the channel is closed); the console goes on. */
int csrss_console_detach(int con);

/* JSON array of the consoles the caller may see (its uid's; root: all):
 * [{"id":1,"pid":123,"uid":1000,"rows":24,"cols":80,"running":true,"exit_status":null,
 *   "readers":1,"argv":["/bin/sh"]}, ...]. Returns the length written (NUL-terminated), or
 * -EMSGSIZE if cap is too small. */
int csrss_console_list(char* json, size_t cap);

/* The console's scroll-back (the newest bytes, up to cap and to the daemon's 1 MiB reply
 * bound): the length copied. */
int csrss_console_capture(int con, void* buf, size_t cap);

/* ---- Windows ------------------------------------------------------------------------- */

/* A window record owned by the calling process (destroyed when it exits), put on top of
 * the z-order. w and h 1-65535, x and y within +-1000000, title up to 255 bytes (UTF-8, no
 * control characters). Returns the window id (> 0); -EINVAL names nothing more: the
 * geometry or title was out of range; -EDQUOT past the per-process cap. */
int csrss_window_create(const char* title, int x, int y, int w, int h);
int csrss_window_move(int id, int x, int y, int w, int h);
int csrss_window_set_title(int id, const char* title);
int csrss_window_raise(int id);
int csrss_window_destroy(int id);
/* JSON array in z-order, bottom first:
 * [{"id":1,"pid":123,"title":"t","x":0,"y":0,"w":640,"h":480}, ...]. As console_list. */
int csrss_window_list(char* json, size_t cap);

/* ---- Change events --------------------------------------------------------------------- */

/* The daemon's change events with a sequence number greater than after_seq (0: all it
 * still holds, the newest 1024), oldest first, as a JSON array of objects
 * {"seq":N,"topic":"system.csrss.window.created",...}; window events carry "window" and
 * "z_order" (ids, bottom first), console events "console". If events after after_seq were
 * already dropped, the first element is {"seq":N,"topic":"system.csrss.gap","lost":K}.
 * Returns the number of events (0: none newer), or -EMSGSIZE if cap is too small for one. */
int csrss_events_read(uint64_t after_seq, char* json, size_t cap);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CSRSS_IPC_H */
