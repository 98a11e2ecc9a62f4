"""A real LiteLLM proxy on 127.0.0.1 in front of local model servers, for the gateway tests.

The proxy (`litellm[proxy]`, pinned in `tests/gateway-requirements.txt`) runs in a venv of its
own: its dependency pins (rich, click, websockets) clash with the harness's, and the harness
only ever talks to it over HTTP, like a user's gateway. Found at `$HARNESS_TEST_LITELLM`, else
`.venv-gateway/bin/litellm` in the repository (what `.ci/run` installs), else `litellm` on PATH.

It never touches the network: the model cost map is the packaged one
(`LITELLM_LOCAL_MODEL_COST_MAP`), telemetry is off, there is no database, and every upstream
is a `MockOpenAI` on 127.0.0.1 whose behaviour a test sets (`script`, `default`, headers).

The aliases it serves:

- `primary` → upstream A (`openai/model-a`), falling back to `fallback` → upstream B
  (`openai/model-b`); A's deployment is priced, so the gateway reports a cost;
- `agent` → two deployments picked by tag: `v1` → A, `v2` → upstream C (`openai/model-c`):
  what an operator re-pointing an alias looks like from the outside;
- `limited` → upstream D alone (rate-limit tests); `doomed` → upstream E alone (outages).

The router neither retries nor waits between fallbacks (`num_retries: 0`), so every request
the harness sends reaches an upstream a known number of times.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx

from mock_openai import MockOpenAI

REPO = Path(__file__).resolve().parent.parent
MASTER_KEY = "sk-litellm-master-0123456789"
UPSTREAM_KEY = "sk-upstream-SECRET-42"
LITELLM_VERSION = "1.108.7"  # the newest litellm[proxy] whose pins all install; headers as of this one
BOOT_TIMEOUT_S = 120.0


class Upstream(MockOpenAI):
    """A model server that also notes when each request arrived (monotonic seconds)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.times: list[float] = []

    async def _chat(self, request):
        self.times.append(time.monotonic())
        return await super()._chat(request)

    def reset(self, default: str = "ok", **headers: str) -> None:
        self.script = []
        self.default = default
        self.requests = 0
        self.times.clear()
        self.extra_headers = dict(headers)


def litellm_binary() -> str | None:
    env = os.environ.get("HARNESS_TEST_LITELLM")
    if env:
        return env
    local = REPO / ".venv-gateway" / "bin" / "litellm"
    if local.exists():
        return str(local)
    return shutil.which("litellm")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiteLLMGateway:
    """The proxy and its five upstreams; `with LiteLLMGateway(tmpdir) as gw: gw.base_url`."""

    def __init__(self, workdir: Path, binary: str):
        self.workdir = workdir
        self.binary = binary
        self.a = Upstream(model="upstream-a-2026", fingerprint="fp_a")
        self.b = Upstream(model="upstream-b-2026", fingerprint="fp_b")
        self.c = Upstream(model="upstream-c-2026", fingerprint="fp_c")
        self.d = Upstream(model="upstream-d-2026", fingerprint="fp_d")
        self.e = Upstream(model="upstream-e-2026", fingerprint="fp_e")
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "litellm.log"

    @property
    def upstreams(self) -> list[Upstream]:
        return [self.a, self.b, self.c, self.d, self.e]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        for u in self.upstreams:
            u.reset()

    def config(self) -> str:
        def deployment(alias: str, model: str, up: Upstream, extra: str = "") -> str:
            return (f"  - model_name: {alias}\n    litellm_params:\n      model: openai/{model}\n"
                    f"      api_base: \"{up.base_url}\"\n      api_key: {UPSTREAM_KEY}\n{extra}")

        priced = "      input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n"
        return ("model_list:\n"
                + deployment("primary", "model-a", self.a, priced)
                + deployment("fallback", "model-b", self.b)
                + deployment("agent", "model-a", self.a, "      tags: [v1]\n")
                + deployment("agent", "model-c", self.c, "      tags: [v2]\n")
                + deployment("limited", "model-d", self.d)
                + deployment("doomed", "model-e", self.e)
                + "router_settings:\n  num_retries: 0\n  retry_after: 0\n  disable_cooldowns: true\n"
                  "  enable_tag_filtering: true\n"
                  "  fallbacks: [{primary: [fallback]}]\n"
                  "litellm_settings:\n  telemetry: false\n  drop_params: true\n"
                  f"general_settings:\n  master_key: {MASTER_KEY}\n")

    def __enter__(self) -> "LiteLLMGateway":
        for u in self.upstreams:
            u.__enter__()
        cfg = self.workdir / "litellm.yaml"
        cfg.write_text(self.config(), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False", NO_PROXY="*",
                   DISABLE_SCHEMA_UPDATE="true", LITELLM_LOG="ERROR", PYTHONUNBUFFERED="1")
        env.pop("DATABASE_URL", None)
        self.proc = subprocess.Popen([self.binary, "--config", str(cfg), "--host", "127.0.0.1", "--port",
                                      str(self.port), "--num_workers", "1"], env=env, cwd=self.workdir,
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"litellm exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health/liveliness", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"litellm did not answer within {BOOT_TIMEOUT_S:g}s: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for u in self.upstreams:
            u.__exit__()
