"""The embedded agent on the phone, started for a test: `harness agent serve --voice --port 0`
in a child process (its clock is not the test's), the URL read from its first line.

    with EmbeddedVoiceAgent(faults=["dead_air"]) as agent:
        ... url=agent.url ...; agent.answers()  # its own record of each answer's first audio
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class EmbeddedVoiceAgent:
    def __init__(self, faults: list[str] | None = None, *args: str):
        self.args = [a for f in faults or [] for a in ("--fault", f)] + list(args)
        self.url = ""
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "EmbeddedVoiceAgent":
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "harness", "agent", "serve", "--voice", "--port", "0",
                                      *self.args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("ws://"):
            self.proc.kill()
            raise RuntimeError(f"the embedded voice agent did not start: {self.proc.stderr.read()[-2000:]}")
        return self

    def answers(self) -> list[dict[str, Any]]:
        http = self.url.replace("ws://", "http://").replace("/media", "/answers")
        with urllib.request.urlopen(http, timeout=10) as resp:
            return json.loads(resp.read())

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
