#!/usr/bin/env node
// Builds build/fwipc.node (the addon) and build/test-peer (the C program the tests talk
// to) with the system C/C++ compiler.
//
// Why not node-gyp: node-gyp needs Node's full header tarball (common.gypi, config.gypi),
// which it downloads, and this package must build offline. A Node-API addon needs only
// node-api-headers and node-addon-api (both from npm), so one compiler call does it and
// the result loads in every Node version with Node-API 8.
//
// libfwipc: from <repo>/bazel-bin/runtime (`bazel build //runtime:fwipc`) it is copied with
// its registry daemon into build/lib (the library starts the fwipc-registryd it finds
// beside itself) and the rpath is $ORIGIN/lib: nothing needs LD_LIBRARY_PATH, and a later
// `bazel build --config=asan`, which rewrites bazel-bin in place, cannot swap an
// instrumented library under the addon. With $FWIPC_LIB_DIR (an installed libfwipc.so)
// the addon links that directory instead, rpath included.
'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const pkg = path.resolve(__dirname, '..');
const repo = path.resolve(pkg, '..', '..');
const out = path.join(pkg, 'build');

function fail(msg) {
  process.stderr.write(`@freeworld/ipc build: ${msg}\n`);
  process.exit(1);
}

function copy(from, to) {
  fs.rmSync(to, { force: true }); // bazel's outputs are read-only
  fs.copyFileSync(from, to);
  fs.chmodSync(to, 0o755);
}

// {dir to link against, rpath}
function libDir() {
  if (process.env.FWIPC_LIB_DIR) {
    const dir = fs.realpathSync(process.env.FWIPC_LIB_DIR);
    if (!fs.existsSync(path.join(dir, 'libfwipc.so'))) fail(`FWIPC_LIB_DIR=${dir} holds no libfwipc.so`);
    return { dir, rpath: dir };
  }
  const src = path.join(repo, 'bazel-bin', 'runtime');
  const lib = path.join(src, 'libfwipc.so');
  const registryd = path.join(src, 'registry', 'daemon', 'fwipc-registryd');
  if (!fs.existsSync(lib) || !fs.existsSync(registryd)) {
    fail(
      `${lib} or its registry daemon not found. Build them first: (cd ${repo} && bazel build //runtime:fwipc), ` +
        'or set FWIPC_LIB_DIR to the directory of an installed libfwipc.so.',
    );
  }
  // bazel-bin is rewritten in place by `bazel build --config=asan|tsan`: an instrumented
  // library cannot load into node (its sanitizer runtime would have to come first).
  const bytes = fs.readFileSync(lib);
  for (const san of ['libasan.so', 'libtsan.so', 'libubsan.so']) {
    if (bytes.includes(san))
      fail(`${lib} is a sanitizer build (it needs ${san}): rebuild it plain with (cd ${repo} && bazel build //runtime:fwipc)`);
  }
  const dir = path.join(out, 'lib');
  fs.mkdirSync(dir, { recursive: true });
  copy(lib, path.join(dir, 'libfwipc.so'));
  copy(registryd, path.join(dir, 'fwipc-registryd'));
  return { dir, rpath: '$ORIGIN/lib' };
}

function headersOf(name) {
  try {
    return path.dirname(require.resolve(`${name}/package.json`, { paths: [pkg] }));
  } catch {
    return fail(`${name} is missing: run npm install in ${pkg} (it is a devDependency)`);
  }
}

function run(cmd, args) {
  if (process.env.FWIPC_BUILD_VERBOSE) process.stdout.write(`${cmd} ${args.join(' ')}\n`);
  try {
    execFileSync(cmd, args, { stdio: 'inherit' });
  } catch (e) {
    fail(`${cmd} failed (${e.status === undefined ? e.message : `exit ${e.status}`})`);
  }
}

fs.mkdirSync(out, { recursive: true });
const { dir: lib, rpath } = libDir();
const include = path.join(repo, 'runtime', 'include');
const napiHeaders = require(path.join(headersOf('node-api-headers'), 'index.js')).include_dir;
const addonApi = headersOf('node-addon-api');
const cxx = process.env.CXX || 'c++';
const cc = process.env.CC || 'cc';
// Extra flags for the addon, e.g. FWIPC_NODE_CXXFLAGS='-fsanitize=address,undefined -g' (then
// run node with LD_PRELOAD=$(c++ -print-file-name=libasan.so); README: sanitizers).
const extra = (process.env.FWIPC_NODE_CXXFLAGS || '').split(/\s+/).filter(Boolean);

run(cxx, [
  '-std=c++20',
  '-O2',
  '-fPIC',
  '-shared',
  '-fvisibility=hidden',
  '-Wall',
  '-Wextra',
  '-DNAPI_VERSION=8',
  '-DNAPI_CPP_EXCEPTIONS',
  '-DNODE_ADDON_API_DISABLE_DEPRECATED',
  `-I${include}`,
  `-I${napiHeaders}`,
  `-I${addonApi}`,
  ...extra,
  path.join(pkg, 'src', 'addon.cc'),
  `-L${lib}`,
  '-lfwipc',
  `-Wl,-rpath,${rpath}`, // Node-API and libuv symbols come from the node executable at load time
  '-o',
  path.join(out, 'fwipc.node.tmp'),
]);
fs.renameSync(path.join(out, 'fwipc.node.tmp'), path.join(out, 'fwipc.node'));

run(cc, [
  '-std=c99',
  '-O2',
  '-Wall',
  '-Wextra',
  '-D_DEFAULT_SOURCE',
  `-I${include}`,
  path.join(pkg, 'test', 'peer.c'),
  `-L${lib}`,
  '-lfwipc',
  `-Wl,-rpath,${rpath}`,
  '-o',
  path.join(out, 'test-peer'),
]);
process.stdout.write(`@freeworld/ipc: built ${path.join(out, 'fwipc.node')} against ${lib}/libfwipc.so\n`);
