"""The layers, the stage order and the absence of import cycles, as `pyproject.toml` declares them.

`lint-imports` (import-linter, in the `test` extra) checks every contract of
`[tool.importlinter]`: a module imports only from its own layer and the layers below it,
no stage calls back, no target imports another, and no two packages import each other.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lint_imports() -> str:
    found = Path(sys.executable).with_name("lint-imports")
    exe = str(found) if found.exists() else shutil.which("lint-imports")
    assert exe, "lint-imports is missing: install the test extra (pip install -e '.[test]')"
    return exe


def test_every_import_contract_is_kept():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
    for name in ("records → checks/targets → run → store → analysis → publish → commands/cli",
                 "no import cycles between the packages of harness", "targets are plugins"):
        assert name in " ".join(done.stdout.split()), f"contract {name!r} is not checked"


def test_a_layer_violation_is_caught(tmp_path):
    """The contracts are not vacuous: a store module importing the pipeline breaks them."""
    pkg = tmp_path / "harness"
    shutil.copytree(ROOT / "harness", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (pkg / "store" / "_upward.py").write_text("from ..pipeline import run_suite  # noqa: F401\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([lint_imports(), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 1, done.stdout[-4000:]
    assert "harness.store._upward -> harness.pipeline" in done.stdout
