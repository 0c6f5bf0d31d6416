// fwevent: emit an event, or watch events, from the command line.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>

#include "ipc.h"
#include "services/events/fwevent.h"

namespace {

const char kHelp[] =
    "NAME\n"
    "    fwevent - emit and watch FreeWorld events\n"
    "\n"
    "SYNOPSIS\n"
    "    fwevent emit TOPIC JSON [--timeout MS]\n"
    "    fwevent watch PATTERN [--count N] [--json]\n"
    "\n"
    "DESCRIPTION\n"
    "    Events travel on the runtime channel 'events' served by eventsd, in the\n"
    "    runtime directory of $FWIPC_RUNTIME_DIR. A topic is dot-separated segments of\n"
    "    printable ASCII other than '.', '*' and '>' (at most 255 bytes):\n"
    "    security.user.login. In a PATTERN, a segment '*' matches exactly one segment\n"
    "    and a last segment '>' one or more: security.> matches security.user.login,\n"
    "    security.* does not.\n"
    "\n"
    "    emit   sends TOPIC with the JSON text JSON (any JSON value; an object by\n"
    "           convention), re-serialised compactly. Topic, a NUL and the JSON must fit\n"
    "           in 512 bytes. Waits at most --timeout MS (default 1000) for room when\n"
    "           a subscriber holds the channel full.\n"
    "    watch  prints each event whose topic matches PATTERN, one per line, as\n"
    "               TOPIC JSON pid=PID\n"
    "           or, with --json, as a JSON object {\"topic\":...,\"data\":...,\"pid\":N}.\n"
    "           PID is the emitter's, stamped by the runtime. It says 'fwevent: watching\n"
    "           PATTERN' on stderr once it receives (or that it waits for the event bus),\n"
    "           and reports on stderr when events were lost (it was evicted for not\n"
    "           reading, or eventsd restarted). With --count N it exits after N events;\n"
    "           otherwise at SIGINT or SIGTERM.\n"
    "\n"
    "EXIT STATUS\n"
    "    0 on success; 1 when the event could not be sent or the watch failed (the\n"
    "    message names the reason); 2 for a bad command line (the message names the\n"
    "    argument).\n"
    "\n"
    "EXAMPLES\n"
    "    fwevent emit security.user.login '{\"username\":\"user\"}'\n"
    "    fwevent watch 'security.>' --count 1\n";

int usage(const char* what) {
  fprintf(stderr, "fwevent: %s (see fwevent --help)\n", what);
  return 2;
}

bool parse_int(const char* s, long lo, long hi, long* out) {
  if (s == nullptr || *s == '\0') return false;
  char* end = nullptr;
  errno = 0;
  const long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

int do_emit(int argc, char** argv) {
  const char* topic = nullptr;
  const char* json = nullptr;
  long timeout = FWEVENT_EMIT_WAIT_MS;
  for (int i = 0; i < argc; ++i) {
    if (strcmp(argv[i], "--timeout") == 0) {
      if (!parse_int(i + 1 < argc ? argv[i + 1] : nullptr, 0, 3600000, &timeout))
        return usage("--timeout: expected milliseconds from 0 to 3600000");
      ++i;
    } else if (topic == nullptr) {
      topic = argv[i];
    } else if (json == nullptr) {
      json = argv[i];
    } else {
      return usage(("emit: unexpected argument '" + std::string(argv[i]) + "'").c_str());
    }
  }
  if (topic == nullptr) return usage("emit: missing TOPIC");
  if (json == nullptr) return usage("emit: missing JSON");
  const int rc = fwevent_emit_timeout(topic, json, int(timeout));
  if (rc == -EINVAL) {
    fprintf(stderr, "fwevent: emit: %s\n", fwevent_last_error_detail());
    return 2;
  }
  if (rc < 0) {
    const char* d = fwevent_last_error_detail();
    fprintf(stderr, "fwevent: emit %s: %s%s%s\n", topic, ipc_strerror(rc), *d ? ": " : "", d);
    return 1;
  }
  return 0;
}

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

std::string json_string(const char* s) {
  std::string out = "\"";
  for (; *s; ++s) {  // topics are printable ASCII: only " and \ need escaping
    if (*s == '"' || *s == '\\') out.push_back('\\');
    out.push_back(*s);
  }
  return out + "\"";
}

int do_watch(int argc, char** argv) {
  const char* pattern = nullptr;
  long count = -1;
  bool json = false;
  for (int i = 0; i < argc; ++i) {
    if (strcmp(argv[i], "--count") == 0) {
      if (!parse_int(i + 1 < argc ? argv[i + 1] : nullptr, 1, 1L << 40, &count))
        return usage("--count: expected a positive number of events");
      ++i;
    } else if (strcmp(argv[i], "--json") == 0) {
      json = true;
    } else if (pattern == nullptr) {
      pattern = argv[i];
    } else {
      return usage(("watch: unexpected argument '" + std::string(argv[i]) + "'").c_str());
    }
  }
  if (pattern == nullptr) return usage("watch: missing PATTERN");
  if (fwevent_pattern_valid(pattern) != 1) {
    fprintf(stderr, "fwevent: watch: %s\n", fwevent_last_error_detail());
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: the wait returns and we exit cleanly
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  fwevent_watch* w = nullptr;
  int rc = fwevent_watch_open(pattern, &w);
  if (rc < 0) {
    const char* d = fwevent_last_error_detail();
    fprintf(stderr, "fwevent: watch: %s%s%s\n", ipc_strerror(rc), *d ? ": " : "", d);
    return 1;
  }
  bool said = false;
  if (fwevent_watch_connected(w)) {
    fprintf(stderr, "fwevent: watching %s\n", pattern);
    said = true;
  } else {
    fprintf(stderr, "fwevent: waiting for the event bus (channel 'events'; is eventsd running?)\n");
  }
  long seen = 0;
  while (!g_stop && (count < 0 || seen < count)) {
    fwevent_event ev{};
    rc = fwevent_watch_next(w, &ev, 500);
    if (!said && fwevent_watch_connected(w)) {
      fprintf(stderr, "fwevent: watching %s\n", pattern);
      said = true;
    }
    if (rc == -ETIMEDOUT || rc == -EINTR) continue;
    if (rc < 0) {
      fprintf(stderr, "fwevent: watch: %s\n", ipc_strerror(rc));
      fwevent_watch_close(w);
      return 1;
    }
    if (ev.gap > 0)
      fprintf(stderr, "fwevent: events may be missing before this one (lost our place %u times)\n", ev.gap);
    if (json) {
      printf("{\"topic\":%s,\"data\":%s,\"pid\":%u}\n", json_string(ev.topic).c_str(), ev.json, ev.sender_pid);
    } else {
      printf("%s %s pid=%u\n", ev.topic, ev.json, ev.sender_pid);
    }
    fflush(stdout);
    ++seen;
  }
  fwevent_watch_close(w);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage("missing command: emit or watch");
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    fputs(kHelp, stdout);
    return 0;
  }
  if (cmd == "emit") return do_emit(argc - 2, argv + 2);
  if (cmd == "watch") return do_watch(argc - 2, argv + 2);
  return usage(("unknown command '" + cmd + "': emit or watch").c_str());
}
