/* A logd client built against installed files only (packaging/test.sh compiles it with
 * `pkg-config --cflags --libs logd_ipc`): logs one record with the text given as argv[1]
 * and waits until logd has it in its file. */
#include <logd_ipc.h>
#include <stdio.h>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  int rc = logd_info("pkgtest", "%s", argv[1]);
  if (rc == 0) rc = logd_flush(10000);
  if (rc != 0) {
    fprintf(stderr, "logd: %d\n", rc);
    return 1;
  }
  return 0;
}
