#!/usr/bin/env bash
# The README's build line for a C program against fwevent.h and libfwevent_ipc.so alone
# (C99, linked dynamically with libfwipc.so), run against a real eventsd.
set -euo pipefail
root="$TEST_SRCDIR/freeworld_ipc"
work=$(mktemp -d /tmp/fwipc-XXXXXX)
export FWIPC_RUNTIME_DIR="$work/run"
export FWIPC_REGISTRYD="$root/runtime/registry/daemon/fwipc-registryd"
export FWIPC_REGISTRY_IDLE_MS=1000
evd=
cleanup() {
  [ -n "$evd" ] && kill "$evd" 2>/dev/null && wait "$evd" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/lib" && chmod 700 "$work"
cp "$root/services/events/libfwevent_ipc.so" "$root/runtime/libfwipc.so" "$work/lib/"
# Under --config=asan/tsan the libraries need their sanitizer's runtime first: build the
# program the same way (a plain build adds nothing).
san=()
case "$(readelf -d "$work/lib/libfwipc.so" | grep -o 'lib[at]san' | head -1)" in
  libasan) san=(-fsanitize=address,undefined) ;;
  libtsan) san=(-fsanitize=thread) ;;
esac
cc -std=c99 -Wall -Wextra -Werror "${san[@]}" -I"$root/services/events" -I"$root/runtime/include" \
  "$root/services/events/examples/hello_events.c" -L"$work/lib" -lfwevent_ipc -lfwipc -lpthread \
  -Wl,-rpath,"$work/lib" -o "$work/hello_events"
# libfwipc.so finds the registry beside itself in the tree; here FWIPC_REGISTRYD names it.
"$root/services/events/eventsd" &
evd=$!
# Ready once the channel exists: fwevent emit succeeds (bounded).
for _ in $(seq 1 200); do
  "$root/services/events/fwevent" emit demo.ping '{}' 2>/dev/null && break
  sleep 0.05
done
out=$("$work/hello_events")
pid_line="demo.hello {\"from\":\"C\"} pid="
case "$out" in
  "$pid_line"[0-9]*) echo "ok: $out" ;;
  *) echo "unexpected output: $out" >&2; exit 1 ;;
esac
