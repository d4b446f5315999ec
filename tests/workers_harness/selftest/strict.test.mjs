// Strict top level: entropy and I/O while the main module is imported fail like workerd's deploy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadWorker } from '../index.mjs';
import { makeToyBundle } from './toy_bundle.mjs';
import { get } from './helpers.mjs';

const DESC = { compatibility_date: '2026-09-08', compatibility_flags: ['python_workers'] };

test('os.urandom at import time is refused', async () => {
  await assert.rejects(
    loadWorker({ bundleDir: makeToyBundle('bad_toplevel'), envDescription: DESC }),
    /Disallowed operation called within global scope/,
  );
});

test('fetch at import time is refused', async () => {
  await assert.rejects(
    loadWorker({ bundleDir: makeToyBundle('bad_fetch_toplevel'), envDescription: DESC }),
    /Disallowed operation called within global scope/,
  );
});

test('strictTopLevel=false allows it, and the guard is lifted after import', async () => {
  const w = await loadWorker({ bundleDir: makeToyBundle('bad_toplevel'), envDescription: DESC, strictTopLevel: false });
  assert.match((await get(w, '/')).text, /^[0-9a-f]{32}$/);
  // Guards stay installed but inactive: entropy works at run time in this process.
  const hex = w.pyodide.runPython('import os, random, secrets; secrets.token_hex(4) + "%d" % random.randint(0, 9) + os.urandom(1).hex()');
  assert.match(hex, /^[0-9a-f]{8}\d[0-9a-f]{2}$/);
  assert.equal(typeof globalThis.crypto.randomUUID(), 'string');
  w.close();
});
