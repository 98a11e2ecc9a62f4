"""Peak memory of `harness run` against each hostile server of issue 16.

For each mode of tests/hostile_server.py (a 2 GB body, streamed and not, an endless SSE
stream, a gzip bomb inflating to 2 GB) it runs a one-case suite through the real CLI in a
subprocess and reads the child's peak resident set (ru_maxrss). Every figure must stay under
300 MB: the answer bound (HARNESS_MAX_ANSWER_BYTES, 1 MB) stops reading long before.

    PYTHONPATH=. python bench/bench_hostile.py
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from hostile_server import MB, HostileServer  # noqa: E402

LIMIT_MB = 300
CASES = [("huge", False, 2048 * MB), ("huge", True, 2048 * MB), ("endless_sse", True, 0), ("gzip_bomb", False, 2048 * MB)]


def one(mode: str, stream: bool, size: int) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp, HostileServer(mode, size=size) as srv:
        root = Path(tmp)
        (root / "golden").mkdir()
        (root / "golden" / "q.yaml").write_text(
            "topic: q\ncases:\n  - id: q\n    prompt: hello\n    expect: [{contains: a}]\n")
        (root / "suites").mkdir()
        (root / "suites" / "s.yaml").write_text(
            f'name: hostile\ngolden: ["golden/**/*.yaml"]\ntarget: {{kind: openai, base_url: "{srv.url}", model: m, '
            f'stream: {str(stream).lower()}, limits: {{timeout_s: 20, retries: 0}}}}\n')
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "harness", "run", "suites/s.yaml", "--no-progress", "-q",
                              "--store", f"sqlite:///{root}/h.db"], cwd=root, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
        took = time.monotonic() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if peak <= before:
            print(f"  (peak not above an earlier child's {before / 1024:.0f} MB)", file=sys.stderr)
        return peak / 1024, took, out.returncode


def main() -> int:
    worst = 0.0
    for mode, stream, size in CASES:
        peak, took, code = one(mode, stream, size)
        worst = max(worst, peak)
        print(f"{mode:12} stream={str(stream):5} peak RSS {peak:6.0f} MB  {took:5.1f} s  exit {code}")
    print(f"worst peak {worst:.0f} MB (limit {LIMIT_MB} MB): {'ok' if worst < LIMIT_MB else 'TOO MUCH'}")
    return 0 if worst < LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
