'use strict';
// Shared by the tests: a private runtime directory per test file (set before the addon
// loads; children inherit it), and real peer processes (the C test-peer, Node fixtures).
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const dir = fs.mkdtempSync('/tmp/fwipc-');
process.env.FWIPC_RUNTIME_DIR = dir;
// Best effort: the auto-started registry may still be writing there as we exit.
process.on('exit', () => {
  try {
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch {}
});

const ipc = require('..');

const PEER = path.join(__dirname, '..', 'build', 'test-peer');
let seq = 0;
const uniqueName = (base) => `${base}-${process.pid}-${++seq}`;

// A child process that prints "ready" once its channels are open. `ready` resolves then;
// `exit` resolves with its exit code (stderr attached to failures by the caller).
function start(cmd, args) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let readyResolve;
  let readyReject;
  const ready = new Promise((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  child.stdout.on('data', (d) => {
    out += d;
    if (out.includes('ready\n')) readyResolve();
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  const exit = new Promise((res) => {
    child.on('exit', (code, signal) => {
      readyReject(new Error(`${path.basename(cmd)} ${args.join(' ')} exited (${code ?? signal}) before ready: ${err}`));
      res(code ?? 128);
    });
  });
  exit.catch(() => {});
  ready.catch(() => {});
  return { child, ready, exit, stderr: () => err, stdout: () => out };
}

const cPeer = (...args) => start(PEER, args.map(String));
const nodePeer = (...args) => start(process.execPath, [path.join(__dirname, 'fixtures', 'node-peer.js'), ...args.map(String)]);

// Byte i of a pattern payload, as test-peer's `send` makes them.
function pattern(i, n) {
  const b = Buffer.alloc(n);
  for (let j = 0; j < n; j++) b[j] = (i + j) & 0xff;
  return b;
}

// Whether a promise has settled after the loop has gone round `turns` times.
async function settledWithin(p, turns) {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < turns && !settled; i++) await new Promise((r) => setImmediate(r));
  return settled;
}

module.exports = { ipc, dir, uniqueName, cPeer, nodePeer, pattern, settledWithin };

// ---- daemons of the tree (built by ci.sh: bazel build //services/events:eventsd ...)
const REPO = path.resolve(__dirname, '..', '..', '..');
const bin = (rel) => path.join(REPO, 'bazel-bin', rel);
const have = (rel) => fs.existsSync(bin(rel));

// Resolves once channel `name` can be opened (a daemon created it), within timeoutMs.
async function waitForChannel(name, timeoutMs = 20000, proc = null) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      ipc.openChannel(name, { write: true }).close();
      return;
    } catch (e) {
      // ECONNREFUSED: the daemon and this process both auto-start the registry at once.
      if (e.code !== 'ENOENT' && e.code !== 'ECONNREFUSED') throw e;
    }
    if (proc && proc.child.exitCode !== null) throw new Error(`daemon exited (${proc.child.exitCode}): ${proc.stderr()}`);
    if (Date.now() > deadline) throw new Error(`channel ${name} did not appear in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function startDaemon(rel, args, channel) {
  const d = start(bin(rel), args);
  await waitForChannel(channel, 20000, d);
  return d;
}

async function stopDaemon(d) {
  if (d.child.exitCode === null) d.child.kill('SIGTERM');
  return d.exit;
}

module.exports.bin = bin;
module.exports.have = have;
module.exports.start = start;
module.exports.startDaemon = startDaemon;
module.exports.stopDaemon = stopDaemon;
module.exports.waitForChannel = waitForChannel;
