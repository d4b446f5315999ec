#!/usr/bin/env node
// Harness self-measurement: cold start of serve.mjs (spawn -> first response, with and without
// the base snapshot) and warm in-process fetch latency for a trivial handler.
//
//   node --experimental-wasm-stack-switching tests/workers_harness/bench.mjs [--bundle DIR --env FILE --path /hello] [--runs 3] [--requests 500]
//
// Without --bundle it uses the self-test toy bundle (needs pip once for the SDK).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { loadWorker } from './index.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { values: a } = parseArgs({ options: {
  bundle: { type: 'string' }, env: { type: 'string' }, path: { type: 'string', default: '/hello' },
  runs: { type: 'string', default: '3' }, requests: { type: 'string', default: '500' },
} });

let { bundle, env } = a;
if (!bundle) {
  const { makeToyBundle, TOY_ENV } = await import('./selftest/toy_bundle.mjs');
  bundle = makeToyBundle('toy');
  env = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'harness-bench-')), 'env.json');
  fs.writeFileSync(env, JSON.stringify(TOY_ENV));
}

async function coldStart(snapshot) {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--experimental-wasm-stack-switching', path.join(HERE, 'serve.mjs'),
    '--bundle', bundle, '--env', env, '--snapshot', snapshot], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const line = await new Promise((res, rej) => {
    readline.createInterface({ input: child.stdout }).once('line', res);
    child.once('exit', (c) => rej(new Error(`serve exited ${c}: ${err}`)));
  });
  const r = await fetch(`${JSON.parse(line).url}${a.path}`);
  await r.arrayBuffer();
  const ms = performance.now() - t0;
  child.kill('SIGTERM');
  await new Promise((res) => child.once('exit', res));
  return { ms, detail: (err.match(/loaded in .*/) ?? [''])[0] };
}

const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
for (const snap of ['auto', 'off']) {
  for (let i = 0; i < Number(a.runs); i++) {
    const { ms, detail } = await coldStart(snap);
    console.log(`cold start (snapshot ${snap}) run ${i + 1}: ${Math.round(ms)} ms to first response — ${detail}`);
  }
}

const worker = await loadWorker({ bundleDir: bundle, envFile: env });
const once = async () => {
  const { response, waitUntil } = await worker.fetch(new Request(`http://bench.test${a.path}`), { colo: 'LOCAL' });
  await response.arrayBuffer();
  await waitUntil;
};
for (let i = 0; i < 50; i++) await once();
const lat = [];
for (let i = 0; i < Number(a.requests); i++) {
  const t = performance.now();
  await once();
  lat.push(performance.now() - t);
}
lat.sort((x, y) => x - y);
console.log(`in-process ${a.path}: p50 ${pct(lat, 50).toFixed(3)} ms, p90 ${pct(lat, 90).toFixed(3)} ms, p99 ${pct(lat, 99).toFixed(3)} ms (${lat.length} requests)`);
worker.close();
