#!/usr/bin/env node
// Builds build/fwipc.node (the addon) and build/test-peer (the C program the tests talk
// to) with the system C/C++ compiler.
//
// Why not node-gyp: node-gyp needs Node's full header tarball (common.gypi, config.gypi),
// which it downloads, and this package must build offline. A Node-API addon needs only
// node-api-headers and node-addon-api (both from npm), so one compiler call does it and
// the result loads in every Node version with Node-API 8.
//
// libfwipc: $FWIPC_LIB_DIR, else <repo>/bazel-bin/runtime (`bazel build //runtime:fwipc`);
// its real directory goes into the rpath, so nothing needs LD_LIBRARY_PATH (and a later
// bazel build under another configuration, which moves the bazel-bin link, does not swap
// the library under the addon).
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

function libDir() {
  const dir = process.env.FWIPC_LIB_DIR || path.join(repo, 'bazel-bin', 'runtime');
  const lib = path.join(dir, 'libfwipc.so');
  if (!fs.existsSync(lib)) {
    fail(
      `${lib} not found. Build it first: (cd ${repo} && bazel build //runtime:fwipc), ` +
        'or set FWIPC_LIB_DIR to the directory holding libfwipc.so.',
    );
  }
  return fs.realpathSync(dir);
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

const lib = libDir();
const include = path.join(repo, 'runtime', 'include');
const napiHeaders = require(path.join(headersOf('node-api-headers'), 'index.js')).include_dir;
const addonApi = headersOf('node-addon-api');
const cxx = process.env.CXX || 'c++';
const cc = process.env.CC || 'cc';
fs.mkdirSync(out, { recursive: true });

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
  path.join(pkg, 'src', 'addon.cc'),
  `-L${lib}`,
  '-lfwipc',
  `-Wl,-rpath,${lib}`, // Node-API and libuv symbols come from the node executable at load time
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
  `-Wl,-rpath,${lib}`,
  '-o',
  path.join(out, 'test-peer'),
]);
process.stdout.write(`@freeworld/ipc: built ${path.join(out, 'fwipc.node')} against ${lib}/libfwipc.so\n`);
