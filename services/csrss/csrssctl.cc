// csrssctl: consoles and windows of csrss from the command line.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "fwsvc.h"
#include "services/csrss/csrss_ipc.h"

namespace {

const char kHelp[] =
    "Usage: csrssctl COMMAND [ARGS]...\n"
    "Control consoles and windows of the FreeWorld console server (csrss, channel csrss).\n"
    "\n"
    "Commands:\n"
    "  new [--rows R] [--cols C] -- CMD [ARG]...\n"
    "          start CMD on a new console (default 24 x 80) and print its id; the\n"
    "          console keeps running after csrssctl exits\n"
    "  list    the consoles of your uid (root: all) as JSON\n"
    "  attach ID\n"
    "          connect this terminal to console ID: raw mode, this terminal's size\n"
    "          passed through (and again on every resize); output from now on is shown.\n"
    "          Ctrl-] then d detaches (the console goes on); Ctrl-] Ctrl-] sends one\n"
    "          Ctrl-]. Ends by itself when the program exits, with its exit status\n"
    "  send ID TEXT\n"
    "          type TEXT into console ID (C escapes \\n \\r \\t \\e \\\\ are decoded)\n"
    "  capture ID\n"
    "          write console ID's scroll-back (its newest 1 MiB at most) to stdout\n"
    "  resize ID ROWS COLS\n"
    "  wait ID [TIMEOUT_MS]\n"
    "          wait for console ID's program; exits with its status (0-255, 128+signal)\n"
    "  close ID\n"
    "          hang up console ID (SIGHUP to its program; SIGKILL 3 s later)\n"
    "  windows the windows as JSON, in z-order, bottom first\n"
    "  events [AFTER_SEQ]\n"
    "          csrss's change events after AFTER_SEQ (default: all it holds) as JSON\n"
    "\n"
    "Exit status: 0 on success, 1 when csrss refused or failed (the reason on stderr), 2 for\n"
    "bad usage; wait and attach exit with the program's status.\n";

int fail(const char* what, int rc) {
  if (rc == -ECONNREFUSED)
    fprintf(stderr, "csrssctl: %s: csrss is not running (no channel csrss in the runtime directory)\n", what);
  else if (rc == -ENOENT)
    fprintf(stderr, "csrssctl: %s: no such console\n", what);
  else if (rc == -EPERM)
    fprintf(stderr,
            "csrssctl: %s: not permitted (another uid's console or window, or csrss is not served by root "
            "or your uid)\n",
            what);
  else
    fprintf(stderr, "csrssctl: %s: %s\n", what, ipc_strerror(rc));
  return 1;
}

int usage(const char* msg) {
  fprintf(stderr, "csrssctl: %s (see csrssctl --help)\n", msg);
  return 2;
}

bool parse_int(const char* s, long lo, long hi, long* out) {
  char* end;
  errno = 0;
  const long v = strtol(s, &end, 10);
  if (end == s || *end || errno || v < lo || v > hi) return false;
  *out = v;
  return true;
}

std::string unescape(const char* s) {
  std::string o;
  for (; *s; s++) {
    if (*s != '\\' || !s[1]) {
      o += *s;
      continue;
    }
    switch (*++s) {
      case 'n': o += '\n'; break;
      case 'r': o += '\r'; break;
      case 't': o += '\t'; break;
      case 'e': o += '\033'; break;
      case '\\': o += '\\'; break;
      default: o += '\\', o += *s;
    }
  }
  return o;
}

int print_json(int (*fn)(char*, size_t)) {
  std::vector<char> buf(1 << 16);
  for (;;) {
    const int rc = fn(buf.data(), buf.size());
    if (rc == -EMSGSIZE && buf.size() < (64u << 20)) {
      buf.resize(buf.size() * 4);
      continue;
    }
    if (rc < 0) return fail("list", rc);
    printf("%s\n", buf.data());
    return 0;
  }
}

volatile sig_atomic_t g_winch = 1;
void on_winch(int) { g_winch = 1; }

int attach(int con) {
  int rc = csrss_console_attach(con);
  if (rc < 0) return fail("attach", rc);
  const bool tty = isatty(0);
  termios saved{};
  if (tty) {
    tcgetattr(0, &saved);
    termios raw = saved;
    cfmakeraw(&raw);
    tcsetattr(0, TCSANOW, &raw);
    struct sigaction sa {};
    sa.sa_handler = on_winch;
    sigaction(SIGWINCH, &sa, nullptr);
  }
  const int cfd = csrss_console_fd(con);
  bool prefix = false, stdin_open = true;
  int status = -1;
  char buf[65536];
  for (;;) {
    if (tty && g_winch) {
      g_winch = 0;
      winsize ws{};
      if (ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) csrss_console_resize(con, ws.ws_row, ws.ws_col);
    }
    pollfd p[2] = {{cfd, POLLIN, 0}, {0, short(stdin_open ? POLLIN : 0), 0}};
    if (poll(p, 2, 1000) < 0 && errno != EINTR) break;
    // Output: everything that is there now.
    ssize_t n;
    bool ended = false;
    while ((n = csrss_console_read(con, buf, sizeof buf, 0)) != -EAGAIN) {
      if (n == 0) {
        ended = true;
        break;
      }
      if (n == -ENOBUFS) {
        static const char gap[] = "\r\n[csrssctl: output lost: this terminal fell behind the scroll-back]\r\n";
        (void)!write(1, gap, sizeof gap - 1);
        continue;
      }
      if (n < 0) {
        ended = true;
        break;
      }
      for (ssize_t off = 0; off < n;) {
        const ssize_t w = write(1, buf + off, size_t(n - off));
        if (w <= 0 && errno != EINTR) break;
        if (w > 0) off += w;
      }
    }
    if (ended) {
      int st = 0;
      if (csrss_console_wait(con, &st, 5000) == 0) status = st;
      break;
    }
    if (stdin_open && (p[1].revents & (POLLIN | POLLHUP))) {
      const ssize_t k = read(0, buf, sizeof buf);
      if (k <= 0) {
        stdin_open = false;
        if (!tty) continue;
        break;
      }
      std::string in;
      bool detach = false;
      for (ssize_t i = 0; i < k; i++) {
        const char c = buf[i];
        if (prefix) {
          prefix = false;
          if (c == 'd' || c == 'D') {
            detach = true;
            break;
          }
          in += c;  // Ctrl-] Ctrl-] is one Ctrl-]; anything else goes through with it
          if (c != 0x1d) in.insert(in.size() - 1, 1, char(0x1d));
        } else if (c == 0x1d && tty) {
          prefix = true;
        } else {
          in += c;
        }
      }
      if (!in.empty() && csrss_console_write(con, in.data(), in.size()) < 0) break;
      if (detach) break;
    }
  }
  if (tty) tcsetattr(0, TCSANOW, &saved);
  csrss_console_detach(con);
  if (status >= 0) {
    if (tty) fprintf(stderr, "\r\n[csrssctl: console %d ended with status %d]\r\n", con, status);
    return status;
  }
  if (tty) fprintf(stderr, "\r\n[csrssctl: detached from console %d]\r\n", con);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage("a command is needed");
  const std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    fputs(kHelp, stdout);
    return 0;
  }
  long id = 0;
  auto need_id = [&](int at) { return argc > at && parse_int(argv[at], 1, INT32_MAX, &id); };
  if (cmd == "new") {
    long rows = 24, cols = 80;
    int i = 2;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
      long* f = !strcmp(argv[i], "--rows") ? &rows : !strcmp(argv[i], "--cols") ? &cols : nullptr;
      if (!f) return usage((std::string("new: unknown option '") + argv[i] + "'").c_str());
      if (i + 1 >= argc || !parse_int(argv[i + 1], 1, 10000, f))
        return usage((std::string("new: ") + argv[i] + " needs a number 1-10000").c_str());
      i++;
    }
    if (i >= argc || i + 1 >= argc) return usage("new: -- CMD [ARG]... is needed");
    std::vector<const char*> args(argv + i + 1, argv + argc);
    args.push_back(nullptr);
    const int con = csrss_console_create(args.data(), uint16_t(rows), uint16_t(cols));
    if (con == -ENOENT || con == -EACCES || con == -ENOEXEC) {
      fprintf(stderr, "csrssctl: new: cannot execute '%s': %s\n", args[0], strerror(-con));
      return 1;
    }
    if (con < 0) return fail("new", con);
    // The console outlives this process; its reader channel goes with it.
    printf("%d\n", con);
    return 0;
  }
  if (cmd == "list") return print_json(csrss_console_list);
  if (cmd == "windows") return print_json(csrss_window_list);
  if (cmd == "events") {
    long after = 0;
    if (argc > 2 && !parse_int(argv[2], 0, INT64_MAX, &after)) return usage("events: AFTER_SEQ is a number");
    std::vector<char> buf(1 << 20);
    int rc;
    while ((rc = csrss_events_read(uint64_t(after), buf.data(), buf.size())) == -EMSGSIZE && buf.size() < (64u << 20))
      buf.resize(buf.size() * 4);
    if (rc < 0) return fail("events", rc);
    printf("%s\n", buf.data());
    return 0;
  }
  if (cmd == "attach") {
    if (!need_id(2) || argc != 3) return usage("attach: ID is needed");
    return attach(int(id));
  }
  if (cmd == "send") {
    if (!need_id(2) || argc != 4) return usage("send: ID TEXT are needed");
    const std::string text = unescape(argv[3]);
    const int rc = csrss_console_write(int(id), text.data(), text.size());
    if (rc < 0) return fail("send", rc);
    if (size_t(rc) < text.size()) {
      fprintf(stderr, "csrssctl: send: only %d of %zu bytes taken (the program is not reading)\n", rc, text.size());
      return 1;
    }
    return 0;
  }
  if (cmd == "capture") {
    if (!need_id(2) || argc != 3) return usage("capture: ID is needed");
    std::vector<char> buf(1 << 20);
    const int rc = csrss_console_capture(int(id), buf.data(), buf.size());
    if (rc < 0) return fail("capture", rc);
    fwrite(buf.data(), 1, size_t(rc), stdout);
    return 0;
  }
  if (cmd == "resize") {
    long r = 0, c = 0;
    if (!need_id(2) || argc != 5 || !parse_int(argv[3], 1, 10000, &r) || !parse_int(argv[4], 1, 10000, &c))
      return usage("resize: ID ROWS COLS are needed (1-10000)");
    const int rc = csrss_console_resize(int(id), uint16_t(r), uint16_t(c));
    return rc < 0 ? fail("resize", rc) : 0;
  }
  if (cmd == "wait") {
    long t = -1;
    if (!need_id(2) || argc > 4 || (argc == 4 && !parse_int(argv[3], 0, INT32_MAX, &t)))
      return usage("wait: ID [TIMEOUT_MS] are needed");
    int st = 0;
    const int rc = csrss_console_wait(int(id), &st, int(t));
    if (rc < 0) return fail("wait", rc);
    printf("%d\n", st);
    return st;
  }
  if (cmd == "close") {
    if (!need_id(2) || argc != 3) return usage("close: ID is needed");
    const int rc = csrss_console_close(int(id));
    return rc < 0 ? fail("close", rc) : 0;
  }
  return usage(("unknown command '" + cmd + "'").c_str());
}
