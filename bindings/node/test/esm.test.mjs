// The package loads through import (ESM) and through require, as one module.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const dir = mkdtempSync('/tmp/fwipc-');
process.env.FWIPC_RUNTIME_DIR = dir;
process.on('exit', () => {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 }); // best effort: the registry may be exiting
  } catch {}
});

const ipc = await import('../index.mjs');
const { createChannel, openChannel, IPC_TYPE_QUEUE } = ipc;
const require = createRequire(import.meta.url);

test('import and require give the same API', () => {
  const cjs = require('..');
  assert.equal(typeof createChannel, 'function');
  assert.equal(typeof openChannel, 'function');
  assert.equal(IPC_TYPE_QUEUE, 2);
  assert.equal(ipc.default, cjs);
  assert.equal(createChannel, cjs.createChannel);
  assert.equal(ipc.IPC_TYPE_SOCKET, 0);
  assert.equal(ipc.IPC_TYPE_PIPE, 1);
  // index.mjs lists the names (ESM exports are static): every export of index.js is there.
  const esmNames = Object.keys(ipc).filter((k) => k !== 'default').sort();
  assert.deepEqual(esmNames, Object.keys(cjs).sort());
  for (const k of esmNames) assert.equal(ipc[k], cjs[k], k);
});

test('a channel made through import works', async () => {
  const ch = createChannel(`esm-${process.pid}`);
  const w = openChannel(ch.name, { write: true });
  await w.send('from ESM');
  const m = await ch.receive({ timeout: 5000 });
  assert.equal(m.payload.toString(), 'from ESM');
  assert.equal(m.sender, process.pid);
  w.close();
  ch.close();
});
