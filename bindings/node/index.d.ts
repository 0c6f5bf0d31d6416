// Types of @freeworld/ipc (index.js / index.mjs).
import { EventEmitter } from 'events';

export const IPC_TYPE_SOCKET: 0;
export const IPC_TYPE_PIPE: 1;
export const IPC_TYPE_QUEUE: 2;
export const IPC_MODE_READ: 1;
export const IPC_MODE_WRITE: 2;
export const IPC_MODE_NONBLOCK: 4;
export const IPC_MAX_PAYLOAD: 512;
export const IPC_OVERFLOW_BLOCK: 0;
export const IPC_OVERFLOW_EVICT: 1;
export const IPC_TRANSPORT_SHM: 0;
export const IPC_TRANSPORT_SOCKET: 1;
export const IPC_TRANSPORT_PIPE: 2;
export const IPC_BUFFER_DEFAULT: number;
export const IPC_BUFFER_MIN: number;
export const IPC_BUFFER_MAX: number;

export type ChannelType = 0 | 1 | 2 | 'queue' | 'socket' | 'pipe';
/** What send() accepts: bytes, or a string sent as UTF-8. At most 512 bytes. */
export type Payload = Buffer | ArrayBufferView | ArrayBuffer | string;

/** An error from the runtime: `code` is the errno name, `errno` its negative number. */
export interface IpcError extends Error {
  code: string; // 'EMSGSIZE' | 'ENOENT' | 'EACCES' | 'EAGAIN' | 'ETIMEDOUT' | 'EPIPE' | 'EBADF' | ...
  errno: number;
  syscall: string;
}

export interface Message {
  type: number;
  size: number;
  /** The sending process's PID, filled in by the runtime (never by the sender). */
  sender: number;
  /** 0: broadcast, else the PID it was addressed to. */
  receiver: number;
  priority: number;
  /** The payload (`size` bytes). It may share memory with other messages of one batch. */
  payload: Buffer;
}

export interface ModeFlags {
  read?: boolean;
  write?: boolean;
}

export interface CreateOptions {
  /** IPC_TYPE_* or its name; default 'queue'. */
  type?: ChannelType;
  /** Ring capacity in bytes (576 per message, rounded to a power of two of slots); 0: default (256 slots). */
  bufferSize?: number;
  /** Permission bits of the channel; default 0o660. */
  mode?: number;
  /** The creator's own access: IPC_MODE_* bits or {read, write}. Without read it is a pure writer. */
  creatorMode?: number | ModeFlags;
  /** 'block' (default) or 'evict' (needs evictAfterMs). */
  overflow?: 'block' | 'evict' | number;
  evictAfterMs?: number;
  /** send() rejects with EAGAIN on a full channel instead of waiting. */
  nonblock?: boolean;
  /** Messages held locally before the channel's descriptor is no longer watched (default 4096). */
  highWaterMark?: number;
  /** Sends that may wait for room at once (default 65536); past it send() rejects ENOBUFS. */
  maxPendingSends?: number;
}

export interface OpenOptions {
  /** Neither given: read and write. */
  read?: boolean;
  write?: boolean;
  /** send() rejects with EAGAIN on a full channel instead of waiting. */
  nonblock?: boolean;
  highWaterMark?: number;
  maxPendingSends?: number;
}

export interface SendOptions {
  type?: number;
  priority?: number;
  /** A PID: only that process receives it. 0 (default): every reader. */
  receiver?: number;
}

export interface ReceiveOptions {
  /** Milliseconds; undefined or < 0: wait forever; 0: only what is already there (else EAGAIN). */
  timeout?: number;
}

export interface CallOptions {
  type?: number;
  priority?: number;
  /** Milliseconds; undefined or < 0: wait forever. Rejects ETIMEDOUT when no reply came. */
  timeout?: number;
}

export interface ChannelInfo {
  name: string;
  type: number;
  transport: number;
  ownerUid: number;
  ownerGid: number;
  mode: number;
  capacity: number;
  creatorPid: number;
  overflow: number;
  evictAfterMs: number;
}

export interface ChannelStats {
  sent: number;
  received: number;
  /** Sends that found the channel full and waited. */
  sendWaits: number;
  sendRetries: number;
  drains: number;
  /** Times receiving paused at the high-water mark. */
  paused: number;
  queued: number;
  pendingSends: number;
  callsInFlight: number;
}

/** What a serve() handler may return: the payload (reply type = the request's), or all fields. */
export type Reply = Payload | { payload?: Payload; type?: number; priority?: number } | undefined | null;

export interface ServeOptions {
  /** Calls handled at once (default 256); more wait in the runtime. */
  maxInFlight?: number;
  /** The reply type sent when the handler throws or rejects (payload: the error's message). Default 0xffffffff. */
  errorType?: number;
}

export interface Server {
  readonly stats: { calls: number; replies: number; handlerErrors: number; replyErrors: number; inFlight: number };
  close(): void;
}

export declare class Channel extends EventEmitter implements AsyncIterable<Message> {
  private constructor();
  readonly name: string;
  readonly closed: boolean;
  /** Resolves once sent; waits (does not fail) while the channel is full, unless nonblock. */
  send(data: Payload, options?: SendOptions): Promise<void>;
  /** Sends now or not at all: true if sent, false if the channel is full; other failures throw. */
  trySend(data: Payload, options?: SendOptions): boolean;
  receive(options?: ReceiveOptions): Promise<Message>;
  /** Ends when the creator has closed (after what it sent) or this channel is closed. */
  [Symbol.asyncIterator](): AsyncIterableIterator<Message>;
  /** Request/reply: sends to the channel's creator and waits for its reply to this call. */
  call(request: Payload, options?: CallOptions): Promise<Message>;
  /** The creator's side of call(). Only the creator's channel can serve; one handler at a time. */
  serve(handler: (request: Message) => Reply | Promise<Reply>, options?: ServeOptions): Server;
  info(): ChannelInfo;
  stats(): ChannelStats;
  /** Idempotent. Waiting sends and receives reject with EBADF. */
  close(): void;

  on(event: 'message', listener: (message: Message) => void): this;
  on(event: 'end', listener: (reason: IpcError) => void): this;
  on(event: 'error', listener: (error: IpcError) => void): this;
  on(event: 'close', listener: () => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'message', listener: (message: Message) => void): this;
  once(event: 'end', listener: (reason: IpcError) => void): this;
  once(event: 'error', listener: (error: IpcError) => void): this;
  once(event: 'close', listener: () => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

export function createChannel(name: string, options?: CreateOptions): Channel;
export function openChannel(name: string, options?: OpenOptions): Channel;
