"""OpenTelemetry traces of a run: every case and repeat is one trace, joined by the service's own spans.

Off by default. `HARNESS_OTEL=1` or a suite `tracing:` section turns it on (`HARNESS_OTEL=0`
and `OTEL_SDK_DISABLED=true` turn it off whatever the suite says); the standard
`OTEL_EXPORTER_OTLP_*`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`
and `OTEL_PROPAGATORS` variables work as everywhere else.

The shape of what is sent:

- one span for the run (its own trace: suite, run id, counts, verdict);
- per case and repeat one trace, whose root span links to the run's span; under it a span
  per turn, a client span per model request (GenAI semantic conventions) or webhook request,
  and a span per judge call;
- every request to the service under test carries W3C `traceparent`/`tracestate` and
  `baggage` (the case id and run id), so the service's spans join the case's trace.

A case's trace id is a function of the run id, the case id and the repeat (`case_trace_id`),
so reports read it from what the store already holds, for a case that errored too.

This module is the light front: the hooks other modules call cost one global read when
tracing is off, and nothing from `opentelemetry` is imported until a run turns it on
(`harness.tracing._otel` does the work).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ._otel import RunTracer

__all__ = [
    "TraceRef", "Settings", "case_trace_id", "chat_request", "current", "http_request", "judged",
    "outgoing_headers", "propagation_fields", "settings_for", "start_run", "trace_ref", "traced_turn",
    "wrap_case",
]

T = TypeVar("T")
_ON = frozenset({"1", "true", "yes", "on"})
_OFF = frozenset({"0", "false", "no", "off"})
EXTRA_KEY = "tracing"  # run.extra[EXTRA_KEY]: {"trace_url": template or None}

_active: "RunTracer | None" = None  # the run being traced in this process, if any


# --- settings --------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What a run's tracing needs, from the suite's `tracing:` section and the environment."""

    endpoint: str | None = None  # None: the exporter reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT
    headers: Mapping[str, str] | None = None  # None: OTEL_EXPORTER_OTLP_(TRACES_)HEADERS
    service_name: str | None = None
    record_content: bool = False
    trace_url: str | None = None


def settings_for(spec: Any, env: Mapping[str, str] | None = None) -> Settings | None:
    """The run's tracing settings, or None when tracing is off.

    `spec` is the suite's `TracingSpec` (or None). `HARNESS_OTEL` wins over the suite both
    ways; `OTEL_SDK_DISABLED=true` turns it off like for any OpenTelemetry SDK.
    """
    env = os.environ if env is None else env
    switch = env.get("HARNESS_OTEL", "").strip().lower()
    if switch in _OFF or env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if switch not in _ON and (spec is None or not spec.enabled):
        return None
    if spec is None:
        return Settings()
    endpoint = spec.endpoint
    if endpoint is not None and not endpoint.rstrip("/").endswith("/v1/traces"):
        endpoint = endpoint.rstrip("/") + "/v1/traces"  # a collector's base URL, like OTEL_EXPORTER_OTLP_ENDPOINT
    headers = {k: v.get_secret_value() for k, v in spec.headers.items()} or None
    return Settings(endpoint=endpoint, headers=headers, service_name=spec.service_name,
                    record_content=spec.record_content, trace_url=spec.trace_url)


# --- the run -------------------------------------------------------------------------------


def start_run(spec: Any, run: Any, env: Mapping[str, str] | None = None) -> "RunTracer | None":
    """Start tracing `run` (a `RunInfo`) if the suite or the environment asks for it.

    Returns the run's tracer (call `finish(run, warnings)` on it when the run is analysed), or
    None, having imported nothing, when tracing is off. Marks `run.extra` so reports know the
    run's cases have traces (and where to link them).
    """
    global _active
    settings = settings_for(spec, env)
    if settings is None:
        return None
    try:
        from ._otel import RunTracer
    except ImportError as e:
        from ..errors import ConfigError

        raise ConfigError(f"tracing is on (HARNESS_OTEL or the suite's tracing:) but OpenTelemetry is not installed "
                          f"({e.name or e}): pip install 'harness[otel]'") from None
    if _active is not None:  # a run that ended without finishing (it raised): close it first
        _active.finish(None, [])
    tracer = RunTracer(settings, run, on_finish=_finished)
    run.extra[EXTRA_KEY] = {"trace_url": settings.trace_url, "run_trace_id": tracer.run_trace_id}
    _active = tracer
    return tracer


def _finished(tracer: "RunTracer") -> None:
    global _active
    if _active is tracer:
        _active = None


def current() -> "RunTracer | None":
    """The tracer of the run in progress, or None when tracing is off."""
    return _active


# --- hooks: one call per place, nothing but a global read when tracing is off --------------


def wrap_case(play: Callable[[Any], Awaitable[T]]) -> Callable[[Any], Awaitable[T]]:
    """`play` (a planned item → its `CaseResult`) run inside the case's own trace; `play`
    itself when tracing is off."""
    tracer = _active
    return play if tracer is None else tracer.wrap_case(play)


async def traced_turn(n: int, kind: str, text: str, reply: Awaitable[T]) -> T:
    """Await the agent's `reply` to caller turn `n` inside a turn span."""
    tracer = _active
    if tracer is None:
        return await reply
    return await tracer.turn(n, kind, text, reply)


def chat_request(send: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Decorator for `ChatClient.send(self, body)`: a GenAI client span per chat request."""

    async def traced(client: Any, body: dict[str, Any]) -> T:
        tracer = _active
        if tracer is None:
            return await send(client, body)
        return await tracer.chat(client, body, send)

    traced.__name__, traced.__doc__, traced.__wrapped__ = send.__name__, send.__doc__, send  # type: ignore[attr-defined]
    return traced


def http_request(post: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Decorator for a webhook request `post(self, method, url, body)`: an HTTP client span."""

    async def traced(target: Any, method: str, url: str, body: bytes) -> T:
        tracer = _active
        if tracer is None:
            return await post(target, method, url, body)
        return await tracer.http(method, url, lambda: post(target, method, url, body))

    traced.__name__, traced.__doc__, traced.__wrapped__ = post.__name__, post.__doc__, post  # type: ignore[attr-defined]
    return traced


async def judged(label: str, verdict: Awaitable[T]) -> T:
    """Await a judge's `verdict` inside a judge span named after the rubric or criteria."""
    tracer = _active
    if tracer is None:
        return await verdict
    return await tracer.judge(label, verdict)


def outgoing_headers(headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
    """`headers` plus the trace context (`traceparent`, `tracestate`, `baggage`) of the span in
    progress, for a request to the service under test; `headers` as given when tracing is off."""
    tracer = _active
    if tracer is None:
        return headers
    return tracer.inject(headers)


def propagation_fields() -> dict[str, str]:
    """The trace context of the span in progress as name → value (`traceparent`, `tracestate`,
    `baggage`), for a transport that is not HTTP headers (a voice stream's `start`
    parameters); empty when tracing is off."""
    tracer = _active
    return dict(tracer.inject(None) or {}) if tracer is not None else {}


# --- reading traces back (reports) -------------------------------------------------------


def case_trace_id(run_id: str, case_id: str, repeat_index: int) -> str:
    """The trace id (32 hex digits) of one case and repeat of one run."""
    digest = hashlib.blake2b(f"{run_id}\x00{case_id}\x00{repeat_index}".encode(), digest_size=16).hexdigest()
    return digest if int(digest, 16) else "0" * 31 + "1"  # the all-zero id is invalid


@dataclass(frozen=True)
class TraceRef:
    trace_id: str
    url: str | None = None


def trace_ref(run: Any, case_id: str, repeat_index: int, status: str | None = None) -> TraceRef | None:
    """The trace of one result of `run` (a `RunInfo`), with its link when the suite names a
    trace URL template; None when the run was not traced or the case never ran."""
    extra = getattr(run, "extra", None)
    info = extra.get(EXTRA_KEY) if isinstance(extra, dict) else None
    if not isinstance(info, dict) or status == "not_run":
        return None
    trace_id = case_trace_id(run.run_id, case_id, repeat_index)
    template = info.get("trace_url")
    url = template.replace("{trace_id}", trace_id) if isinstance(template, str) and template else None
    return TraceRef(trace_id, url)
