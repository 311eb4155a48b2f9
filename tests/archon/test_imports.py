"""Every public module imports first, alone, in a fresh interpreter: no layer needs another to have
been imported before it (a plug-in author's first line is often ``import operators.base``)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("archon", "operators", "backends", "stores", "search")
# Files that are read or run, never imported: the sandbox's launcher and test harness (run as
# scripts inside the sandbox), the CLI entry (``python -m archon``), and Alembic's scripts.
SCRIPTS = ("archon._sandbox_launcher", "operators._test_harness", "operators._stdio_harness", "archon.__main__", "stores.migrations.")


def modules() -> list[str]:
    found = []
    for pkg in PACKAGES:
        found.append(pkg)
        found += [m.name for m in pkgutil.walk_packages(importlib.import_module(pkg).__path__, pkg + ".")]
    return [m for m in found if not m.startswith(SCRIPTS)]


def test_every_module_imports_first_in_a_fresh_interpreter():
    names = modules()
    assert len(names) > 60 and "operators.base" in names and "backends.wrappers" in names

    def load(name: str) -> tuple[str, str]:
        res = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, cwd=ROOT, timeout=120)
        return name, "" if res.returncode == 0 else (res.stderr.strip().splitlines() or ["exit code"])[-1]

    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [(n, why) for n, why in pool.map(load, names) if why]
    assert failures == []
