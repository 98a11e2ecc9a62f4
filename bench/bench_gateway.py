"""Latency a LiteLLM proxy adds to each call: the same requests direct to a model server and
through the proxy in front of it.

    python bench/bench_gateway.py                 # 200 requests each way, whole answers
    python bench/bench_gateway.py --requests 500 --stream

The proxy is the one the gateway tests start (tests/litellm_gateway.py: pinned litellm[proxy],
127.0.0.1, no database, no network), found the same way: `$HARNESS_TEST_LITELLM`, else
`.venv-gateway/bin/litellm`, else `litellm` on PATH; without one the bench says so and exits 0.

One client (httpx, one connection kept alive each way) sends the requests one at a time,
alternating direct and proxied so both see the same moment of a shared machine, after a
warm-up of 10 each. The upstream answers at once (no latency), so the figures are the
proxy's own: median and p95 of each side and of the per-pair difference.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from litellm_gateway import MASTER_KEY, UPSTREAM_KEY, LiteLLMGateway, litellm_binary  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def call(client: httpx.Client, url: str, key: str, model: str, stream: bool) -> float:
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}], "stream": stream}
    headers = {"authorization": f"Bearer {key}"}
    t0 = time.perf_counter()
    if stream:
        with client.stream("POST", url, json=body, headers=headers) as r:
            r.raise_for_status()
            for _ in r.iter_lines():
                pass
    else:
        client.post(url, json=body, headers=headers).raise_for_status()
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--stream", action="store_true", help="streamed answers (read to the end)")
    args = ap.parse_args()
    binary = litellm_binary()
    if binary is None:
        print("bench_gateway: no litellm proxy found (set HARNESS_TEST_LITELLM, or `bash .ci/run` "
              "installs it in .venv-gateway); skipped")
        return 0
    with tempfile.TemporaryDirectory() as tmp, LiteLLMGateway(Path(tmp), binary) as gw:
        direct_url = f"{gw.a.base_url}/chat/completions"
        proxy_url = f"{gw.base_url}/chat/completions"
        direct: list[float] = []
        proxied: list[float] = []
        with httpx.Client(timeout=30, trust_env=False) as client:
            for i in range(10 + args.requests):
                d = call(client, direct_url, UPSTREAM_KEY, "model-a", args.stream)
                p = call(client, proxy_url, MASTER_KEY, "primary", args.stream)
                if i >= 10:
                    direct.append(d)
                    proxied.append(p)
        diff = [p - d for p, d in zip(proxied, direct)]
        mode = "streamed" if args.stream else "whole answers"
        print(f"{args.requests} requests each way, {mode}, one at a time (litellm {binary})")
        for name, xs in (("direct", direct), ("via proxy", proxied), ("added", diff)):
            print(f"  {name:>10}: median {statistics.median(xs):6.1f} ms   p95 {pct(xs, 0.95):6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
