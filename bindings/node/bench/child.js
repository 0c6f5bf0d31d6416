'use strict';
// The other process of bench.js. Modes:
//   ipc-send NAME N        N 64-byte messages on channel NAME, as fast as the channel takes them
//   ipc-echo IN OUT        every message from IN back on OUT
//   net-send PATH N        N 64-byte frames to the Unix socket PATH
//   net-echo PATH          serves PATH: echoes every 64-byte frame back
//   zmq-push ADDR N        N 64-byte messages on a PUSH socket connected to ADDR
//   zmq-rep ADDR           REP socket bound at ADDR, echoes
const net = require('net');

const [mode, a, b] = process.argv.slice(2);
const MSG = Buffer.alloc(64, 7);

async function main() {
  if (mode === 'ipc-send') {
    const ipc = require('..');
    const ch = ipc.openChannel(a, { write: true });
    process.stdout.write('ready\n');
    const n = Number(b);
    for (let i = 0; i < n; i++) {
      if (!ch.trySend(MSG)) await ch.send(MSG); // waits for room
    }
    ch.close();
  } else if (mode === 'ipc-echo') {
    const ipc = require('..');
    const inCh = ipc.openChannel(a, { read: true });
    const outCh = ipc.openChannel(b, { write: true });
    inCh.on('message', (m) => {
      if (!outCh.trySend(m.payload)) outCh.send(m.payload);
    });
    inCh.on('end', () => process.exit(0));
    process.stdout.write('ready\n');
  } else if (mode === 'net-send') {
    const s = net.connect(a);
    await new Promise((r) => s.once('connect', r));
    process.stdout.write('ready\n');
    const n = Number(b);
    for (let i = 0; i < n; i++) if (!s.write(MSG)) await new Promise((r) => s.once('drain', r));
    s.end();
  } else if (mode === 'net-echo') {
    const srv = net.createServer((c) => c.pipe(c));
    srv.listen(a, () => process.stdout.write('ready\n'));
  } else if (mode === 'zmq-push') {
    const zmq = require('zeromq');
    const s = new zmq.Push();
    s.connect(a);
    process.stdout.write('ready\n');
    const n = Number(b);
    for (let i = 0; i < n; i++) await s.send(MSG);
    await new Promise((r) => setTimeout(r, 100));
    s.close();
  } else if (mode === 'zmq-rep') {
    const zmq = require('zeromq');
    const s = new zmq.Reply();
    await s.bind(a);
    process.stdout.write('ready\n');
    for await (const [m] of s) await s.send(m);
  }
}
main().catch((e) => {
  process.stderr.write(`child ${mode}: ${e.stack}\n`);
  process.exit(1);
});
