// Programmatic entry point for in-process use (benchmarks, JS tests) — no HTTP involved:
//
//   import { loadWorker } from './tests/workers_harness/index.mjs';
//   const worker = await loadWorker({ bundleDir, envFile: 'env.json' });
//   const { response, waitUntil } = await worker.fetch(new Request('http://x/hello'), { colo: 'LOCAL' });
//
// Run node with --experimental-wasm-stack-switching (JSPI), as production always has it.
import { createPythonWorker } from './host.mjs';
import { buildEnv, readEnvDescription } from './bindings.mjs';

export { createPythonWorker } from './host.mjs';
export { buildEnv, readEnvDescription } from './bindings.mjs';
export { compatFlagsFor } from './compat_flags.mjs';
export { toWebRequest, sendWebResponse, DEFAULT_CF } from './http_bridge.mjs';

/** createPythonWorker with env built from a JSON description (object or file path). */
export async function loadWorker({ bundleDir, envFile, envDescription, ...options } = {}) {
  const desc = envDescription ?? (envFile ? readEnvDescription(envFile) : {});
  const env = await buildEnv(desc);
  return createPythonWorker({
    bundleDir,
    env,
    compatibilityDate: desc.compatibility_date ?? '2026-09-08',
    compatFlags: desc.compatibility_flags ?? [],
    ...options,
  });
}
