"""Each package of the engine imports first, without the others loaded (no import cycle).

An import cycle shows only for some import orders: ``engine.saved`` imported first once
failed (``engine.saved.store`` -> ``engine.external`` -> ``engine.compare`` ->
``engine.saved.kept`` -> the half-initialised ``engine.saved.store``), while every test that
imported ``engine.cli`` first passed. One fresh interpreter imports each package in turn,
forgetting every ``engine`` module before the next (numpy and pandas stay: it is quick).
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

PACKAGES = sorted(f"engine.{path.parent.name}" for path in (ROOT / "engine").glob("*/__init__.py"))
SCRIPT = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for module in [m for m in sys.modules if m == "engine" or m.startswith("engine.")]:
        del sys.modules[module]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc().splitlines()[-1])
print("\\n".join(failed))
"""


def test_each_package_imports_first():
    assert {"engine.saved", "engine.compare", "engine.external", "engine.spark"} <= set(PACKAGES)
    done = subprocess.run([sys.executable, "-c", SCRIPT, *PACKAGES, "engine.cli"],
                          capture_output=True, text=True, cwd=ROOT, check=True)  # fmt: skip
    assert done.stdout.strip() == "", done.stdout
