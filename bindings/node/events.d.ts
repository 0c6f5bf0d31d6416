// Types of @freeworld/ipc/events (events.js).
import { EventEmitter } from 'events';

export const WIRE_TYPE: 0x45565401;
export const CHANNEL: 'events';

export interface BusEvent<T = unknown> {
  topic: string;
  data: T;
  /** The emitter's PID, stamped by the runtime. */
  sender: number;
  /** > 0: this bus lost its place that many times before this event (events may be missing). */
  gap: number;
  /** true: emitted in this process while there was no event bus; only this process saw it. */
  local?: boolean;
}

export type Listener<T = any> = (data: T, event: BusEvent<T>) => void;

export interface EventBusOptions {
  /** Default 'events'. */
  channel?: string;
  /** How often to look for eventsd while it is missing (ms, default 200). */
  retryMs?: number;
  /** How long an emit may wait for room in a full channel before it is dropped (ms, default 1000). */
  emitTimeoutMs?: number;
  /** Emits that may wait for room at once (default 1024). */
  maxPendingEmits?: number;
}

export interface EventBusStats {
  emitted: number;
  local: number;
  dropped: number;
  received: number;
  malformed: number;
  foreign: number;
  gaps: number;
  handlerErrors: number;
}

export declare class EventBus {
  constructor(options?: EventBusOptions);
  readonly stats: EventBusStats;
  /** Patterns: `*` is one segment, a last `>` one or more. Throws EINVAL for a bad pattern. */
  on<T = any>(pattern: string, fn: Listener<T>): this;
  once<T = any>(pattern: string, fn: Listener<T>): this;
  off(pattern: string, fn?: Listener): this;
  removeAllListeners(): this;
  listenerCount(): number;
  /** true: sent (or queued for room); false: no event bus, only this process's listeners got it.
   * Throws EINVAL (topic, JSON) or EMSGSIZE (topic + 1 + JSON over 512 bytes). */
  emit(topic: string, data?: unknown): boolean;
  close(): void;
}

export interface LogRecord {
  level: 'err' | 'notice' | 'info';
  tag: 'error' | 'security' | 'system';
  event: string;
  data: unknown;
  pid: number;
}

export declare class EventManager extends EventEmitter {
  constructor(bus?: EventBus);
  bus: EventBus | null;
  readonly running: boolean;
  forwarded: number;
  /** 'security' | 'system' | 'error' | null */
  classify(topic: string): string | null;
  start(bus?: EventBus): this;
  stop(): void;
  /** Returns a function that removes the sink. */
  addSink(sink: (record: LogRecord, event: BusEvent) => void): () => void;
  on(event: 'event', listener: (record: LogRecord, event: BusEvent) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** Throws EINVAL when the pattern or the topic breaks the grammar. */
export function match(pattern: string, topic: string): boolean;
export function isValidTopic(topic: string): boolean;
export function isValidPattern(pattern: string): boolean;
export function toLogRecord(event: BusEvent): LogRecord | null;
export function encode(topic: string, data: unknown): Buffer;
export function decode(payload: Buffer): { topic: string; data: unknown } | null;
