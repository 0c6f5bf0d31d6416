'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { ipc, uniqueName, cPeer, nodePeer, settledWithin } = require('./helpers');

// Receives `count` sequence-numbered messages through the async iterator while a 1 ms
// interval runs, and returns the largest gap between two ticks (the loop's responsiveness).
async function iterateWithTimer(ch, count, sender) {
  let ticks = 0;
  let last = process.hrtime.bigint();
  let maxGapMs = 0;
  const timer = setInterval(() => {
    const now = process.hrtime.bigint();
    maxGapMs = Math.max(maxGapMs, Number(now - last) / 1e6);
    last = now;
    ticks++;
  }, 1);
  let expect = 0;
  try {
    for await (const m of ch) {
      assert.equal(m.sender, sender);
      assert.equal(m.payload.readBigUInt64LE(0), BigInt(expect), 'in order, none lost');
      if (++expect === count) break;
    }
  } finally {
    clearInterval(timer);
  }
  return { ticks, maxGapMs, received: expect };
}

test('100,000 messages from C through the async iterator while a 1 ms timer keeps firing', async () => {
  const name = uniqueName('flood');
  const ch = ipc.createChannel(name);
  const peer = cPeer('flood', name, 100000);
  const r = await iterateWithTimer(ch, 100000, peer.child.pid);
  assert.equal(r.received, 100000);
  assert.equal(await peer.exit, 0, peer.stderr());
  assert.ok(r.ticks > 0, 'the interval fired during the flood');
  // An anti-hang bound, not a speed limit: one drained batch (256 messages) per wakeup
  // cannot hold the loop anywhere near this long.
  assert.ok(r.maxGapMs < 1000, `the loop stalled for ${r.maxGapMs} ms`);
  ch.close();
});

test('100,000 messages from a Node child (awaiting each send) through the async iterator', async () => {
  const name = uniqueName('node-flood');
  const ch = ipc.createChannel(name, { bufferSize: ipc.IPC_BUFFER_MIN });
  const peer = nodePeer('send', name, 100000);
  const r = await iterateWithTimer(ch, 100000, peer.child.pid);
  assert.equal(r.received, 100000);
  assert.equal(await peer.exit, 0, peer.stderr());
  assert.ok(r.ticks > 0);
  ch.close();
});

test('a full channel makes send() wait, in order, until a reader makes room; nonblock rejects EAGAIN', async () => {
  const name = uniqueName('full');
  const ch = ipc.createChannel(name, { bufferSize: ipc.IPC_BUFFER_MIN }); // 16 slots
  const w = ipc.openChannel(name, { write: true });
  const sends = [];
  for (let i = 0; i < 100; i++) sends.push(w.send(`m${i}`, { type: i }));
  // The first 16 fit; the 17th waits for room and does not fail.
  assert.equal(await settledWithin(Promise.all(sends.slice(0, 16)), 5), true);
  assert.equal(await settledWithin(sends[16], 50), false, 'the 17th send waits');
  assert.equal(w.stats().pendingSends, 84);
  const nb = ipc.openChannel(name, { write: true, nonblock: true });
  await assert.rejects(nb.send('no room'), { code: 'EAGAIN' });
  nb.close();
  for (let i = 0; i < 100; i++) {
    const m = await ch.receive({ timeout: 20000 });
    assert.equal(m.type, i);
    assert.equal(m.payload.toString(), `m${i}`);
  }
  await Promise.all(sends); // all resolved, none rejected
  assert.equal(w.stats().pendingSends, 0);
  assert.ok(w.stats().sendWaits >= 84);
  // close() rejects what still waits.
  for (let i = 0; i < 16; i++) await w.send('fill');
  const stuck = w.send('never');
  w.close();
  await assert.rejects(stuck, { code: 'EBADF' });
  ch.close();
});

test('a reader that does not take its messages stops watching at its high-water mark', async () => {
  const name = uniqueName('hwm');
  const ch = ipc.createChannel(name, { bufferSize: ipc.IPC_BUFFER_MIN, highWaterMark: 8 });
  const w = ipc.openChannel(name, { write: true });
  const first = ch.receive({ timeout: 20000 }); // starts watching
  const sends = [];
  for (let i = 0; i < 40; i++) sends.push(w.send(Buffer.from([i])));
  assert.equal((await first).payload[0], 0);
  // At most highWater + one batch are held locally; the ring holds the rest back.
  for (let i = 1; i < 40; i++) assert.equal((await ch.receive({ timeout: 20000 })).payload[0], i);
  await Promise.all(sends);
  assert.ok(ch.stats().received === 40);
  w.close();
  ch.close();
});
