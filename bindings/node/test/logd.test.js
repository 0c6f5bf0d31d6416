'use strict';
// logd-client.js against the real logd (and eventsd for the event path). The first test
// runs with logd down: the singleton is made then, and must recover by itself.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { have, startDaemon, stopDaemon } = require('./helpers');
const { getLogdClient, encodeRecord } = require('../system/logd-client');
const { EventBus, EventManager } = require('../events');

const haveLogd = have('services/logd/logd');
const skip = !haveLogd && 'bazel build //services/logd:logd first';
const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'logd-node-'));
process.on('exit', () => fs.rmSync(logDir, { recursive: true, force: true }));

function records() {
  const f = path.join(logDir, 'logd.log');
  if (!fs.existsSync(f)) return [];
  return fs
    .readFileSync(f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

test('records are encoded as the protocol says (whole and fragmented)', () => {
  const [one] = encodeRecord(6, 'myapp', 'Application started');
  assert.equal(one[0], 1); // version
  assert.equal(one[1], 1); // whole record
  assert.equal(one[2], 6);
  assert.equal(one[3], 5);
  assert.equal(one.readUInt32LE(4), 19);
  assert.equal(one.readUInt32LE(8), 0);
  assert.equal(one.subarray(12).toString(), 'myappApplication started');
  const long = 'é'.repeat(1000); // 2000 bytes: first, middle, ..., last
  const parts = encodeRecord(3, 'tag', long);
  assert.deepEqual(parts.map((p) => p[1]), [2, 3, 3, 3, 4]);
  assert.equal(Buffer.concat(parts.map((p, i) => p.subarray(12 + (i === 0 ? 3 : 0)))).toString(), long);
  assert.ok(parts.every((p) => p.length <= 512));
});

test('with logd down, calls do not throw; the client reconnects and reports its drops', { skip }, async () => {
  const logd = getLogdClient({ maxQueue: 8, retryMs: 20 });
  assert.equal(getLogdClient(), logd, 'a singleton');
  for (let i = 0; i < 20; i++) logd.warn('down', `record ${i}`);
  assert.ok(logd.stats.dropped >= 12, `dropped ${logd.stats.dropped}`);
  assert.equal(logd.queued, 8);
  const d = await startDaemon('services/logd/logd', ['--log-dir', logDir], 'logd');
  try {
    assert.equal(await logd.flush({ timeout: 20000 }), true);
    const rs = records();
    const report = rs.find((r) => r.tag === 'logd-client');
    assert.ok(report, 'the drops are reported');
    assert.match(report.msg, /dropped 12 records/);
    const kept = rs.filter((r) => r.tag === 'down').map((r) => r.msg);
    assert.deepEqual(kept, [12, 13, 14, 15, 16, 17, 18, 19].map((i) => `record ${i}`), 'the newest are kept, in order');
    assert.ok(rs.indexOf(report) < rs.findIndex((r) => r.tag === 'down'), 'the report comes before what follows the gap');
    assert.equal(kept.length + 1, rs.length);
    assert.equal(rs[0].level, 'warning');

    // Stop logd again: calls still do not throw; a new logd gets what was logged meanwhile.
    await stopDaemon(d);
    logd.error('gone', 'while logd was stopped');
    const d2 = await startDaemon('services/logd/logd', ['--log-dir', logDir], 'logd');
    try {
      logd.info('back', 'after the restart');
      assert.equal(await logd.flush({ timeout: 20000 }), true);
      const msgs = records().map((r) => `${r.tag}:${r.msg}`);
      assert.ok(msgs.includes('gone:while logd was stopped'), msgs.join('\n'));
      assert.ok(msgs.includes('back:after the restart'));
    } finally {
      await stopDaemon(d2);
    }
  } finally {
    await stopDaemon(d);
  }
});

const haveEvents = have('services/events/eventsd');
test('the seed example: levels and tags land in logd\'s file; security.user.login is logged automatically', { skip: skip || (!haveEvents && 'bazel build //services/events:eventsd first') }, async () => {
  const eventsd = await startDaemon('services/events/eventsd', [], 'events');
  const d = await startDaemon('services/logd/logd', ['--log-dir', logDir], 'logd');
  try {
    const eventBus = new EventBus();
    const eventManager = new EventManager(eventBus);
    const logd = getLogdClient();
    logd.init(eventManager, eventBus);
    // The singleton keeps the small queue of the test before: let it reconnect first.
    assert.equal(await logd.flush({ timeout: 20000 }), true);
    logd.info('myapp', 'Application started');
    logd.debug('myapp', 'debug text');
    logd.notice('myapp', 'notice text');
    logd.warn('myapp', 'warn text');
    logd.error('myapp', 'error text');
    logd.crit('myapp', 'crit text');
    logd.info('myapp', 'x'.repeat(3000)); // fragmented
    const logged = new Promise((resolve) => eventBus.once('security.user.login', resolve));
    eventBus.emit('security.user.login', { username: 'user' });
    await logged;
    await new Promise((r) => setImmediate(r));
    assert.equal(await logd.flush({ timeout: 20000 }), true);
    const mine = records().filter((r) => r.pid === process.pid && (r.tag === 'myapp' || r.tag === 'security'));
    const byMsg = Object.fromEntries(mine.map((r) => [r.msg, r]));
    assert.equal(byMsg['Application started'].level, 'info');
    assert.equal(byMsg['debug text'].level, 'debug');
    assert.equal(byMsg['notice text'].level, 'notice');
    assert.equal(byMsg['warn text'].level, 'warning');
    assert.equal(byMsg['error text'].level, 'err');
    assert.equal(byMsg['crit text'].level, 'crit');
    assert.ok(byMsg['x'.repeat(3000)], 'the fragmented record arrived whole');
    // logd logs the bus's events itself; the client does not send them again.
    const sec = mine.filter((r) => r.tag === 'security');
    assert.equal(sec.length, 1, JSON.stringify(sec));
    assert.equal(sec[0].level, 'notice');
    assert.equal(sec[0].event, 'security.user.login');
    assert.deepEqual(sec[0].data, { username: 'user' });
    assert.equal(sec[0].comm, 'node');
    assert.equal(logd.stats.eventsForwarded, 0);
    eventBus.close();
  } finally {
    await stopDaemon(d);
    await stopDaemon(eventsd);
  }
});

test('without eventsd, the client sends the events that only this process saw', { skip }, async () => {
  const d = await startDaemon('services/logd/logd', ['--log-dir', logDir], 'logd');
  try {
    const eventBus = new EventBus();
    const eventManager = new EventManager(eventBus);
    const logd = getLogdClient();
    logd.init(eventManager, eventBus);
    const seen = new Promise((resolve) => eventBus.once('system.>', resolve));
    assert.equal(eventBus.emit('system.disk.low', { free: 5 }), false, 'no event bus');
    await seen;
    assert.equal(await logd.flush({ timeout: 20000 }), true);
    const r = records().find((x) => x.tag === 'system' && x.pid === process.pid);
    assert.ok(r, 'the local event is in the log');
    assert.equal(r.level, 'info');
    assert.equal(r.msg, 'system.disk.low {"free":5}');
    assert.ok(logd.stats.eventsForwarded >= 1);
    eventBus.close();
  } finally {
    await stopDaemon(d);
  }
});
