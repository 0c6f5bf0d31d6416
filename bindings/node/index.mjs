// ESM entry: the same module as index.js (one addon instance per process). ESM exports are
// static, so the names are listed; test/esm.test.mjs checks the list against index.js.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const ipc = require('./index.js');

export default ipc;
export const {
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
  IPC_OVERFLOW_BLOCK,
  IPC_OVERFLOW_EVICT,
  IPC_TRANSPORT_SHM,
  IPC_TRANSPORT_SOCKET,
  IPC_TRANSPORT_PIPE,
  IPC_BUFFER_DEFAULT,
  IPC_BUFFER_MIN,
  IPC_BUFFER_MAX,
} = ipc;
