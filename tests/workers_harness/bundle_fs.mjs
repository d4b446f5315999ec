// Putting a bundle into Pyodide's filesystem the way workerd lays it out (notes §1.1):
// the bundle root is /session/metadata (first on sys.path, also the cwd), vendored packages live
// in /session/metadata/python_modules, inserted just before site-packages, and with
// `python_process_pth_files` that directory's .pth files are processed (site.addsitedir).
// The bundle is a directory — ideally `wrangler deploy --dry-run --outdir` output, so tests load
// exactly the module set wrangler would upload.
import fs from 'node:fs';
import path from 'node:path';

export const SESSION_ROOT = '/session/metadata';

/** Every file under dir as [relativePosixPath, absolutePath], skipping bytecode caches. */
export function listBundleFiles(dir) {
  const out = [];
  const walk = (abs, rel) => {
    for (const ent of fs.readdirSync(abs, { withFileTypes: true })) {
      if (ent.name === '__pycache__' || ent.name.endsWith('.pyc')) continue;
      const a = path.join(abs, ent.name);
      const r = rel ? `${rel}/${ent.name}` : ent.name;
      const st = fs.statSync(a);  // follows file symlinks, like wrangler
      if (st.isDirectory()) walk(a, r);
      else if (st.isFile()) out.push([r, a]);
    }
  };
  walk(dir, '');
  return out;
}

export function writeBundle(pyodide, bundleDir) {
  const files = listBundleFiles(bundleDir);
  const FS = pyodide.FS;
  FS.mkdirTree(SESSION_ROOT);
  for (const [rel, abs] of files) {
    const target = `${SESSION_ROOT}/${rel}`;
    FS.mkdirTree(target.slice(0, target.lastIndexOf('/')));
    FS.writeFile(target, fs.readFileSync(abs), { canOwn: true });
  }
  return files.map(([rel]) => rel);
}

export function setupSearchPath(pyodide) {
  pyodide.runPython(`
import os, sys
_root = ${JSON.stringify(SESSION_ROOT)}
_vendor = _root + "/python_modules"
if _root not in sys.path:
    sys.path.insert(0, _root)
_idx = next((i for i, p in enumerate(sys.path) if p.endswith("site-packages")), len(sys.path))
if _vendor not in sys.path:
    sys.path.insert(_idx, _vendor)
os.chdir(_root)
del _root, _vendor, _idx
`);
}

/** site.addsitedir runs each .pth's `import` lines — done inside the strict window by the host. */
export function processPthFiles(pyodide) {
  pyodide.runPython(`import site; site.addsitedir(${JSON.stringify(`${SESSION_ROOT}/python_modules`)})`);
}
