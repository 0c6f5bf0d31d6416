#!/usr/bin/env bash
# Builds the Debian package from the tree's Bazel outputs (./dev deb builds them first):
#   packaging/deb.sh [OUTDIR]      -> OUTDIR/freeworld-ipc_VERSION_ARCH.deb (default: dist/)
# One package, freeworld-ipc: the runtime library and registry, headers and pkg-config
# files, the services with their client libraries and CLIs, units, tmpfiles.d and the
# default policy (a conffile). Its Depends are the Debian packages that hold the shared
# libraries its programs load (found through dpkg -S), at least at the versions built
# against. Install with: apt-get install ./dist/freeworld-ipc_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
version=$(cat packaging/VERSION)
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
stage=$(mktemp -d /tmp/fwipc-deb-XXXXXX)
trap 'rm -rf "$stage"' EXIT

packaging/install.sh --prefix /usr --libdir "/usr/lib/$multiarch" --destdir "$stage" --no-node

# As Debian ships them: without debug information (about a fifth of the size).
find "$stage" -type f -print0 | xargs -0 file -N | grep -a 'ELF.*not stripped' | cut -d: -f1 |
  xargs -r strip --strip-unneeded --remove-section=.comment --remove-section=.note

# Depends: the packages of every shared library an installed ELF file needs, but ours.
deps=$(find "$stage" -type f -print0 | xargs -0 file -N | grep -a ELF | cut -d: -f1 |
  xargs -r env LD_LIBRARY_PATH="$stage/usr/lib/$multiarch" ldd 2>/dev/null |
  awk '$2 == "=>" && $3 ~ /^\// {print $3}' | grep -v "^$stage" | sort -u |
  while read -r l; do dpkg -S "$(readlink -f "$l")" 2>/dev/null || dpkg -S "$l" 2>/dev/null || true; done |
  cut -d: -f1 | sort -u |
  while read -r p; do echo "$p (>= $(dpkg-query -W -f='${Version}' "$p" | sed 's/-[^-]*$//'))"; done |
  paste -sd, - | sed 's/,/, /g')

mkdir -p "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: freeworld-ipc
Version: $version
Architecture: $arch
Maintainer: FreeWorld IPC developers <dev@freeworld-ipc.invalid>
Installed-Size: $size
Depends: $deps
Section: admin
Priority: optional
Description: shared-memory IPC runtime and the system services built on it
 FreeWorld IPC: named channels between local processes over a shared-memory ring
 woken by futexes, Unix domain sockets or named pipes, with a registry daemon
 (fwipc-registryd), the client library libfwipc and its C and C++ headers, and
 the services on it: logd (system log), the event bus, networkd (network
 configuration) and csrss (consoles and windows), with their client libraries,
 command-line tools and systemd units.
CONTROL
echo /etc/freeworld-ipc/policy.conf >"$stage/DEBIAN/conffiles"
cat >"$stage/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  ldconfig
  if command -v systemd-tmpfiles >/dev/null 2>&1; then systemd-tmpfiles --create freeworld-ipc.conf || true; fi
  if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
fi
SCRIPT
cat >"$stage/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl stop logd.service networkd.service csrss.service fwipc-registryd.service 2>/dev/null || true
fi
SCRIPT
cat >"$stage/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
case "$1" in
  remove | purge) ldconfig ;;
esac
if [ "$1" = purge ]; then
  # What the services made at run time: the log, networkd's state, the runtime directory.
  rm -rf /var/log/freeworld /var/lib/freeworld-networkd /run/freeworld-networkd /run/freeworld-ipc
  rmdir /etc/freeworld-ipc 2>/dev/null || true
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
SCRIPT
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
mkdir -p "$out"
deb="$out/freeworld-ipc_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
