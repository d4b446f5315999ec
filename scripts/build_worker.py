"""Assembles the Worker bundle in build/worker/ (wrangler's [build] command runs this).

wrangler uploads `main` plus every .py under main's directory, and cannot narrow that set
with rules — so instead of pointing it at the repository, this script copies exactly the
modules the edge needs into build/worker/: the entry point, the gate (`gpushield_edge`,
without the CPython-only `runtime_local`) and the contract (`gpushield_wire`), plus the data
files they read and the WAF rules' regex analysis (done here once, not in every new isolate).
It also vendors the pinned Workers SDK (required from compatibility date
2026-04-21 on) and tzdata into python_modules/, which wrangler uploads as-is. Standard
library only.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "worker"
PYTHON_MODULES = ROOT / "python_modules"
# The Workers SDK (required from compatibility date 2026-04-21), and the IANA time-zone
# database: Pyodide has no system zoneinfo, and budgets may reset at midnight in any zone.
VENDORED = ("workers-runtime-sdk==1.9.5", "tzdata==2026.6")
STAMP = PYTHON_MODULES / ".gpushield-vendored"

# Packages copied into the bundle, and what inside them never ships.
PACKAGES = {
    ROOT / "edge" / "gpushield_edge": OUT / "gpushield_edge",
    ROOT / "shared" / "gpushield_wire": OUT / "gpushield_wire",
}
EXCLUDED = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "runtime_local", "tests", "*.toml", ".*",
)


def vendor_sdk() -> None:
    """pip --target stands in for `pywrangler sync`, which needs the network beyond PyPI.
    Only pure-Python, dependency-free packages can be vendored this way; the SDK is one."""
    wanted = "\n".join(VENDORED)
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    shutil.rmtree(PYTHON_MODULES, ignore_errors=True)
    subprocess.run(  # noqa: S603 - fixed argv: this interpreter's pip, a pinned package
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-compile", "--target", str(PYTHON_MODULES), *VENDORED],
        check=True,
    )
    STAMP.write_text(wanted + "\n")


def assemble() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    shutil.copy2(ROOT / "edge" / "entry.py", OUT / "entry.py")
    for source, target in PACKAGES.items():
        shutil.copytree(source, target, ignore=EXCLUDED)


def derive_waf_rules() -> int:
    """The WAF rules' regex analysis, done here once instead of in each new isolate's first
    request (see gpushield_edge.waf.rules.DERIVED_FILE). Needs Python 3.11+ (re._parser);
    without it the Worker derives at run time, slower but the same."""
    sys.path.insert(0, str(ROOT / "edge"))
    try:
        from gpushield_edge.waf import rules
    except ImportError:
        return 0
    return rules.write_derivations(OUT / "gpushield_edge" / "waf" / rules.DERIVED_FILE.name)


if __name__ == "__main__":
    vendor_sdk()
    assemble()
    derived = derive_waf_rules()
    print(f"assembled {OUT.relative_to(ROOT)} and {PYTHON_MODULES.relative_to(ROOT)}/"
          f" ({derived} WAF patterns analysed)")
