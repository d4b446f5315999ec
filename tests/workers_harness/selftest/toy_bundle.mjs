// Builds toy bundles for the self-tests: fixtures/<name>/entry.py plus python_modules/ holding
// workers-runtime-sdk 1.9.5 from `pip install --no-deps --target` (cached once per machine under
// node_modules/.cache so repeated test runs do not hit PyPI).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..', '..');
export const SDK_VERSION = '1.9.5';
const SDK_CACHE = path.join(REPO, 'node_modules', '.cache', 'gpushield-harness', `workers-runtime-sdk-${SDK_VERSION}`);

function pip() {
  const venvPip = path.join(REPO, '.venv', 'bin', 'pip');
  return fs.existsSync(venvPip) ? [venvPip, []] : ['python3', ['-m', 'pip']];
}

export function sdkDir() {
  if (!fs.existsSync(path.join(SDK_CACHE, 'workers', '__init__.py'))) {
    const tmp = `${SDK_CACHE}.${process.pid}.tmp`;
    const [cmd, pre] = pip();
    execFileSync(cmd, [...pre, 'install', '--quiet', '--no-deps', '--no-compile', '--target', tmp,
      `workers-runtime-sdk==${SDK_VERSION}`], { stdio: ['ignore', 'ignore', 'inherit'] });
    try { fs.renameSync(tmp, SDK_CACHE); } catch { fs.rmSync(tmp, { recursive: true, force: true }); }
  }
  return SDK_CACHE;
}

/** Copy fixture `name` and the SDK into a fresh temp dir; returns the bundle dir. */
export function makeToyBundle(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `harness-${name}-`));
  fs.cpSync(path.join(HERE, 'fixtures', name), dir, { recursive: true });
  fs.cpSync(sdkDir(), path.join(dir, 'python_modules'), { recursive: true });
  return dir;
}

export const TOY_ENV = {
  compatibility_date: '2026-09-08',
  compatibility_flags: ['python_workers'],
  vars: { API_HOST: 'api.example.test' },
  secrets: { SIGNING_SECRET: 's3cret' },
  durable_objects: { COUNTER: 'Counter' },
};
