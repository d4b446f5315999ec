// Loading Pyodide, optionally from a cached base memory snapshot (notes §1.4: loadPyodide is
// nearly all of the cold start; restoring a snapshot cuts it to well under a second).
//
// The base snapshot holds only the interpreter plus stdlib/pyodide modules pre-imported; nothing
// from the bundle and no JS modules (a memory snapshot cannot contain JS references), so one file
// serves every bundle. It is keyed by pyodide and Node versions and rebuilt when unreadable.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, '..', '..');

const { loadPyodide, version: PYODIDE_VERSION } = await import('pyodide');
export { PYODIDE_VERSION };

// Imported before the snapshot is taken (and before strict mode in the no-snapshot path) so their
// import-time work — including seeding `random` — never runs inside a worker's top level.
export const PRELOAD_MODULES = [
  'asyncio', 'json', 'hmac', 'hashlib', 'base64', 'binascii', 'random', 'secrets', 'uuid',
  'datetime', 'time', 're', 'inspect', 'functools', 'dataclasses', 'enum', 'typing',
  'collections', 'contextlib', 'ipaddress', 'urllib.parse', 'http', 'http.client', 'email',
  'email.message', 'email.utils', 'zlib', 'struct', 'math', 'string', 'traceback', 'logging',
  'tomllib', 'site', 'pyodide', 'pyodide.ffi', 'pyodide.code', 'pyodide.http', 'pyodide.webloop',
];

export function hasJspi() {
  return typeof WebAssembly.Suspending === 'function' || typeof WebAssembly.Suspender === 'function';
}

export function defaultSnapshotPath() {
  return path.join(
    REPO_ROOT, 'node_modules', '.cache', 'gpushield-harness',
    `pyodide-${PYODIDE_VERSION}-${process.version}.snap`,
  );
}

function stdio(stdoutTarget) {
  // Raw writers keep Python's own newlines; fd 2 by default so serve.mjs's stdout carries only
  // the ready line.
  const fd = stdoutTarget === 'stdout' ? 1 : 2;
  return {
    stdout: { write: (buf) => { fs.writeSync(fd, buf); return buf.length; } },
    stderr: { write: (buf) => { fs.writeSync(2, buf); return buf.length; } },
  };
}

function preloadCode() {
  return PRELOAD_MODULES.map((m) => `import ${m}`).join('\n');
}

async function buildSnapshot(file) {
  const t0 = performance.now();
  const py = await loadPyodide({ _makeSnapshot: true, checkAPIVersion: true });
  py.runPython(preloadCode());
  const bytes = py.makeMemorySnapshot();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // Write-then-rename: parallel test processes may build at the same time; readers must never see
  // a partial file.
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, file);
  process.stderr.write(
    `[harness] built base snapshot ${path.relative(REPO_ROOT, file)} ` +
    `(${(bytes.length / 1e6).toFixed(1)} MB, ${Math.round(performance.now() - t0)} ms)\n`,
  );
  return bytes;
}

/**
 * Load a Pyodide instance.
 * @param {{snapshot?: 'auto'|'off'|string, stdout?: 'stdout'|'stderr'}} opts
 *   snapshot: 'auto' (default) uses/creates the cache file, 'off' loads normally, any other
 *   string is a snapshot file path (created if missing).
 * @returns {Promise<{pyodide, timings: object, fromSnapshot: boolean}>}
 */
export async function loadPyodideInstance({ snapshot = 'auto', stdout = 'stderr' } = {}) {
  const timings = {};
  const t0 = performance.now();
  let pyodide;
  let fromSnapshot = false;
  if (snapshot === 'off' || snapshot === false) {
    pyodide = await loadPyodide({ checkAPIVersion: true });
    timings.loadPyodide = performance.now() - t0;
    pyodide.runPython(preloadCode());
  } else {
    const file = snapshot === 'auto' || snapshot === true || snapshot == null ? defaultSnapshotPath() : snapshot;
    let bytes = null;
    try {
      bytes = fs.readFileSync(file);
    } catch {
      bytes = await buildSnapshot(file);
      timings.buildSnapshot = performance.now() - t0;
    }
    const t1 = performance.now();
    try {
      pyodide = await loadPyodide({ _loadSnapshot: bytes, checkAPIVersion: true });
    } catch (err) {
      process.stderr.write(`[harness] snapshot ${file} unusable (${err?.message ?? err}); rebuilding\n`);
      fs.rmSync(file, { force: true });
      bytes = await buildSnapshot(file);
      pyodide = await loadPyodide({ _loadSnapshot: bytes, checkAPIVersion: true });
    }
    timings.loadPyodide = performance.now() - t1;
    fromSnapshot = true;
  }
  const io = stdio(stdout);
  pyodide.setStdout(io.stdout);
  pyodide.setStderr(io.stderr);
  return { pyodide, timings, fromSnapshot };
}

export { require as _require };
