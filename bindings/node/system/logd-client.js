'use strict';
// The Node client of logd (services/logd/PROTOCOL.md), as the seed uses it:
//
//   const { getLogdClient } = require('./system/logd-client');
//   const logd = getLogdClient();
//   logd.init(eventManager, eventBus);
//   logd.info('myapp', 'Application started');
//   eventBus.emit('security.user.login', { username: 'user' });  // logged automatically
//
// It never throws into the caller because of logd: while logd is down (or not keeping up)
// records wait in a bounded queue and the oldest are dropped past it (counted); the client
// reconnects by itself (HELLO again) and then logs how many records it dropped.
const path = require('path');
const ipc = require(path.join(__dirname, '..', 'index.js'));
const { EventManager } = require(path.join(__dirname, '..', 'events.js'));

const RECORD_TYPE = 0x4c474431; // "LGD1"
const SVC_TYPE = 0x46575356; // "FWSV": the service layer's call fragments
const SVC_MAGIC = 0x5346;
const SVC_VERSION = 1;
const OP_REQUEST = 1;
const OP_REPLY = 17;
const OP_ERROR = 18;
const METHOD_HELLO = 1;
const METHOD_FLUSH = 2;
const TEXT_MAX = 65536;
const TAG_MAX = 32;
const HEADER = 12;
const LEVELS = { emerg: 0, alert: 1, crit: 2, err: 3, error: 3, warning: 4, warn: 4, notice: 5, info: 6, debug: 7 };

let transferSeq = 0;

// One service-layer call with a body that fits one fragment: {status, body} or throws.
async function svcCall(ch, method, body, timeout) {
  transferSeq = (transferSeq % 0xfffffffe) + 1;
  const req = Buffer.alloc(20 + body.length);
  req.writeUInt16LE(SVC_MAGIC, 0);
  req.writeUInt8(SVC_VERSION, 2);
  req.writeUInt8(OP_REQUEST, 3);
  req.writeUInt32LE(method, 4);
  req.writeUInt32LE(transferSeq, 8);
  req.writeUInt32LE(0, 12);
  req.writeUInt32LE(body.length, 16);
  body.copy(req, 20);
  const rep = await ch.call(req, { type: SVC_TYPE, timeout });
  const p = rep.payload;
  if (p.length < 20 || p.readUInt16LE(0) !== SVC_MAGIC || p.readUInt8(2) !== SVC_VERSION) {
    const e = new Error('EPROTO: logd answered with something else than a service-layer reply');
    e.code = 'EPROTO';
    throw e;
  }
  const op = p.readUInt8(3);
  const status = p.readInt32LE(4);
  if (op === OP_ERROR) return { status, body: Buffer.alloc(0) };
  if (op !== OP_REPLY) {
    const e = new Error(`EPROTO: unexpected service-layer op ${op}`);
    e.code = 'EPROTO';
    throw e;
  }
  return { status, body: p.subarray(20) };
}

// Cuts a string to at most max UTF-8 bytes without splitting a character.
function utf8Cut(buf, max) {
  if (buf.length <= max) return buf;
  let end = max;
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--;
  return buf.subarray(0, end);
}

// The messages of one record: a whole record, or first/middle/last fragments.
function encodeRecord(level, tag, text) {
  let t = Buffer.from(String(text), 'utf8');
  if (t.length > TEXT_MAX) {
    const suffix = Buffer.from(' [truncated]');
    t = Buffer.concat([utf8Cut(t, TEXT_MAX - suffix.length), suffix]);
  }
  const g = utf8Cut(Buffer.from(String(tag), 'utf8'), TAG_MAX);
  const head = (kind, tagLen, offset) => {
    const h = Buffer.alloc(HEADER);
    h.writeUInt8(1, 0);
    h.writeUInt8(kind, 1);
    h.writeUInt8(level, 2);
    h.writeUInt8(tagLen, 3);
    h.writeUInt32LE(t.length, 4);
    h.writeUInt32LE(offset, 8);
    return h;
  };
  const room = ipc.IPC_MAX_PAYLOAD - HEADER;
  if (g.length + t.length <= room) return [Buffer.concat([head(1, g.length, 0), g, t])];
  const out = [];
  let off = room - g.length;
  out.push(Buffer.concat([head(2, g.length, 0), g, t.subarray(0, off)]));
  while (off < t.length) {
    const end = Math.min(off + room, t.length);
    out.push(Buffer.concat([head(end === t.length ? 4 : 3, 0, off), t.subarray(off, end)]));
    off = end;
  }
  return out;
}

class LogdClient {
  constructor(options = {}) {
    this.channel = options.channel || 'logd';
    this.maxQueue = options.maxQueue || 4096; // messages waiting for logd
    this.retryMs = options.retryMs || 200;
    this.callTimeoutMs = options.callTimeoutMs || 2000;
    this.forwardBusEvents = options.forwardBusEvents === true;
    this._ch = null;
    this._state = 'down'; // down | connecting | ready
    this._queue = []; // [buffer, recordEnds]: messages in order; a record's fragments stay together
    this._qhead = 0;
    this._timer = null;
    this._pid = process.pid;
    this._sentSinceHello = 0;
    this._dropsToReport = 0;
    this._unsinks = [];
    this.stats = { logged: 0, sent: 0, dropped: 0, reconnects: 0, errors: 0, eventsForwarded: 0 };
  }

  // Forwards the EventManager's security, system and error events to logd (and starts the
  // manager on eventBus if it is not running). Either argument may be omitted.
  //
  // logd subscribes to the event bus itself (unless run with --no-events) and logs every
  // security, system and error event that travels on it, with the emitter's pid. So that
  // nothing is logged twice, this client forwards only the events that never reached the
  // bus (emitted while eventsd was not running: local: true), unless forwardBusEvents was
  // set in the options (for a logd run with --no-events).
  init(eventManager, eventBus) {
    let mgr = eventManager;
    if (!mgr && eventBus) mgr = new EventManager(eventBus);
    if (mgr) {
      this._unsinks.push(
        mgr.addSink((r, ev) => {
          if (!ev.local && !this.forwardBusEvents) return;
          this.stats.eventsForwarded++;
          const text = `${r.event} ${JSON.stringify(r.data)}`;
          this.log(r.level, r.tag, text);
        }),
      );
      if (!mgr.running) mgr.start(eventBus);
    }
    this._kick();
    return this;
  }

  debug(tag, msg) {
    this.log('debug', tag, msg);
  }
  info(tag, msg) {
    this.log('info', tag, msg);
  }
  notice(tag, msg) {
    this.log('notice', tag, msg);
  }
  warn(tag, msg) {
    this.log('warning', tag, msg);
  }
  error(tag, msg) {
    this.log('err', tag, msg);
  }
  crit(tag, msg) {
    this.log('crit', tag, msg);
  }

  // level: a syslog name or 0-7. Never throws because of logd.
  log(level, tag, msg) {
    const lv = typeof level === 'number' ? Math.min(Math.max(level | 0, 0), 7) : LEVELS[level];
    let msgs;
    try {
      msgs = encodeRecord(lv === undefined ? 6 : lv, tag === undefined ? '-' : tag, msg === undefined ? '' : msg);
    } catch {
      this.stats.errors++;
      return;
    }
    this.stats.logged++;
    this._enqueue(msgs);
    this._pump();
  }

  _queued() {
    return this._queue.length - this._qhead;
  }

  _enqueue(msgs) {
    // Drop whole records from the front while there is no room: the newest records matter most.
    while (this._queued() + msgs.length > this.maxQueue && this._queued() > 0) {
      do {
        const [, last] = this._queue[this._qhead];
        this._queue[this._qhead++] = undefined;
        if (last) break;
      } while (this._qhead < this._queue.length);
      this.stats.dropped++;
      this._dropsToReport++;
    }
    if (msgs.length > this.maxQueue) {
      this.stats.dropped++;
      this._dropsToReport++;
      return;
    }
    msgs.forEach((m, i) => this._queue.push([m, i === msgs.length - 1]));
  }

  _compact() {
    if (this._qhead > 1024 && this._qhead * 2 > this._queue.length) {
      this._queue = this._queue.slice(this._qhead);
      this._qhead = 0;
    }
  }

  _kick() {
    if (this._state === 'down' && this._timer === null) this._connect();
  }

  _pump() {
    if (process.pid !== this._pid) {
      // Forked: this process needs its own HELLO.
      this._pid = process.pid;
      this._disconnect();
    }
    if (this._state !== 'ready') {
      this._kick();
      return;
    }
    if (this._dropsToReport > 0) {
      const n = this._dropsToReport;
      this._dropsToReport = 0;
      const msgs = encodeRecord(4, 'logd-client', `dropped ${n} records while logd was unreachable or full`);
      // The report goes first: it explains the gap before what follows it.
      this._queue.splice(this._qhead, 0, ...msgs.map((m, i) => [m, i === msgs.length - 1]));
    }
    while (this._qhead < this._queue.length) {
      const [buf, last] = this._queue[this._qhead];
      let sent;
      try {
        sent = this._ch.trySend(buf, { type: RECORD_TYPE });
      } catch {
        this._disconnect(); // EPIPE: logd went away; keep the queue, reconnect
        this._kick();
        return;
      }
      if (!sent) {
        this._retryLater(); // logd is not keeping up: the ring is full
        return;
      }
      this._queue[this._qhead++] = undefined;
      if (last) {
        this.stats.sent++;
        this._sentSinceHello++;
      }
    }
    this._compact();
  }

  _retryLater() {
    if (this._timer !== null) return;
    this._timer = setTimeout(() => {
      this._timer = null;
      if (this._state === 'ready') this._pump();
      else this._connect();
    }, this._state === 'ready' ? 5 : this.retryMs);
    this._timer.unref(); // a client waiting for logd does not keep the process alive
  }

  _disconnect() {
    if (this._ch !== null) this._ch.close();
    this._ch = null;
    this._state = 'down';
  }

  _connect() {
    if (this._state !== 'down') return;
    let ch;
    try {
      ch = ipc.openChannel(this.channel, { write: true, nonblock: true });
      const uid = ch.info().ownerUid;
      if (uid !== 0 && uid !== process.getuid()) {
        ch.close();
        this.stats.errors++;
        this._retryLater();
        return;
      }
    } catch {
      this._retryLater();
      return;
    }
    this._ch = ch;
    this._state = 'connecting';
    // The HELLO call lets logd attribute this process (comm, uid) before its first record.
    svcCall(ch, METHOD_HELLO, Buffer.alloc(0), this.callTimeoutMs).then(
      (r) => {
        if (this._ch !== ch) return;
        if (r.status < 0) {
          this._disconnect();
          this._retryLater();
          return;
        }
        this._state = 'ready';
        this._sentSinceHello = 0;
        this.stats.reconnects++;
        this._pump();
      },
      () => {
        if (this._ch !== ch) return;
        this._disconnect();
        this._retryLater();
      },
    );
  }

  // Resolves true once logd has written every record this client sent (logd's FLUSH),
  // false if that did not happen within timeout ms (logd down, or records still queued).
  async flush({ timeout = 5000 } = {}) {
    const deadline = Date.now() + timeout;
    while (Date.now() < deadline) {
      if (this._state === 'ready' && this._queued() === 0) {
        const body = Buffer.alloc(8);
        body.writeBigUInt64LE(BigInt(this._sentSinceHello));
        try {
          const r = await svcCall(this._ch, METHOD_FLUSH, body, Math.max(1, deadline - Date.now()));
          if (r.status >= 0) return true;
          if (r.status === -3 /* ESRCH: logd restarted */) this._disconnect();
        } catch {
          this._disconnect();
        }
      }
      this._kick();
      await new Promise((res) => setTimeout(res, 10).unref());
    }
    return false;
  }

  close() {
    for (const u of this._unsinks) u();
    this._unsinks = [];
    if (this._timer !== null) clearTimeout(this._timer);
    this._timer = null;
    this._disconnect();
  }

  get queued() {
    return this._queued();
  }
}

let instance = null;

// The process's one client (options apply when it is first made).
function getLogdClient(options) {
  if (instance === null) instance = new LogdClient(options);
  return instance;
}

module.exports = { getLogdClient, LogdClient, encodeRecord, RECORD_TYPE };
