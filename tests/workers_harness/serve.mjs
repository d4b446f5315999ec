#!/usr/bin/env node
// Serve a Python Worker bundle over HTTP on 127.0.0.1, plus a small control server for tests.
//
//   node --experimental-wasm-stack-switching tests/workers_harness/serve.mjs \
//        --bundle DIR --env FILE.json [--port 0] [--control-port 0] [--snapshot auto|off] [--no-strict]
//        [--cf '{"country":"DE"}']   (merged over the default request.cf {country:'XX', colo:'LOCAL', asn:0})
//
// stdout carries exactly one JSON line once ready: {"url": ..., "control": ...}. Everything else
// (Python print output, timings, errors) goes to stderr. Load errors exit non-zero.
// Control server: POST /faults {"binding","mode"}; POST /clock {"offset_s"}; GET /stats;
// POST /idle {"marker"} waits for every request's waitUntil work, then prints the marker on
// stdout after everything that work printed (so a reader of the log knows it has all of it).
import http from 'node:http';
import { parseArgs } from 'node:util';
import { createPythonWorker } from './host.mjs';
import { buildEnv, readEnvDescription } from './bindings.mjs';
import { toWebRequest, sendWebResponse, DEFAULT_CF } from './http_bridge.mjs';

const log = (msg) => process.stderr.write(`[serve] ${msg}\n`);

// The isolate's wall clock, movable from the control server (POST /clock) so tests can jump
// past a grace window or an expiry without sleeping. Python's time.time() reads Date.now().
const realDateNow = Date.now.bind(Date);
let clockOffsetMs = 0;
Date.now = () => realDateNow() + clockOffsetMs;

function fail(msg, detail) {
  if (detail) process.stderr.write(`${detail.trimEnd()}\n`);
  process.stderr.write(`${msg.replace(/\s+/g, ' ').trim()}\n`);
  process.exit(1);
}

const { values: args } = parseArgs({
  options: {
    bundle: { type: 'string' },
    env: { type: 'string' },
    port: { type: 'string', default: '0' },
    'control-port': { type: 'string', default: '0' },
    snapshot: { type: 'string', default: 'auto' },
    'no-strict': { type: 'boolean', default: false },
    cf: { type: 'string' },
  },
});
if (!args.bundle) fail('serve.mjs: --bundle DIR is required');
let cf = DEFAULT_CF;
try {
  if (args.cf) cf = { ...DEFAULT_CF, ...JSON.parse(args.cf) };
} catch (err) {
  fail(`serve.mjs: --cf is not JSON: ${err.message}`);
}

// workerd logs a stray rejection and keeps serving; Node 20 would exit. Log it instead.
process.on('unhandledRejection', (err) => {
  process.stderr.write(`[serve] unhandled rejection: ${err?.stack ?? err}\n`);
});

const t0 = performance.now();
let worker;
try {
  const desc = args.env ? readEnvDescription(args.env) : {};
  const env = await buildEnv(desc);
  worker = await createPythonWorker({
    bundleDir: args.bundle,
    env,
    compatibilityDate: desc.compatibility_date ?? '2026-09-08',
    compatFlags: desc.compatibility_flags ?? [],
    snapshot: args.snapshot,
    strictTopLevel: !args['no-strict'],
  });
} catch (err) {
  fail(`serve.mjs: worker failed to load: ${err.message}`, err.pythonTraceback);
}
const fmt = (ms) => `${Math.round(ms)} ms`;
log(`loaded in ${fmt(performance.now() - t0)} (` + Object.entries(worker.timings).map(([k, v]) => (k === 'pycHits' ? `${v} cached pycs` : `${k} ${fmt(v)}`)).join(', ') +
  `${worker.fromSnapshot ? ', from snapshot' : ''})`);

const inflight = new Set();

const server = http.createServer(async (req, res) => {
  let request;
  try {
    request = toWebRequest(req, { cf });
  } catch (err) {
    res.writeHead(400).end(`bad request: ${err.message}`);
    return;
  }
  try {
    const { response, waitUntil } = await worker.fetch(request);
    // Like workerd, background work continues after the response; we just keep track of it.
    inflight.add(waitUntil);
    waitUntil.finally(() => inflight.delete(waitUntil));
    await sendWebResponse(res, response);
  } catch (err) {
    process.stderr.write(`[serve] uncaught exception in fetch: ${err?.stack ?? err}\n`);
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end('Internal Server Error (uncaught exception in worker)');
    else res.destroy(err);
  }
});
server.keepAliveTimeout = 60_000;

function readJson(req) {
  return new Promise((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { s += c; });
    req.on('end', () => { try { resolve(s ? JSON.parse(s) : {}); } catch (e) { reject(e); } });
    req.on('error', reject);
  });
}

const control = http.createServer(async (req, res) => {
  const json = (status, body) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  try {
    const { pathname } = new URL(req.url, 'http://control');
    if (req.method === 'GET' && pathname === '/stats') return json(200, worker.stats());
    if (req.method === 'POST' && pathname === '/faults') {
      const { binding, mode } = await readJson(req);
      worker.setFault(binding, mode);
      log(`fault mode for ${binding}: ${mode}`);
      return json(200, { binding, mode });
    }
    if (req.method === 'POST' && pathname === '/idle') {
      const { marker } = await readJson(req);
      if (typeof marker !== 'string' || !/^[\w-]{1,64}$/.test(marker)) throw new Error('marker must be a short word');
      while (inflight.size) await Promise.allSettled([...inflight]);
      process.stdout.write(`[harness] idle ${marker}\n`);
      return json(200, { marker });
    }
    if (req.method === 'POST' && pathname === '/clock') {
      const { offset_s: offset } = await readJson(req);
      if (typeof offset !== 'number' || !Number.isFinite(offset)) throw new Error('offset_s must be a number');
      clockOffsetMs = offset * 1000;
      log(`wall clock offset: ${offset} s`);
      return json(200, { offset_s: offset });
    }
    return json(404, { error: `no control route ${req.method} ${pathname}` });
  } catch (err) {
    return json(400, { error: err.message });
  }
});

const listen = (srv, port) => new Promise((resolve, reject) => {
  srv.once('error', reject);
  srv.listen(Number(port), '127.0.0.1', () => resolve(srv.address().port));
});
let port, cport;
try {
  port = await listen(server, args.port);
  cport = await listen(control, args['control-port']);
} catch (err) {
  fail(`serve.mjs: cannot listen: ${err.message}`);
}
process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}`, control: `http://127.0.0.1:${cport}` })}\n`);

let stopping = false;
async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  log(`${signal}: shutting down`);
  server.close();
  control.close();
  server.closeAllConnections?.();
  control.closeAllConnections?.();
  // Give background work a moment to finish, as a real isolate would, then exit regardless.
  await Promise.race([Promise.allSettled([...inflight]), new Promise((r) => setTimeout(r, 2000).unref())]);
  worker.close();
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
