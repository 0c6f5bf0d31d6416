'use strict';
// @freeworld/ipc: FreeWorld IPC channels for Node.js (see README.md).
//
// Design:
// - Every id is opened non-blocking underneath. send() tries once; on a full channel it
//   returns a Promise that waits (retrying on a back-off timer: the runtime has no
//   descriptor that says "writable"), so back-pressure is visible and the loop never blocks.
//   Sends that wait keep their order, and later sends queue behind them (bounded).
// - Receiving watches the id's descriptor with uv_poll (in the addon) and drains at most
//   one batch per wakeup, so a flood never starves timers. Messages go to the oldest
//   receive() / iterator waiter, else to 'message' listeners, else to a bounded local queue;
//   while that queue is full the descriptor is not watched and writers feel the
//   back-pressure in the ring instead.
// - serve() watches ipc_request_fd() the same way; call() starts the call with
//   ipc_call_start() and watches ipc_call_fd() while calls are in flight (no thread waits).
const { EventEmitter } = require('events');
const path = require('path');

const native = require(path.join(__dirname, 'build', 'fwipc.node'));
const C = native.constants;

const IPC_TYPE_SOCKET = C.IPC_TYPE_SOCKET;
const IPC_TYPE_PIPE = C.IPC_TYPE_PIPE;
const IPC_TYPE_QUEUE = C.IPC_TYPE_QUEUE;
const IPC_MODE_READ = C.IPC_MODE_READ;
const IPC_MODE_WRITE = C.IPC_MODE_WRITE;
const IPC_MODE_NONBLOCK = C.IPC_MODE_NONBLOCK;
const IPC_MAX_PAYLOAD = C.IPC_MAX_PAYLOAD;

const EAGAIN = C.EAGAIN;
const EPIPE = C.EPIPE;
const EBADF = C.EBADF;

const BATCH = 1024; // messages per descriptor wakeup (about half a millisecond of work at most)
const DEFAULT_HIGH_WATER = 4096; // messages queued locally before the descriptor is left alone
const DEFAULT_MAX_PENDING_SENDS = 65536; // sends waiting for room, per channel
const DEFAULT_MAX_SERVE_IN_FLIGHT = 256; // calls a serve() handler works on at once
// A full channel is retried on setImmediate for up to RETRY_SPIN_NS (a reader on another
// core usually makes room within microseconds), then on timers backing off to RETRY_MAX_MS.
const RETRY_SPIN_NS = 1000000n;
const RETRY_MAX_MS = 8;
const RESOLVED = Promise.resolve();

function ipcError(rc, syscall, what) {
  return native.error(rc, syscall, what);
}

function typeNumber(t, field) {
  if (t === undefined || t === null) return IPC_TYPE_QUEUE;
  if (typeof t === 'number') return t;
  const m = { socket: IPC_TYPE_SOCKET, pipe: IPC_TYPE_PIPE, queue: IPC_TYPE_QUEUE };
  if (typeof t === 'string' && t.toLowerCase() in m) return m[t.toLowerCase()];
  throw new TypeError(`${field} must be IPC_TYPE_QUEUE, IPC_TYPE_SOCKET, IPC_TYPE_PIPE or 'queue'|'socket'|'pipe'`);
}

function modeBits(m, field) {
  if (m === undefined || m === null) return 0;
  if (typeof m === 'number') return m;
  if (typeof m === 'object')
    return (m.read ? IPC_MODE_READ : 0) | (m.write ? IPC_MODE_WRITE : 0) | (m.nonblock ? IPC_MODE_NONBLOCK : 0);
  throw new TypeError(`${field} must be IPC_MODE_* bits or {read, write}`);
}

function overflowNumber(o) {
  if (o === undefined || o === null || o === 'block') return C.IPC_OVERFLOW_BLOCK;
  if (o === 'evict') return C.IPC_OVERFLOW_EVICT;
  if (typeof o === 'number') return o;
  throw new TypeError("overflow must be 'block', 'evict' or IPC_OVERFLOW_*");
}

function timeoutMs(t, field) {
  if (t === undefined || t === null || t < 0) return -1;
  if (typeof t !== 'number' || !Number.isFinite(t)) throw new TypeError(`${field} must be a number of milliseconds`);
  return Math.min(Math.floor(t), 0x7fffffff);
}

// Parses a drained batch: records of a 20-byte header then the payload. Payloads are views
// into the batch's one Buffer (no copy per message).
function parseBatch(buf, out) {
  let off = 0;
  while (off + 20 <= buf.length) {
    const size = buf.readUInt32LE(off + 4);
    out.push({
      type: buf.readUInt32LE(off),
      size,
      sender: buf.readUInt32LE(off + 8),
      receiver: buf.readUInt32LE(off + 12),
      priority: buf.readUInt32LE(off + 16),
      payload: buf.subarray(off + 20, off + 20 + size),
    });
    off += 20 + size;
  }
}

class Channel extends EventEmitter {
  constructor(handle, name, { canRead, nonblock, creator, highWaterMark, maxPendingSends }) {
    super();
    this._n = handle;
    this.name = name;
    this._canRead = canRead;
    this._nonblock = nonblock; // send() rejects EAGAIN instead of waiting
    this._creator = creator;
    this._closed = false;
    this._ended = null; // the error that ended receiving (EPIPE: the creator is gone)
    this._queue = []; // received, not yet taken
    this._qhead = 0;
    this._waiters = []; // {resolve, reject, timer}
    this._watching = false;
    this._highWater = highWaterMark || DEFAULT_HIGH_WATER;
    this._maxPending = maxPendingSends || DEFAULT_MAX_PENDING_SENDS;
    this._pending = []; // sends waiting for room: {data, type, priority, receiver, resolve, reject}
    this._calls = new Map(); // calls in flight: handle (bigint) -> {resolve, reject, timer}
    this._retryTries = 0; // 0: not retrying; else the next timer back-off in ms
    this._retrySince = 0n;
    this._retryTimer = null;
    this._retryImmediate = false;
    this._server = null;
    this._stats = { sent: 0, received: 0, sendWaits: 0, sendRetries: 0, drains: 0, paused: 0 };
    handle.onreadable = (status) => this._onReadable(status);
    handle.onrequest = (status) => this._onRequest(status);
    handle.oncallready = (status) => this._onCallReady(status);
    this.on('newListener', (ev) => {
      if (ev === 'message') process.nextTick(() => this._updateWatch());
    });
    this.on('removeListener', (ev) => {
      if (ev === 'message') this._updateWatch();
    });
  }

  get closed() {
    return this._closed;
  }

  // ---- sending

  send(data, opts) {
    const type = (opts && opts.type) || 0;
    const priority = (opts && opts.priority) || 0;
    const receiver = (opts && opts.receiver) || 0;
    if (this._closed) return Promise.reject(ipcError(EBADF, 'ipc_send', this.name));
    if (this._pending.length === 0) {
      let rc;
      try {
        rc = this._n.send(data, type, priority, receiver);
      } catch (e) {
        return Promise.reject(e);
      }
      if (rc >= 0) {
        this._stats.sent++;
        return RESOLVED;
      }
      if (rc !== EAGAIN || this._nonblock) return Promise.reject(ipcError(rc, 'ipc_send', this.name));
    } else if (typeof data !== 'string' && !Buffer.isBuffer(data) && !ArrayBuffer.isView(data) && !(data instanceof ArrayBuffer)) {
      return Promise.reject(new TypeError('data must be a Buffer, TypedArray, DataView, ArrayBuffer or string'));
    }
    if (this._pending.length >= this._maxPending)
      return Promise.reject(ipcError(-105 /* ENOBUFS */, 'ipc_send', this.name));
    // Keep what the caller passed as it is now: it may reuse its buffer after send().
    const copy = typeof data === 'string' ? data : Buffer.from(ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : data);
    return new Promise((resolve, reject) => {
      this._pending.push({ data: copy, type, priority, receiver, resolve, reject });
      this._stats.sendWaits++;
      this._scheduleRetry();
    });
  }

  // Sends now or not at all: true when sent, false when the channel is full (EAGAIN);
  // other failures throw. For callers that keep their own bounded queue (logd-client).
  trySend(data, opts) {
    if (this._closed) throw ipcError(EBADF, 'ipc_send', this.name);
    if (this._pending.length > 0) return false; // keep the order of waiting sends
    const rc = this._n.send(data, (opts && opts.type) || 0, (opts && opts.priority) || 0, (opts && opts.receiver) || 0);
    if (rc >= 0) {
      this._stats.sent++;
      return true;
    }
    if (rc === EAGAIN) return false;
    throw ipcError(rc, 'ipc_send', this.name);
  }

  _scheduleRetry() {
    if (this._retryTimer !== null || this._pending.length === 0) return;
    const now = process.hrtime.bigint();
    if (this._retryTries === 0) this._retrySince = now;
    const run = () => {
      this._retryTimer = null;
      this._flushPending();
    };
    if (now - this._retrySince < RETRY_SPIN_NS) {
      this._retryTimer = setImmediate(run);
      this._retryImmediate = true;
      this._retryTries = 1;
    } else {
      this._retryTimer = setTimeout(run, this._retryTries);
      this._retryImmediate = false;
      this._retryTries = Math.min(this._retryTries * 2, RETRY_MAX_MS);
    }
  }

  _flushPending() {
    while (this._pending.length > 0 && !this._closed) {
      const p = this._pending[0];
      this._stats.sendRetries++;
      const rc = this._n.send(p.data, p.type, p.priority, p.receiver);
      if (rc === EAGAIN) {
        this._scheduleRetry();
        return;
      }
      this._pending.shift();
      this._retryTries = 0;
      if (rc >= 0) {
        this._stats.sent++;
        p.resolve();
      } else {
        p.reject(ipcError(rc, 'ipc_send', this.name));
      }
    }
  }

  // ---- receiving

  receive(opts) {
    if (this._closed) return Promise.reject(ipcError(EBADF, 'ipc_receive', this.name));
    if (!this._canRead) return Promise.reject(ipcError(EBADF, 'ipc_receive', this.name));
    if (this._qhead < this._queue.length) return Promise.resolve(this._shift());
    if (this._ended) return Promise.reject(this._ended);
    const t = timeoutMs(opts && opts.timeout, 'timeout');
    // Look once now: a message that is already there needs no trip through the loop.
    this._drainOnce();
    if (this._qhead < this._queue.length) return Promise.resolve(this._shift());
    if (this._ended) return Promise.reject(this._ended);
    if (t === 0) return Promise.reject(ipcError(EAGAIN, 'ipc_receive', this.name));
    return new Promise((resolve, reject) => {
      const w = { resolve, reject, timer: null };
      if (t > 0) {
        w.timer = setTimeout(() => {
          const i = this._waiters.indexOf(w);
          if (i >= 0) this._waiters.splice(i, 1);
          this._updateWatch();
          reject(ipcError(-110 /* ETIMEDOUT */, 'ipc_receive', this.name));
        }, t);
      }
      this._waiters.push(w);
      this._updateWatch();
    });
  }

  _shift() {
    const m = this._queue[this._qhead];
    this._queue[this._qhead++] = undefined;
    if (this._qhead > 1024 && this._qhead * 2 > this._queue.length) {
      this._queue = this._queue.slice(this._qhead);
      this._qhead = 0;
    }
    if (!this._watching && this._queue.length - this._qhead < this._highWater / 2) this._updateWatch();
    return m;
  }

  _queued() {
    return this._queue.length - this._qhead;
  }

  _deliver(m) {
    this._stats.received++;
    const w = this._waiters.shift();
    if (w !== undefined) {
      if (w.timer) clearTimeout(w.timer);
      w.resolve(m);
    } else if (this.listenerCount('message') > 0) {
      this.emit('message', m);
    } else {
      this._queue.push(m);
    }
  }

  _drainOnce() {
    if (this._closed || this._ended) return 0;
    const r = this._n.drain(BATCH);
    if (typeof r === 'number') {
      if (r !== EAGAIN) this._end(ipcError(r, 'ipc_receive', this.name));
      return 0;
    }
    this._stats.drains++;
    const batch = [];
    parseBatch(r, batch);
    for (const m of batch) this._deliver(m);
    return batch.length;
  }

  _onReadable(status) {
    if (status < 0) {
      this._end(ipcError(status, 'uv_poll', this.name));
      return;
    }
    this._drainOnce();
    this._updateWatch();
  }

  _wantsMessages() {
    return (
      !this._closed &&
      this._canRead &&
      !this._ended &&
      (this._waiters.length > 0 || this.listenerCount('message') > 0) &&
      this._queued() < this._highWater
    );
  }

  _updateWatch() {
    const want = this._wantsMessages();
    if (want === this._watching) return;
    if (!want && this._queued() >= this._highWater) this._stats.paused++;
    this._watching = want;
    try {
      this._n.watch(want);
    } catch (e) {
      this._watching = false;
      this._end(e);
    }
  }

  // Receiving is over: EPIPE (the creator closed) ends iterators quietly; waiters reject.
  _end(err) {
    if (this._ended) return;
    this._ended = err;
    const ws = this._waiters;
    this._waiters = [];
    for (const w of ws) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(err);
    }
    this._updateWatch();
    if (err.code !== 'EPIPE' && this.listenerCount('error') > 0) this.emit('error', err);
    this.emit('end', err);
  }

  [Symbol.asyncIterator]() {
    const self = this;
    let done = false;
    return {
      next() {
        if (done) return Promise.resolve({ value: undefined, done: true });
        return self.receive().then(
          (value) => ({ value, done: false }),
          (err) => {
            if (err.code === 'EPIPE' || (self._closed && err.code === 'EBADF')) {
              done = true;
              return { value: undefined, done: true };
            }
            throw err;
          },
        );
      },
      return() {
        done = true;
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  // ---- request/reply

  call(request, opts) {
    if (this._closed) return Promise.reject(ipcError(EBADF, 'ipc_call', this.name));
    const type = (opts && opts.type) || 0;
    const priority = (opts && opts.priority) || 0;
    let timeout;
    try {
      timeout = timeoutMs(opts && opts.timeout, 'timeout');
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject, timer: null, call: null, timedOut: false };
      if (timeout >= 0) {
        entry.timer = setTimeout(() => {
          entry.timer = null;
          if (entry.call !== null) {
            this._n.callCancel(entry.call); // its reply, if it comes, is dropped
            this._calls.delete(entry.call);
            this._unwatchCalls();
          }
          entry.timedOut = true;
          reject(ipcError(-110 /* ETIMEDOUT */, 'ipc_call', this.name));
        }, timeout);
      }
      // A full socket to the server (-EAGAIN) is retried on timers until the timeout fires.
      let wait = 1;
      const start = () => {
        if (entry.timedOut) return;
        if (this._closed) return this._settleCall(entry, ipcError(EBADF, 'ipc_call', this.name));
        let r;
        try {
          r = this._n.callStart(request, type, priority);
        } catch (e) {
          return this._settleCall(entry, e);
        }
        if (typeof r === 'number') {
          if (r === EAGAIN) {
            setTimeout(start, wait);
            wait = Math.min(wait * 2, RETRY_MAX_MS);
            return;
          }
          return this._settleCall(entry, ipcError(r, 'ipc_call', this.name));
        }
        entry.call = r;
        this._calls.set(r, entry);
        if (this._calls.size === 1) this._n.watchCalls(true);
      };
      start();
    });
  }

  _settleCall(entry, err, reply) {
    if (entry.timer !== null) clearTimeout(entry.timer);
    entry.timer = null;
    if (err) entry.reject(err);
    else entry.resolve(reply);
  }

  _unwatchCalls() {
    if (this._calls.size === 0 && !this._closed) this._n.watchCalls(false);
  }

  // ipc_call_fd() is readable: a reply may have come for any call in flight.
  _onCallReady(status) {
    for (const [call, entry] of this._calls) {
      const r = status < 0 ? status : this._n.callResult(call);
      if (r === EAGAIN) continue;
      this._calls.delete(call);
      if (typeof r === 'number') this._settleCall(entry, ipcError(r, 'ipc_call', this.name));
      else this._settleCall(entry, null, r);
    }
    this._unwatchCalls();
  }

  serve(handler, opts) {
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    if (this._closed) throw ipcError(EBADF, 'ipc_receive_request', this.name);
    if (this._server) throw ipcError(-16 /* EBUSY */, 'ipc_receive_request', this.name);
    const maxInFlight = (opts && opts.maxInFlight) || DEFAULT_MAX_SERVE_IN_FLIGHT;
    const errorType = opts && opts.errorType !== undefined ? opts.errorType : 0xffffffff;
    const server = {
      handler,
      maxInFlight,
      errorType,
      inFlight: 0,
      watching: false,
      stats: { calls: 0, replies: 0, handlerErrors: 0, replyErrors: 0 },
    };
    this._server = server;
    this._watchRequests(true);
    const self = this;
    return {
      get stats() {
        return { ...server.stats, inFlight: server.inFlight };
      },
      close() {
        if (self._server !== server) return;
        self._server = null;
        self._watchRequests(false);
      },
    };
  }

  _watchRequests(on) {
    const s = this._server;
    const want = on && !this._closed && s !== null && s.inFlight < s.maxInFlight;
    if (s === null) {
      this._n.watchRequests(false);
      return;
    }
    if (want === s.watching) return;
    s.watching = want;
    this._n.watchRequests(want); // throws EBADF for an id that is not the creator's
  }

  _onRequest(status) {
    const s = this._server;
    if (s === null || this._closed) return;
    if (status < 0) {
      this.emit('error', ipcError(status, 'uv_poll', this.name));
      return;
    }
    for (let i = 0; i < 64 && s.inFlight < s.maxInFlight; i++) {
      const req = this._n.takeRequest();
      if (typeof req === 'number') {
        if (req !== EAGAIN) this.emit('error', ipcError(req, 'ipc_receive_request', this.name));
        break;
      }
      s.stats.calls++;
      s.inFlight++;
      const call = req.call;
      delete req.call;
      let result;
      try {
        result = Promise.resolve(s.handler(req));
      } catch (e) {
        result = Promise.reject(e);
      }
      result.then(
        (rep) => this._reply(s, call, req, rep),
        (err) => {
          s.stats.handlerErrors++;
          const text = Buffer.from(String((err && err.message) || err)).subarray(0, IPC_MAX_PAYLOAD);
          this._reply(s, call, req, { type: s.errorType, payload: text });
        },
      );
    }
    this._watchRequests(true);
  }

  _reply(s, call, req, rep) {
    s.inFlight--;
    if (this._closed) return;
    let payload = rep;
    let type = req.type;
    let priority = 0;
    if (rep === undefined || rep === null) payload = Buffer.alloc(0);
    else if (typeof rep === 'object' && !Buffer.isBuffer(rep) && !ArrayBuffer.isView(rep) && !(rep instanceof ArrayBuffer)) {
      payload = rep.payload === undefined ? Buffer.alloc(0) : rep.payload;
      if (rep.type !== undefined) type = rep.type;
      if (rep.priority !== undefined) priority = rep.priority;
    }
    let rc;
    try {
      rc = this._n.reply(call, payload, type, priority);
    } catch (e) {
      rc = native.constants.EMSGSIZE;
      s.stats.handlerErrors++;
      this._n.reply(call, Buffer.from(String(e.message)).subarray(0, IPC_MAX_PAYLOAD), s.errorType, 0);
    }
    if (rc < 0) s.stats.replyErrors++; // the caller died or gave up: it costs us nothing
    else s.stats.replies++;
    if (this._server === s) this._watchRequests(true);
  }

  // ---- the rest

  info() {
    if (this._closed) throw ipcError(EBADF, 'ipc_channel_info', this.name);
    return this._n.info();
  }

  stats() {
    return {
      ...this._stats,
      queued: this._queued(),
      pendingSends: this._pending.length,
      callsInFlight: this._calls.size,
    };
  }

  close() {
    if (this._closed) return;
    this._closed = true;
    this._server = null;
    if (this._retryTimer !== null) {
      if (this._retryImmediate) clearImmediate(this._retryTimer);
      else clearTimeout(this._retryTimer);
      this._retryTimer = null;
    }
    this._n.close();
    this._watching = false;
    const err = ipcError(EBADF, 'ipc_close_channel', this.name);
    for (const p of this._pending.splice(0)) p.reject(err);
    const calls = [...this._calls.values()];
    this._calls.clear();
    for (const c of calls) this._settleCall(c, ipcError(EBADF, 'ipc_call', this.name));
    const ws = this._waiters;
    this._waiters = [];
    for (const w of ws) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(err);
    }
    this.emit('close');
  }
}

function createChannel(name, opts = {}) {
  if (typeof name !== 'string') throw new TypeError('name must be a string');
  const creatorMode = modeBits(opts.creatorMode, 'creatorMode');
  const rw = creatorMode & (IPC_MODE_READ | IPC_MODE_WRITE) || IPC_MODE_READ | IPC_MODE_WRITE;
  const handle = native.create(
    name,
    typeNumber(opts.type, 'type'),
    opts.bufferSize || 0,
    opts.mode || 0,
    rw | IPC_MODE_NONBLOCK,
    overflowNumber(opts.overflow),
    opts.evictAfterMs || 0,
  );
  return new Channel(handle, name, {
    canRead: (rw & IPC_MODE_READ) !== 0,
    nonblock: (creatorMode & IPC_MODE_NONBLOCK) !== 0 || opts.nonblock === true,
    creator: true,
    highWaterMark: opts.highWaterMark,
    maxPendingSends: opts.maxPendingSends,
  });
}

function openChannel(name, opts = {}) {
  if (typeof name !== 'string') throw new TypeError('name must be a string');
  let read = opts.read;
  let write = opts.write;
  if (read === undefined && write === undefined) {
    read = true;
    write = true;
  }
  const mode = (read ? IPC_MODE_READ : 0) | (write ? IPC_MODE_WRITE : 0);
  const handle = native.open(name, mode | IPC_MODE_NONBLOCK);
  return new Channel(handle, name, {
    canRead: !!read,
    nonblock: opts.nonblock === true,
    creator: false,
    highWaterMark: opts.highWaterMark,
    maxPendingSends: opts.maxPendingSends,
  });
}

module.exports = {
  createChannel,
  openChannel,
  Channel,
  IPC_TYPE_SOCKET,
  IPC_TYPE_PIPE,
  IPC_TYPE_QUEUE,
  IPC_MODE_READ,
  IPC_MODE_WRITE,
  IPC_MODE_NONBLOCK,
  IPC_MAX_PAYLOAD,
  IPC_OVERFLOW_BLOCK: C.IPC_OVERFLOW_BLOCK,
  IPC_OVERFLOW_EVICT: C.IPC_OVERFLOW_EVICT,
  IPC_TRANSPORT_SHM: C.IPC_TRANSPORT_SHM,
  IPC_TRANSPORT_SOCKET: C.IPC_TRANSPORT_SOCKET,
  IPC_TRANSPORT_PIPE: C.IPC_TRANSPORT_PIPE,
  IPC_BUFFER_DEFAULT: C.IPC_BUFFER_DEFAULT,
  IPC_BUFFER_MIN: C.IPC_BUFFER_MIN,
  IPC_BUFFER_MAX: C.IPC_BUFFER_MAX,
};
