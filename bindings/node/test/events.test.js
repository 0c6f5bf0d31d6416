'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { ipc, have, bin, start, startDaemon, stopDaemon } = require('./helpers');
const { EventBus, EventManager, match, isValidTopic, decode, encode, WIRE_TYPE } = require('../events');

const TOPICS = path.join(__dirname, '..', '..', '..', 'services', 'events', 'testdata', 'topics.txt');

test('the topic grammar: every case of services/events/testdata/topics.txt', () => {
  const lines = fs.readFileSync(TOPICS, 'utf8').split('\n');
  let cases = 0;
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [pattern, topic, expect] = line.split(/[ \t]+/);
    let got;
    try {
      got = match(pattern, topic) ? 'match' : 'nomatch';
    } catch (e) {
      assert.equal(e.code, 'EINVAL');
      got = 'invalid';
    }
    assert.equal(got, expect, `topics.txt:${i + 1}: ${pattern} ${topic}`);
    cases++;
  }
  assert.ok(cases > 40, `only ${cases} cases read`);
});

test('the wire format: topic, NUL, JSON; malformed bytes decode to null', () => {
  const p = encode('security.user.login', { username: 'user' });
  assert.equal(p.toString(), 'security.user.login\0{"username":"user"}');
  assert.deepEqual(decode(p), { topic: 'security.user.login', data: { username: 'user' } });
  for (const bad of ['no-nul', '\0{}', 'a..b\0{}', 'a*\0{}', 'a\0{', 'a\0']) assert.equal(decode(Buffer.from(bad)), null, bad);
  assert.throws(() => encode('a.*', {}), { code: 'EINVAL' });
  assert.throws(() => encode('a', { x: 'y'.repeat(600) }), { code: 'EMSGSIZE' });
  assert.ok(isValidTopic('security.user.login'));
});

test('without eventsd an emit reaches this process only; once, off, wildcards', async () => {
  const bus = new EventBus();
  const got = [];
  bus.on('security.>', (data, ev) => got.push(['>', ev.topic, data]));
  bus.once('security.*', (data, ev) => got.push(['*', ev.topic]));
  const unused = () => got.push(['never']);
  bus.on('system.>', unused);
  bus.off('system.>', unused);
  assert.equal(bus.emit('security.user.login', { username: 'user' }), false);
  assert.equal(bus.emit('security.logout', {}), false);
  assert.equal(bus.emit('security.again', 1), false);
  assert.equal(bus.emit('system.boot', {}), false);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, [
    ['>', 'security.user.login', { username: 'user' }],
    ['>', 'security.logout', {}],
    ['*', 'security.logout'],
    ['>', 'security.again', 1],
  ]);
  assert.throws(() => bus.on('a*', () => {}), { code: 'EINVAL' });
  assert.throws(() => bus.emit('a.>', {}), { code: 'EINVAL' });
  assert.equal(bus.stats.local, 4);
  bus.close();
});

const haveEvents = have('services/events/eventsd') && have('services/events/fwevent');
test('events between JS and C++ processes over eventsd', { skip: !haveEvents && 'bazel build //services/events:eventsd //services/events:fwevent first' }, async (t) => {
  const eventsd = await startDaemon('services/events/eventsd', [], 'events');
  t.after(() => stopDaemon(eventsd));
  const bus = new EventBus();

  // C++ (fwevent watch) subscribes; JS emits.
  const watch = start(bin('services/events/fwevent'), ['watch', 'security.>', '--count', '1', '--json']);
  await new Promise((resolve, reject) => {
    watch.child.stderr.on('data', () => {
      if (watch.stderr().includes('watching')) resolve();
    });
    watch.exit.then(() => reject(new Error(`fwevent watch exited: ${watch.stderr()}`)));
  });
  assert.equal(bus.emit('security.user.login', { username: 'user' }), true);
  assert.equal(await watch.exit, 0, watch.stderr());
  const seen = JSON.parse(watch.stdout().trim());
  assert.equal(seen.topic, 'security.user.login');
  assert.deepEqual(seen.data, { username: 'user' });
  assert.equal(seen.pid, process.pid);

  // C++ (fwevent emit) emits; JS subscribes.
  const got = new Promise((resolve) => bus.once('system.*', (data, ev) => resolve({ data, ev })));
  const emitter = start(bin('services/events/fwevent'), ['emit', 'system.boot', '{"stage":"done","n":3}']);
  assert.equal(await emitter.exit, 0, emitter.stderr());
  const { data, ev } = await got;
  assert.deepEqual(data, { stage: 'done', n: 3 });
  assert.equal(ev.topic, 'system.boot');
  assert.equal(ev.sender, emitter.child.pid);

  // A JS emit also reaches this process's own listeners, through the bus.
  const own = new Promise((resolve) => bus.once('app.>', (d, e) => resolve(e)));
  assert.equal(bus.emit('app.started', { ok: true }), true);
  assert.equal((await own).sender, process.pid);

  // Foreign messages on the channel are ignored and counted, not delivered.
  const after = new Promise((resolve) => bus.once('app.after', (d) => resolve(d))); // the bus reads from here on
  const raw = ipc.openChannel('events', { write: true });
  await raw.send('not an event', { type: 1 });
  await raw.send('bad..topic\0{}', { type: WIRE_TYPE });
  bus.emit('app.after', 'x');
  assert.equal(await after, 'x');
  assert.equal(bus.stats.foreign, 1);
  assert.equal(bus.stats.malformed, 1);
  raw.close();

  // The EventManager classifies what it forwards.
  const mgr = new EventManager(bus);
  const records = [];
  mgr.addSink((r) => records.push(r));
  mgr.start();
  assert.equal(mgr.classify('error.disk.full'), 'error');
  assert.equal(mgr.classify('app.x'), null);
  const last = new Promise((resolve) => bus.once('error.>', resolve));
  bus.emit('app.ignored', {});
  bus.emit('security.user.logout', { username: 'user' });
  bus.emit('error.disk.full', { free: 0 });
  await last;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    records.map((r) => [r.level, r.tag, r.event]),
    [
      ['notice', 'security', 'security.user.logout'],
      ['err', 'error', 'error.disk.full'],
    ],
  );
  mgr.stop();
  bus.close();
});

test('decode() takes any bytes from anyone without throwing', () => {
  // A seeded generator: the same cases every run, with NULs, dots and JSON-ish bytes mixed in.
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  const alphabet = Buffer.from('a.*>\0{}[]":,1 \x7f\x80é');
  let valid = 0;
  for (let i = 0; i < 20000; i++) {
    const n = rnd() * 2 + (rnd() & 1);
    const b = Buffer.alloc(n);
    for (let j = 0; j < n; j++) b[j] = rnd() & 1 ? alphabet[rnd() % alphabet.length] : rnd();
    const ev = decode(b);
    if (ev !== null) {
      assert.ok(isValidTopic(ev.topic));
      valid++;
    }
  }
  assert.ok(valid < 20000);
  assert.deepEqual(decode(Buffer.from('a.b\0[1,2]')), { topic: 'a.b', data: [1, 2] });
});
