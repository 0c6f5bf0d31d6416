// eventsd: owns the runtime channel `events` (a reserved name) so that every process can
// emit and subscribe. It never reads the channel (a pure writer), so it never holds it
// back; a subscriber that stops reading is evicted by the channel (IPC_OVERFLOW_EVICT).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>

#include "fwsvc.h"
#include "ipc.h"
#include "services/events/fwevent.h"

namespace {

constexpr uint32_t kMethodStatus = 1;  // reply: a JSON object describing the channel

const char kHelp[] =
    "NAME\n"
    "    eventsd - the FreeWorld event bus daemon\n"
    "\n"
    "SYNOPSIS\n"
    "    eventsd [--slots N] [--evict-ms MS] [--mode OCTAL]\n"
    "\n"
    "DESCRIPTION\n"
    "    Creates the runtime channel 'events' in the runtime directory of\n"
    "    $FWIPC_RUNTIME_DIR (see fwipc-registryd --help) and keeps it until SIGTERM or\n"
    "    SIGINT. Programs emit and receive events on it with libfwevent_ipc\n"
    "    (services/events/fwevent.h), the fwevent command or the Node package;\n"
    "    services/events/PROTOCOL.md is the wire format. The registry's built-in\n"
    "    policy reserves the name 'events' for root.\n"
    "\n"
    "    eventsd is a pure writer of the channel: it never reads it and never holds it\n"
    "    back. The channel evicts a subscriber that holds a full channel back for\n"
    "    longer than --evict-ms without reading (IPC_OVERFLOW_EVICT): that subscriber\n"
    "    gets -ENOBUFS, rejoins and reports a gap, and emitters go on. If the runtime\n"
    "    refuses EVICT, eventsd falls back to IPC_OVERFLOW_BLOCK and says so on stderr;\n"
    "    emitters then wait a bounded time for room and give up with -EAGAIN.\n"
    "\n"
    "    It answers method 1 (status) over the channel's calls with a JSON object:\n"
    "    {\"overflow\":\"evict\"|\"block\",\"evict_after_ms\":N,\"capacity_bytes\":N}.\n"
    "    It tells systemd READY=1 (Type=notify) once the channel exists.\n"
    "\n"
    "OPTIONS\n"
    "    --slots N      events the channel holds (16-65536; default 1024). Each slot is\n"
    "                   576 bytes of shared memory.\n"
    "    --evict-ms MS  how long a subscriber may hold a full channel back before it is\n"
    "                   evicted (1-60000; default 250).\n"
    "    --mode OCTAL   the channel's permission bits (default 0666: every uid may emit\n"
    "                   and subscribe; 0664: only the owner and group emit, for example).\n"
    "    -h, --help     this text.\n"
    "\n"
    "EXIT STATUS\n"
    "    0 after SIGTERM or SIGINT; 1 when the channel cannot be created (the error\n"
    "    says why: -EEXIST when another eventsd runs, -EACCES when the policy gives the\n"
    "    name to someone else); 2 for a bad command line.\n";

bool parse_u32(const char* s, uint32_t lo, uint32_t hi, int base, uint32_t* out) {
  if (s == nullptr || *s == '\0') return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long v = strtoul(s, &end, base);
  if (errno != 0 || *end != '\0' || s[0] == '-' || v < lo || v > hi) return false;
  *out = uint32_t(v);
  return true;
}

struct State {
  uint32_t overflow;
  uint32_t evict_ms;
  uint32_t capacity;
};

void on_status(void* ctx, const fwsvc_request* req) {
  const auto* st = static_cast<const State*>(ctx);
  const std::string body = std::string("{\"overflow\":\"") + (st->overflow == IPC_OVERFLOW_EVICT ? "evict" : "block") +
                           "\",\"evict_after_ms\":" + std::to_string(st->evict_ms) +
                           ",\"capacity_bytes\":" + std::to_string(st->capacity) + "}";
  fwsvc_reply(req, 0, body.data(), body.size());
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t slots = 1024, evict_ms = 250, mode = 0666;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "-h" || a == "--help") {
      fputs(kHelp, stdout);
      return 0;
    } else if (a == "--slots") {
      if (!parse_u32(v, 16, 65536, 10, &slots)) {
        fprintf(stderr, "eventsd: --slots: expected a number of slots from 16 to 65536, got '%s'\n", v ? v : "");
        return 2;
      }
      ++i;
    } else if (a == "--evict-ms") {
      if (!parse_u32(v, 1, 60000, 10, &evict_ms)) {
        fprintf(stderr, "eventsd: --evict-ms: expected milliseconds from 1 to 60000, got '%s'\n", v ? v : "");
        return 2;
      }
      ++i;
    } else if (a == "--mode") {
      if (!parse_u32(v, 0, 0777, 8, &mode)) {
        fprintf(stderr, "eventsd: --mode: expected octal permission bits (0 to 0777), got '%s'\n", v ? v : "");
        return 2;
      }
      ++i;
    } else {
      fprintf(stderr, "eventsd: unknown argument '%s' (see eventsd --help)\n", argv[i]);
      return 2;
    }
  }

  fwsvc_loop* loop = nullptr;
  fwsvc_service* svc = nullptr;
  int rc = fwsvc_loop_new(&loop);  // before any thread: SIGTERM/SIGINT/SIGHUP blocked
  fwsvc_options o;
  fwsvc_options_init(&o);
  o.type = IPC_TYPE_QUEUE;
  o.buffer_size = slots * IPC_SLOT_BYTES;
  o.perm_mode = mode;
  o.creator_mode = IPC_MODE_WRITE;  // a pure writer: never holds the channel back
  o.overflow = IPC_OVERFLOW_EVICT;
  o.evict_after_ms = evict_ms;
  if (rc == 0) {
    rc = fwsvc_service_new(loop, FWEVENT_CHANNEL, &o, &svc);
    if (rc == -EOPNOTSUPP) {
      fprintf(stderr,
              "eventsd: this runtime does not support IPC_OVERFLOW_EVICT; using IPC_OVERFLOW_BLOCK (a stuck "
              "subscriber holds emitters back until they give up)\n");
      o.overflow = IPC_OVERFLOW_BLOCK;
      o.evict_after_ms = 0;
      rc = fwsvc_service_new(loop, FWEVENT_CHANNEL, &o, &svc);
    }
    if (rc < 0) fprintf(stderr, "eventsd: cannot create the channel 'events': %s\n", ipc_strerror(rc));
  } else {
    fprintf(stderr, "eventsd: %s\n", ipc_strerror(rc));
  }
  State st{o.overflow, o.evict_after_ms, 0};
  if (rc == 0) {
    IPC_CHANNEL_INFO info{};
    if (ipc_channel_info(uint32_t(fwsvc_service_channel(svc)), &info) == 0) {
      st.overflow = info.overflow;
      st.capacity = info.capacity;
    }
    rc = fwsvc_service_add_method(svc, kMethodStatus, on_status, &st);
  }
  if (rc == 0) {
    fwsvc_notify("READY=1");  // ours alone: an auto-started registry never sees NOTIFY_SOCKET
    rc = fwsvc_loop_run(loop);
    if (rc != 0) fprintf(stderr, "eventsd: %s\n", ipc_strerror(rc));
  }
  fwsvc_service_free(svc);
  fwsvc_loop_free(loop);
  return rc == 0 ? 0 : 1;
}
