"""A local OpenTelemetry collector (OTLP/HTTP, protobuf) and a traced service under test.

`FakeCollector` serves `POST /v1/traces` on 127.0.0.1 from a background thread (see
`fake_slack.ThreadedFake`), decodes each `ExportTraceServiceRequest` with
`opentelemetry-proto` and keeps every span as a plain `Span` (ids in hex, attributes as
Python values, its service name from the resource).

`TracedAgent` is a phone service's webhook (the `http` target's protocol) that does what a
service instrumented with OpenTelemetry does: it reads the W3C `traceparent`/`baggage` of
each request and records its own span, through the SDK and the OTLP/HTTP exporter, into
the collector it is given, as service `phone-agent`.

    with FakeCollector() as collector, TracedAgent(collector.traces_url) as agent:
        ... suite: tracing: {endpoint: collector.base_url}, target: {kind: http, url: agent.url} ...
        spans = collector.wait_for(lambda spans: ...)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web
from fake_slack import ThreadedFake


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_id: str  # "" for a root span
    name: str
    kind: str  # INTERNAL, CLIENT, SERVER, …
    service: str
    attributes: dict[str, Any]
    status: str  # UNSET, OK, ERROR
    status_message: str
    links: list[tuple[str, str]]  # (trace id, span id)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    start_ns: int = 0
    end_ns: int = 0


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


def decode(body: bytes) -> list[Span]:
    """Every span of one OTLP/HTTP protobuf export request."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan, Status as PbStatus

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    out: list[Span] = []
    for rs in request.resource_spans:
        service = str(_attrs(rs.resource.attributes).get("service.name", ""))
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(Span(
                    trace_id=s.trace_id.hex(), span_id=s.span_id.hex(), parent_id=s.parent_span_id.hex(),
                    name=s.name, kind=PbSpan.SpanKind.Name(s.kind).removeprefix("SPAN_KIND_"), service=service,
                    attributes=_attrs(s.attributes),
                    status=PbStatus.StatusCode.Name(s.status.code).removeprefix("STATUS_CODE_"),
                    status_message=s.status.message,
                    links=[(link.trace_id.hex(), link.span_id.hex()) for link in s.links],
                    events=[(e.name, _attrs(e.attributes)) for e in s.events],
                    start_ns=s.start_time_unix_nano, end_ns=s.end_time_unix_nano,
                ))
    return out


class FakeCollector(ThreadedFake):
    """An OTLP/HTTP traces endpoint that keeps every span it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[Span] = []
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self._spans_lock = threading.Lock()

    @property
    def traces_url(self) -> str:
        return f"{self.base_url}/v1/traces"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/traces", self._traces)

    async def _traces(self, request: web.Request) -> web.Response:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        if request.content_type != "application/x-protobuf":
            return web.Response(status=415, text=f"expected application/x-protobuf, got {request.content_type}")
        body = await request.read()
        spans = decode(body)  # a body that does not parse fails the request, and the test
        with self._spans_lock:
            self.bodies.append(body)
            self.headers.append({k.lower(): v for k, v in request.headers.items()})
            self.spans.extend(spans)
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf")

    def wait_for(self, ready: Callable[[list[Span]], bool], timeout: float = 10.0) -> list[Span]:
        """The spans so far, once `ready(spans)` says they are all there (or after `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._spans_lock:
                spans = list(self.spans)
            if ready(spans) or time.monotonic() > deadline:
                return spans
            time.sleep(0.05)


class TracedAgent(ThreadedFake):
    """A webhook phone agent instrumented with OpenTelemetry, exporting to `traces_url`."""

    def __init__(self, traces_url: str | None, *, service: str = "phone-agent", token: str | None = None):
        super().__init__()
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        self.provider = TracerProvider(resource=Resource({"service.name": service}), shutdown_on_exit=False)
        if traces_url is not None:  # None: a service that is not instrumented
            self.provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=traces_url)))
        self.tracer = self.provider.get_tracer("phone-agent")
        self.token = token
        self.seen: list[dict[str, str]] = []  # the headers of every turn request

    @property
    def url(self) -> str:
        return f"{self.base_url}/turn"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/turn", self._turn)

    async def _turn(self, request: web.Request) -> web.Response:
        from opentelemetry import baggage, propagate
        from opentelemetry.trace import SpanKind

        headers = {k.lower(): v for k, v in request.headers.items()}
        self.seen.append(headers)
        if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "unauthorised"}, status=401)
        body = await request.json()
        parent = propagate.extract(headers)
        case_id = baggage.get_baggage("harness.case_id", parent)
        with self.tracer.start_as_current_span("agent turn", context=parent, kind=SpanKind.SERVER,
                                               attributes={"agent.case_id": str(case_id or "")}):
            with self.tracer.start_as_current_span("agent llm call"):
                text = str(body.get("text") or "")
                if "予約" in text or "book" in text:
                    return web.json_response({"reply": "ご予約ですね。お名前をどうぞ。", "intent": "reservation"})
                return web.json_response({"reply": "かしこまりました。", "intent": "other"})

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.provider.shutdown()
