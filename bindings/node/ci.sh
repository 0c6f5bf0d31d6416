#!/usr/bin/env bash
# The Node package's CI step (./dev test runs it): build libfwipc, npm install (which builds
# the addon against node-api-headers, no header download), npm test, then exactly one line
#   tests: [node] bindings/node P passed, F failed
# counted from node's test runner. Exits non-zero on any failure.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
summary() {
  echo "tests: [node] bindings/node $1 passed, $2 failed"
}

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "bindings/node/ci.sh: '$tool' not found. Install Node.js 18 or newer and npm, on Debian:" >&2
    echo "  apt-get install -y nodejs npm" >&2
    summary 0 1
    exit 1
  fi
done
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
  echo "bindings/node/ci.sh: Node.js $(node --version) is too old (18 or newer is needed)" >&2
  summary 0 1
  exit 1
fi

cd "$repo" || exit 1
blog="$(mktemp)"
plain_lib() {
  # A sanitizer build (bazel build --config=asan|tsan rewrites bazel-bin in place, so one
  # run by someone else in the same tree can land between our build and the copy) cannot
  # load into node.
  ! grep -qaE 'lib(a|t|ub)san\.so' bazel-bin/runtime/libfwipc.so
}
for attempt in 1 2 3; do
  if ! bazel build //runtime:fwipc >"$blog" 2>&1; then
    grep -vE '^[0-9]+\.[0-9]+: src/main/tools/' "$blog" | tail -20 >&2
    echo "bindings/node/ci.sh: bazel build //runtime:fwipc failed" >&2
    rm -f "$blog"
    summary 0 1
    exit 1
  fi
  plain_lib && break
  echo "bindings/node/ci.sh: bazel-bin/runtime/libfwipc.so is a sanitizer build; building it again ($attempt)" >&2
done
# The daemons the logd and event tests start (those tests are skipped, saying so, without them).
if ! bazel build //services/logd:logd //services/events:eventsd //services/events:fwevent >"$blog" 2>&1; then
  grep -vE '^[0-9]+\.[0-9]+: src/main/tools/' "$blog" | tail -20 >&2
  echo "bindings/node/ci.sh: building logd, eventsd and fwevent failed: their tests will be skipped" >&2
fi
rm -f "$blog"

cd "$here" || exit 1
# Once more right before the copy (building the daemons took a while): a no-op when still plain.
if ! (cd "$repo" && bazel build //runtime:fwipc >/dev/null 2>&1 && plain_lib) || ! npm install --no-audit --no-fund; then
  echo "bindings/node/ci.sh: npm install failed (it builds the addon: see above)" >&2
  summary 0 1
  exit 1
fi

log="$(mktemp)"
npm test 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
passed=$(grep -aE '^(# |ℹ )pass [0-9]+$' "$log" | tail -1 | grep -oE '[0-9]+$')
failed=$(grep -aE '^(# |ℹ )fail [0-9]+$' "$log" | tail -1 | grep -oE '[0-9]+$')
rm -f "$log"
passed=${passed:-0}
failed=${failed:-0}
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
summary "$passed" "$failed"
exit "$rc"
