#!/usr/bin/env bash
# The client library from outside Bazel: hello_logd.c built with the system compiler
# exactly as the README says (-Iservices/logd -Iruntime/include -llogd_ipc -lfwipc, one
# runtime per process: liblogd_ipc.so uses libfwipc.so), run against a real logd.
set -euo pipefail
root="${TEST_SRCDIR:-$PWD/..}/freeworld_ipc"
lib="$(dirname "$(readlink -f "$root/services/logd/liblogd_ipc.so")")"
fwlib="$(dirname "$(readlink -f "$root/runtime/libfwipc.so")")"
out="$(mktemp -d /tmp/fwipc-logd-XXXXXX)"
logd_pid=
cleanup() {
  [ -n "$logd_pid" ] && kill -9 "$logd_pid" 2>/dev/null || true
  rm -rf "$out"
}
trap cleanup EXIT
export FWIPC_RUNTIME_DIR="$out/run" FWIPC_REGISTRY_IDLE_MS=500
export FWIPC_REGISTRYD="$root/runtime/registry/daemon/fwipc-registryd"
mkdir -m 0755 "$out/run"
cd "$root"
san=()
case "$(readelf -d "$fwlib/libfwipc.so" | grep -o 'lib[at]san' | head -1)" in
  libasan) san=(-fsanitize=address,undefined) ;;
  libtsan) san=(-fsanitize=thread) ;;
esac
cc -std=c99 -Wall -Werror "${san[@]}" services/logd/tests/hello_logd.c -Iservices/logd -Iruntime/include \
  -L"$lib" -L"$fwlib" -llogd_ipc -lfwipc -o "$out/hello_logd"
# One runtime per process: the library needs libfwipc.so and carries no copy of it.
readelf -d "$lib/liblogd_ipc.so" | grep -q 'NEEDED.*libfwipc.so'
! nm -D --defined-only "$lib/liblogd_ipc.so" | grep -q ' ipc_'
"$root/services/logd/logd" --log-dir "$out/log" --no-events &
logd_pid=$!
for _ in $(seq 1 300); do [ -S "$FWIPC_RUNTIME_DIR/logd.call" ] && break; sleep 0.05; done
LD_LIBRARY_PATH="$lib:$fwlib" "$out/hello_logd" 100
kill -TERM "$logd_pid"
wait "$logd_pid"
logd_pid=
test "$(grep -c '"tag":"myapp"' "$out/log/logd.log")" = 101
grep -q '"msg":"record 99 of 100","pid":[0-9]*,"uid":[0-9]*,"comm":"hello_logd"' "$out/log/logd.log"
echo "logd public API ok"
