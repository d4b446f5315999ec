// The JS objects workerd registers for the Python SDK: the `_pyodide_entrypoint_helper` module
// (notes §1.3 item 1) and the ExecutionContext passed to entrypoint constructors (item 3).
import { AsyncLocalStorage } from 'node:async_hooks';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

/**
 * A Python coroutine/future handed to a JS function arrives as a *borrowed* PyProxy that Pyodide
 * destroys as soon as the call returns. workerd's patchWaitUntil copies it, awaits the copy and
 * destroys it afterwards; we do the same wherever Python can pass a coroutine to waitUntil.
 */
export function adoptPromise(pyodide, value) {
  if (pyodide && value instanceof pyodide.ffi.PyProxy) {
    let copy;
    try {
      copy = value.copy();
    } catch {
      // Results of JS->Python calls that return a coroutine are already scheduled and owned by
      // their `then`; they cannot be copied and need no keeping alive.
      return Promise.resolve(value);
    }
    return (async () => {
      try { return await copy; } finally { copy.destroy(); }
    })();
  }
  return Promise.resolve(value);
}

/** Per-request context; toStringTag matters because patchWaitUntil checks it (like workerd). */
export class ExecutionContext {
  #tracker;
  constructor(tracker, props = {}) {
    this.#tracker = tracker;
    this.props = props;
    this.promises = [];
  }
  get [Symbol.toStringTag]() { return 'ExecutionContext'; }
  waitUntil(promise) {
    this.promises.push(this.#tracker.track(Promise.resolve(promise)));
  }
  passThroughOnException() {}
  /** Settles when every waitUntil promise (including ones added while waiting) has settled. */
  async drain() {
    let seen = 0;
    while (seen < this.promises.length) {
      const batch = this.promises.slice(seen);
      seen = this.promises.length;
      await Promise.allSettled(batch);
    }
  }
}

/** Counts waitUntil work for /stats and logs (not throws) failures, as workerd does. */
export class WaitUntilTracker {
  pending = 0;
  done = 0;
  failed = 0;
  track(promise) {
    this.pending++;
    return promise.then(
      () => { this.pending--; this.done++; },
      (err) => {
        this.pending--; this.done++; this.failed++;
        process.stderr.write(`[harness] waitUntil promise rejected: ${err?.stack ?? err}\n`);
      },
    );
  }
}

export class WorkerEntrypointBase {}
export class DurableObjectBase {}
export class WorkflowEntrypointBase {}

const socketsStub = {
  connect() {
    throw new Error('cloudflare:sockets is not emulated by the gpushield workers harness');
  },
};

/**
 * Build the `_pyodide_entrypoint_helper` module object for one worker.
 * `als` holds the current ExecutionContext so module-level `workers.wait_until` finds it.
 */
export function makeEntrypointHelper({ pyodide, env, als, bundleDir }) {
  const cloudflareWorkersModule = {
    env,
    waitUntil(promise) {
      const ctx = als.getStore();
      if (!ctx) throw new Error('waitUntil() called outside of a request');
      ctx.waitUntil(adoptPromise(pyodide, promise));
    },
    WorkerEntrypoint: WorkerEntrypointBase,
    DurableObject: DurableObjectBase,
    WorkflowEntrypoint: WorkflowEntrypointBase,
  };

  function patchWaitUntil(ctx) {
    if (Object.prototype.toString.call(ctx) !== '[object ExecutionContext]') return;
    if (ctx.__harnessPatched) return;
    const original = ctx.waitUntil.bind(ctx);
    Object.defineProperty(ctx, '__harnessPatched', { value: true });
    ctx.waitUntil = (p) => original(adoptPromise(pyodide, p));
  }

  // SDK 1.9.5 `patch_env` does `yield from patch_env_helper(to_js(kwds))`: a JS generator that
  // overrides env entries for the duration of the `with` block.
  function* patch_env_helper(kwds) {
    const entries = kwds instanceof Map ? [...kwds.entries()] : Object.entries(kwds ?? {});
    const saved = entries.map(([k]) => [k, Object.prototype.hasOwnProperty.call(env, k), env[k]]);
    for (const [k, v] of entries) env[k] = v;
    try {
      yield;
    } finally {
      for (const [k, had, v] of saved) {
        if (had) env[k] = v; else delete env[k];
      }
    }
  }

  async function doAnImport(name) {
    if (name === 'cloudflare:workers') return cloudflareWorkersModule;
    if (name === 'cloudflare:sockets') return socketsStub;
    // Bundle-relative JS modules (e.g. python_modules/workers/workflows.js) — wrangler uploads
    // them as ES modules, so workerd can import them by their bundle path.
    if (bundleDir && !name.includes(':') && !name.startsWith('/')) {
      return import(pathToFileURL(path.join(bundleDir, name)).href);
    }
    return import(name);
  }

  return {
    doAnImport,
    cloudflareWorkersModule,
    cloudflareSocketsModule: socketsStub,
    workerEntrypoint: WorkerEntrypointBase,
    patchWaitUntil,
    patch_env_helper,
  };
}

export function newAsyncLocalStorage() {
  return new AsyncLocalStorage();
}
