"""Shared fixtures: a scratch project folder and a way to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


class Project:
    """A throwaway project folder (golden/, suites/) with its own history store."""

    def __init__(self, root: Path):
        self.root = root
        (root / "golden").mkdir()
        (root / "suites").mkdir()
        self.store_url = f"sqlite:///{root}/history.db"

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def harness(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
        return subprocess.run([sys.executable, "-m", "harness", *args], cwd=self.root, env=full_env,
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)
