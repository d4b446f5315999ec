// Durable Object bindings whose classes are Python classes in the worker's main module.
// Miniflare cannot host a Python DO offline (notes §3.2), so the namespace, stub and state are
// emulated here and calls go straight into the same Pyodide instance:
//   stub.fetch(...)   -> wrapper_func(relaxed=True, inst, "fetch", Request)   (like workerd)
//   stub.anyMethod(a) -> wrapper_func(relaxed=False, inst, "anyMethod", clone(a))
// One Python instance per id, constructed lazily with (DurableObjectState, env).
// A per-namespace fault mode ('ok' | 'throw' | 'hang') lets tests simulate an unreachable DO.
import crypto from 'node:crypto';
import { DurableObjectStorage, initSql } from './do_storage.mjs';
import { adoptPromise } from './entrypoint_helper.mjs';

export const FAULT_MODES = ['ok', 'throw', 'hang'];

export class DurableObjectId {
  #hex;
  constructor(hex, name) {
    this.#hex = hex;
    if (name !== undefined) this.name = name;
  }
  toString() { return this.#hex; }
  equals(other) { return other instanceof DurableObjectId && other.toString() === this.#hex; }
}

export class DurableObjectState {
  #pyodide;
  #chain = Promise.resolve();
  constructor(id, storage, pyodide) {
    this.id = id;
    this.storage = storage;
    this.#pyodide = pyodide;
    this.props = {};
  }
  waitUntil(promise) {
    adoptPromise(this.#pyodide, promise).catch((err) => {
      process.stderr.write(`[harness] DO waitUntil rejected: ${err?.stack ?? err}\n`);
    });
  }
  // Serialises initialisation work; workerd additionally holds incoming events until it settles.
  blockConcurrencyWhile(fn) {
    // A Python callable arrives as a borrowed proxy, destroyed when this call returns: keep a copy
    // until the queued call has run.
    const PyProxy = this.#pyodide?.ffi.PyProxy;
    const owned = PyProxy && fn instanceof PyProxy ? fn.copy() : null;
    const run = this.#chain
      .then(() => adoptPromise(this.#pyodide, (owned ?? fn)()))
      .finally(() => owned?.destroy());
    this.#chain = run.catch(() => {});
    return run;
  }
  abort(reason) {
    throw new Error(`Durable Object aborted${reason ? `: ${reason}` : ''}`);
  }
}

function faultError(binding) {
  // Shape of the error workerd raises when a DO is unreachable; `retryable` mirrors workerd's flag.
  const err = new Error(`Network connection lost. (harness fault injection on ${binding})`);
  err.retryable = true;
  return err;
}

// Property names the stub must NOT turn into RPC methods: Pyodide probes some of these to decide
// how to wrap a JsProxy (a `then` would make the stub look awaitable).
const NOT_RPC = new Set(['then', 'catch', 'finally', 'constructor', 'toJSON', 'toString', 'valueOf',
  'inspect', 'next', 'id', 'name', 'length', 'size', 'dispose', 'asyncDispose']);

export class DurableObjectStub {
  constructor(id) { this.id = id; if (id.name !== undefined) this.name = id.name; }
}

/** The binding object. Its class name must be exactly `DurableObjectNamespace` (SDK dispatch). */
export class DurableObjectNamespace {
  #binding;
  #className;
  #env;
  #runtime = null;   // set by host.mjs after the main module is imported
  #objects = new Map();  // id hex -> {state, inst: Promise<PyProxy>}
  #mode = 'ok';
  #SQL;
  constructor(binding, className, env, SQL) {
    this.#binding = binding;
    this.#className = className;
    this.#env = env;
    this.#SQL = SQL;
  }

  // --- harness controls (not part of the workerd API) ---
  _attachRuntime(runtime) { this.#runtime = runtime; }
  _setFaultMode(mode) {
    if (!FAULT_MODES.includes(mode)) throw new Error(`fault mode must be one of ${FAULT_MODES.join('|')}`);
    this.#mode = mode;
  }
  _faultMode() { return this.#mode; }
  _instanceCount() { return this.#objects.size; }
  _className() { return this.#className; }
  _close() {
    for (const o of this.#objects.values()) {
      o.state.storage.close();
      o.inst.then((p) => p.destroy?.(), () => {});
    }
    this.#objects.clear();
  }

  // --- workerd API ---
  idFromName(name) {
    const hex = crypto.createHash('sha256').update(`${this.#binding}:${name}`).digest('hex');
    return new DurableObjectId(hex, String(name));
  }
  newUniqueId() { return new DurableObjectId(crypto.randomBytes(32).toString('hex')); }
  idFromString(hex) {
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new TypeError('Invalid Durable Object ID: must be 64 hex digits');
    return new DurableObjectId(hex);
  }
  getByName(name) { return this.get(this.idFromName(name)); }
  jurisdiction() { return this; }
  get(id) {
    if (!(id instanceof DurableObjectId)) throw new TypeError('get() expects a DurableObjectId');
    const ns = this;
    const stub = new DurableObjectStub(id);
    return new Proxy(stub, {
      get(target, prop, receiver) {
        if (typeof prop !== 'string' || NOT_RPC.has(prop) || prop in target) return Reflect.get(target, prop, receiver);
        if (prop === 'fetch') return (input, init) => ns.#call(id, 'fetch', [new Request(input, init)]);
        return (...args) => ns.#call(id, prop, args);
      },
    });
  }

  #instance(id) {
    const key = id.toString();
    let o = this.#objects.get(key);
    if (!o) {
      const rt = this.#runtime;
      if (!rt) throw new Error(`Durable Object ${this.#binding} used before the worker finished loading`);
      const storage = new DurableObjectStorage(this.#SQL, (info) => this.#alarm(id, info));
      const state = new DurableObjectState(id, storage, rt.pyodide);
      const cls = rt.getClass(this.#className);
      o = { state, inst: cls.callPromising(state, this.#env) };
      this.#objects.set(key, o);
      // A constructor that throws leaves no half-built object behind; the next call retries.
      o.inst.catch(() => { if (this.#objects.get(key) === o) { this.#objects.delete(key); storage.close(); } });
    }
    return o;
  }

  async #alarm(id, info) {
    const rt = this.#runtime;
    const inst = await this.#instance(id).inst;
    if (rt.hasMethod(inst, 'alarm')) await rt.callSpecial.callPromising(inst, 'alarm', info);
  }

  async #call(id, method, args) {
    if (this.#mode === 'throw') throw faultError(this.#binding);
    if (this.#mode === 'hang') return new Promise(() => {});
    try {
      return await this.#dispatch(id, method, args);
    } catch (err) {
      // Across real RPC an exception is serialised: the caller gets an Error with the name and
      // message, never the callee's Python exception object (which sharing one interpreter here
      // would otherwise hand over).
      let copy;
      try { copy = structuredClone(err); } catch { copy = new Error(String(err?.message ?? err)); }
      throw copy;
    }
  }

  async #dispatch(id, method, args) {
    const rt = this.#runtime;
    const inst = await this.#instance(id).inst;
    if (method === 'fetch') {
      return rt.wrapperFunc.callPromising(true, inst, 'fetch', args[0]);
    }
    if (!rt.hasMethod(inst, method)) {
      throw new TypeError(`The RPC receiver does not implement the method "${method}".`);
    }
    // Real RPC serialises arguments; cloning catches values that could not cross in production.
    const cloned = args.map((a) => structuredClone(a));
    const result = await rt.wrapperFunc.callPromising(false, inst, method, ...cloned);
    try {
      return structuredClone(result);
    } catch {
      return result;  // functions/RpcTargets are passed by reference in workerd
    }
  }
}

export async function makeDurableObjectNamespace(binding, className, env) {
  const SQL = await initSql();
  return new DurableObjectNamespace(binding, className, env, SQL);
}
