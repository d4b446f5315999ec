// Build a worker `env` from a JSON description:
//   {"compatibility_date": "YYYY-MM-DD", "compatibility_flags": [...],
//    "vars": {...}, "secrets": {...}, "durable_objects": {"BINDING": "ClassName"}}
// Vars and secrets are plain strings in workerd (non-string vars are JSON vars and arrive as JS
// objects). Durable Object namespaces are attached to the Python runtime later by host.mjs.
import fs from 'node:fs';
import { makeDurableObjectNamespace, DurableObjectNamespace } from './durable_objects.mjs';

const KNOWN_KEYS = new Set(['compatibility_date', 'compatibility_flags', 'vars', 'secrets', 'durable_objects']);

export function readEnvDescription(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

export async function buildEnv(desc = {}) {
  for (const k of Object.keys(desc)) {
    if (!KNOWN_KEYS.has(k)) process.stderr.write(`[harness] env description: ignoring unknown key "${k}"\n`);
  }
  const env = {};
  for (const section of ['vars', 'secrets']) {
    for (const [k, v] of Object.entries(desc[section] ?? {})) {
      if (k in env) throw new Error(`env binding ${k} defined twice`);
      env[k] = v;
    }
  }
  for (const [binding, className] of Object.entries(desc.durable_objects ?? {})) {
    if (binding in env) throw new Error(`env binding ${binding} defined twice`);
    env[binding] = await makeDurableObjectNamespace(binding, className, env);
  }
  return env;
}

/** The DO namespaces in an env, by binding name. */
export function durableObjectNamespaces(env) {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v instanceof DurableObjectNamespace));
}
