// Console output throughput and input-to-echo round trip, side by side in one run:
//   raw PTY   openpty + `cat FILE` on the slave, the master read in this process (the floor)
//   csrss     `cat FILE` on a csrss console, read with csrss_console_read()
//   tmux      `cat FILE` in a tmux pane, its output piped out through control mode (-C)
// Usage: csrss_bench [MIB] (default 64; a file of MIB MiB of base64 text).
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "services/csrss/csrss_ipc.h"
#include "services/csrss/tests/harness.h"

namespace {

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// Returns bytes read from the master until the program exits.
size_t raw_pty(const char* const argv[], bool echo_test, std::vector<double>* rtt) {
  int m, s;
  winsize ws{24, 80, 0, 0};
  if (openpty(&m, &s, nullptr, nullptr, &ws) != 0) return 0;
  const pid_t pid = fork();
  if (pid == 0) {
    setsid();
    ioctl(s, TIOCSCTTY, 0);
    dup2(s, 0), dup2(s, 1), dup2(s, 2);
    close(m);
    execvp(argv[0], const_cast<char* const*>(argv));
    _exit(127);
  }
  close(s);
  std::vector<char> buf(1 << 16);
  size_t total = 0;
  if (echo_test) {
    // Wait for "ready" then time single bytes echoed by the terminal.
    std::string got;
    while (got.find("ready") == std::string::npos) {
      const ssize_t n = read(m, buf.data(), buf.size());
      if (n <= 0) break;
      got.append(buf.data(), size_t(n));
    }
    for (int i = 0; i < 1000; i++) {
      const double t = now_s();
      if (write(m, "x", 1) != 1) break;
      if (read(m, buf.data(), buf.size()) <= 0) break;
      rtt->push_back(now_s() - t);
    }
    kill(pid, SIGKILL);
  } else {
    for (ssize_t n; (n = read(m, buf.data(), buf.size())) > 0;) total += size_t(n);
  }
  close(m);
  waitpid(pid, nullptr, 0);
  return total;
}

size_t via_csrss(const char* const argv[], bool echo_test, std::vector<double>* rtt) {
  const int con = csrss_console_create(argv, 24, 80);
  if (con < 0) {
    fprintf(stderr, "csrss_bench: console: %d\n", con);
    return 0;
  }
  std::vector<char> buf(1 << 20);
  size_t total = 0;
  if (echo_test) {
    std::string got;
    while (got.find("ready") == std::string::npos) {
      const ssize_t n = csrss_console_read(con, buf.data(), buf.size(), 5000);
      if (n <= 0) break;
      got.append(buf.data(), size_t(n));
    }
    for (int i = 0; i < 1000; i++) {
      const double t = now_s();
      if (csrss_console_write(con, "x", 1) != 1) break;
      if (csrss_console_read(con, buf.data(), buf.size(), 5000) <= 0) break;
      rtt->push_back(now_s() - t);
    }
    csrss_console_close(con);
  } else {
    for (ssize_t n; (n = csrss_console_read(con, buf.data(), buf.size(), 60000)) != 0;)
      if (n > 0) total += size_t(n);
  }
  int st;
  csrss_console_wait(con, &st, 10000);
  csrss_console_detach(con);
  return total;
}

// tmux control mode: the pane's output arrives on stdout as %output lines (octal-escaped).
// Returns the bytes of stdout; the time is until the session has ended.
size_t via_tmux(const std::string& dir, const std::string& file) {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0) return 0;
  const std::string sock = dir + "/tmux-bench.sock";
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0), dup2(out[1], 1);
    close(in[1]), close(out[0]);
    execlp("tmux", "tmux", "-S", sock.c_str(), "-f", "/dev/null", "-C", "new-session", "-x", "80", "-y", "24",
           ("cat " + file).c_str(), nullptr);
    _exit(127);
  }
  close(in[0]), close(out[1]);
  std::vector<char> buf(1 << 16);
  size_t total = 0;
  for (ssize_t n; (n = read(out[0], buf.data(), buf.size())) > 0;) total += size_t(n);
  close(in[1]), close(out[0]);
  waitpid(pid, nullptr, 0);
  return total;
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  const long mib = argc > 1 ? atol(argv[1]) : 64;
  if (mib < 1 || mib > 1024) {
    fprintf(stderr, "usage: csrss_bench [MIB 1-1024]\n");
    return 2;
  }
  if (!getenv("TEST_SRCDIR")) {
    const std::string rf = getenv("RUNFILES_DIR") ? getenv("RUNFILES_DIR") : std::string(argv[0]) + ".runfiles";
    setenv("TEST_SRCDIR", rf.c_str(), 1);
  }
  csrss::test::Runtime rt;
  csrss::test::Daemon daemon;
  if (daemon.pid() < 0) {
    fprintf(stderr, "csrss_bench: the daemon did not start\n");
    return 1;
  }
  const std::string file = rt.dir() + "/bench.txt";
  const std::string mk = "head -c " + std::to_string(mib * 3 / 4) + "M /dev/urandom | base64 > " + file;
  if (system(mk.c_str()) != 0) return 1;
  const char* const cat[] = {"cat", file.c_str(), nullptr};
  printf("output throughput, cat of %ld MiB of base64 text (a reading client):\n", mib * 3 / 4 * 4 / 3);
  double t = now_s();
  size_t n = raw_pty(cat, false, nullptr);
  const double raw = double(n) / (now_s() - t) / 1e6;
  printf("  raw PTY (floor) %8.1f MB/s  (%zu bytes)\n", raw, n);
  t = now_s();
  n = via_csrss(cat, false, nullptr);
  const double cs = double(n) / (now_s() - t) / 1e6;
  printf("  csrss           %8.1f MB/s  (%zu bytes)  %.2fx the raw PTY\n", cs, n, cs / raw);
  t = now_s();
  const size_t tn = via_tmux(rt.dir(), file);
  const double tm = double(n) / (now_s() - t) / 1e6;  // the file's bytes over the time
  if (tn > 0)
    printf("  tmux -C         %8.1f MB/s  (%zu bytes of %%output)  %.2fx the raw PTY\n", tm, tn, tm / raw);
  else
    printf("  tmux            not available\n");
  const char* const echo[] = {"/bin/sh", "-c", "stty raw; echo ready; exec cat", nullptr};
  std::vector<double> r1, r2;
  raw_pty(echo, true, &r1);
  via_csrss(echo, true, &r2);
  printf("input-to-echo round trip (1 byte to cat, 1000 times): p50 / p99\n");
  printf("  raw PTY %7.1f / %7.1f us\n", pct(r1, 0.5) * 1e6, pct(r1, 0.99) * 1e6);
  printf("  csrss   %7.1f / %7.1f us\n", pct(r2, 0.5) * 1e6, pct(r2, 0.99) * 1e6);
  return 0;
}
