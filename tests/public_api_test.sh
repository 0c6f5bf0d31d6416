#!/usr/bin/env bash
# The public API alone: a C and a C++ program built with the system compilers against
# runtime/include and libfwipc.so, exactly as the README shows, then run. The registry is
# auto-started from beside the library (no FWIPC_REGISTRYD), as for any program linked
# against bazel-bin/runtime/libfwipc.so.
set -euo pipefail
root="${TEST_SRCDIR:-$PWD/..}/freeworld_ipc"
lib="$(dirname "$(readlink -f "$root/runtime/libfwipc.so")")"
out="$(mktemp -d /tmp/fwipc-api-XXXXXX)"
trap 'rm -rf "$out"' EXIT
unset FWIPC_REGISTRYD
export FWIPC_RUNTIME_DIR="$out/run" FWIPC_REGISTRY_IDLE_MS=500
cd "$root"
# Under --config=asan/tsan the library needs its sanitizer's runtime first: build the
# programs the same way (a plain build adds nothing).
san=()
case "$(readelf -d "$lib/libfwipc.so" | grep -o 'lib[at]san' | head -1)" in
  libasan) san=(-fsanitize=address,undefined) ;;
  libtsan) san=(-fsanitize=thread) ;;
esac
cc -std=c99 -Wall -Werror "${san[@]}" tests/public_api/hello.c -Iruntime/include -L"$lib" -lfwipc -o "$out/hello_c"
c++ -std=c++20 -Wall -Werror "${san[@]}" tests/public_api/hello.cc -Iruntime/include -L"$lib" -lfwipc -o "$out/hello_cc"
LD_LIBRARY_PATH="$lib" "$out/hello_c"
LD_LIBRARY_PATH="$lib" "$out/hello_cc"
# The registry came from beside the library, and was really started.
test -S "$FWIPC_RUNTIME_DIR/registry.sock"
echo "public API ok"
