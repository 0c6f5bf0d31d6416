// Types of @freeworld/ipc/system/logd-client (logd-client.js).
import { EventBus, EventManager } from '../events';

export type Level = 'emerg' | 'alert' | 'crit' | 'err' | 'error' | 'warning' | 'warn' | 'notice' | 'info' | 'debug' | number;

export interface LogdClientOptions {
  /** Default 'logd'. */
  channel?: string;
  /** Messages waiting for logd (default 4096); the oldest records are dropped past it. */
  maxQueue?: number;
  /** How often to try logd again while it is away (ms, default 200). */
  retryMs?: number;
  /** Bound on the HELLO call (ms, default 2000). */
  callTimeoutMs?: number;
  /** Also forward events that travelled on the bus (logd logs those itself unless run with --no-events). Default false. */
  forwardBusEvents?: boolean;
}

export interface LogdClientStats {
  logged: number;
  sent: number;
  dropped: number;
  reconnects: number;
  errors: number;
  eventsForwarded: number;
}

export declare class LogdClient {
  constructor(options?: LogdClientOptions);
  readonly stats: LogdClientStats;
  readonly queued: number;
  /** Forwards the manager's security, system and error events to logd (starting it on eventBus). */
  init(eventManager?: EventManager | null, eventBus?: EventBus | null): this;
  debug(tag: string, msg: string): void;
  info(tag: string, msg: string): void;
  notice(tag: string, msg: string): void;
  warn(tag: string, msg: string): void;
  error(tag: string, msg: string): void;
  crit(tag: string, msg: string): void;
  log(level: Level, tag: string, msg: string): void;
  /** true once logd has written every record this client sent; false after timeout ms. */
  flush(options?: { timeout?: number }): Promise<boolean>;
  close(): void;
}

/** The process's one client; options apply when it is first made. */
export function getLogdClient(options?: LogdClientOptions): LogdClient;
export function encodeRecord(level: number, tag: string, text: string): Buffer[];
export const RECORD_TYPE: 0x4c474431;
