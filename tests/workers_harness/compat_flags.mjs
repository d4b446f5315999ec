// Compatibility flags the Python SDK (or workerd's Python loader) reads, with the date from which
// each is on by default (notes §2.2, from workerd's compatibility-date.capnp). workerd hands the
// worker's resolved flag set to Python as the JS module `_cloudflare_compat_flags`; we derive the
// same set from the compatibility_date so tests see what production sees for that date.

export const PYTHON_COMPAT_FLAGS = {
  python_workers_force_new_vendor_path: '2025-08-11',
  python_no_global_handlers: '2025-08-14',
  python_workflows: '2025-09-20',
  python_workers_20250116: '2025-09-29',
  python_dedicated_snapshot: '2025-10-16',
  python_check_rng_state: '2025-12-16',
  python_request_headers_preserve_commas: '2026-02-17',
  python_workflows_implicit_dependencies: '2026-02-25',
  enable_python_external_sdk: '2026-04-21',
  python_process_pth_files: '2026-05-26',
  python_workers_314: '2026-09-08',
};

// Flags with an explicit opposite name (workerd's "disable_x" / "no_x" spellings).
const OFF_SWITCHES = {
  disable_python_external_sdk: 'enable_python_external_sdk',
  disable_python_no_global_handlers: 'python_no_global_handlers',
  disable_python_dedicated_snapshot: 'python_dedicated_snapshot',
};

/**
 * Resolve the boolean flag object for a compatibility date plus explicit flags.
 * Every flag in the table is present (true/false) because the SDK reads some of them by plain
 * attribute access, which would raise AttributeError on a missing key.
 */
export function compatFlagsFor(compatibilityDate, explicitFlags = []) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(compatibilityDate ?? '')) {
    throw new Error(`compatibility_date must be YYYY-MM-DD, got ${JSON.stringify(compatibilityDate)}`);
  }
  const flags = {};
  for (const [name, since] of Object.entries(PYTHON_COMPAT_FLAGS)) flags[name] = compatibilityDate >= since;
  for (const f of explicitFlags) {
    if (OFF_SWITCHES[f]) flags[OFF_SWITCHES[f]] = false;
    else if (f.startsWith('no_') && f.slice(3) in flags) flags[f.slice(3)] = false;
    else flags[f] = true;
  }
  return flags;
}

/** Which npm pyodide version production would use for these flags (notes §2.1). */
export function expectedPyodideVersion(flags) {
  if (flags.python_workers_314) return '314.0.6';
  if (flags.python_workers_20250116) return '0.28.2';
  return '0.26.0a2';
}
