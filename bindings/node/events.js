'use strict';
// The JavaScript event bus over the runtime channel `events` (services/events/PROTOCOL.md):
// an event emitted here reaches C and C++ subscribers in other processes and the reverse.
//
//   const { EventBus, EventManager } = require('@freeworld/ipc/events');
//   const bus = new EventBus();
//   bus.on('security.>', (data, event) => ...);      // event: {topic, data, sender, gap}
//   bus.emit('security.user.login', { username: 'user' });
//
// Design: one reader id per bus, opened when the first listener comes and closed with
// the last, so a process without listeners does not hold the channel back; its
// descriptor is watched on the event loop (no thread). Emits are non-blocking: a full
// channel queues the event (bounded) and retries for at most emitTimeoutMs, then drops and
// counts it. Without eventsd (no `events` channel) an emit reaches this process's own
// listeners only, and the bus keeps looking for eventsd every retryMs while it has listeners.
const { EventEmitter } = require('events');
const ipc = require('./index.js');

const WIRE_TYPE = 0x45565401; // "EVT" + version 1
const TOPIC_MAX = 255;
const PAYLOAD_MAX = 512;
const CHANNEL = 'events';
const CATEGORY_LEVEL = { error: 'err', security: 'notice', system: 'info' };
const FORWARDED_PATTERNS = ['security.>', 'system.>', 'error.>'];

function codeError(code, message) {
  const e = new Error(`${code}: ${message}`);
  e.code = code;
  return e;
}

// A segment: one or more bytes 0x21-0x7E other than '.', '*', '>'.
function validSegment(s) {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x2e || c === 0x2a || c === 0x3e) return false;
  }
  return true;
}

function isValidTopic(topic) {
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > TOPIC_MAX) return false;
  return topic.split('.').every(validSegment);
}

function isValidPattern(pattern) {
  if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > TOPIC_MAX) return false;
  const segs = pattern.split('.');
  return segs.every((s, i) => s === '*' || (s === '>' && i === segs.length - 1) || validSegment(s));
}

// true / false; throws an EINVAL Error when the pattern or the topic breaks the grammar.
function match(pattern, topic) {
  if (!isValidPattern(pattern)) throw codeError('EINVAL', `invalid pattern '${pattern}'`);
  if (!isValidTopic(topic)) throw codeError('EINVAL', `invalid topic '${topic}'`);
  return matchValid(pattern.split('.'), topic.split('.'));
}

function matchValid(p, t) {
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return t.length > i;
    if (i >= t.length) return false;
    if (p[i] !== '*' && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

function encode(topic, data) {
  if (!isValidTopic(topic)) throw codeError('EINVAL', `invalid topic '${topic}'`);
  const json = JSON.stringify(data === undefined ? null : data);
  if (json === undefined) throw codeError('EINVAL', 'data cannot be represented as JSON');
  const payload = Buffer.from(`${topic}\0${json}`, 'utf8');
  if (payload.length > PAYLOAD_MAX)
    throw codeError('EMSGSIZE', `event '${topic}' is ${payload.length} bytes, more than ${PAYLOAD_MAX} (topic + 1 + JSON)`);
  return payload;
}

// An event from anyone's bytes: {topic, data} or null when it breaks the wire format.
function decode(payload) {
  const nul = payload.indexOf(0);
  if (nul <= 0) return null;
  const topic = payload.toString('latin1', 0, nul);
  if (!isValidTopic(topic)) return null;
  try {
    return { topic, data: JSON.parse(payload.toString('utf8', nul + 1)) };
  } catch {
    return null;
  }
}

class EventBus {
  constructor(options = {}) {
    this.channel = options.channel || CHANNEL;
    this.retryMs = options.retryMs || 200;
    this.emitTimeoutMs = options.emitTimeoutMs === undefined ? 1000 : options.emitTimeoutMs;
    this.maxPendingEmits = options.maxPendingEmits || 1024;
    this._listeners = []; // {pattern, segs, fn, once}
    this._reader = null;
    this._writer = null;
    this._readerTimer = null;
    this._pending = []; // [payload, deadline]
    this._emitTimer = null;
    this._gap = 0;
    this._closed = false;
    this.stats = {
      emitted: 0, // sent on the channel
      local: 0, // delivered to this process only (no event bus)
      dropped: 0, // emits given up after emitTimeoutMs, or past maxPendingEmits
      received: 0,
      malformed: 0, // messages that break the wire format, dropped
      foreign: 0, // messages of another type, ignored
      gaps: 0, // times this bus lost its place (evicted, eventsd restarted)
      handlerErrors: 0,
    };
  }

  // ---- listeners

  on(pattern, fn) {
    return this._add(pattern, fn, false);
  }

  once(pattern, fn) {
    return this._add(pattern, fn, true);
  }

  _add(pattern, fn, once) {
    if (!isValidPattern(pattern)) throw codeError('EINVAL', `invalid pattern '${pattern}'`);
    if (typeof fn !== 'function') throw new TypeError('listener must be a function');
    if (this._closed) throw codeError('EBADF', 'the event bus is closed');
    this._listeners.push({ pattern, segs: pattern.split('.'), fn, once });
    this._ensureReader();
    return this;
  }

  // off(pattern, fn) removes that listener; off(pattern) every listener on that pattern.
  off(pattern, fn) {
    this._listeners = this._listeners.filter((l) => !(l.pattern === pattern && (fn === undefined || l.fn === fn)));
    if (this._listeners.length === 0) this._closeReader();
    return this;
  }

  removeAllListeners() {
    this._listeners = [];
    this._closeReader();
    return this;
  }

  listenerCount() {
    return this._listeners.length;
  }

  _dispatch(ev) {
    const segs = ev.topic.split('.');
    for (const l of this._listeners.slice()) {
      if (!matchValid(l.segs, segs)) continue;
      if (l.once) {
        const i = this._listeners.indexOf(l);
        if (i < 0) continue;
        this._listeners.splice(i, 1);
      }
      try {
        l.fn(ev.data, ev);
      } catch (err) {
        this.stats.handlerErrors++;
        process.nextTick(() => {
          throw err; // a listener's bug is the application's, as with EventEmitter
        });
      }
    }
    if (this._listeners.length === 0) this._closeReader();
  }

  // ---- the reader

  _ensureReader() {
    if (this._reader !== null || this._readerTimer !== null || this._closed || this._listeners.length === 0) return;
    try {
      const ch = ipc.openChannel(this.channel, { read: true });
      if (!this._trusted(ch)) {
        ch.close();
        throw codeError('EPERM', `channel '${this.channel}' is served by another uid`);
      }
      this._reader = ch;
      ch.on('message', (m) => this._onMessage(m));
      ch.on('end', (err) => this._onReaderEnd(err));
      ch.on('error', () => {}); // 'end' handles it
    } catch (err) {
      if (err.code !== 'ENOENT' && err.code !== 'EPERM') throw err;
      this._retryReader();
    }
  }

  _retryReader() {
    if (this._readerTimer !== null || this._closed) return;
    this._readerTimer = setTimeout(() => {
      this._readerTimer = null;
      this._ensureReader();
    }, this.retryMs);
    this._readerTimer.unref(); // looking for eventsd alone does not keep a process alive
  }

  _onReaderEnd(err) {
    // ENOBUFS: evicted for not reading; EPIPE: eventsd is gone. Rejoin, report a gap.
    const ch = this._reader;
    this._reader = null;
    if (ch) ch.close();
    this._gap++;
    this.stats.gaps++;
    if (err && err.code !== 'ENOBUFS' && err.code !== 'EPIPE' && err.code !== 'EBADF') this.stats.readerErrors = (this.stats.readerErrors || 0) + 1;
    this._retryReader();
  }

  _closeReader() {
    if (this._readerTimer !== null) {
      clearTimeout(this._readerTimer);
      this._readerTimer = null;
    }
    if (this._reader !== null) {
      this._reader.close();
      this._reader = null;
    }
  }

  _trusted(ch) {
    const uid = ch.info().ownerUid;
    return uid === 0 || uid === process.getuid();
  }

  _onMessage(m) {
    if (m.type !== WIRE_TYPE) {
      this.stats.foreign++;
      return;
    }
    const ev = decode(m.payload);
    if (ev === null) {
      this.stats.malformed++;
      return;
    }
    this.stats.received++;
    ev.sender = m.sender;
    ev.gap = this._gap;
    this._gap = 0;
    this._dispatch(ev);
  }

  // ---- emitting

  // Sends an event to every subscriber of every process. Returns true when it went on the
  // channel (or waits in the bounded queue for room), false when there is no event bus
  // (then only this process's listeners get it). Throws EINVAL (topic, JSON) and EMSGSIZE.
  emit(topic, data) {
    const payload = encode(topic, data);
    if (this._closed) throw codeError('EBADF', 'the event bus is closed');
    const w = this._openWriter();
    if (w === null) {
      this.stats.local++;
      // local: it never reached the bus, so no other process (logd included) saw it.
      const ev = { topic, data: JSON.parse(payload.toString('utf8', topic.length + 1)), sender: process.pid, gap: 0, local: true };
      queueMicrotask(() => this._dispatch(ev));
      return false;
    }
    if (this._pending.length === 0 && this._send(payload)) return true;
    if (this._pending.length >= this.maxPendingEmits) {
      this.stats.dropped++;
      return true;
    }
    this._pending.push([payload, Date.now() + this.emitTimeoutMs]);
    this._scheduleEmit();
    return true;
  }

  _openWriter() {
    if (this._writer !== null) return this._writer;
    try {
      const ch = ipc.openChannel(this.channel, { write: true, nonblock: true });
      if (!this._trusted(ch)) {
        ch.close();
        throw codeError('EPERM', `channel '${this.channel}' is served by another uid`);
      }
      this._writer = ch;
    } catch (err) {
      if (err.code === 'ENOENT') return null;
      throw err;
    }
    return this._writer;
  }

  // true: sent (or dropped for good), false: full, retry later.
  _send(payload) {
    for (let attempt = 0; attempt < 2; attempt++) {
      const w = this._openWriter();
      if (w === null) {
        this.stats.dropped++;
        return true;
      }
      try {
        if (!w.trySend(payload, { type: WIRE_TYPE })) return false;
        this.stats.emitted++;
        return true;
      } catch (err) {
        // EPIPE: eventsd restarted. Reopen once and resend.
        w.close();
        this._writer = null;
        if (err.code !== 'EPIPE') {
          this.stats.dropped++;
          return true;
        }
      }
    }
    this.stats.dropped++;
    return true;
  }

  _scheduleEmit() {
    if (this._emitTimer !== null) return;
    this._emitTimer = setTimeout(() => {
      this._emitTimer = null;
      const now = Date.now();
      while (this._pending.length > 0) {
        const [payload, deadline] = this._pending[0];
        if (this._send(payload)) {
          this._pending.shift();
        } else if (now >= deadline) {
          this._pending.shift();
          this.stats.dropped++;
        } else {
          break;
        }
      }
      if (this._pending.length > 0) this._scheduleEmit();
    }, 1);
  }

  close() {
    if (this._closed) return;
    this._closed = true;
    this._listeners = [];
    this._closeReader();
    if (this._emitTimer !== null) clearTimeout(this._emitTimer);
    this._emitTimer = null;
    this.stats.dropped += this._pending.length;
    this._pending = [];
    if (this._writer !== null) this._writer.close();
    this._writer = null;
  }
}

// What a forwarded event becomes in the system log, as the C++ EventManager maps it: tag
// = the first segment, level err (error.>), notice (security.>) or info (system.>).
function toLogRecord(ev) {
  const dot = ev.topic.indexOf('.');
  if (dot <= 0) return null; // "security" alone is not security.>
  const category = ev.topic.slice(0, dot);
  const level = CATEGORY_LEVEL[category];
  if (level === undefined) return null;
  return { level, tag: category, event: ev.topic, data: ev.data, pid: ev.sender };
}

// Classifies the bus's events: security, system and error events go to every sink
// (logd-client adds itself with logd.init(eventManager, eventBus)). Emits 'event'
// (record, event) for each as well.
class EventManager extends EventEmitter {
  constructor(bus) {
    super();
    this.bus = bus || null;
    this._sinks = new Set();
    this._handlers = null;
    this.forwarded = 0;
  }

  classify(topic) {
    const r = toLogRecord({ topic, data: null, sender: 0 });
    return r === null ? null : r.tag;
  }

  // Attaches a bus (if none yet) and starts listening to security.>, system.>, error.>.
  start(bus) {
    if (bus && !this.bus) this.bus = bus;
    if (!this.bus) throw codeError('EINVAL', 'EventManager needs an EventBus');
    if (this._handlers !== null) return this;
    this._handlers = FORWARDED_PATTERNS.map((p) => {
      const fn = (data, ev) => this._forward(ev);
      this.bus.on(p, fn);
      return [p, fn];
    });
    return this;
  }

  stop() {
    if (this._handlers === null) return;
    for (const [p, fn] of this._handlers) this.bus.off(p, fn);
    this._handlers = null;
  }

  get running() {
    return this._handlers !== null;
  }

  // sink(record, event) for every forwarded event; returns a function that removes it.
  addSink(sink) {
    this._sinks.add(sink);
    return () => this._sinks.delete(sink);
  }

  _forward(ev) {
    const r = toLogRecord(ev);
    if (r === null) return;
    this.forwarded++;
    for (const s of this._sinks) s(r, ev);
    this.emit('event', r, ev);
  }
}

module.exports = {
  EventBus,
  EventManager,
  match,
  isValidTopic,
  isValidPattern,
  toLogRecord,
  encode,
  decode,
  WIRE_TYPE,
  CHANNEL,
};
