"""The OpenTelemetry side of `harness.tracing`: imported only when a run is traced.

One `RunTracer` per traced run: its own `TracerProvider` (the process-wide one is left alone,
so a host application's tracing is not changed), a batch span processor and the OTLP/HTTP
exporter. The exporter's own log lines are caught while the run lasts: a collector that is
down becomes one warning line at the end of the run, not a screen of retries.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from . import Settings, case_trace_id

T = TypeVar("T")

SCOPE = "harness"
FLUSH_S = 5.0  # at most this long at the end of a run to send the last spans
QUEUE_SIZE = 16_384  # spans waiting for export (the SDK's default, 2048, drops spans at 1,000 cases/s)
GEN_AI_SYSTEM = "openai"  # every model request goes through the OpenAI-compatible client

# A gateway's routing headers (LiteLLM), as span attributes: which deployment answered.
_DEPLOYMENT_HEADERS = (
    ("x-litellm-model-name", "harness.deployment.model"),
    ("x-litellm-model-id", "harness.deployment.id"),
    ("x-litellm-model-group", "harness.deployment.group"),
)

_REQUEST_PARAMS = (("temperature", "gen_ai.request.temperature"), ("max_tokens", "gen_ai.request.max_tokens"),
                   ("seed", "gen_ai.request.seed"), ("top_p", "gen_ai.request.top_p"))

_next_trace_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("harness_next_trace_id", default=None)
_ROOT = otel_context.Context()  # no parent: a case's span starts a trace of its own


class _CaseTraceIds(RandomIdGenerator):
    """Random ids, except that a case's root span gets the trace id `case_trace_id` names."""

    def generate_trace_id(self) -> int:
        wanted = _next_trace_id.get()
        return wanted if wanted is not None else super().generate_trace_id()


class _Counting(SpanExporter):
    """The OTLP exporter, counting what it delivered; `abort()` stops its retries at once."""

    def __init__(self, inner: OTLPSpanExporter):
        self.inner = inner
        self.exported = 0
        self.failed = 0
        self._closed = False
        self._lock = threading.Lock()

    def export(self, spans: Any) -> SpanExportResult:
        if self._closed:
            with self._lock:
                self.failed += len(spans)
            return SpanExportResult.FAILURE
        result = self.inner.export(spans)
        with self._lock:
            if result is SpanExportResult.SUCCESS:
                self.exported += len(spans)
            else:
                self.failed += len(spans)
        return result

    def abort(self) -> None:
        if not self._closed:
            self._closed = True
            self.inner.shutdown()  # wakes a retry's backoff wait, closes the connections

    def shutdown(self) -> None:
        self.abort()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _Ended(SpanProcessor):
    """Counts the spans the run produced (to say how many did not reach the collector)."""

    def __init__(self) -> None:
        self.count = 0

    def on_end(self, span: ReadableSpan) -> None:
        self.count += 1


class _Quiet(logging.Handler):
    """Takes the SDK's and exporter's log lines while a run is traced; keeps the last problem."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.problem: str | None = None
        self.unreachable = threading.Event()  # a connection to the collector failed
        self._logger = logging.getLogger("opentelemetry")
        self._saved: tuple[bool, int] | None = None

    def install(self) -> "_Quiet":
        self._saved = (self._logger.propagate, self._logger.level)
        self._logger.addHandler(self)
        self._logger.propagate = False
        if self._logger.level == logging.NOTSET or self._logger.level > logging.WARNING:
            self._logger.setLevel(logging.WARNING)
        return self

    def uninstall(self) -> None:
        self._logger.removeHandler(self)
        if self._saved is not None:
            self._logger.propagate, level = self._saved
            self._logger.setLevel(level)

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        # "Transient error %s encountered …": a status gives a reason string, a connection
        # that could not be made gives the exception itself
        if args and isinstance(args[0], BaseException):
            self.unreachable.set()
            self.problem = _error_text(args[0])
        elif self.problem is None or record.levelno >= logging.ERROR:
            try:
                self.problem = " ".join(record.getMessage().split())[:200]
            except Exception:  # noqa: BLE001 — a log line must never break the run
                self.problem = record.msg if isinstance(record.msg, str) else "export failed"


class RunTracer:
    """The tracing of one run: its span, the span of each case, turn, request and judge call."""

    def __init__(self, settings: Settings, run: Any, *, on_finish: Callable[["RunTracer"], None]):
        self.settings = settings
        self.run_id = str(run.run_id)
        self.suite = str(run.suite)
        self.record_content = settings.record_content
        self._on_finish = on_finish
        self._quiet = _Quiet().install()
        self._ended = _Ended()
        inner = OTLPSpanExporter(endpoint=settings.endpoint, headers=dict(settings.headers) if settings.headers else None)
        self.endpoint = _safe_url(getattr(inner, "_endpoint", None) or settings.endpoint or "")
        self.exporter = _Counting(inner)
        self.provider = TracerProvider(resource=_resource(settings), id_generator=_CaseTraceIds(),
                                       shutdown_on_exit=False)
        self.provider.add_span_processor(self._ended)
        queue = None if os.environ.get("OTEL_BSP_MAX_QUEUE_SIZE") else QUEUE_SIZE
        self.processor = BatchSpanProcessor(self.exporter, max_queue_size=queue)
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer(SCOPE, _version())
        target = run.target if isinstance(run.target, dict) else {}
        attrs: dict[str, Any] = {"harness.suite": self.suite, "harness.run.id": self.run_id,
                                 "harness.run.planned": int(run.planned or 0)}
        _put(attrs, "harness.target.kind", target.get("kind"))
        _put(attrs, "gen_ai.request.model", target.get("model") or run.model)
        _put(attrs, "harness.git_sha", run.git_sha)
        _put(attrs, "harness.run.group", run.group)
        self.run_span = self.tracer.start_span(f"run {self.suite}", attributes=attrs)
        context = self.run_span.get_span_context()
        self.run_trace_id = format(context.trace_id, "032x")
        self._links = [Link(context)]
        self._token: object | None = otel_context.attach(trace.set_span_in_context(self.run_span))
        self._server: dict[str, dict[str, Any]] = {}  # url → server.address / server.port

    # --- a case: its own trace, linked to the run's ------------------------------------------

    def wrap_case(self, play: Callable[[Any], Awaitable[T]]) -> Callable[[Any], Awaitable[T]]:
        async def traced(item: Any) -> T:
            span, context = self._start_case(item)
            token = otel_context.attach(context)
            try:
                result = await play(item)
            except BaseException as e:
                span.record_exception(e)
                span.set_status(Status(StatusCode.ERROR, type(e).__name__))
                raise
            else:
                self._case_result(span, result)
                return result
            finally:
                otel_context.detach(token)
                span.end()

        return traced

    def _start_case(self, item: Any) -> tuple[Any, Any]:
        compiled = item.compiled
        case = compiled.case
        repeat = int(item.repeat_index)
        attrs: dict[str, Any] = {
            "harness.suite": self.suite, "harness.run.id": self.run_id, "harness.case.id": case.id,
            "harness.case.topic": compiled.topic or "", "harness.case.repeat": repeat,
            "harness.case.source": compiled.source or "",
        }
        if compiled.tags:
            attrs["harness.case.tags"] = list(compiled.tags)
        wanted = _next_trace_id.set(int(case_trace_id(self.run_id, case.id, repeat), 16))
        try:
            span = self.tracer.start_span(f"case {case.id}", context=_ROOT, attributes=attrs, links=self._links)
        finally:
            _next_trace_id.reset(wanted)
        context = baggage.set_baggage("harness.case_id", case.id, context=_ROOT)
        context = baggage.set_baggage("harness.run_id", self.run_id, context=context)
        return span, trace.set_span_in_context(span, context)

    def _case_result(self, span: Any, result: Any) -> None:
        """The case's outcome on its span: status, check counts, the failed checks (one event
        each, with the check's name, turn and score), the end state and the routes."""
        status = result.status
        attrs: dict[str, Any] = {"harness.case.status": status}
        failed: list[str] = []
        passed = 0
        for c in result.checks:
            if c.skipped:
                continue
            if c.passed and not c.error:
                passed += 1
                continue
            failed.append(c.name if c.turn is None else f"{c.name}@{c.turn}")
            event: dict[str, Any] = {"harness.check.name": c.name, "harness.check.outcome": "error" if c.error else "failed",
                                     "harness.check.score": float(c.score)}
            if c.turn is not None:
                event["harness.turn.index"] = int(c.turn)
            if self.record_content and c.reason:
                event["harness.check.reason"] = c.reason
            span.add_event("harness.check", event)
        attrs["harness.checks.passed"] = passed
        if failed:
            attrs["harness.checks.failed"] = failed
        transcript = result.transcript
        if transcript is not None:
            outcome = transcript.outcome
            if outcome.intent:
                attrs["harness.outcome.intent"] = str(outcome.intent)
            if outcome.ended_by:
                attrs["harness.outcome.ended_by"] = str(outcome.ended_by)
            if outcome.transferred:
                attrs["harness.outcome.transferred"] = True
            routes = {t.reply.route for t in transcript.turns if t.reply.route}
            if routes:
                attrs["harness.route"] = sorted(routes) if len(routes) > 1 else routes.pop()
        if status == "error":
            attrs["error.type"] = result.error_kind or "error"
        span.set_attributes(attrs)
        if status == "error":
            span.set_status(Status(StatusCode.ERROR, _described(result.error_kind, result.error, self.record_content)))
        elif status == "failed":
            span.set_status(Status(StatusCode.ERROR, "check failed: " + ", ".join(failed)[:200]))

    # --- spans in a case ----------------------------------------------------------------------

    def _enter(self, name: str, attrs: dict[str, Any], kind: SpanKind = SpanKind.INTERNAL) -> tuple[Any, object]:
        span = self.tracer.start_span(name, kind=kind, attributes=attrs)
        return span, otel_context.attach(trace.set_span_in_context(span))

    async def turn(self, n: int, kind: str, text: str, reply: Awaitable[T]) -> T:
        attrs: dict[str, Any] = {"harness.turn.index": int(n), "harness.turn.kind": kind}
        if self.record_content and kind != "silence":
            attrs["harness.turn.caller"] = text
        span, token = self._enter(f"turn {n}", attrs)
        try:
            answer = await reply
            span.set_attributes(_reply_attributes(answer, self.record_content))
            return answer
        except BaseException as e:
            _failed(span, e, self.record_content)
            raise
        finally:
            otel_context.detach(token)
            span.end()

    async def chat(self, client: Any, body: dict[str, Any], send: Callable[[Any, dict[str, Any]], Awaitable[T]]) -> T:
        model = body.get("model")
        attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.system": GEN_AI_SYSTEM,
                                 "gen_ai.request.stream": bool(body.get("stream"))}
        if model:
            attrs["gen_ai.request.model"] = model
        for key, name in _REQUEST_PARAMS:
            value = body.get(key)
            if value is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
                attrs[name] = value
        attrs.update(self._server_of(getattr(client, "url", "")))
        span, token = self._enter(f"chat {model}" if model else "chat", attrs, SpanKind.CLIENT)
        try:
            result = await send(client, body)
            span.set_attributes(_chat_attributes(result, self.record_content))
            return result
        except BaseException as e:
            _failed(span, e, self.record_content)
            raise
        finally:
            otel_context.detach(token)
            span.end()

    async def http(self, method: str, url: str, post: Callable[[], Awaitable[T]]) -> T:
        attrs: dict[str, Any] = {"http.request.method": method, **self._server_of(url)}
        span, token = self._enter(method, attrs, SpanKind.CLIENT)
        try:
            return await post()
        except BaseException as e:
            _failed(span, e, self.record_content)
            raise
        finally:
            otel_context.detach(token)
            span.end()

    async def judge(self, label: str, verdict: Awaitable[T]) -> T:
        span, token = self._enter(f"judge {label}", {"gen_ai.operation.name": "evaluate",
                                                     "gen_ai.evaluation.name": label})
        try:
            result = await verdict
        except BaseException as e:
            _failed(span, e, self.record_content)
            raise
        else:
            attrs: dict[str, Any] = {
                "gen_ai.evaluation.score.label": "skipped" if getattr(result, "skipped", False)
                else ("pass" if getattr(result, "passed", False) else "fail"),
                "harness.judge.cached": bool(getattr(result, "cached", False)),
            }
            score = getattr(result, "score", None)
            if isinstance(score, (int, float)):
                attrs["gen_ai.evaluation.score.value"] = float(score)
            reason = getattr(result, "reason", None)
            if self.record_content and isinstance(reason, str) and reason:
                attrs["gen_ai.evaluation.explanation"] = reason
            span.set_attributes(attrs)
            return result
        finally:
            otel_context.detach(token)
            span.end()

    def inject(self, headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
        carrier = dict(headers) if headers else {}
        propagate.inject(carrier)
        return carrier or headers

    def _server_of(self, url: str) -> dict[str, Any]:
        known = self._server.get(url)
        if known is None:
            parts = urlsplit(url)
            known = {"url.full": _safe_url(url)} if url else {}
            if parts.hostname:
                known["server.address"] = parts.hostname
                port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
                if port:
                    known["server.port"] = port
            self._server[url] = known
        return known

    # --- the end --------------------------------------------------------------------------

    def finish(self, run: Any, warnings: list[str]) -> None:
        """End the run's span, send what is left (at most FLUSH_S), and say in one warning line
        if spans could not be delivered. Never raises."""
        try:
            if run is not None:
                self._end_run_span(run)
            else:
                self.run_span.end()
        finally:
            try:
                self._flush(warnings)
            finally:
                self._quiet.uninstall()
                self._on_finish(self)

    def _end_run_span(self, run: Any) -> None:
        span = self.run_span
        counts = run.counts if isinstance(run.counts, dict) else {}
        for key in ("passed", "failed", "error", "not_run"):
            span.set_attribute(f"harness.run.{key}", int(counts.get(key) or 0))
        _set(span, "harness.run.status", run.status)
        if run.exit_code is not None:
            span.set_attribute("harness.run.exit_code", int(run.exit_code))
        verdict = run.extra.get("verdict") if isinstance(run.extra, dict) else None
        if isinstance(verdict, dict) and isinstance(verdict.get("class"), str):
            span.set_attribute("harness.verdict", verdict["class"])
        if run.message:
            span.set_attribute("harness.run.message", str(run.message)[:500])
        if run.exit_code:
            span.set_status(Status(StatusCode.ERROR, f"exit code {run.exit_code}"))
        span.end()
        if self._token is not None:
            token, self._token = self._token, None
            try:
                otel_context.detach(token)
            except Exception:  # noqa: BLE001 — ended in another context (a front that moved threads)
                pass

    def _flush(self, warnings: list[str]) -> None:
        self._quiet.unreachable.clear()
        done = threading.Thread(target=self.processor.shutdown, name="harness-trace-flush", daemon=True)
        done.start()
        deadline = time.monotonic() + FLUSH_S
        while done.is_alive() and time.monotonic() < deadline:
            if self._quiet.unreachable.wait(0.02):
                break  # the collector is not there: stop retrying now
            done.join(0.02)
        if done.is_alive():
            self.exporter.abort()
            done.join(2.0)
        total = self._ended.count
        missing = max(total - self.exporter.exported, 0)
        if missing:
            why = self._quiet.problem or "the collector did not answer in time"
            warnings.append(f"tracing: {missing} of {total} spans were not delivered to {self.endpoint or 'the collector'} "
                            f"({why}); the results are unaffected")


# --- attributes ----------------------------------------------------------------------------


def _reply_attributes(reply: Any, record_content: bool) -> dict[str, Any]:
    """A turn's answer as attributes (the model, tokens and timing of each request are on its
    client span): the route that served it, time to first token, retries, a hang-up."""
    attrs: dict[str, Any] = {}
    route = getattr(reply, "route", None)
    if route:
        attrs["harness.route"] = str(route)
    first = getattr(reply, "first_token_ms", None)
    if isinstance(first, (int, float)):
        attrs["harness.turn.first_token_ms"] = float(first)
    attempts = getattr(reply, "attempts", None)
    if isinstance(attempts, int) and attempts != 1:
        attrs["harness.turn.attempts"] = attempts
    if getattr(reply, "ended", False):
        attrs["harness.turn.ended_call"] = True
    if record_content:
        text = getattr(reply, "text", None)
        if isinstance(text, str):
            attrs["harness.turn.reply"] = text
    return attrs


def _chat_attributes(result: Any, record_content: bool) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if result.model:
        attrs["gen_ai.response.model"] = result.model
    if result.fingerprint:
        attrs["gen_ai.openai.response.system_fingerprint"] = result.fingerprint
    if result.finish_reason:
        attrs["gen_ai.response.finish_reasons"] = (result.finish_reason,)
    tokens_in, tokens_out = result.tokens_in, result.tokens_out
    if tokens_in is not None:
        attrs["gen_ai.usage.input_tokens"] = tokens_in
    if tokens_out is not None:
        attrs["gen_ai.usage.output_tokens"] = tokens_out
    if result.first_token_ms is not None:
        attrs["gen_ai.response.time_to_first_chunk"] = result.first_token_ms / 1000
    data = result.data
    if data is not None and isinstance(data.get("id"), str):
        attrs["gen_ai.response.id"] = data["id"]
    headers = result.headers
    if headers and ("x-litellm-model-name" in headers or "x-litellm-model-id" in headers):
        for header, name in _DEPLOYMENT_HEADERS:
            value = headers.get(header)
            if value:
                attrs[name] = str(value)[:200]
        base = headers.get("x-litellm-model-api-base")
        host = urlsplit(str(base)).hostname if base else None
        if host:
            attrs["harness.deployment.api_base_host"] = host
        fallbacks = headers.get("x-litellm-attempted-fallbacks")
        if fallbacks and fallbacks.strip() not in ("0", ""):
            attrs["harness.route"] = "fallback"
    if record_content and result.text:
        attrs["gen_ai.output.messages"] = result.text
    return attrs


def _failed(span: Any, e: BaseException, record_content: bool) -> None:
    kind = getattr(e, "kind", None) or type(e).__name__
    span.set_attribute("error.type", str(kind))
    status = getattr(e, "status", None)
    if isinstance(status, int):
        span.set_attribute("http.response.status_code", status)
    line = e.line() if hasattr(e, "line") else str(e)
    span.set_status(Status(StatusCode.ERROR, _described(kind, line, record_content, status)))


def _described(kind: str | None, line: str | None, record_content: bool, status: int | None = None) -> str:
    """A span's error description: the whole (masked) error line only when the suite records
    content, since a server's error body may quote what was said; else its kind and status."""
    if record_content and line:
        return line[:500]
    return f"{kind or 'error'}" + (f" (HTTP {status})" if status else "")


def _put(attrs: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != "":
        attrs[key] = value


def _set(span: Any, key: str, value: Any) -> None:
    if value is not None and value != "":
        span.set_attribute(key, value)


def _safe_url(url: str) -> str:
    """The URL without credentials, query or fragment (tokens hide there)."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _error_text(e: BaseException) -> str:
    text = str(e)
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host"):
        if marker.lower() in text.lower():
            return marker.lower()
    return f"{type(e).__name__}: {' '.join(text.split())[:160]}"


def _resource(settings: Settings) -> Resource:
    resource = Resource.create()  # OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME are read here
    if settings.service_name:
        return resource.merge(Resource({"service.name": settings.service_name}))
    name = resource.attributes.get("service.name")
    if not name or str(name).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "harness"}))
    return resource


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("harness")
    except PackageNotFoundError:
        return "0"
