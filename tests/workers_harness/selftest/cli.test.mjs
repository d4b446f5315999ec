// serve.mjs and run_python.mjs as the lead's tests use them: separate processes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { makeToyBundle, TOY_ENV } from './toy_bundle.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SERVE = path.join(HERE, '..', 'serve.mjs');
const RUN_PYTHON = path.join(HERE, '..', 'run_python.mjs');
const NODE_ARGS = ['--experimental-wasm-stack-switching'];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'harness-cli-'));
const envFile = path.join(tmp, 'env.json');
fs.writeFileSync(envFile, JSON.stringify(TOY_ENV));
const bundle = makeToyBundle('toy');
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function run(script, args) {
  const child = spawn(process.execPath, [...NODE_ARGS, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, exited, stderr: () => stderr };
}

function firstLine(stream) {
  const rl = readline.createInterface({ input: stream });
  return new Promise((resolve, reject) => {
    rl.once('line', (l) => { resolve(l); });
    rl.once('close', () => reject(new Error('stdout closed before the ready line')));
  });
}

test('serve.mjs: ready line, HTTP, control endpoints, clean SIGTERM', async () => {
  const t0 = performance.now();
  const p = run(SERVE, ['--bundle', bundle, '--env', envFile, '--port', '0']);
  try {
    await serveChecks(p, t0);
  } finally {
    p.child.kill('SIGKILL');  // no-op once it has exited; keeps a failed test from hanging
  }
});

async function serveChecks(p, t0) {
  const extra = [];
  const stdoutClosed = new Promise((r) => p.child.stdout.once('close', r));
  const line = await firstLine(p.child.stdout);
  p.child.stdout.on('data', (d) => extra.push(String(d)));
  const ready = JSON.parse(line);
  assert.deepEqual(Object.keys(ready).sort(), ['control', 'url']);
  assert.match(ready.url, /^http:\/\/127\.0\.0\.1:\d+$/);

  const hello = await fetch(`${ready.url}/hello`);
  assert.equal(await hello.text(), 'hello');
  const firstResponseMs = performance.now() - t0;
  process.stderr.write(`# serve.mjs: first response ${Math.round(firstResponseMs)} ms after spawn\n`);

  const cf = await (await fetch(`${ready.url}/cf`)).json();
  assert.deepEqual(cf, { colo: 'LOCAL', country: 'XX', ip: '127.0.0.1' });
  const cookies = await fetch(`${ready.url}/cookies`);
  assert.deepEqual(cookies.headers.getSetCookie(), ['a=1', 'b=2']);
  const echo = await fetch(`${ready.url}/echo`, { method: 'POST', body: 'x'.repeat(100_000) });
  assert.equal((await echo.text()).length, 100_000);

  assert.equal((await (await fetch(`${ready.url}/do/incr?n=4`)).json()).count, 4);
  const setFault = (mode) => fetch(`${ready.url.replace(/:\d+$/, '')}:${new URL(ready.control).port}/faults`, {
    method: 'POST', body: JSON.stringify({ binding: 'COUNTER', mode }),
  });
  assert.equal((await setFault('throw')).status, 200);
  assert.equal((await fetch(`${ready.url}/do/incr`)).status, 503);
  assert.equal((await setFault('hang')).status, 200);
  assert.equal((await fetch(`${ready.url}/do/incr?timeout=0.1`)).status, 504);
  assert.equal((await setFault('ok')).status, 200);
  assert.equal((await setFault('sideways')).status, 400);

  await (await fetch(`${ready.url}/wait?delay=0.05`)).text();
  // POST /idle answers once every request's waitUntil work has settled (and prints the marker).
  const idle = await fetch(`${ready.control}/idle`, { method: 'POST', body: JSON.stringify({ marker: 'selftest' }) });
  assert.deepEqual(await idle.json(), { marker: 'selftest' });
  const stats = await (await fetch(`${ready.control}/stats`)).json();
  assert.equal(stats.requests, 8);
  assert.equal(stats.wait_until_pending, 0);
  assert.equal(stats.wait_until_done, 2);
  assert.deepEqual(stats.do_instances, { COUNTER: 1 });

  p.child.kill('SIGTERM');
  const { code } = await p.exited;
  assert.equal(code, 0);
  await stdoutClosed;
  assert.equal(extra.join(''), '[harness] idle selftest\n', 'stdout carries only the ready line and the idle marker');
  assert.match(p.stderr(), /loaded in \d+ ms/);
  process.stderr.write(`# ${p.stderr().match(/\[serve\] loaded.*/)[0]}\n`);
}

test('serve.mjs: a load error is one stderr line and a non-zero exit', async () => {
  const bad = makeToyBundle('bad_toplevel');
  const p = run(SERVE, ['--bundle', bad, '--env', envFile]);
  let out = '';
  p.child.stdout.on('data', (d) => { out += d; });
  const { code } = await p.exited;
  assert.notEqual(code, 0);
  assert.equal(out, '');
  const lastLine = p.stderr().trim().split('\n').pop();
  assert.match(lastLine, /Disallowed operation called within global scope/);
});

test('run_python.mjs: runs a script with the bundle on sys.path and awaits main()', async () => {
  const script = path.join(tmp, 'bench.py');
  fs.writeFileSync(script, [
    'import sys, asyncio',
    'import entry',
    'from workers import env',
    'print("args", sys.argv[1:], entry.GREETING, env.API_HOST)',
    'async def main():',
    '    await asyncio.sleep(0.01)',
    '    print("main done")',
    '    raise SystemExit(3)',
  ].join('\n'));
  const p = run(RUN_PYTHON, ['--bundle', bundle, '--env', envFile, script, 'x', '--y']);
  let out = '';
  p.child.stdout.on('data', (d) => { out += d; });
  const { code } = await p.exited;
  assert.equal(out, "args ['x', '--y'] hello api.example.test\nmain done\n");
  assert.equal(code, 3);
});
