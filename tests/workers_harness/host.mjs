// createPythonWorker: a workerd-like host for one Python Worker bundle inside Pyodide under Node.
// Mirrors workerd's python-entrypoint flow (notes §1.1): register the helper JS modules, import
// the main module (entropy/I-O guarded, as at deploy time), find entrypoint classes, then per
// request construct `Default(ctx, env)` and call `wrapper_func(True, inst, "fetch", request)`.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPyodideInstance, hasJspi, PYODIDE_VERSION } from './pyodide_loader.mjs';
import { compatFlagsFor, expectedPyodideVersion } from './compat_flags.mjs';
import { writeBundle, setupSearchPath, processPthFiles, SESSION_ROOT } from './bundle_fs.mjs';
import { restorePycs, savePycs } from './pyc_cache.mjs';
import { installRuntimeGlobals, withStrictTopLevel } from './runtime_globals.mjs';
import {
  ExecutionContext, WaitUntilTracker, makeEntrypointHelper, newAsyncLocalStorage,
} from './entrypoint_helper.mjs';
import { durableObjectNamespaces } from './bindings.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const readHere = (f) => fs.readFileSync(path.join(HERE, f), 'utf8');

/** Run a harness-private Python file into a fresh module object (not on sys.path, like workerd). */
function loadPrivateModule(pyodide, name, file) {
  const mod = pyodide.runPython(`from types import ModuleType; ModuleType(${JSON.stringify(name)})`);
  pyodide.runPython(readHere(file), { globals: mod.__dict__ });
  return mod;
}

/** A JS Error carrying the Python exception's last line (the useful part) plus the traceback. */
function pythonError(prefix, err) {
  const text = String(err?.message ?? err);
  const lines = text.trim().split('\n');
  const e = new Error(`${prefix}: ${lines[lines.length - 1]}`);
  e.pythonTraceback = text;
  return e;
}

function callMaybePromising(fn, ...args) {
  return hasJspi() ? fn.callPromising(...args) : Promise.resolve(fn(...args));
}

/**
 * @param {object} o
 * @param {string} o.bundleDir  directory with entry.py at its root and python_modules/ (the SDK)
 * @param {object} [o.env]      env object (see bindings.mjs buildEnv); {} if omitted
 * @param {string} o.compatibilityDate
 * @param {string[]|object} [o.compatFlags]  extra flag names, or a full flag object to use as is
 * @param {'auto'|'off'|string} [o.snapshot='auto']
 * @param {boolean} [o.strictTopLevel=true]
 * @param {string} [o.mainModule='entry.py']
 * @param {'stderr'|'stdout'} [o.pythonStdout='stderr']
 * @param {boolean} [o.importMain=true]  run_python.mjs sets false to get the environment only
 * @param {boolean} [o.pycCache=true]  reuse compiled bytecode across processes (pyc_cache.mjs)
 */
export async function createPythonWorker({
  bundleDir, env = {}, compatibilityDate, compatFlags = [], snapshot = 'auto',
  strictTopLevel = true, mainModule = 'entry.py', pythonStdout = 'stderr', importMain = true,
  pycCache = true,
} = {}) {
  if (!bundleDir) throw new Error('bundleDir is required');
  bundleDir = path.resolve(bundleDir);
  const flags = Array.isArray(compatFlags) ? compatFlagsFor(compatibilityDate, compatFlags) : { ...compatFlags };
  const wantPyodide = expectedPyodideVersion(flags);
  if (wantPyodide !== PYODIDE_VERSION) {
    process.stderr.write(`[harness] warning: compatibility date ${compatibilityDate} implies Pyodide ${wantPyodide} in production; harness runs ${PYODIDE_VERSION}\n`);
  }
  if (!hasJspi()) {
    process.stderr.write('[harness] warning: no JSPI (run node with --experimental-wasm-stack-switching); run_sync will not work\n');
  }
  installRuntimeGlobals();

  const timings = {};
  const { pyodide, timings: loadT, fromSnapshot } = await loadPyodideInstance({ snapshot, stdout: pythonStdout });
  Object.assign(timings, loadT);

  let t = performance.now();
  const files = writeBundle(pyodide, bundleDir);
  const pycHits = pycCache ? restorePycs(pyodide, files) : 0;
  timings.writeFiles = performance.now() - t;
  if (!files.some((f) => f.startsWith('python_modules/workers/'))) {
    throw new Error(`${bundleDir} has no python_modules/workers/ — vendor workers-runtime-sdk (required from compat date 2026-04-21)`);
  }

  t = performance.now();
  const als = newAsyncLocalStorage();
  const tracker = new WaitUntilTracker();
  pyodide.registerJsModule('_pyodide_entrypoint_helper', makeEntrypointHelper({ pyodide, env, als, bundleDir }));
  pyodide.registerJsModule('_cloudflare_compat_flags', flags);
  setupSearchPath(pyodide);

  const strict = loadPrivateModule(pyodide, '_harness_strict', '_harness_strict.py');
  timings.setup = performance.now() - t;
  let main = null;
  t = performance.now();
  if (importMain) {
    if (!mainModule.endsWith('.py')) throw new Error('Main module needs to end with a .py file extension');
    const importModule = pyodide.pyimport('importlib').import_module;
    await withStrictTopLevel(strictTopLevel, async () => {
      if (strictTopLevel) strict.enter();
      try {
        if (flags.python_process_pth_files) processPthFiles(pyodide);
        main = await callMaybePromising(importModule, mainModule.slice(0, -3));
      } catch (err) {
        throw pythonError(`importing ${mainModule} failed`, err);
      } finally {
        strict.leave();
      }
    });
  } else if (flags.python_process_pth_files) {
    processPthFiles(pyodide);
  }
  timings.importMain = performance.now() - t;
  if (pycCache && main) {
    // Only cache misses cost anything here (a compile of changed/new modules).
    t = performance.now();
    try {
      const stored = savePycs(pyodide);
      if (stored) timings.pycStore = performance.now() - t;
    } catch (err) {
      process.stderr.write(`[harness] bytecode cache not updated: ${err.message}\n`);
    }
  }
  timings.pycHits = pycHits;

  let classes = { durableObjects: [], workerEntrypoints: [], workflowEntrypoints: [] };
  let introspection = null;
  t = performance.now();
  if (main) {
    introspection = loadPrivateModule(pyodide, '_harness_introspection', '_harness_introspection.py');
    const jsClasses = introspection.collect_entrypoint_classes(main);
    classes = jsClasses;
  }
  timings.introspect = performance.now() - t;
  const getClass = (name) => {
    const cls = main?.[name];
    if (typeof cls !== 'function') throw new TypeError(`There is no '${name}' class defined in the Python Worker's main module`);
    return cls;
  };
  const runtime = main && {
    pyodide,
    getClass,
    wrapperFunc: introspection.wrapper_func,
    callSpecial: introspection.call_special,
    hasMethod: (inst, name) => introspection.has_method(inst, name),
  };
  const namespaces = durableObjectNamespaces(env);
  if (runtime) {
    for (const [binding, ns] of Object.entries(namespaces)) {
      if (!classes.durableObjects.some((c) => c.className === ns._className())) {
        process.stderr.write(`[harness] warning: DO binding ${binding} names class ${ns._className()}, which the main module does not define\n`);
      }
      ns._attachRuntime(runtime);
    }
  }
  const hasDefault = classes.workerEntrypoints.some((c) => c.className === 'Default');
  let requests = 0;

  async function fetch(request, cf) {
    if (!runtime) throw new Error('worker created with importMain=false has no fetch handler');
    if (!hasDefault) throw new Error(`${mainModule} defines no \`class Default(WorkerEntrypoint)\``);
    if (cf !== undefined) Object.defineProperty(request, 'cf', { value: cf, enumerable: true, configurable: true });
    requests++;
    const ctx = new ExecutionContext(tracker);
    return als.run(ctx, async () => {
      let inst;
      try {
        inst = await callMaybePromising(getClass('Default'), ctx, env);
        const response = await callMaybePromising(runtime.wrapperFunc, true, inst, 'fetch', request);
        if (!(response instanceof Response)) {
          throw new TypeError(`Default.fetch returned ${response?.constructor?.name ?? typeof response}, not a Response`);
        }
        return { response, waitUntil: ctx.drain() };
      } finally {
        inst?.destroy?.();
      }
    });
  }

  function stats() {
    return {
      requests,
      wait_until_pending: tracker.pending,
      wait_until_done: tracker.done,
      wait_until_failed: tracker.failed,
      do_instances: Object.fromEntries(Object.entries(namespaces).map(([b, ns]) => [b, ns._instanceCount()])),
      do_fault_modes: Object.fromEntries(Object.entries(namespaces).map(([b, ns]) => [b, ns._faultMode()])),
    };
  }

  function setFault(binding, mode) {
    const ns = namespaces[binding];
    if (!ns) throw new Error(`no Durable Object binding named ${binding}`);
    ns._setFaultMode(mode);
  }

  function close() {
    for (const ns of Object.values(namespaces)) ns._close();
    main?.destroy?.();
  }

  return {
    fetch, env, close, stats, setFault, pyodide, timings, fromSnapshot, compatFlags: flags,
    entrypoints: {
      durableObjects: classes.durableObjects.map((c) => c.className),
      workerEntrypoints: classes.workerEntrypoints.map((c) => c.className),
    },
    sessionRoot: SESSION_ROOT,
  };
}
