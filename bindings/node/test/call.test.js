'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { ipc, uniqueName, cPeer, nodePeer } = require('./helpers');

test('call() from Node to a C server: replies reach their call; a timeout rejects ETIMEDOUT', async () => {
  const name = uniqueName('c-serve');
  const peer = cPeer('serve', name, 12);
  await peer.ready;
  const ch = ipc.openChannel(name, { write: true }); // calling needs the write bit only
  for (let i = 0; i < 5; i++) {
    const rep = await ch.call(`req-${i}`, { type: i, timeout: 20000 });
    assert.equal(rep.type, i + 1);
    assert.equal(rep.payload.toString(), `re:req-${i}`);
    assert.equal(rep.sender, peer.child.pid, "the reply's sender is the server");
  }
  // Type 99 is taken and never answered.
  await assert.rejects(ch.call('lost', { type: 99, timeout: 100 }), (e) => e instanceof Error && e.code === 'ETIMEDOUT');
  // Several calls at once, each gets its own reply.
  const many = await Promise.all([5, 6, 7, 8, 9, 10].map((i) => ch.call(Buffer.from(`req-${i}`), { type: i, timeout: 20000 })));
  many.forEach((rep, k) => assert.equal(rep.payload.toString(), `re:req-${k + 5}`));
  await assert.rejects(ch.call(Buffer.alloc(513)), { code: 'EMSGSIZE' });
  assert.equal(await peer.exit, 0, peer.stderr());
  // The server is gone: a call fails instead of waiting.
  await assert.rejects(ch.call('anyone?', { timeout: 5000 }), (e) => ['EPIPE', 'ECONNREFUSED', 'ENOENT', 'ETIMEDOUT'].includes(e.code));
  ch.close();
});

test('serve() in Node answers a C caller; the request carries the caller PID', async () => {
  const name = uniqueName('n-serve');
  const ch = ipc.createChannel(name);
  const senders = new Set();
  const server = ch.serve(async (req) => {
    senders.add(req.sender);
    await new Promise((r) => setImmediate(r)); // handlers may be asynchronous
    return { type: req.type + 1, payload: Buffer.concat([Buffer.from('re:'), req.payload]) };
  });
  const peer = cPeer('call', name, 50);
  assert.equal(await peer.exit, 0, peer.stderr());
  assert.deepEqual([...senders], [peer.child.pid]);
  assert.equal(server.stats.calls, 50);
  assert.equal(server.stats.replies, 50);
  assert.throws(() => ch.serve(() => ''), { code: 'EBUSY' });
  server.close();
  ch.close();
});

test('call() between Node processes; a throwing handler answers with the error type', async () => {
  const name = uniqueName('n2n-serve');
  const peer = nodePeer('serve', name);
  await peer.ready;
  const ch = ipc.openChannel(name, { write: true });
  const rep = await ch.call('ping', { type: 41, timeout: 20000 });
  assert.equal(rep.type, 42);
  assert.equal(rep.payload.toString(), 're:ping');
  assert.equal(rep.sender, peer.child.pid);
  ch.close();
  peer.child.kill('SIGTERM');
  assert.equal(await peer.exit, 0, peer.stderr());

  const local = ipc.createChannel(uniqueName('throws'));
  local.serve((req) => {
    if (req.payload.toString() === 'bad') throw new Error('no such thing');
    return req.payload.toString().toUpperCase();
  });
  const caller = ipc.openChannel(local.name, { write: true });
  assert.equal((await caller.call('ok', { type: 3, timeout: 20000 })).payload.toString(), 'OK');
  const err = await caller.call('bad', { timeout: 20000 });
  assert.equal(err.type, 0xffffffff);
  assert.equal(err.payload.toString(), 'no such thing');
  // A reader-only id cannot call; an id that is not the creator's cannot serve.
  const reader = ipc.openChannel(local.name, { read: true });
  await assert.rejects(reader.call('x', { timeout: 1000 }), { code: 'EBADF' });
  assert.throws(() => caller.serve(() => ''), { code: 'EBADF' });
  reader.close();
  caller.close();
  local.close();
});

test('calls in flight hold no thread; close() rejects them with EBADF', async () => {
  const name = uniqueName('inflight');
  const peer = cPeer('serve', name, 100); // stays up after the unanswered calls
  await peer.ready;
  const ch = ipc.openChannel(name, { write: true });
  // More unanswered calls than libuv's pool has threads (4): none of them holds one, so
  // file I/O (which runs on that pool) completes while they wait.
  const pending = [];
  for (let i = 0; i < 16; i++) pending.push(ch.call('late', { type: 99, timeout: 60000 }));
  let settled = false;
  Promise.allSettled(pending).then(() => (settled = true));
  const text = await require('fs').promises.readFile(__filename, 'utf8');
  assert.ok(text.includes('calls in flight hold no thread'));
  assert.equal(settled, false, 'the calls still wait');
  assert.equal(ch.stats().callsInFlight, 16);
  ch.close();
  for (const p of pending) await assert.rejects(p, { code: 'EBADF' });
  await assert.rejects(ch.call('x'), { code: 'EBADF' });
  peer.child.kill('SIGTERM');
  await peer.exit;
});
