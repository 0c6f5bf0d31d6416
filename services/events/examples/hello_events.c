/* hello_events: subscribes to demo.>, emits demo.hello, prints the event it gets back
 * (every process that subscribes receives its own events too) with the emitter's PID. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c99 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "fwevent.h"
#include "ipc.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int got = 0;

static void on_event(void* ctx, const fwevent_event* ev) {
  (void)ctx;
  printf("%s %s pid=%u\n", ev->topic, ev->json, ev->sender_pid); /* on the library's thread */
  fflush(stdout);
  pthread_mutex_lock(&mu);
  got = 1;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
}

int main(void) {
  int sub = fwevent_subscribe("demo.>", on_event, NULL);
  if (sub < 0) {
    fprintf(stderr, "hello_events: subscribe: %s\n", ipc_strerror(sub));
    return 1;
  }
  int rc = fwevent_emit("demo.hello", "{\"from\": \"C\"}");
  if (rc < 0) {
    fprintf(stderr, "hello_events: emit: %s %s\n", ipc_strerror(rc), fwevent_last_error_detail());
    fwevent_unsubscribe(sub);
    return 1;
  }
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 10;
  pthread_mutex_lock(&mu);
  while (!got && rc == 0) rc = pthread_cond_timedwait(&cv, &mu, &until);
  pthread_mutex_unlock(&mu);
  fwevent_unsubscribe(sub);
  return got ? 0 : 1;
}
