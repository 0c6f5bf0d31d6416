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

/* Ring capacity bounds for buffer_size (bytes); 0 selects the default. */
#define IPC_BUFFER_DEFAULT (256u * 576u)
#define IPC_BUFFER_MIN (16u * 576u)
#define IPC_BUFFER_MAX (256u * 1024u * 1024u)

typedef struct {
  uint32_t type;     /* message type, chosen by the application */
  uint32_t size;     /* payload size, max 512 bytes (IPC_MAX_PAYLOAD) */
  uint32_t sender;   /* sender PID, filled in by the runtime, never by the caller */
  uint32_t receiver; /* receiver PID, 0 = broadcast */
  uint32_t priority; /* message priority, higher first */
  char payload[512];
} IPC_MESSAGE;

#ifdef __cplusplus
static_assert(sizeof(IPC_MESSAGE) == 532, "IPC_MESSAGE is a 20-byte header + 512-byte payload");
#else
_Static_assert(sizeof(IPC_MESSAGE) == 532, "IPC_MESSAGE is a 20-byte header + 512-byte payload");
#endif

int ipc_create_channel(const char* name, uint32_t type, uint32_t buffer_size);
/* As ipc_create_channel, with the channel's permission bits (the plain call uses 0660). */
int ipc_create_channel_ex(const char* name, uint32_t type, uint32_t buffer_size, uint32_t perm_mode);
int ipc_open_channel(const char* name, uint32_t mode);
int ipc_close_channel(uint32_t channel_id);

/* Sends size bytes with priority 0 to receiver 0 (broadcast). */
int ipc_send(uint32_t channel_id, const void* buffer, uint32_t size, uint32_t type);
/* Sends msg->size bytes of msg->payload with msg->type, msg->priority, msg->receiver.
 * msg->sender is ignored: the runtime fills in the real PID. */
int ipc_send_message(uint32_t channel_id, const IPC_MESSAGE* msg);

/* Copies the next payload for this process into buffer; returns its size. */
int ipc_receive(uint32_t channel_id, void* buffer, uint32_t size);
/* Receives a whole message. timeout_ms < 0 waits forever, 0 does not wait. */
int ipc_receive_message(uint32_t channel_id, IPC_MESSAGE* msg, int timeout_ms);

/* A descriptor that polls readable while a message is waiting for this id (level-like:
 * it stays readable until a receive finds the channel empty). Owned by the channel. */
int ipc_channel_fd(uint32_t channel_id);

/* A static, human-readable name for a return code (0, a count, or a negative errno). */
const char* ipc_strerror(int code);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FWIPC_IPC_H */
