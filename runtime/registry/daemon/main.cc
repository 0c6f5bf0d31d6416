// fwipc-registryd: the registry daemon of one runtime directory.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/rundir.h"
#include "runtime/registry/daemon/server.h"

namespace {

constexpr const char* kHelp =
    "Usage: fwipc-registryd [--dir DIR] [--idle-exit-ms MS] [--policy FILE]\n"
    "\n"
    "The FreeWorld IPC registry: maps channel names of one runtime directory to their\n"
    "shared-memory segments, sockets and FIFOs, checks each caller's uid and gid\n"
    "(SO_PEERCRED) against a channel's owner and mode, and releases what a process held\n"
    "when its connection closes (the process died or exited).\n"
    "\n"
    "Clients start it on demand (see FWIPC_REGISTRYD and FWIPC_NO_AUTOSTART in the README);\n"
    "run it yourself to serve a system-wide directory. It stays in the foreground.\n"
    "\n"
    "Options:\n"
    "  --dir DIR          runtime directory to serve (default: $FWIPC_RUNTIME_DIR, else\n"
    "                     /run/freeworld-ipc; see the README for the non-root fallback)\n"
    "  --idle-exit-ms MS  exit after MS milliseconds with no client and no channel\n"
    "                     (default: never)\n"
    "  --policy FILE      who may create which channel names (default:\n"
    "                     $FWIPC_POLICY_FILE, else /etc/freeworld-ipc/policy.conf if it\n"
    "                     exists, else the built-in policy: logd, networkd, csrss and\n"
    "                     events belong to root). Lines: `own NAME|PREFIX* PRINCIPAL...`\n"
    "                     with PRINCIPAL user:NAME|UID or group:NAME|GID; `#` comments.\n"
    "                     `limit PRINCIPAL|default KEY=VALUE...` sets what each uid may\n"
    "                     hold: channels, bytes (K, M, G), connections, memberships, or\n"
    "                     `unlimited` (defaults: 256 channels, 1G, 256 connections,\n"
    "                     4096 memberships; root unlimited; a user rule beats group\n"
    "                     rules, the smallest of a kind applies; see the README)\n"
    "                     A policy named but unreadable or malformed stops the registry\n"
    "                     (it never runs without the policy it was given)\n"
    "  --help             this text\n"
    "\n"
    "Environment: FWIPC_RING=2 puts new QUEUE channels on ring v2 (one ring per writer,\n"
    "mapped directly by every uid the channel's mode admits; see transports/shm/RING-V2.md).\n"
    "Without it they use the shared ring (layout 4), and other uids go through the\n"
    "creator's bridge socket. A restarted registry adopts ring v2 channels from their\n"
    "members' descriptors (/proc/PID/fd: it must run as root or as their uid).\n"
    "\n"
    "Files in DIR: registry.sock (requests), registry.lock (held while running: one\n"
    "registry per directory), registry.state (channels to adopt after a restart), and the\n"
    "channels' NAME.sock sockets and NAME.fifo* FIFOs.\n"
    "\n"
    "Signals: SIGTERM and SIGINT stop it cleanly (its socket is removed; channels already\n"
    "mapped keep working, and a restarted registry adopts them). SIGHUP rereads the\n"
    "policy; a policy that does not load is reported on stderr and the old one stays.\n"
    "\n"
    "DIR must be a real directory (not a symbolic link) owned by root, or owned by the\n"
    "registry's own uid and not writable by group or others; otherwise it refuses to\n"
    "serve it. A missing DIR is created 0700 (/run/freeworld-ipc by root: 0755).\n"
    "\n"
    "Exit status: 0 on a clean stop or idle exit, 1 if another registry serves DIR or on\n"
    "an error (a DIR it refuses included), 2 on a usage error.\n";

}  // namespace

int main(int argc, char** argv) {
  fwipc::registry::ServerOptions o;
  o.runtime_dir = fwipc::runtime_dir();
  if (const char* e = std::getenv("FWIPC_RING"); e != nullptr && std::strcmp(e, "2") == 0) o.ring_v2 = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (std::strcmp(argv[i], "--policy") == 0 && i + 1 < argc) {
      o.policy_path = argv[++i];
    } else if (std::strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
      o.runtime_dir = argv[++i];
    } else if (std::strcmp(argv[i], "--idle-exit-ms") == 0 && i + 1 < argc) {
      char* end = nullptr;
      const long ms = std::strtol(argv[++i], &end, 10);
      if (end == argv[i] || *end != '\0' || ms < 0 || ms > 86400000L * 365) {
        std::fprintf(stderr, "fwipc-registryd: --idle-exit-ms: not a number of milliseconds: %s\n", argv[i]);
        return 2;
      }
      o.idle_exit_ms = static_cast<int>(ms > 2147483647L ? 2147483647L : ms);
    } else {
      std::fprintf(stderr, "fwipc-registryd: unknown argument %s\n%s", argv[i], kHelp);
      return 2;
    }
  }
  // Never serve a directory another uid controls: it could plant files or sockets under the
  // names clients trust us to have made. run_server checks again; this says why.
  int rc = fwipc::ensure_dir(o.runtime_dir);
  if (std::string why; rc == 0 && (rc = fwipc::check_runtime_dir(o.runtime_dir, &why)) < 0) {
    std::fprintf(stderr, "fwipc-registryd: refusing to serve %s\n", why.c_str());
    return 1;
  }
  fwipc::registry::Policy policy;
  std::string why;
  if (rc == 0 && fwipc::registry::load_policy(o.policy_path, &policy, &why) < 0) {
    std::fprintf(stderr, "fwipc-registryd: policy: %s\n", why.c_str());
    return 1;
  }
  if (rc == 0) rc = fwipc::registry::run_server(o);
  if (rc == 1) {
    std::fprintf(stderr, "fwipc-registryd: another registry serves %s\n", o.runtime_dir.c_str());
    return 1;
  }
  if (rc < 0) {
    std::fprintf(stderr, "fwipc-registryd: %s: %s\n", o.runtime_dir.c_str(), std::strerror(-rc));
    return 1;
  }
  return 0;
}
