// Process-wide JS globals the harness adjusts once, shared by every worker in the process:
//  * fetch/Request: undici (Node) refuses a ReadableStream body unless `duplex: 'half'` is given;
//    workerd does not require it, so Python code like `fetch(url, body=request.body)` would fail
//    only in the harness. We add the option when the body is a stream.
//  * strict top level: while a main module is being imported, JS-side randomness and I/O reached
//    from Python (js.fetch, js.crypto.getRandomValues/randomUUID) throw the same error workerd
//    gives at deploy time. The Python side of the guard is _harness_strict.py.

export const DISALLOWED_MESSAGE = 'Disallowed operation called within global scope';

const state = { installed: false, strictDepth: 0 };

function assertNotTopLevel() {
  if (state.strictDepth > 0) throw new Error(DISALLOWED_MESSAGE);
}

function isStreamBody(body) {
  return body != null && typeof body === 'object' && typeof body.getReader === 'function';
}

function withDuplex(init) {
  if (init && isStreamBody(init.body) && !('duplex' in init)) return { ...init, duplex: 'half' };
  return init;
}

export function installRuntimeGlobals() {
  if (state.installed) return;
  state.installed = true;

  const NodeRequest = globalThis.Request;
  // Subclass keeps instanceof and constructor.name === 'Request' (the SDK dispatches on the name).
  class Request extends NodeRequest {
    constructor(input, init) {
      // A Request built from another Request with a stream body also needs duplex.
      if (init === undefined && input instanceof NodeRequest && input.body) init = { duplex: 'half' };
      super(input, withDuplex(init));
    }
  }
  globalThis.Request = Request;

  const nodeFetch = globalThis.fetch;
  globalThis.fetch = function fetch(input, init) {
    assertNotTopLevel();
    return nodeFetch(input, withDuplex(init));
  };

  const c = globalThis.crypto;
  const getRandomValues = c.getRandomValues.bind(c);
  const randomUUID = c.randomUUID.bind(c);
  // Own properties shadow the prototype methods; emscripten's C-level entropy in Node uses
  // node:crypto.randomFillSync, so interpreter internals (hash seeds) are unaffected.
  Object.defineProperty(c, 'getRandomValues', {
    configurable: true, writable: true,
    value: function getRandomValuesGuarded(view) { assertNotTopLevel(); return getRandomValues(view); },
  });
  Object.defineProperty(c, 'randomUUID', {
    configurable: true, writable: true,
    value: function randomUUIDGuarded() { assertNotTopLevel(); return randomUUID(); },
  });
}

/** Run `fn` (sync or async) with the JS-side top-level guard active. */
export async function withStrictTopLevel(enabled, fn) {
  if (!enabled) return fn();
  state.strictDepth++;
  try {
    return await fn();
  } finally {
    state.strictDepth--;
  }
}
