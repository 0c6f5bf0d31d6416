/* A C program on the public header and libfwipc.so alone (tests/public_api_test.sh builds it
 * with: cc hello.c -Iruntime/include -Lbazel-bin/runtime -lfwipc). Exit 0 when a message
 * went through a QUEUE channel with the right size, type and sender. */
#include <errno.h>
#include <ipc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
  int id = ipc_create_channel("hello.c", IPC_TYPE_QUEUE, 0);
  if (id < 0) {
    fprintf(stderr, "create: %s\n", ipc_strerror(id));
    return 1;
  }
  int w = ipc_open_channel("hello.c", IPC_MODE_WRITE);
  if (w < 0 || ipc_send((uint32_t)w, "hello", 5, 7) != 5) return 2;
  IPC_MESSAGE m;
  int n = ipc_receive_message((uint32_t)id, &m, 1000);
  if (n != 5 || m.type != 7 || m.sender != (uint32_t)getpid() || memcmp(m.payload, "hello", 5) != 0) return 3;
  if (ipc_send((uint32_t)w, m.payload, IPC_MAX_PAYLOAD + 1, 0) != -EMSGSIZE) return 4;
  if (ipc_close_channel((uint32_t)w) != 0 || ipc_close_channel((uint32_t)id) != 0) return 5;
  if (ipc_open_channel("hello.c", IPC_MODE_READ) != -ENOENT) return 6;
  puts("c ok");
  return 0;
}
