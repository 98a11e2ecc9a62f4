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

Each run is paired with a run of a bare aiohttp client (`plain_client` below: the same
requests, the stream read and each event parsed, nothing else) against the same server at
the same moment: the floor for any Python client on this machine. The machines here are
shared and their speed drifts by 10-20 % within minutes; "vs plain" (the harness's wall time
over the bare client's) is the figure that compares across runs. `--no-plain` skips it.
`--stack-floor` adds a third run: the same bare client, after importing the libraries every
`harness run` needs (pydantic, PyYAML, SQLAlchemy, typer) and using none of them, which is
the least any run built on them can take.

`--promptfoo BIN` adds a peer: the same cases and checks (`max_length`, `not_contains` as a
JavaScript and a `not-contains` assertion) through `promptfoo eval` at the same concurrency
against the same server, its cache off and its results written to its own database as ours
are to the store. Its OpenAI provider does not stream, so every run is then non-streamed.
Install it outside the project (it needs Node.js; 0.121.x is the last line that runs on
Node 20):

    npm install --prefix /tmp/peers promptfoo@0.121.20
    python bench/bench_throughput.py --promptfoo /tmp/peers/node_modules/.bin/promptfoo

`--otel` adds a run with tracing on (`HARNESS_OTEL=1`, harness.tracing) right after each
one with it off, exporting to a local OTLP/HTTP sink that accepts and counts what it gets:
"traced vs untraced" is the overhead of a trace per case (case, turn and client spans, the
trace context on every request), wall time and CPU.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def write_promptfoo(folder: Path, n: int, base_url: str) -> Path:
    """The same N single-turn cases and checks as `write_project`, as a promptfoo config."""
    lines = ["prompts:", "  - 'What are your opening hours? ({{i}})'",
             "providers:", "  - id: openai:chat:bench-model", "    config:",
             f"      apiBaseUrl: {base_url}", "      apiKey: bench",
             "defaultTest:", "  assert:",
             "    - {type: javascript, value: 'output.length <= 2000'}",
             "    - {type: not-contains, value: error}",
             "tests:"]
    lines += [f"  - vars: {{i: {i}}}" for i in range(n)]
    path = folder / "promptfooconfig.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


STACK = ("pydantic", "yaml", "sqlalchemy", "typer")  # what `harness run` imports besides aiohttp


def plain_client(base_url: str, n: int, concurrency: int, stream: bool, stack: bool = False) -> None:
    """N chat completions with aiohttp alone, `concurrency` at a time: the reference floor.
    With `stack`, after importing the libraries in STACK first."""
    if stack:
        import importlib

        for name in STACK:
            importlib.import_module(name)
    import asyncio
    import json

    import aiohttp

    async def main() -> None:
        url = f"{base_url}/chat/completions"
        done = 0
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency + 4)) as session:
            todo = iter(range(n))

            async def worker() -> None:
                nonlocal done
                for i in todo:
                    body = {"model": "bench-model", "stream": stream,
                            "messages": [{"role": "user", "content": f"What are your opening hours? ({i})"}]}
                    async with session.post(url, json=body) as resp:
                        if not stream:
                            json.loads(await resp.read())
                        else:
                            buf = b""
                            async for chunk in resp.content.iter_any():
                                *lines, buf = (buf + chunk).split(b"\n")
                                for line in lines:
                                    if line.startswith(b"data: ") and line != b"data: [DONE]":
                                        json.loads(line[6:])
                    done += resp.status == 200

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        if done != n:
            sys.exit(f"plain client: {n - done} of {n} requests failed")

    asyncio.run(main())


class OtlpSink:
    """An OTLP/HTTP traces endpoint on 127.0.0.1 that accepts every export and counts it
    (nothing decoded: a real collector does that on another machine)."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        self.url = ""

    def __enter__(self) -> "OtlpSink":
        import asyncio
        import threading

        from aiohttp import web

        ready = threading.Event()

        async def traces(request: web.Request) -> web.Response:
            self.bytes += len(await request.read())
            self.requests += 1
            return web.Response(body=b"", content_type="application/x-protobuf")

        def serve() -> None:
            self._loop = loop = asyncio.new_event_loop()
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_post("/v1/traces", traces)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def _timed(cmd: list[str], out_path: Path, env: dict[str, str] | None = None) -> tuple[float, int, Any]:
    """Run a command; its wall time, exit code and resource usage (wait4: this process only)."""
    t0 = time.perf_counter()
    with open(out_path, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - t0, os.waitstatus_to_exitcode(status), usage


def run_once(n: int, latency_ms: float, concurrency: int, stream: bool, aiohttp_mock: bool = False,
             plain: bool = True, stack_floor: bool = False, otel: bool = False,
             promptfoo: str | None = None) -> dict:
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
            # wait4 gives this one process's CPU time and peak memory, not the server's
            untraced = {k: v for k, v in os.environ.items() if k != "HARNESS_OTEL"}
            wall, code, usage = _timed([sys.executable, "-m", "harness", "run", str(suite), "-q", "--no-reports",
                                        "--store", f"sqlite:///{tmp}/history.db"], out_path, untraced)
            output = out_path.read_text()
            if code != 0:
                sys.exit(f"harness run failed ({code}): {output[-2000:]}")
            traced = None
            if otel:
                with OtlpSink() as sink:
                    env = {**untraced, "HARNESS_OTEL": "1", "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url}
                    wall_t, code, usage_t = _timed([sys.executable, "-m", "harness", "run", str(suite), "-q",
                                                    "--no-reports", "--store", f"sqlite:///{tmp}/traced.db"],
                                                   out_path, env)
                    if code != 0 or "warning" in out_path.read_text():
                        sys.exit(f"traced harness run failed ({code}): {out_path.read_text()[-2000:]}")
                    traced = {"wall_s": wall_t, "cpu_s": usage_t.ru_utime + usage_t.ru_stime,
                              "rss_mb": usage_t.ru_maxrss / 1024, "exports": sink.requests, "kb": sink.bytes / 1024}
            plain_wall = floor_wall = None
            peer = None
            if promptfoo:
                # the peer on the same server at the same moment: its own cache off, results kept in
                # its own database (as ours are in the store), telemetry and update checks off
                env = {**untraced, "PROMPTFOO_CONFIG_DIR": f"{tmp}/promptfoo", "PROMPTFOO_DISABLE_TELEMETRY": "1",
                       "PROMPTFOO_DISABLE_UPDATE": "1", "PROMPTFOO_DISABLE_SHARING": "1",
                       # its log files: 0.121's file logger can throw "write after end" on exit
                       "PROMPTFOO_DISABLE_DEBUG_LOG": "1", "PROMPTFOO_DISABLE_ERROR_LOG": "1"}
                config = write_promptfoo(Path(tmp), n, base_url)
                wall_p, code, usage_p = _timed([promptfoo, "eval", "-c", str(config), "--no-cache", "--max-concurrency",
                                                str(concurrency), "--no-progress-bar", "--no-table"], out_path, env)
                said = out_path.read_text(errors="replace")
                if code != 0 or f"{n:,} passed" not in said:
                    sys.exit(f"promptfoo eval failed ({code}): {said[-2000:]}")
                peer = {"wall_s": wall_p, "cpu_s": usage_p.ru_utime + usage_p.ru_stime, "rss_mb": usage_p.ru_maxrss / 1024}
            client = [sys.executable, __file__, "--plain-client", base_url, "--cases", str(n),
                      "--concurrency", str(concurrency), *(["--no-stream"] if not stream else [])]
            for wanted, extra in ((plain, []), (stack_floor, ["--stack"])):
                if not wanted:
                    continue
                wall_c, code, _ = _timed(client + extra, out_path)
                if code != 0:
                    sys.exit(f"plain client failed ({code}): {out_path.read_text()[-2000:]}")
                if extra:
                    floor_wall = wall_c
                else:
                    plain_wall = wall_c
    finally:
        server.terminate()
        server.wait()
    cpu = usage.ru_utime + usage.ru_stime
    ideal = n * latency_ms / 1000 / concurrency
    return {"cases": n, "latency_ms": latency_ms, "concurrency": concurrency, "stream": stream,
            "wall_s": wall, "ideal_s": ideal, "ratio": wall / ideal, "cpu_ms_per_case": cpu / n * 1000,
            "peak_rss_mb": usage.ru_maxrss / 1024, "status": output.strip().splitlines()[-1],
            "plain_ratio": plain_wall / ideal if plain_wall else None,
            "vs_plain": wall / plain_wall if plain_wall else None,
            "floor_ratio": floor_wall / ideal if floor_wall else None, "traced": traced, "promptfoo": peer,
            "cpu_s": cpu}


def _line(r: dict, label: str = "") -> str:
    plain = (f"  plain aiohttp ratio {r['plain_ratio']:.2f}, harness vs plain {r['vs_plain']:.2f}"
             if r.get("vs_plain") else "")
    if r.get("floor_ratio"):
        plain += f"  plain aiohttp + stack imports ratio {r['floor_ratio']:.2f}"
    pf = r.get("promptfoo")
    if pf:
        plain += (f"  promptfoo: ratio {pf['wall_s'] / r['ideal_s']:.2f}, harness vs promptfoo "
                  f"{r['wall_s'] / pf['wall_s']:.2f}, cpu {pf['cpu_s'] / r['cases'] * 1000:.2f} ms/case "
                  f"(harness vs promptfoo {r['cpu_s'] / pf['cpu_s']:.2f}), peak RSS {pf['rss_mb']:.0f} MB")
    t = r.get("traced")
    if t:
        plain += (f"  traced: wall {t['wall_s']:.2f}s (traced vs untraced {t['wall_s'] / r['wall_s']:.2f}), "
                  f"cpu {t['cpu_s'] / r['cases'] * 1000:.2f} ms/case (x{t['cpu_s'] / r['cpu_s']:.2f}), "
                  f"peak RSS {t['rss_mb']:.0f} MB, {t['exports']} exports, {t['kb']:.0f} KB")
    return (f"{label}N={r['cases']:>6} L={r['latency_ms']:g}ms C={r['concurrency']} stream={r['stream']}: "
            f"wall {r['wall_s']:.2f}s  ideal {r['ideal_s']:.2f}s  ratio {r['ratio']:.2f}  "
            f"cpu {r['cpu_ms_per_case']:.2f} ms/case  peak harness RSS {r['peak_rss_mb']:.0f} MB{plain}  "
            f"[{r['status']}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, action="append", help="N (repeatable); default 1000 and 10000")
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--no-stream", action="store_true", help="non-streaming requests")
    ap.add_argument("--repeat", type=int, default=3, help="runs per N; the best and the median are shown")
    ap.add_argument("--aiohttp-mock", action="store_true",
                    help="serve with the mock's aiohttp server (~0.2 ms CPU a request) instead of its lean one")
    ap.add_argument("--no-plain", action="store_true", help="skip the bare aiohttp client paired with each run")
    ap.add_argument("--stack-floor", action="store_true",
                    help="also time the bare client after importing pydantic, PyYAML, SQLAlchemy and typer")
    ap.add_argument("--otel", action="store_true",
                    help="also run each size with tracing on (HARNESS_OTEL=1) into a local OTLP sink: the overhead")
    ap.add_argument("--promptfoo", metavar="BIN",
                    help="also run the same cases through this promptfoo executable (a peer; its OpenAI provider "
                         "does not stream, so every run is then non-streamed)")
    ap.add_argument("--plain-client", metavar="BASE_URL", help=argparse.SUPPRESS)  # the paired run itself
    ap.add_argument("--stack", action="store_true", help=argparse.SUPPRESS)  # with --plain-client
    args = ap.parse_args()
    if args.plain_client:
        plain_client(args.plain_client, (args.cases or [1000])[0], args.concurrency, not args.no_stream, args.stack)
        return
    if args.promptfoo:
        args.no_stream = True
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "harness")], check=False)
    for n in args.cases or [1000, 10000]:
        runs = []
        for i in range(max(1, args.repeat)):
            runs.append(run_once(n, args.latency_ms, args.concurrency, not args.no_stream, args.aiohttp_mock,
                                 plain=not args.no_plain, stack_floor=args.stack_floor, otel=args.otel,
                                 promptfoo=args.promptfoo))
            print(_line(runs[-1], f"run {i + 1}: "), flush=True)
        if len(runs) > 1:
            by_ratio = sorted(runs, key=lambda r: r["ratio"])
            print(_line(by_ratio[0], "best:   "))
            print(_line(by_ratio[(len(by_ratio) - 1) // 2], "median: "), flush=True)


if __name__ == "__main__":
    main()
