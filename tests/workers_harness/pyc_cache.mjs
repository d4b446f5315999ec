// Bytecode cache across processes. Pyodide runs with sys.dont_write_bytecode, so every fresh
// process compiles the SDK and the worker from source; in a cold process that roughly doubles the
// main-module import (measured 240-480 ms -> 120-230 ms for the toy bundle). We keep
// CHECKED_HASH .pyc files on disk, keyed by each source file's path and content: Python itself
// re-validates the source hash, so a stale entry can cost a recompile but never run old code.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, PYODIDE_VERSION } from './pyodide_loader.mjs';
import { SESSION_ROOT } from './bundle_fs.mjs';

export function defaultPycCacheDir() {
  return path.join(REPO_ROOT, 'node_modules', '.cache', 'gpushield-harness', `pyc-${PYODIDE_VERSION}`);
}

function keyFor(rel, bytes) {
  return crypto.createHash('sha256').update(rel).update('\0').update(bytes).digest('hex');
}

function pycPath(rel, cacheTag) {
  const dir = path.posix.dirname(rel);
  const stem = path.posix.basename(rel, '.py');
  return `${SESSION_ROOT}/${dir === '.' ? '' : `${dir}/`}__pycache__/${stem}.${cacheTag}.pyc`;
}

/** Write cached .pyc files next to the bundle's sources in MEMFS. Returns how many were found. */
export function restorePycs(pyodide, relFiles, cacheDir = defaultPycCacheDir()) {
  if (!fs.existsSync(cacheDir)) return 0;
  const tag = pyodide.runPython('import sys; sys.implementation.cache_tag');
  let n = 0;
  for (const rel of relFiles) {
    if (!rel.endsWith('.py')) continue;
    const src = pyodide.FS.readFile(`${SESSION_ROOT}/${rel}`);
    let data;
    try { data = fs.readFileSync(path.join(cacheDir, `${keyFor(rel, src)}.pyc`)); } catch { continue; }
    const target = pycPath(rel, tag);
    pyodide.FS.mkdirTree(target.slice(0, target.lastIndexOf('/')));
    pyodide.FS.writeFile(target, data);
    n++;
  }
  return n;
}

const COMPILE_IMPORTED = `
import importlib.util, os, py_compile, sys
def _harness_compile_imported(root):
    out = []
    for m in list(sys.modules.values()):
        f = getattr(m, "__file__", None)
        if not f or not f.startswith(root + "/") or not f.endswith(".py"):
            continue
        c = importlib.util.cache_from_source(f)
        if not os.path.exists(c):
            py_compile.compile(f, cfile=c, doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
        out.append([f[len(root) + 1:], c])
    return out
`;

/** Compile every bundle module that got imported and store new .pyc files. Returns count stored. */
export function savePycs(pyodide, cacheDir = defaultPycCacheDir()) {
  const ns = pyodide.globals.get('dict')();
  try {
    pyodide.runPython(COMPILE_IMPORTED, { globals: ns });
    const pairs = ns.get('_harness_compile_imported')(SESSION_ROOT).toJs();
    let stored = 0;
    fs.mkdirSync(cacheDir, { recursive: true });
    for (const [rel, cfile] of pairs) {
      const file = path.join(cacheDir, `${keyFor(rel, pyodide.FS.readFile(`${SESSION_ROOT}/${rel}`))}.pyc`);
      if (fs.existsSync(file)) continue;
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, pyodide.FS.readFile(cfile));
      fs.renameSync(tmp, file);
      stored++;
    }
    return stored;
  } finally {
    ns.destroy();
  }
}
