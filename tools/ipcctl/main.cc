// ipcctl's command line: options, the help text (the tool's manual: keep it in step with
// what commands.cc prints) and the short usage that a usage error prints.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/rundir.h"
#include "tools/ipcctl/commands.h"

namespace {

using fwipc::ipcctl::Options;

constexpr const char* kUsage =
    "usage: ipcctl [--json] list\n"
    "       ipcctl [--json] stat NAME [--interval MS] [--count N]\n"
    "       ipcctl [--json] stats NAME\n"
    "       ipcctl [--json] tail NAME [--all] [--count N]\n"
    "       ipcctl [--json] clean\n"
    "       ipcctl [--json] quota\n"
    "       ipcctl --help\n";

constexpr const char* kHelp =
    "NAME\n"
    "    ipcctl - inspect and tidy the channels of a FreeWorld IPC runtime directory\n"
    "\n"
    "SYNOPSIS\n"
    "    ipcctl [--json] list\n"
    "    ipcctl [--json] stat NAME [--interval MS] [--count N]\n"
    "    ipcctl [--json] stats NAME\n"
    "    ipcctl [--json] tail NAME [--all] [--count N]\n"
    "    ipcctl [--json] clean\n"
    "    ipcctl [--json] quota\n"
    "    ipcctl --help\n"
    "\n"
    "DESCRIPTION\n"
    "    ipcctl asks the registry of a runtime directory which channels exist and who\n"
    "    holds them, and reads the counters of QUEUE channels straight from their\n"
    "    shared-memory rings. It only observes: it never starts a registry, never\n"
    "    joins a channel, never holds a writer back and never takes a message from a\n"
    "    reader. Ring counters, stat and tail need a QUEUE channel on shared memory\n"
    "    that you may read. The queues a channel's creator keeps in its own process\n"
    "    (a SOCKET or PIPE channel's hub, a QUEUE channel's bridge for other uids,\n"
    "    its NAME.call server) are published by its runtime in a stats page that\n"
    "    the registry hands to whoever may read the channel (refreshed at most\n"
    "    every 100 ms while they change). Options may come before or after the\n"
    "    command.\n"
    "\n"
    "    On a QUEUE channel of ring v2 (a registry started with FWIPC_RING=2: one\n"
    "    ring per writer process), the registry gives whoever may read the channel\n"
    "    its directory and every writer's ring and reader's page, read-only; ipcctl\n"
    "    counts from those, record by record, with positions of its own that no\n"
    "    writer sees. CAPACITY is then per writer, DEPTH and MESSAGES are summed\n"
    "    over the writers' rings, ABANDONED is always 0 (nothing is ever abandoned\n"
    "    there) and MESSAGES is exact only while no ring has wrapped: the rings\n"
    "    keep no message counter, so for a ring that came round the records it\n"
    "    no longer holds are estimated at the average size of those it holds,\n"
    "    shown with a \"~\" (--json: messages_exact false).\n"
    "\n"
    "COMMANDS\n"
    "    list\n"
    "        One row per channel: NAME; TYPE (QUEUE, SOCKET, PIPE); TRANSPORT, the\n"
    "        one really used (shm, socket, pipe: a QUEUE channel is created on a\n"
    "        socket when its creator could not make a shared-memory segment);\n"
    "        OWNER; MODE (octal); CAPACITY in messages; OVERFLOW, the policy when\n"
    "        a reader falls behind (block: it holds writers back; evict: one that\n"
    "        holds them back longer than its bound is dropped); DEPTH, messages\n"
    "        the slowest reader has not read yet; MESSAGES sent since creation; DROPS, sends\n"
    "        that found the ring full; ABANDONED, slots skipped (loans given back,\n"
    "        claims of writers that died); EVICTIONS, readers dropped under the\n"
    "        evict policy; QUEUED, frames waiting in the creator's queues (hub\n"
    "        relay queues, its inbox, the bridge); READERS and WRITERS, their PIDs, with\n"
    "        \"(dead)\" after a process that is gone. \"-\" marks a counter the\n"
    "        channel does not have. With no registry running there are no\n"
    "        channels, and list says so.\n"
    "        With --json: one array of objects with name, type, transport, owner,\n"
    "        uid, mode, capacity, overflow, depth, messages, drops, abandoned (these four\n"
    "        null without a ring), messages_exact (null without a ring), layout\n"
    "        (\"v4\", \"ring2\", null without a ring), evictions (null when unknown to you), members\n"
    "        (the count of all memberships), readers ([{pid, alive, lag}], lag only\n"
    "        with a ring), writers ([{pid, alive}]) and queues (as for stats, null\n"
    "        when you may not read the channel).\n"
    "\n"
    "    stat NAME [--interval MS] [--count N]\n"
    "        Samples the ring of QUEUE channel NAME every MS milliseconds and\n"
    "        prints a line per sample: TIME(s) since the start, MSG/S, MESSAGES,\n"
    "        DEPTH, DROPS/S, ABANDONED, READERS (how many), and \"(closed)\" once\n"
    "        its creator has closed it. Stops after N samples, or once the channel\n"
    "        is closed.\n"
    "        With --json: an object per line with name, t, msgs_per_s, messages,\n"
    "        depth, drops_per_s, abandoned, readers and closed.\n"
    "\n"
    "    stats NAME\n"
    "        The queue counters of channel NAME's creator, as its runtime last\n"
    "        published them: publisher (its PID), age_ms (since that publication),\n"
    "        overflow, evictions, queued_frames and queued_bytes (waiting now in\n"
    "        the hub's relay queues, the creator's inbox and the bridge's queue),\n"
    "        high_water (the longest one queue has been, against its bound),\n"
    "        held_back (yes while a full queue stops the hub reading writers) and\n"
    "        held_back_times, dropped_peers (malformed frames, failed writes),\n"
    "        peers, callers of NAME.call (against their bounds), callers_refused\n"
    "        and replies_dropped (callers that did not read). Needs read\n"
    "        permission on the channel.\n"
    "        With --json: {name, type, overflow, evictions, queues: {publisher,\n"
    "        age_ms, frames, bytes, high_water, bound, held_back, held_back_times,\n"
    "        evictions, dropped_peers, peers, peers_bound, callers, callers_bound,\n"
    "        callers_refused, replies_dropped}} (queues null when unreadable).\n"
    "\n"
    "    tail NAME [--all] [--count N]\n"
    "        Decodes the messages of QUEUE channel NAME as they pass, from the next\n"
    "        one sent on (--all: from the oldest message a reader has not read\n"
    "        yet). A line per message: its position in the ring, type, size,\n"
    "        sender, receiver, priority and the first 48 payload bytes, with \".\"\n"
    "        for bytes that are not printable ASCII. tail has no cursor of its\n"
    "        own: if it falls a whole lap behind the writers, it prints how many\n"
    "        messages passed unseen and carries on. Stops after N messages, or once\n"
    "        the channel is closed and read to its end.\n"
    "        With --json: an object per line, {pos, type, size, sender, receiver,\n"
    "        priority, payload_hex} for a message and {missed} for a lap.\n"
    "        On ring v2 every writer's ring is followed (rings of writers that come\n"
    "        later from their first message), in turns of up to 64 messages per\n"
    "        ring: messages of one sender keep their order, those of different\n"
    "        senders interleave. pos is the byte position in the sender's own ring,\n"
    "        sender the PID the registry's directory gives that ring (nothing a\n"
    "        writer writes can change it). A lap prints how many bytes of that\n"
    "        sender's messages passed unseen ({missed_bytes, sender}); a ring whose\n"
    "        writer broke the record format is reported once ({corrupt: PID}) and\n"
    "        no longer followed.\n"
    "\n"
    "    clean\n"
    "        Removes the socket files and FIFOs in the runtime directory that\n"
    "        crashed processes left behind and nothing uses, and prints how many.\n"
    "        The registry does the work when one runs; otherwise ipcctl takes the\n"
    "        registry's lock, so that none starts meanwhile, and does it itself.\n"
    "        With --json: {dir, removed}.\n"
    "\n"
    "    quota\n"
    "        What each uid holds in the registry against its limits (the policy's\n"
    "        `limit` rules; see fwipc-registryd --help): one row per uid that holds\n"
    "        anything, UID, USER (\"(unlimited)\" for root, \"(reserved)\" for the\n"
    "        owner of a reserved name, who may use the headroom), CHANNELS created,\n"
    "        BYTES of channel memory (segments, hub and bridge queues), registry\n"
    "        CONNECTIONS and MEMBERSHIPS (ids open), each as used/limit (\"-\": no\n"
    "        limit), and REFUSED, its requests refused with EDQUOT. A last row,\n"
    "        total, holds the whole registry against its global caps, of which the\n"
    "        last ones are kept for root and the owners of reserved names.\n"
    "        With --json: {dir, uids: [{uid, user, root, reserved_owner, channels,\n"
    "        bytes, connections, memberships (each {used, limit}, limit null when\n"
    "        none), refused}], total: {channels, bytes, connections, memberships,\n"
    "        refused, headroom, refused_pending, pipe_keepers}}; total is null\n"
    "        with no registry.\n"
    "\n"
    "OPTIONS\n"
    "    --json         JSON instead of text: one value for list and clean, one\n"
    "                   object per line for stat and tail\n"
    "    --interval MS  stat: milliseconds between samples (default 1000; at\n"
    "                   least 10, at most 3600000)\n"
    "    --count N      stat: samples, tail: messages, then stop (default 0: go\n"
    "                   on until interrupted)\n"
    "    --all          tail: start at the oldest unread message\n"
    "    -h, --help     print this text and exit\n"
    "\n"
    "ENVIRONMENT\n"
    "    FWIPC_RUNTIME_DIR\n"
    "        The runtime directory to look at, as for every FreeWorld IPC program.\n"
    "        Unset or empty: /run/freeworld-ipc when running as root or when it is\n"
    "        writable, else $XDG_RUNTIME_DIR/freeworld-ipc, else\n"
    "        /tmp/freeworld-ipc-UID.\n"
    "\n"
    "EXIT STATUS\n"
    "    0   success; also list and quota with no registry running (they show\n"
    "        nothing),\n"
    "        and stat or tail stopped by SIGINT or SIGTERM\n"
    "    1   NAME is not a channel, or not a QUEUE on shared memory you may\n"
    "        read; the registry did not answer; clean could not remove a file\n"
    "    2   usage error\n";

int usage_error(const std::string& why) {
  if (!why.empty()) std::fprintf(stderr, "ipcctl: %s\n", why.c_str());
  std::fputs(kUsage, stderr);
  return 2;
}

// A whole non-negative decimal number no larger than max, or false.
bool parse_count(const char* s, long max, long* out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || errno != 0 || v < 0 || v > max) return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    if (a == "--json") {
      o.json = true;
    } else if (a == "--all") {
      o.all = true;
    } else if (a == "--interval" || a == "--count") {
      // An hour bounds the interval: stat sleeps with usleep, whose 32-bit microseconds
      // end at ~71 minutes.
      const long max = a == "--interval" ? 3600000L : 2147483647L;
      long v = 0;
      if (i + 1 == argc) return usage_error(a + " wants a value");
      if (!parse_count(argv[++i], max, &v))
        return usage_error(a + " wants a number from 0 to " + std::to_string(max) + ", not " + argv[i]);
      if (a == "--interval")
        o.interval_ms = int(std::max(10L, v));
      else
        o.count = v;
    } else {
      args.push_back(a);  // channel names may start with "-": no unknown-option check
    }
  }
  if (args.empty()) return usage_error("");
  const std::string dir = fwipc::runtime_dir();
  fwipc::ipcctl::stop_on_signals();
  if (args[0] == "list" && args.size() == 1) return fwipc::ipcctl::cmd_list(dir, o);
  if (args[0] == "clean" && args.size() == 1) return fwipc::ipcctl::cmd_clean(dir, o);
  if (args[0] == "quota" && args.size() == 1) return fwipc::ipcctl::cmd_quota(dir, o);
  if (args[0] == "stat" && args.size() == 2) return fwipc::ipcctl::cmd_stat(dir, args[1], o);
  if (args[0] == "stats" && args.size() == 2) return fwipc::ipcctl::cmd_stats(dir, args[1], o);
  if (args[0] == "tail" && args.size() == 2) return fwipc::ipcctl::cmd_tail(dir, args[1], o);
  return usage_error("");
}
