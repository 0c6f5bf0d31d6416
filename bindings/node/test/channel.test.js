'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { ipc, uniqueName, cPeer, nodePeer, pattern } = require('./helpers');

// Unicode strings of growing UTF-8 length (1..4-byte characters), all <= 512 bytes.
function unicodeStrings() {
  const chars = ['a', 'é', '€', '🙂'];
  const out = [''];
  for (let n = 1; n <= 128; n *= 2) for (const c of chars) out.push(c.repeat(n));
  out.push('日本語テキスト'.repeat(24)); // 504 bytes
  return out.filter((s) => Buffer.byteLength(s) <= 512);
}

test('Node to C and back: payloads 0..512 bytes as Buffers and unicode strings; sender is the PID', async () => {
  const n2c = uniqueName('n2c');
  const c2n = uniqueName('c2n');
  // A pure writer: a creator that reads would hold its own channel back after 256 messages.
  const out = ipc.createChannel(n2c, { creatorMode: { write: true } });
  const back = ipc.createChannel(c2n);
  const strings = unicodeStrings();
  const total = 513 + strings.length;
  const peer = cPeer('echo', n2c, c2n, process.pid, total);
  await peer.ready;
  // Sending runs beside receiving: both rings hold 256 messages, fewer than this test sends.
  const sending = (async () => {
    for (let i = 0; i <= 512; i++) await out.send(pattern(i, i), { type: i });
    for (const [k, s] of strings.entries()) await out.send(s, { type: 1000 + k });
  })();
  for (let i = 0; i <= 512; i++) {
    const m = await back.receive({ timeout: 20000 });
    assert.equal(m.type, i);
    assert.equal(m.size, i);
    assert.equal(m.sender, peer.child.pid, 'the sender is the C peer');
    assert.equal(m.receiver, 0);
    assert.ok(Buffer.isBuffer(m.payload));
    assert.deepEqual(m.payload, pattern(i, i));
  }
  for (const [k, s] of strings.entries()) {
    const m = await back.receive({ timeout: 20000 });
    assert.equal(m.type, 1000 + k);
    assert.equal(m.payload.toString('utf8'), s);
  }
  await sending;
  assert.equal(await peer.exit, 0, peer.stderr());
  out.close();
  back.close();
});

test('C to Node: 513 messages of 0..512 bytes, sender is the C process', async () => {
  const name = uniqueName('c-send');
  const ch = ipc.createChannel(name);
  const peer = cPeer('send', name, 513);
  let i = 0;
  for await (const m of ch) {
    assert.equal(m.type, i);
    assert.equal(m.sender, peer.child.pid);
    assert.deepEqual(m.payload, pattern(i, i % 513));
    if (++i === 513) break;
  }
  assert.equal(await peer.exit, 0, peer.stderr());
  ch.close();
});

test('Node to Node child and back: the child sees this PID as sender', async () => {
  const n2n = uniqueName('n2n');
  const back = uniqueName('n2n-back');
  const out = ipc.createChannel(n2n, { type: ipc.IPC_TYPE_QUEUE, creatorMode: ipc.IPC_MODE_WRITE });
  const inCh = ipc.createChannel(back);
  const peer = nodePeer('echo', n2n, back, 50);
  await peer.ready;
  for (let i = 0; i < 50; i++) await out.send(`message ${i} ✓`, { type: i });
  for (let i = 0; i < 50; i++) {
    const m = await inCh.receive({ timeout: 20000 });
    assert.equal(m.type, i);
    assert.equal(m.sender, peer.child.pid);
    assert.equal(m.payload.subarray(0, m.size - 4).toString(), `message ${i} ✓`);
    assert.equal(m.payload.readUInt32LE(m.size - 4), process.pid, 'the child saw our PID');
  }
  assert.equal(await peer.exit, 0, peer.stderr());
  out.close();
  inCh.close();
});

test('513 bytes rejects with EMSGSIZE (Buffer, string, TypedArray); nothing is sent', async () => {
  const ch = ipc.createChannel(uniqueName('big'));
  for (const data of [Buffer.alloc(513), 'é'.repeat(256) + 'a', new Uint16Array(257)]) {
    await assert.rejects(ch.send(data), (e) => e instanceof Error && e.code === 'EMSGSIZE' && e.syscall === 'ipc_send');
  }
  await assert.rejects(ch.receive({ timeout: 0 }), { code: 'EAGAIN' });
  await ch.send(new Uint32Array([1, 2]));
  const m = await ch.receive({ timeout: 0 });
  assert.deepEqual(m.payload, Buffer.from([1, 0, 0, 0, 2, 0, 0, 0]));
  ch.close();
});

test('errors are Errors with the errno name as code', async () => {
  assert.throws(() => ipc.openChannel(uniqueName('missing')), (e) => e instanceof Error && e.code === 'ENOENT');
  assert.throws(() => ipc.createChannel('bad name'), { code: 'EINVAL' });
  assert.throws(() => ipc.createChannel('x'.repeat(64)), { code: 'ENAMETOOLONG' });
  const name = uniqueName('dup');
  const ch = ipc.createChannel(name);
  assert.throws(() => ipc.createChannel(name), { code: 'EEXIST' });
  assert.throws(() => ipc.createChannel(uniqueName('evict'), { overflow: 'evict' }), { code: 'EINVAL' }); // no bound
  const w = ipc.openChannel(name, { write: true });
  await assert.rejects(w.receive(), { code: 'EBADF' });
  await assert.rejects(ch.receive({ timeout: 30 }), { code: 'ETIMEDOUT' });
  await assert.rejects(ch.send({ not: 'bytes' }), TypeError);
  ch.close();
  await assert.rejects(ch.send('x'), { code: 'EBADF' });
  assert.throws(() => ch.info(), { code: 'EBADF' });
  ch.close(); // idempotent
  await assert.rejects(w.send('after the creator closed'), { code: 'EPIPE' });
  w.close();
});

test('info() tells who serves the channel', () => {
  const name = uniqueName('info');
  const ch = ipc.createChannel(name, { type: 'socket', bufferSize: ipc.IPC_BUFFER_MIN, mode: 0o640 });
  const i = ch.info();
  assert.equal(i.name, name);
  assert.equal(i.type, ipc.IPC_TYPE_SOCKET);
  assert.equal(i.transport, ipc.IPC_TRANSPORT_SOCKET);
  assert.equal(i.creatorPid, process.pid);
  assert.equal(i.ownerUid, process.getuid());
  assert.equal(i.mode, 0o640);
  assert.equal(i.capacity, ipc.IPC_BUFFER_MIN);
  const r = ipc.openChannel(name, { read: true });
  assert.equal(r.info().creatorPid, process.pid);
  r.close();
  ch.close();
});

for (const type of ['queue', 'socket', 'pipe']) {
  test(`on('message') and receive() over a ${type} channel; removing the listener lets go of the loop`, async () => {
    const name = uniqueName(type);
    const ch = ipc.createChannel(name, { type });
    const w = ipc.openChannel(name, { write: true });
    const got = [];
    const done = new Promise((resolve) => {
      const onMessage = (m) => {
        got.push(m.payload.toString());
        if (got.length === 3) {
          ch.off('message', onMessage);
          resolve();
        }
      };
      ch.on('message', onMessage);
    });
    for (const s of ['one', 'two', 'three']) await w.send(s);
    await done;
    assert.deepEqual(got, ['one', 'two', 'three']);
    await w.send('four', { type: 4, priority: 2 });
    const m = await ch.receive({ timeout: 5000 });
    assert.equal(m.payload.toString(), 'four');
    assert.equal(m.priority, 2);
    assert.equal(m.sender, process.pid);
    w.close();
    ch.close();
  });
}

test('unicast: receiver = PID reaches that process only', async () => {
  const name = uniqueName('unicast');
  const ch = ipc.createChannel(name);
  const unused = ipc.createChannel(uniqueName('unicast-back'));
  const peer = cPeer('echo', name, unused.name, process.pid, 1);
  await peer.ready;
  await ch.send('to nobody', { receiver: 1 });
  await ch.send('to the peer', { receiver: peer.child.pid });
  const back = await unused.receive({ timeout: 20000 });
  assert.equal(back.payload.toString(), 'to the peer');
  assert.equal(await peer.exit, 0, peer.stderr());
  ch.close();
  unused.close();
});

test('the creator closing ends a reader after what was already sent (EPIPE ends iteration)', async () => {
  const name = uniqueName('end');
  const ch = ipc.createChannel(name);
  const r = ipc.openChannel(name, { read: true });
  await ch.send('a');
  await ch.send('b');
  ch.close();
  const got = [];
  for await (const m of r) got.push(m.payload.toString());
  assert.deepEqual(got, ['a', 'b']);
  await assert.rejects(r.receive(), { code: 'EPIPE' });
  r.close();
});
