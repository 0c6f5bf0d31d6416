/* The echo service: answers method 1 with the request's body, until SIGTERM or SIGINT. */
#include <fwsvc.h>
#include <stdio.h>

#define ECHO_METHOD 1u

static void echo(void* ctx, const fwsvc_request* req) {
  (void)ctx;
  fwsvc_reply(req, 0, req->body, req->body_len); /* any size up to 1 MiB */
}

int main(void) {
  fwsvc_loop* loop = NULL;
  fwsvc_service* svc = NULL;
  int rc = fwsvc_loop_new(&loop);                                /* before any thread: blocks SIGTERM, SIGINT, SIGHUP */
  if (rc == 0) rc = fwsvc_service_new(loop, "echo", NULL, &svc); /* QUEUE channel, 0660 */
  if (rc == 0) rc = fwsvc_service_add_method(svc, ECHO_METHOD, echo, NULL);
  if (rc == 0) fwsvc_notify("READY=1");   /* systemd Type=notify; nothing without $NOTIFY_SOCKET */
  if (rc == 0) rc = fwsvc_loop_run(loop); /* 0 after SIGTERM or SIGINT */
  if (rc != 0) fprintf(stderr, "echo_service: %s\n", ipc_strerror(rc));
  fwsvc_service_free(svc);
  fwsvc_loop_free(loop);
  return rc == 0 ? 0 : 1;
}
