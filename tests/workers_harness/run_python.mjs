#!/usr/bin/env node
// Run a Python script inside the same Pyodide setup a worker gets (bundle at /session/metadata,
// python_modules on sys.path, `_pyodide_entrypoint_helper` and `_cloudflare_compat_flags`
// registered), for Pyodide-side benchmarks:
//
//   node --experimental-wasm-stack-switching tests/workers_harness/run_python.mjs \
//        --bundle DIR [--env FILE.json] [--snapshot auto|off] SCRIPT.py [args...]
//
// The script runs as __main__; a top-level `async def main()` is awaited. Python stdout goes to
// stdout, harness messages and Python stderr to stderr; the exit code follows SystemExit.
// The main module is not imported (the script can `import entry` itself), so strict top-level
// rules do not apply here.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPythonWorker } from './host.mjs';
import { buildEnv, readEnvDescription } from './bindings.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

function usage(msg) {
  process.stderr.write(`${msg}\nusage: run_python.mjs --bundle DIR [--env FILE.json] [--snapshot auto|off] SCRIPT.py [args...]\n`);
  process.exit(2);
}

// Options end at the script path; everything after it belongs to the script.
const argv = process.argv.slice(2);
const opts = { snapshot: 'auto' };
let i = 0;
for (; i < argv.length && argv[i].startsWith('--'); i++) {
  const key = argv[i].slice(2);
  if (!['bundle', 'env', 'snapshot'].includes(key)) usage(`unknown option --${key}`);
  opts[key] = argv[++i];
}
const script = argv[i];
const scriptArgs = argv.slice(i + 1);
if (!opts.bundle) usage('--bundle DIR is required');
if (!script) usage('SCRIPT.py is required');

let worker;
try {
  const desc = opts.env ? readEnvDescription(opts.env) : {};
  worker = await createPythonWorker({
    bundleDir: opts.bundle,
    env: await buildEnv(desc),
    compatibilityDate: desc.compatibility_date ?? '2026-09-08',
    compatFlags: desc.compatibility_flags ?? [],
    snapshot: opts.snapshot,
    importMain: false,
    pythonStdout: 'stdout',
  });
} catch (err) {
  if (err.pythonTraceback) process.stderr.write(`${err.pythonTraceback.trimEnd()}\n`);
  process.stderr.write(`run_python.mjs: setup failed: ${err.message}\n`);
  process.exit(1);
}

const { pyodide } = worker;
// The script is copied into MEMFS next to (not inside) the bundle so __file__ is a real path.
const scriptPath = `/harness_scripts/${path.basename(script)}`;
pyodide.FS.mkdirTree('/harness_scripts');
pyodide.FS.writeFile(scriptPath, fs.readFileSync(script));

const mod = pyodide.runPython("from types import ModuleType; ModuleType('_harness_run_script')");
pyodide.runPython(fs.readFileSync(path.join(HERE, '_harness_run_script.py'), 'utf8'), { globals: mod.__dict__ });
let code;
try {
  code = await mod.run.callPromising(scriptPath, pyodide.toPy([script, ...scriptArgs]));
} catch (err) {
  process.stderr.write(`${String(err?.message ?? err).trimEnd()}\n`);
  code = 1;
}
worker.close();
process.exit(code);
