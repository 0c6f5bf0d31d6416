/* The README's C example, built outside Bazel against logd_ipc.h and liblogd_ipc.so:
 * hello_logd N logs N records (tag myapp), flushes, and exits 0 if every call returned 0. */
#include <stdio.h>
#include <stdlib.h>

#include "logd_ipc.h"

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1;
  if (logd_info("myapp", "Application started") != 0) return 1;
  for (int i = 0; i < n; ++i)
    if (logd_warn("myapp", "record %d of %d", i, n) != 0) return 1;
  int rc = logd_flush(10000);
  if (rc != 0) {
    fprintf(stderr, "hello_logd: logd_flush: %d\n", rc);
    return 1;
  }
  return 0;
}
