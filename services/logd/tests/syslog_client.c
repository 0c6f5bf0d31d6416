/* A plain C program using openlog(3)/syslog(3), which always write to /dev/log: it enters a
 * private mount namespace where /dev/log is a symbolic link to SOCKET (logd's
 * --syslog-socket), so that the real /dev is untouched.
 *   syslog_client SOCKET TEXT     exit 0 once syslog() returned, 3 without the namespace */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <syslog.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: syslog_client SOCKET TEXT\n");
    return 2;
  }
  if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
      mount("tmpfs", "/dev", "tmpfs", 0, "mode=0755") != 0 || symlink(argv[1], "/dev/log") != 0) {
    perror("syslog_client: private /dev/log");
    return 3;
  }
  openlog("myapp", LOG_PID, LOG_USER);
  syslog(LOG_WARNING, "%s", argv[2]);
  closelog();
  return 0;
}
