#!/usr/bin/env bash
# Installs FreeWorld IPC from the tree's Bazel outputs (./dev install runs it after building).
#   packaging/install.sh [--prefix PREFIX] [--destdir DIR] [--libdir DIR] [--sysconfdir DIR]
#                        [--unitdir DIR] [--no-node]
# Layout under DESTDIR/PREFIX (default /usr/local):
#   lib/libfwipc.so.1.0.0 (+ libfwipc.so.1, libfwipc.so), the services' client libraries
#   include/ipc.h, include/fwipc/*.hpp, include/{logd_ipc,networkd_ipc,csrss_ipc,fwevent}.h
#   lib/pkgconfig/{fwipc,logd_ipc,networkd_ipc,csrss_ipc,fwevent_ipc}.pc
#   bin/ (ipcctl and the services' daemons and CLIs), libexec/fwipc-registryd
#   share/man/man1, man8 (rendered from each program's --help)
#   lib/node_modules/@freeworld/ipc (where node is present)
# and, outside PREFIX (under DESTDIR): the systemd units in UNITDIR (default
# /etc/systemd/system, or /lib/systemd/system for PREFIX=/usr), tmpfiles.d, and
# SYSCONFDIR/freeworld-ipc/policy.conf (default /etc; an existing one is kept).
# Every program finds the registry it auto-starts at PREFIX/libexec/fwipc-registryd
# (beside itself: ../libexec), so nothing needs FWIPC_REGISTRYD.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr/local destdir="" libdir="" sysconfdir=/etc unitdir="" node=1
while (($#)); do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --destdir) destdir="$2"; shift 2 ;;
    --libdir) libdir="$2"; shift 2 ;;
    --sysconfdir) sysconfdir="$2"; shift 2 ;;
    --unitdir) unitdir="$2"; shift 2 ;;
    --no-node) node=0; shift ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) echo "install: --prefix must be an absolute path, got '$prefix'" >&2; exit 2 ;; esac
[ -n "$libdir" ] || libdir="$prefix/lib"
if [ -z "$unitdir" ]; then
  if [ "$prefix" = /usr ]; then unitdir=/lib/systemd/system; else unitdir=/etc/systemd/system; fi
fi
version=$(cat packaging/VERSION)
major=${version%%.*}
root="$destdir"
B=bazel-bin

# What the tree builds, where it lands; a missing one is an error, not a silent gap.
daemons=(services/logd/logd services/networkd/networkd services/csrss/csrss)
clis=(tools/ipcctl services/logd/logctl services/events/fwevent services/networkd/netctl services/csrss/csrssctl)
optional_daemons=(services/events/eventsd)
clientlibs=(services/logd/liblogd_ipc.so services/networkd/libnetworkd_ipc.so services/csrss/libcsrss_ipc.so
  services/events/libfwevent_ipc.so)
headers=(services/logd/logd_ipc.h services/networkd/networkd_ipc.h services/csrss/csrss_ipc.h services/events/fwevent.h)
for f in runtime/libfwipc.so runtime/registry/daemon/fwipc-registryd "${daemons[@]}" "${clis[@]}" "${clientlibs[@]}"; do
  [ -e "$B/$f" ] || { echo "install: $B/$f is missing: build first (./dev install builds it)" >&2; exit 1; }
done

inst() { install -D -m "$1" "$2" "$3"; }
bin="$root$prefix/bin" libexec="$root$prefix/libexec" lib="$root$libdir" inc="$root$prefix/include"
man="$root$prefix/share/man" pc="$root$libdir/pkgconfig"

# libfwipc: soname libfwipc.so.MAJOR (the tree's build says libfwipc.so, which its tests
# load from bazel-bin), the real file versioned, the dev symlink for -lfwipc.
inst 0755 "$B/runtime/libfwipc.so" "$lib/libfwipc.so.$version"
patchelf --set-soname "libfwipc.so.$major" "$lib/libfwipc.so.$version"
ln -sf "libfwipc.so.$version" "$lib/libfwipc.so.$major"
ln -sf "libfwipc.so.$major" "$lib/libfwipc.so"
# A client library that links libfwipc dynamically now needs it by its soname.
fix_needed() {
  if patchelf --print-needed "$1" | grep -qx libfwipc.so; then
    patchelf --replace-needed libfwipc.so "libfwipc.so.$major" "$1"
  fi
  # No rpath into the build tree survives installation.
  patchelf --remove-rpath "$1"
}
for l in "${clientlibs[@]}"; do
  name=$(basename "$l")
  inst 0755 "$B/$l" "$lib/$name"
  fix_needed "$lib/$name"
done

inst 0755 "$B/runtime/registry/daemon/fwipc-registryd" "$libexec/fwipc-registryd"
for p in "${daemons[@]}" "${clis[@]}"; do
  inst 0755 "$B/$p" "$bin/$(basename "$p")"
  fix_needed "$bin/$(basename "$p")"
done
for p in "${optional_daemons[@]}"; do
  [ -e "$B/$p" ] || continue
  inst 0755 "$B/$p" "$bin/$(basename "$p")"
  fix_needed "$bin/$(basename "$p")"
done

inst 0644 runtime/include/ipc.h "$inc/ipc.h"
for h in runtime/include/fwipc/*.hpp; do inst 0644 "$h" "$inc/fwipc/$(basename "$h")"; done
for h in "${headers[@]}"; do inst 0644 "$h" "$inc/$(basename "$h")"; done

for t in packaging/pkgconfig/*.pc.in; do
  mkdir -p "$pc"
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@LIBDIR@|$libdir|g" -e "s|@VERSION@|$version|g" "$t" \
    >"$pc/$(basename "${t%.in}")"
done

describe() {
  case "$1" in
    fwipc-registryd) echo "the FreeWorld IPC registry of channel names" ;;
    ipcctl) echo "inspect and clean FreeWorld IPC channels" ;;
    logd) echo "the FreeWorld system log daemon" ;;
    logctl) echo "query and follow the FreeWorld system log" ;;
    fwevent) echo "emit and watch FreeWorld events" ;;
    eventsd) echo "the FreeWorld event bus daemon" ;;
    networkd) echo "the FreeWorld network configuration daemon" ;;
    netctl) echo "query and change FreeWorld network configuration" ;;
    csrss) echo "the FreeWorld console and window server" ;;
    csrssctl) echo "control FreeWorld consoles and windows" ;;
    *) echo "$1" ;;
  esac
}
# Man pages from --help: daemons in section 8, commands in section 1.
render_man() {
  local exe="$1" section="$2" name
  name=$(basename "$exe")
  mkdir -p "$man/man$section"
  help2man --no-info --no-discard-stderr --section="$section" --version-string="$version" \
    --name="$(describe "$name")" "$exe" 2>/dev/null | gzip -9n >"$man/man$section/$name.$section.gz"
}
render_man "$B/runtime/registry/daemon/fwipc-registryd" 8
for p in "${daemons[@]}" "${optional_daemons[@]}"; do [ -e "$B/$p" ] && render_man "$B/$p" 8; done
for p in "${clis[@]}"; do render_man "$B/$p" 1; done

# systemd units, tmpfiles.d, the default policy (an administrator's edited one is kept).
for u in packaging/systemd/*.service; do
  mkdir -p "$root$unitdir"
  sed -e "s|@BINDIR@|$prefix/bin|g" -e "s|@LIBEXECDIR@|$prefix/libexec|g" "$u" >"$root$unitdir/$(basename "$u")"
done
tmpfiles="$root$([ "$prefix" = /usr ] && echo /usr/lib || echo /etc)/tmpfiles.d"
inst 0644 packaging/tmpfiles.d/freeworld-ipc.conf "$tmpfiles/freeworld-ipc.conf"
if [ ! -e "$root$sysconfdir/freeworld-ipc/policy.conf" ]; then
  inst 0644 packaging/policy.conf "$root$sysconfdir/freeworld-ipc/policy.conf"
fi

# The Node package: its files and built addon, where node is present and it was built.
if ((node)) && command -v node >/dev/null && [ -f bindings/node/package.json ]; then
  nm="$root$prefix/lib/node_modules/@freeworld/ipc"
  addon=$(find bindings/node/build -name '*.node' -path '*Release*' 2>/dev/null | head -1 || true)
  if [ -n "$addon" ]; then
    mkdir -p "$nm"
    (cd bindings/node && find . -path ./node_modules -prune -o -path ./build -prune -o -path ./test -prune -o \
      -type f \( -name '*.js' -o -name '*.d.ts' -o -name package.json -o -name README.md \) -print) |
      while read -r f; do inst 0644 "bindings/node/$f" "$nm/$f"; done
    dest="$nm/${addon#bindings/node/}"
    inst 0755 "$addon" "$dest"
    fix_needed "$dest"
    # It finds libfwipc in PREFIX/lib relative to itself, in DESTDIR or installed.
    up=$(realpath -m --relative-to="$(dirname "$dest")" "$lib")
    patchelf --set-rpath "\$ORIGIN/$up" "$dest"
  else
    echo "install: the Node package is not built (npm install in bindings/node): skipped" >&2
  fi
fi
echo "installed FreeWorld IPC $version into ${destdir:+$destdir}$prefix" >&2
