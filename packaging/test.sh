#!/usr/bin/env bash
# The installation as a user meets it (./dev test runs this after the Bazel suites):
#  1. ./dev install into a temporary --destdir; a C and a C++ program built with nothing but
#     `pkg-config --cflags --libs fwipc` (and logd_ipc for a logd client) against the
#     installed files, then run: the registry auto-starts from the installed libexec/, and
#     the logd client's record reaches an installed logd.
#  2. As root: the .deb (./dev deb) installed with apt-get, `systemd-analyze verify` on every
#     installed unit, the installed ipcctl and a logd client against the installed logd
#     started with its unit's command line, then apt-get purge and nothing of it left.
# Prints "tests: [package] packaging/test.sh P passed, F failed".
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0 failed=0
check() { # check NAME command...: runs it, counts it, shows its output on failure
  local name="$1" out
  shift
  if out=$("$@" 2>&1); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "packaging: FAILED: $name" >&2
    tail -20 <<<"$out" >&2
  fi
}
work=$(mktemp -d /tmp/fwipc-pkg-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
unset FWIPC_REGISTRYD FWIPC_POLICY_FILE

# wait_for FILE PATTERN: until FILE has a line with PATTERN (at most 20 s).
wait_for() {
  for _ in $(seq 200); do
    grep -qF -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# ---- 1. ./dev install --destdir -------------------------------------------------------
D="$work/dest" P=/usr/local
check "install into a destdir" packaging/install.sh --destdir "$D" --prefix "$P"
export PKG_CONFIG_PATH="$D$P/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$D"
check "pkg-config knows fwipc" pkg-config --exists fwipc logd_ipc networkd_ipc csrss_ipc fwevent_ipc
# Nothing of the tree: the flags name only the destdir.
check "pkg-config points into the destdir only" bash -c '! pkg-config --cflags --libs fwipc logd_ipc | grep -q "'"$PWD"'"'
check "build a C program with pkg-config" bash -c "cc -std=c99 -Wall -Werror tests/public_api/hello.c \$(pkg-config --cflags --libs fwipc) -o $work/hello_c"
check "build a C++ program with pkg-config" bash -c "c++ -std=c++20 -Wall -Werror tests/public_api/hello.cc \$(pkg-config --cflags --libs fwipc) -o $work/hello_cc"
check "build a logd client with pkg-config" bash -c "cc -std=c99 -Wall -Werror packaging/testdata/logd_hello.c \$(pkg-config --cflags --libs logd_ipc) -o $work/logd_hello"
run="$work/run"
mkdir -m 0700 "$run"
export FWIPC_RUNTIME_DIR="$run" FWIPC_REGISTRY_IDLE_MS=2000 LD_LIBRARY_PATH="$D$P/lib"
check "run the C program" "$work/hello_c"
check "run the C++ program" "$work/hello_cc"
# (Its argv[0] is the unnormalised path beside the library: compare the executables.)
check "the registry came from the installed libexec" bash -c "for p in \$(pgrep -x fwipc-registryd); do [ \"\$(readlink -f /proc/\$p/exe)\" = \"\$(readlink -f $D$P/libexec/fwipc-registryd)\" ] && exit 0; done; exit 1"
check "man pages rendered" test -s "$D$P/share/man/man8/logd.8.gz" -a -s "$D$P/share/man/man1/ipcctl.1.gz"
if [ "$(id -u)" -eq 0 ]; then
  # logd owns a reserved name: root only.
  "$D$P/bin/logd" --log-dir "$work/log" >"$work/logd.out" 2>&1 &
  pids+=($!)
  check "installed logd serves" bash -c "for i in \$(seq 100); do [ -S $run/logd.sock ] && exit 0; sleep 0.1; done; exit 1"
  check "logd client against the installed logd" "$work/logd_hello" "installed-destdir-record"
  check "the record is in the log" wait_for "$work/log/logd.log" installed-destdir-record
  kill "${pids[-1]}" 2>/dev/null
  wait "${pids[-1]}" 2>/dev/null
fi
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR LD_LIBRARY_PATH FWIPC_RUNTIME_DIR

# ---- 2. the .deb, as root ---------------------------------------------------------------
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  if dpkg -s freeworld-ipc >/dev/null 2>&1; then apt-get purge -y -qq freeworld-ipc >/dev/null 2>&1; fi
  deb=$(packaging/deb.sh "$work/dist" 2>"$work/deb.err")
  check "build the .deb" test -s "$deb"
  # (An absolute path: apt-get takes a local file by its slash.)
  check "apt-get install the .deb" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$(readlink -f "$deb")"
  dpkg -L freeworld-ipc >"$work/files" 2>/dev/null
  for u in fwipc-registryd logd networkd csrss; do
    check "systemd-analyze verify $u.service" systemd-analyze verify "/lib/systemd/system/$u.service"
  done
  # The units' own command lines (FWIPC_RUNTIME_DIR and the paths as systemd would use them).
  unit_cmd() { sed -n 's/^ExecStart=//p' "/lib/systemd/system/$1.service"; }
  mkdir -p /run/freeworld-ipc
  # shellcheck disable=SC2046
  $(unit_cmd fwipc-registryd) >"$work/registry.out" 2>&1 &
  pids+=($!)
  check "installed registry serves /run/freeworld-ipc" bash -c 'for i in $(seq 100); do [ -S /run/freeworld-ipc/registry.sock ] && exit 0; sleep 0.1; done; exit 1'
  # shellcheck disable=SC2046
  FWIPC_RUNTIME_DIR=/run/freeworld-ipc $(unit_cmd logd) >"$work/logd.out" 2>&1 &
  pids+=($!)
  check "installed logd serves" bash -c 'for i in $(seq 100); do [ -S /run/freeworld-ipc/logd.sock ] && exit 0; sleep 0.1; done; exit 1'
  check "installed ipcctl list shows logd" bash -c 'FWIPC_RUNTIME_DIR=/run/freeworld-ipc /usr/bin/ipcctl list | grep -qw logd'
  check "build a logd client against the installed package" bash -c "cc -std=c99 packaging/testdata/logd_hello.c \$(pkg-config --cflags --libs logd_ipc) -o $work/logd_deb"
  check "logd client against the installed logd" env FWIPC_RUNTIME_DIR=/run/freeworld-ipc "$work/logd_deb" installed-deb-record
  check "the record is in /var/log/freeworld/logd.log" wait_for /var/log/freeworld/logd.log installed-deb-record
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  pids=()
  check "apt-get purge" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq freeworld-ipc
  # Files and links; directories (and /lib, a link to one on a merged-/usr system) are shared.
  left=$(while read -r f; do
    [ -d "$f" ] && continue
    if [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi
  done <"$work/files")
  check "no file of the package is left" test -z "$left"
  check "no state of its services is left" bash -c '! [ -e /var/log/freeworld ] && ! [ -e /run/freeworld-ipc ] && ! [ -e /etc/freeworld-ipc ]'
fi
echo "tests: [package] packaging/test.sh $passed passed, $failed failed"
[ "$failed" -eq 0 ]
