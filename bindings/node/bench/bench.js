#!/usr/bin/env node
'use strict';
// Node rows of the benchmark suite, side by side in one run: one-way throughput and round
// trip of 64-byte messages between two processes over
//   - a FreeWorld IPC QUEUE channel: Node -> Node, C -> Node, and the round trip Node <-> Node
//     and Node <-> C,
//   - zeromq.js 6 over ipc:// (PUSH/PULL, REQ/REP), when `npm install` in bench/ found it,
//   - Node's own net over a Unix socket (64-byte frames on a stream).
// Usage: node bench.js [--messages N] [--round-trips N] [--csv FILE]
// Output: a Markdown table on stdout (and CSV rows with --csv).
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const N = Number(opt('--messages', 200000));
const RT = Number(opt('--round-trips', 20000));
const csvPath = opt('--csv', null);

const dir = fs.mkdtempSync('/tmp/fwipc-');
process.env.FWIPC_RUNTIME_DIR = dir;
process.on('exit', () => {
  try {
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch {}
});
const ipc = require('..');
const PEER = path.join(__dirname, '..', 'build', 'test-peer');
const CHILD = path.join(__dirname, 'child.js');
let zmq = null;
try {
  zmq = require('zeromq');
} catch {}

function start(cmd, argv) {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('ready')) resolve();
    });
    child.on('exit', (c) => reject(new Error(`${path.basename(cmd)} ${argv.join(' ')} exited ${c}`)));
  });
  ready.catch(() => {});
  const exit = new Promise((r) => child.on('exit', r));
  return { child, ready, exit };
}
const node = (...a) => start(process.execPath, [CHILD, ...a.map(String)]);
const cpeer = (...a) => start(PEER, a.map(String));

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}
function latencyRow(name, samplesNs) {
  const s = Float64Array.from(samplesNs).sort();
  return { name, kind: 'round trip', p50: pct(s, 50) / 1000, p99: pct(s, 99) / 1000, p999: pct(s, 99.9) / 1000 };
}
function rateRow(name, count, ns) {
  return { name, kind: 'one-way', rate: count / (Number(ns) / 1e9) };
}

// Counts `count` messages from a channel, timing first to last.
function countIpc(ch, count) {
  return new Promise((resolve) => {
    let n = 0;
    let t0 = 0n;
    ch.on('message', () => {
      if (n === 0) t0 = process.hrtime.bigint();
      if (++n === count) resolve(process.hrtime.bigint() - t0);
    });
  });
}

let seq = 0;
const uname = (b) => `${b}-${process.pid}-${++seq}`;

async function ipcOneWay(from) {
  const name = uname('bench');
  const ch = ipc.createChannel(name, { bufferSize: 1024 * ipc.IPC_BUFFER_MIN / 16 });
  const counting = countIpc(ch, N);
  const p = from === 'node' ? node('ipc-send', name, N) : cpeer('flood', name, N, 64);
  const ns = await counting;
  await p.exit;
  ch.close();
  return rateRow(`fwipc QUEUE, ${from === 'node' ? 'Node' : 'C'} -> Node`, N - 1, ns);
}

async function ipcRoundTrip(peer) {
  const out = uname('ping');
  const back = uname('pong');
  const o = ipc.createChannel(out, { creatorMode: { write: true } });
  const b = ipc.createChannel(back);
  const p = peer === 'node' ? node('ipc-echo', out, back) : cpeer('echo', out, back, process.pid, RT + 1000);
  await p.ready;
  const msg = Buffer.alloc(64, 1);
  const samples = [];
  for (let i = 0; i < RT + 1000; i++) {
    const t0 = process.hrtime.bigint();
    o.trySend(msg);
    await b.receive();
    if (i >= 1000) samples.push(Number(process.hrtime.bigint() - t0));
  }
  o.close();
  b.close();
  await p.exit;
  return latencyRow(`fwipc QUEUE, Node <-> ${peer === 'node' ? 'Node' : 'C'}`, samples);
}

async function netOneWay() {
  const sock = path.join(dir, 'bench.sock');
  let resolveDone;
  const done = new Promise((r) => (resolveDone = r));
  let bytes = 0;
  let t0 = 0n;
  const srv = net.createServer((c) => {
    c.on('data', (d) => {
      if (bytes === 0) t0 = process.hrtime.bigint();
      bytes += d.length;
      if (bytes >= N * 64) resolveDone(process.hrtime.bigint() - t0);
    });
  });
  await new Promise((r) => srv.listen(sock, r));
  const p = node('net-send', sock, N);
  const ns = await done;
  await p.exit;
  srv.close();
  return rateRow('node:net Unix socket, Node -> Node', N - 1, ns);
}

async function netRoundTrip() {
  const sock = path.join(dir, 'echo.sock');
  const p = node('net-echo', sock);
  await p.ready;
  const c = net.connect(sock);
  await new Promise((r) => c.once('connect', r));
  c.setNoDelay(true);
  const msg = Buffer.alloc(64, 1);
  let pending = null;
  let have = 0;
  c.on('data', (d) => {
    have += d.length;
    if (have >= 64 && pending) {
      have -= 64;
      const r = pending;
      pending = null;
      r();
    }
  });
  const samples = [];
  for (let i = 0; i < RT + 1000; i++) {
    const t0 = process.hrtime.bigint();
    await new Promise((r) => {
      pending = r;
      c.write(msg);
    });
    if (i >= 1000) samples.push(Number(process.hrtime.bigint() - t0));
  }
  c.destroy();
  p.child.kill();
  return latencyRow('node:net Unix socket, Node <-> Node', samples);
}

async function zmqOneWay() {
  const addr = `ipc://${path.join(dir, 'zmq-pull')}`;
  const pull = new zmq.Pull();
  await pull.bind(addr);
  const p = node('zmq-push', addr, N);
  let n = 0;
  let t0 = 0n;
  let ns = 0n;
  for await (const _ of pull) {
    if (n === 0) t0 = process.hrtime.bigint();
    if (++n === N) {
      ns = process.hrtime.bigint() - t0;
      break;
    }
  }
  pull.close();
  await p.exit;
  return rateRow('zeromq.js 6 ipc:// PUSH/PULL, Node -> Node', N - 1, ns);
}

async function zmqRoundTrip() {
  const addr = `ipc://${path.join(dir, 'zmq-rep')}`;
  const p = node('zmq-rep', addr);
  await p.ready;
  const req = new zmq.Request();
  req.connect(addr);
  const msg = Buffer.alloc(64, 1);
  const samples = [];
  for (let i = 0; i < RT + 1000; i++) {
    const t0 = process.hrtime.bigint();
    await req.send(msg);
    await req.receive();
    if (i >= 1000) samples.push(Number(process.hrtime.bigint() - t0));
  }
  req.close();
  p.child.kill();
  return latencyRow('zeromq.js 6 ipc:// REQ/REP, Node <-> Node', samples);
}

async function main() {
  const rows = [];
  const run = async (f) => {
    const r = await f();
    rows.push(r);
    process.stderr.write(`${r.name}: ${r.rate ? `${Math.round(r.rate)} msg/s` : `p50 ${r.p50.toFixed(1)} us`}\n`);
  };
  await run(() => ipcOneWay('node'));
  await run(() => ipcOneWay('c'));
  if (zmq) await run(zmqOneWay);
  await run(netOneWay);
  await run(() => ipcRoundTrip('node'));
  await run(() => ipcRoundTrip('c'));
  if (zmq) await run(zmqRoundTrip);
  await run(netRoundTrip);

  console.log(`Node ${process.version}, ${os.cpus().length} CPUs, 64-byte messages, ${N} one-way, ${RT} round trips`);
  console.log('');
  console.log('| row | one-way msg/s | round trip p50 us | p99 us | p99.9 us |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) {
    if (r.rate) console.log(`| ${r.name} | ${Math.round(r.rate).toLocaleString('en-US')} | | | |`);
    else console.log(`| ${r.name} | | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.p999.toFixed(1)} |`);
  }
  if (!zmq) console.log('\n(zeromq.js rows skipped: run `npm install` in bindings/node/bench first)');
  const ipcRate = rows.find((r) => r.name.startsWith('fwipc QUEUE, Node -> Node'));
  const zRate = rows.find((r) => r.name.startsWith('zeromq.js 6 ipc:// PUSH'));
  const ipcRt = rows.find((r) => r.name === 'fwipc QUEUE, Node <-> Node');
  const zRt = rows.find((r) => r.name.startsWith('zeromq.js 6 ipc:// REQ'));
  if (zRate && zRt) {
    const x = ipcRate.rate / zRate.rate;
    console.log(`\ntarget: >= 5x zeromq.js's message rate: ${x.toFixed(1)}x (${x >= 5 ? 'met' : 'MISSED'}); ` +
      `lower round trip: ${ipcRt.p50.toFixed(1)} vs ${zRt.p50.toFixed(1)} us p50 (${ipcRt.p50 < zRt.p50 ? 'met' : 'MISSED'})`);
  }
  if (csvPath) {
    const lines = ['row,kind,msgs_per_s,p50_us,p99_us,p999_us'];
    for (const r of rows) lines.push([r.name, r.kind, r.rate ?? '', r.p50 ?? '', r.p99 ?? '', r.p999 ?? ''].join(','));
    fs.writeFileSync(csvPath, `${lines.join('\n')}\n`);
  }
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
