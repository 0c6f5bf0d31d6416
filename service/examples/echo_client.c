/* The echo service's client: echo_client TEXT prints what the service sent back. */
#include <errno.h>
#include <fwsvc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ECHO_METHOD 1u

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: echo_client TEXT\n");
    return 2;
  }
  int ch = ipc_open_channel("echo", IPC_MODE_WRITE); /* calling needs the write bit only */
  if (ch < 0) {
    fprintf(stderr, "echo_client: echo: %s\n", ipc_strerror(ch));
    return 1;
  }
  size_t len = strlen(argv[1]), got = 0;
  char* reply = malloc(len + 1);
  int rc = reply ? fwsvc_call((uint32_t)ch, ECHO_METHOD, argv[1], len, reply, len, &got, 5000 /* ms */) : -ENOMEM;
  if (rc >= 0)
    printf("%.*s\n", (int)got, reply); /* rc: the handler's status */
  else
    fprintf(stderr, "echo_client: %s\n", ipc_strerror(rc));
  free(reply);
  ipc_close_channel((uint32_t)ch);
  return rc >= 0 ? 0 : 1;
}
