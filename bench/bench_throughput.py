"""Throughput of the whole `harness run` path against a local OpenAI-compatible server.

    python bench/bench_throughput.py                      # N=1000 and N=10000, L=50 ms, C=50, 3 runs each
    python bench/bench_throughput.py --cases 1000 --latency-ms 50 --concurrency 50 --repeat 5

N single-turn cases run through the real CLI in a fresh process (process start, YAML loading,
checks and store writes included) against `tests/mock_openai.py` in another process, with a
fixed latency L per request and concurrency C. Prints the wall time, the ideal N×L÷C, their
ratio, CPU seconds per case and the harness process's peak memory.

Each size runs `--repeat` times (default 3), then the best and the median are printed: the
machine may be shared, and the best run is the one least disturbed by others. The package's
bytecode is compiled first, as an installed package's is, so the figures do not include
compiling the harness's own source (the environment may set PYTHONDONTWRITEBYTECODE).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_project(folder: Path, n: int, base_url: str, concurrency: int, stream: bool) -> Path:
    (folder / "golden" / "question").mkdir(parents=True)
    lines = ["topic: question", "tags: [bench]", "cases:"]
    for i in range(n):
        lines += [f"  - id: q-{i:05d}", f"    prompt: \"What are your opening hours? ({i})\"",
                  "    expect:", "      - max_length: 2000", "      - not_contains: \"error\""]
    (folder / "golden" / "question" / "bench.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    suite = folder / "suites" / "bench.yaml"
    suite.parent.mkdir()
    suite.write_text(
        "name: bench\n"
        "golden: [\"golden/**/*.yaml\"]\n"
        f"target: {{kind: openai, base_url: \"{base_url}\", model: bench-model, stream: {str(stream).lower()},\n"
        f"         limits: {{concurrency: {concurrency}, timeout_s: 30, retries: 0}}}}\n"
        "output: {html: false, json: false, junit: false}\n",
        encoding="utf-8",
    )
    (folder / "pyproject.toml").write_text("", encoding="utf-8")
    return suite


def run_once(n: int, latency_ms: float, concurrency: int, stream: bool, aiohttp_mock: bool = False) -> dict:
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "mock_openai.py"), "--port", "0", "--latency-ms", str(latency_ms),
         *(["--aiohttp"] if aiohttp_mock else [])],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        base_url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            suite = write_project(Path(tmp), n, base_url, concurrency, stream)
            out_path = Path(tmp) / "out.txt"
            t0 = time.perf_counter()
            with open(out_path, "w") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "harness", "run", str(suite), "-q", "--no-reports",
                     "--store", f"sqlite:///{tmp}/history.db"],
                    stdout=out, stderr=subprocess.STDOUT,
                )
                # wait4 gives this one process's CPU time and peak memory, not the server's
                _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            output = out_path.read_text()
            if proc.returncode != 0:
                sys.exit(f"harness run failed ({proc.returncode}): {output[-2000:]}")
    finally:
        server.terminate()
        server.wait()
    cpu = usage.ru_utime + usage.ru_stime
    ideal = n * latency_ms / 1000 / concurrency
    return {"cases": n, "latency_ms": latency_ms, "concurrency": concurrency, "stream": stream,
            "wall_s": wall, "ideal_s": ideal, "ratio": wall / ideal, "cpu_ms_per_case": cpu / n * 1000,
            "peak_rss_mb": usage.ru_maxrss / 1024, "status": output.strip().splitlines()[-1]}


def _line(r: dict, label: str = "") -> str:
    return (f"{label}N={r['cases']:>6} L={r['latency_ms']:g}ms C={r['concurrency']} stream={r['stream']}: "
            f"wall {r['wall_s']:.2f}s  ideal {r['ideal_s']:.2f}s  ratio {r['ratio']:.2f}  "
            f"cpu {r['cpu_ms_per_case']:.2f} ms/case  peak harness RSS {r['peak_rss_mb']:.0f} MB  [{r['status']}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, action="append", help="N (repeatable); default 1000 and 10000")
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--no-stream", action="store_true", help="non-streaming requests")
    ap.add_argument("--repeat", type=int, default=3, help="runs per N; the best and the median are shown")
    ap.add_argument("--aiohttp-mock", action="store_true",
                    help="serve with the mock's aiohttp server (~0.2 ms CPU a request) instead of its lean one")
    args = ap.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "harness")], check=False)
    for n in args.cases or [1000, 10000]:
        runs = []
        for i in range(max(1, args.repeat)):
            runs.append(run_once(n, args.latency_ms, args.concurrency, not args.no_stream, args.aiohttp_mock))
            print(_line(runs[-1], f"run {i + 1}: "), flush=True)
        if len(runs) > 1:
            by_ratio = sorted(runs, key=lambda r: r["ratio"])
            print(_line(by_ratio[0], "best:   "))
            print(_line(by_ratio[(len(by_ratio) - 1) // 2], "median: "), flush=True)


if __name__ == "__main__":
    main()
