// In-process tests of host.mjs + bindings.mjs against the toy bundle (fixtures/toy/entry.py).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadWorker } from '../index.mjs';
import { makeToyBundle, TOY_ENV } from './toy_bundle.mjs';
import { get, startUpstream, timeout, until } from './helpers.mjs';

let worker;
let upstream;

before(async () => {
  upstream = await startUpstream();
  worker = await loadWorker({ bundleDir: makeToyBundle('toy'), envDescription: TOY_ENV });
});
after(() => { worker?.close(); upstream?.close(); });

test('entrypoints are introspected', () => {
  assert.deepEqual(worker.entrypoints.workerEntrypoints, ['Default']);
  assert.deepEqual(worker.entrypoints.durableObjects, ['Counter']);
  assert.equal(worker.compatFlags.enable_python_external_sdk, true);
  assert.equal(worker.compatFlags.python_workers_314, true);
});

test('trivial fetch', async () => {
  const r = await get(worker, '/hello');
  assert.equal(r.status, 200);
  assert.equal(r.text, 'hello');
});

test('vars and secrets are plain strings', async () => {
  assert.deepEqual((await get(worker, '/env')).json, { var: 'api.example.test', secret: 's3cret' });
});

test('request.cf reaches Python', async () => {
  const r = await get(worker, '/cf', { headers: { 'cf-connecting-ip': '203.0.113.9' } });
  assert.deepEqual(r.json, { colo: 'LOCAL', country: 'XX', ip: '203.0.113.9' });
});

test('entropy is allowed inside a handler', async () => {
  const r = await get(worker, '/random');
  assert.match(r.text, /^[0-9a-f]{16}$/);
});

test('request body and multiple Set-Cookie headers', async () => {
  const echo = await get(worker, '/echo', { method: 'POST', body: 'payload' });
  assert.equal(echo.text, 'payload');
  assert.equal(echo.headers.get('x-method'), 'POST');
  const c = await get(worker, '/cookies');
  assert.deepEqual(c.headers.getSetCookie(), ['a=1', 'b=2']);
});

test('waitUntil work (ctx.waitUntil and module-level wait_until) completes after the response', async () => {
  const before = (await get(worker, '/wait-status')).json.done;
  // The work waits on a latch: it is still pending when the response is out, however slow
  // the machine, until /release opens the latch.
  const r = await get(worker, '/wait?latch=1');
  assert.equal(r.text, 'scheduled');
  assert.equal((await get(worker, '/wait-status')).json.done, before, 'work must still be pending when the response is out');
  assert.equal(worker.stats().wait_until_pending, 2);
  assert.equal((await get(worker, '/release')).text, 'released');
  await r.waitUntil;
  assert.equal((await get(worker, '/wait-status')).json.done, before + 2);
  assert.equal(worker.stats().wait_until_pending, 0);
});

test('upstream js.fetch works, and AbortSignal.timeout cancels a slow one', async () => {
  const ok = await get(worker, `/upstream?url=${encodeURIComponent(`${upstream.url}/ok`)}`);
  assert.deepEqual(ok.json, { status: 200, body: 'upstream:/ok' });
  // Answered 504 with the abort's error, not the upstream's 200 (which comes after 2 s).
  const slow = await get(worker, `/upstream?url=${encodeURIComponent(`${upstream.url}/slow?ms=2000`)}&timeout_ms=100`);
  assert.equal(slow.status, 504);
  assert.match(slow.json.error, /TimeoutError|abort/i);
});

test('Durable Object: fetch, RPC returning a dict, WITHOUT ROWID table, one instance per name', async () => {
  assert.equal((await get(worker, '/do/fetch?name=a')).text, 'do:/ping:a');
  assert.deepEqual((await get(worker, '/do/incr?name=a&n=2')).json, { count: 2, rows: 1, id: 'a' });
  assert.deepEqual((await get(worker, '/do/incr?name=a&n=3')).json, { count: 5, rows: 1, id: 'a' });
  assert.deepEqual((await get(worker, '/do/incr?name=b&n=1')).json, { count: 1, rows: 1, id: 'b' });
  assert.ok(worker.stats().do_instances.COUNTER >= 2);
});

test('streamed request body forwarded upstream with the SDK fetch (duplex shim)', async () => {
  const r = await get(worker, `/proxy-post?url=${encodeURIComponent(`${upstream.url}/count`)}`, {
    method: 'POST', body: new Blob(['y'.repeat(50_000)]).stream(), duplex: 'half',
  });
  assert.equal(r.text, 'POST 50000 bytes');
});

test('Durable Object: alarms fire via setTimeout; blockConcurrencyWhile ran in the constructor', async () => {
  // A minute ahead: certainly still pending when asked; then moved to 50 ms ahead (a new
  // alarm replaces the old one) and awaited.
  assert.deepEqual((await get(worker, '/do/alarm?name=al&ms=60000')).json, { scheduled: true, initialised: true });
  assert.deepEqual((await get(worker, '/do/alarms?name=al')).json, { alarms: 0, pending: true });
  assert.deepEqual((await get(worker, '/do/alarm?name=al&ms=50')).json, { scheduled: true, initialised: true });
  const fired = await until(async () => {
    const state = (await get(worker, '/do/alarms?name=al')).json;
    return state.alarms > 0 && !state.pending && state;
  }, 'the alarm to fire');
  assert.deepEqual(fired, { alarms: 1, pending: false });
});

test('Durable Object: an exception in an RPC method reaches the caller serialised, not as the same object', async () => {
  const r = await get(worker, '/do/explode?name=x');
  assert.equal(r.status, 503);
  assert.notEqual(r.json.error, 'ValueError');
  assert.match(r.json.message, /ValueError: kaput/);
});

test('Durable Object: transactionSync rolls back and rethrows', async () => {
  await get(worker, '/do/incr?name=tx&n=7');
  assert.deepEqual((await get(worker, '/do/rollback?name=tx')).json, { before: 7, after: 7, raised: 'ValueError' });
});

test('Durable Object: BLOB round trip (ArrayBuffer in JS, memoryview in Python)', async () => {
  const r = (await get(worker, '/do/blob')).json;
  assert.equal(r.hex, '00ff10');
  assert.equal(r.sqlite_type, 'blob');
});

test('Durable Object: async KV API', async () => {
  assert.deepEqual((await get(worker, '/do/kv?name=kv')).json, { got: '{"a": 1}', keys: ['k1'] });
});

test('storage cursor API from JS (toArray, one, raw, columnNames, rowsRead/rowsWritten)', async () => {
  const ns = worker.env.COUNTER;
  const { DurableObjectStorage, initSql } = await import('../do_storage.mjs');
  const s = new DurableObjectStorage(await initSql());
  s.sql.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER, b BLOB) WITHOUT ROWID');
  const w = s.sql.exec('INSERT INTO t VALUES (?, ?, ?), (?, ?, ?)', 'a', 1, new Uint8Array([1, 2]), 'b', 2, null);
  assert.equal(w.rowsWritten, 2);
  const c = s.sql.exec('SELECT k, v, b FROM t ORDER BY k');
  assert.deepEqual(c.columnNames, ['k', 'v', 'b']);
  const rows = c.toArray();
  assert.equal(rows.length, 2);
  assert.ok(rows[0].b instanceof ArrayBuffer);
  assert.deepEqual([...new Uint8Array(rows[0].b)], [1, 2]);
  assert.equal(c.rowsRead, 2);
  assert.deepEqual(s.sql.exec("SELECT v FROM t WHERE k = 'b'").one(), { v: 2 });
  assert.deepEqual(s.sql.exec('SELECT k, v FROM t ORDER BY k').raw().toArray(), [['a', 1], ['b', 2]]);
  assert.throws(() => s.sql.exec('SELECT k FROM t').one(), /exactly one/);
  assert.throws(() => s.transactionSync(() => { s.sql.exec("DELETE FROM t"); throw new Error('x'); }), /x/);
  assert.equal(s.sql.exec('SELECT count(*) AS n FROM t').one().n, 2);
  assert.equal(ns.constructor.name, 'DurableObjectNamespace');
  assert.equal(s.constructor.name, 'DurableObjectStorage');
  s.close();
});

test('Durable Object fault modes: throw, hang, ok', async () => {
  worker.setFault('COUNTER', 'throw');
  const thrown = await get(worker, '/do/incr?name=f');
  assert.equal(thrown.status, 503);
  assert.match(thrown.json.message, /Network connection lost/);

  worker.setFault('COUNTER', 'hang');
  // The toy bounds the call with asyncio.wait_for, as the gateway should: its timeout fired.
  const hung = await get(worker, '/do/incr?name=f&timeout=0.2');
  assert.equal(hung.status, 504);
  assert.deepEqual(hung.json, { error: 'TimeoutError' });
  // Unbounded, the request never finishes.
  assert.equal(await Promise.race([get(worker, '/do/fetch?name=f'), timeout(300)]), 'timeout');

  worker.setFault('COUNTER', 'ok');
  assert.equal((await get(worker, '/do/incr?name=f&n=1')).json.count, 1);
  assert.throws(() => worker.setFault('COUNTER', 'weird'), /fault mode/);
  assert.throws(() => worker.setFault('NOPE', 'ok'), /no Durable Object binding/);
});
