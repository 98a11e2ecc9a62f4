"""Datadog: metrics for every run, an event for every run that is not ok.

Metrics (v2 `MetricsApi.submit_metrics`), all stamped with the run's end time in epoch
seconds and tagged `suite`, `model`, `target`, `env`, `verdict` plus the suite's own tags:

| metric | type | what |
|---|---|---|
| harness.run.pass_rate | gauge | passed ÷ (passed + failed), 0..1 (see `RunSummary`) |
| harness.run.error_rate | gauge | infra errors and not-run ÷ cases, 0..1 |
| harness.run.cases, .failed, .errors, .not_run | count | results in the run |
| harness.run.turn_latency_ms.p50, .p95 | gauge | per-turn agent latency |
| harness.run.tokens, harness.run.cost_usd | count | totals over the run |
| harness.run.judge_score | gauge | mean judge score (only when judged) |
| harness.run.regression, harness.run.drift | gauge | 1 when the verdict says so, else 0 |
| harness.topic.pass_rate, .error_rate | gauge | per topic, tagged `topic:` |
| harness.topic.cases, .failed | count | per topic |
| harness.objective.sli, .window_sli, .budget_left, .budget_consumed | gauge | per objective, tagged `objective:`, `indicator:` |
| harness.objective.burn_rate | gauge | per objective and alert window, tagged `window:` |
| harness.objective.events, .good_events | count | this run's events of each objective |

Per-topic series use their own names rather than a `topic` tag on the run metrics, so
`avg:harness.run.pass_rate{suite:x}` never averages a run with its own topics.

Events (v1 `EventsApi.create_event`): `alert_type` error for regression and failed runs,
warning for drift, judge drift and infra, info for noise; `aggregation_key`
`harness:<suite>` so Datadog groups one suite's events; the text holds the headline, the
counts, the top failing cases and the report link.

The async client needs `aiosonic`, which is not a dependency, so the sync client runs in a
worker thread. Its retries (429 and 5xx, honouring X-RateLimit-Reset) are urllib3's,
configured through `configuration.retry_policy` because `retry_backoff_factor` refuses
values under 2 s, far too slow for tests.

LLM Observability (`llm_observability: true`): the run is sent as an experiment through
the v2 Agent Observability endpoints (project → dataset → experiment → spans and metrics).
The client marks those operations unstable, so they are enabled one by one with
`configuration.unstable_operations[...] = True`; they need an application key.

SLOs (`slos: true`, with an application key): each objective with a budget is created, or
updated when an earlier run made it (found by its `harness_objective:` tag), as a
metric-based SLO over the `events` and `good_events` counts above (v1 service level
objectives API), so Datadog's own SLO page shows the suite's objectives.
"""

from __future__ import annotations

import asyncio
import re
import time
import warnings
from typing import Any

from pydantic import Field, SecretStr

from ..records import CaseResult, RunInfo
from ..report.summary import RunSummary
from ..verdict import VerdictClass
from .base import Notifier, NotifierConfig, NotifyWhen, Publication, register
from .errors import DeliveryError
from .redact import Redactor

GAUGE, COUNT = "gauge", "count"
EVENT_TITLE = 100
EVENT_TEXT = 4000
TAG_LIMIT = 200

_TAG_BAD = re.compile(r"[^a-z0-9_:./\-]")


class DatadogSpec(NotifierConfig):
    """`notify.datadog`: metrics for every run (by default), an event for every run not ok."""

    when: list[NotifyWhen] = Field(default_factory=lambda: ["always"])
    api_key: SecretStr
    app_key: SecretStr | None = None
    site: str = "datadoghq.com"
    host: str | None = Field(default=None, description="full URL overriding site (proxies, tests)")
    tags: list[str] = Field(default_factory=list)
    env: str | None = None
    events: bool = True
    llm_observability: bool = False
    slos: bool = Field(default=False, description="create or update each objective as a Datadog SLO (needs app_key)")


def tag(key: str, value: Any) -> str:
    """A Datadog tag: lower case, characters Datadog would rewrite turned into `_`."""
    text = _TAG_BAD.sub("_", f"{key}:{value}".lower())
    return text[:TAG_LIMIT]


def run_tags(run: RunInfo, summary: RunSummary, spec: DatadogSpec) -> list[str]:
    tags = [tag("suite", run.suite), tag("verdict", summary.verdict_class)]
    if run.model:
        tags.append(tag("model", run.model))
    if run.target.get("kind"):
        tags.append(tag("target", run.target["kind"]))
    if spec.env:
        tags.append(tag("env", spec.env))
    tags.extend(spec.tags)
    return list(dict.fromkeys(tags))  # keep order, drop repeats


def end_time(run: RunInfo) -> int:
    return int(run.ended or run.started or time.time())


def build_series(run: RunInfo, summary: RunSummary, spec: DatadogSpec) -> list[dict[str, Any]]:
    """The metric series of one run, as plain JSON (kept as-is when delivery is pending)."""
    ts = end_time(run)
    tags = run_tags(run, summary, spec)
    series: list[dict[str, Any]] = []

    def add(name: str, kind: str, value: float | None, extra: list[str] = ()) -> None:
        if value is None:
            return
        series.append({"metric": name, "type": kind, "points": [{"timestamp": ts, "value": float(value)}],
                       "tags": tags + list(extra)})

    c = summary.counts
    add("harness.run.pass_rate", GAUGE, summary.pass_rate)
    add("harness.run.error_rate", GAUGE, summary.error_rate)
    add("harness.run.cases", COUNT, summary.cases)
    add("harness.run.failed", COUNT, c.get("failed", 0))
    add("harness.run.errors", COUNT, c.get("error", 0))
    add("harness.run.not_run", COUNT, c.get("not_run", 0))
    add("harness.run.turn_latency_ms.p50", GAUGE, summary.latency(50))
    add("harness.run.turn_latency_ms.p95", GAUGE, summary.latency(95))
    add("harness.run.tokens", COUNT, summary.tokens)
    add("harness.run.cost_usd", COUNT, summary.cost)
    add("harness.run.judge_score", GAUGE, summary.judge_score)
    cls = summary.verdict_class
    add("harness.run.regression", GAUGE, 1.0 if cls is VerdictClass.REGRESSION else 0.0)
    add("harness.run.drift", GAUGE, 1.0 if cls in (VerdictClass.DRIFT, VerdictClass.JUDGE_DRIFT) else 0.0)
    for t in summary.topics:
        extra = [tag("topic", t.topic)]
        add("harness.topic.pass_rate", GAUGE, t.pass_rate, extra)
        add("harness.topic.error_rate", GAUGE, t.error_rate, extra)
        add("harness.topic.cases", COUNT, t.cases, extra)
        add("harness.topic.failed", COUNT, t.failed, extra)
    from ..objectives.metrics import objective_series

    series += objective_series(run.extra if isinstance(run.extra, dict) else None, ts, tags, tag)
    return series


def build_event(run: RunInfo, summary: RunSummary, spec: DatadogSpec, link: str | None) -> dict[str, Any] | None:
    """The event of a run whose verdict is not ok; None for an ok run or with events off."""
    cls = summary.verdict_class
    if cls.alert is None or not spec.events:
        return None
    headline = summary.headline or cls.value
    title = f"harness {run.suite}: {cls} — {headline}"
    if len(title) > EVENT_TITLE:
        title = title[: EVENT_TITLE - 1] + "…"
    lines = [headline, "", f"{summary.counts_text()} (run {run.run_id})"]
    if link:
        lines.append(f"Report: {link}")
    failing = list(summary.failing.values())
    if failing:
        lines.append("")
        lines.append("Failing cases:")
    tail = "" if not link else f"\nReport: {link}"
    text = "\n".join(lines)
    for i, case in enumerate(failing):
        line = f"- {case.case_id} ({case.topic}): {' '.join(case.reason.split())[:200]}"
        more = f"\n… and {len(failing) - i} more"
        if len(text) + 1 + len(line) + len(more) + len(tail) > EVENT_TEXT:
            text += more
            break
        text += "\n" + line
    return {
        "title": title,
        "text": text[:EVENT_TEXT],
        "alert_type": cls.alert,
        "aggregation_key": f"harness:{run.suite}"[:100],
        "source_type_name": "harness",
        "date_happened": end_time(run),
        "tags": run_tags(run, summary, spec),
    }


def build_experiment(run: RunInfo, results: list[CaseResult], summary: RunSummary) -> dict[str, Any]:
    """The run as an LLM Observability experiment: one span per result, one metric each."""
    spans = []
    for r in results:
        t = r.transcript
        spans.append({
            "case_id": r.case_id,
            "repeat": r.repeat_index,
            "topic": r.topic,
            "status": "error" if r.status == "error" else "ok",
            "passed": r.status == "passed",
            "start_ns": int((r.started or run.started) * 1e9),
            "duration_ns": int(max(r.duration_ms, 0) * 1e6),
            "input": "\n".join(turn.caller or "" for turn in t.turns if turn.caller) if t else "",
            "output": t.last_text if t else (r.error or ""),
            "reason": "; ".join(r.failing_reasons)[:1000],
        })
    return {"project": f"harness-{run.suite}", "dataset": f"harness-{run.suite}",
            "experiment": f"{run.suite}-{run.run_id}", "verdict": summary.verdict_class.value, "spans": spans}


def build_payload(run: RunInfo, results: list[CaseResult], summary: RunSummary, spec: DatadogSpec,
                  link: str | None) -> dict[str, Any]:
    """Everything Datadog gets for a run; parts are sent (and kept) separately."""
    payload: dict[str, Any] = {"series": build_series(run, summary, spec)}
    event = build_event(run, summary, spec, link)
    if event is not None:
        payload["event"] = event
    if spec.llm_observability and spec.app_key is not None:
        payload["experiment"] = build_experiment(run, results, summary)
    if spec.slos and spec.app_key is not None:
        slos = slo_definitions(run, spec)
        if slos:
            payload["slos"] = slos
    return payload


def slo_definitions(run: RunInfo, spec: DatadogSpec) -> list[dict[str, Any]]:
    """The run's objectives as Datadog metric SLOs (`slos: true`), over the gauges above."""
    from ..objectives.metrics import slo_definitions as definitions

    scope = [tag("env", spec.env)] if spec.env else []
    return definitions(run.extra if isinstance(run.extra, dict) else None, run.suite, tag, scope)


# ---------------------------------------------------------------- sending


def configuration(spec: DatadogSpec, *, retries: int = 3, backoff_s: float = 2.0, timeout_s: float = 30.0,
                  llm_obs: bool = False):
    """A client configuration: site or full host URL, keys, retries; nothing read from DD_* env."""
    from datadog_api_client import Configuration
    from datadog_api_client.rest import ClientRetry

    config = Configuration()
    config.api_key.clear()  # only the suite's keys, never a stray DD_API_KEY from the environment
    config.api_key["apiKeyAuth"] = spec.api_key.get_secret_value()
    if spec.app_key is not None:
        config.api_key["appKeyAuth"] = spec.app_key.get_secret_value()
    config.server_variables["site"] = spec.site
    if spec.host:
        config.host = spec.host.rstrip("/")
    config.request_timeout = timeout_s
    config.enable_retry = True
    config.max_retries = retries
    config.retry_policy = ClientRetry(total=retries, backoff_factor=backoff_s, backoff_max=30.0,
                                      raise_on_status=False)
    if llm_obs:
        from ._llmobs import OPERATIONS

        for op in OPERATIONS:  # unstable in datadog-api-client: enabled only when asked for
            config.unstable_operations[op] = True
    return config




def _series_models(series: list[dict[str, Any]]):
    from datadog_api_client.v2.model.metric_intake_type import MetricIntakeType
    from datadog_api_client.v2.model.metric_payload import MetricPayload
    from datadog_api_client.v2.model.metric_point import MetricPoint
    from datadog_api_client.v2.model.metric_series import MetricSeries

    kinds = {GAUGE: MetricIntakeType.GAUGE, COUNT: MetricIntakeType.COUNT}
    return MetricPayload(series=[
        MetricSeries(
            metric=s["metric"],
            type=kinds[s["type"]],
            points=[MetricPoint(timestamp=int(p["timestamp"]), value=float(p["value"])) for p in s["points"]],
            tags=list(s.get("tags") or []),
        )
        for s in series
    ])


def _event_model(event: dict[str, Any]):
    from datadog_api_client.v1.model.event_alert_type import EventAlertType
    from datadog_api_client.v1.model.event_create_request import EventCreateRequest

    return EventCreateRequest(
        title=event["title"],
        text=event["text"],
        alert_type=EventAlertType(event["alert_type"]),
        aggregation_key=event["aggregation_key"],
        source_type_name=event.get("source_type_name", "harness"),
        date_happened=int(event["date_happened"]),
        tags=list(event.get("tags") or []),
    )


def _send_part(spec: DatadogSpec, part: str, body: Any, retries: int, backoff_s: float, timeout_s: float) -> None:
    """One blocking call to Datadog; raises what the client raises."""
    from datadog_api_client import ApiClient

    with ApiClient(configuration(spec, retries=retries, backoff_s=backoff_s, timeout_s=timeout_s,
                                 llm_obs=part == "experiment")) as api:
        if part == "series":
            from datadog_api_client.v2.api.metrics_api import MetricsApi

            resp = MetricsApi(api).submit_metrics(body=_series_models(body))
            errors = resp.get("errors") if hasattr(resp, "get") else None
            if errors:
                raise _Refused(f"metrics intake reported: {'; '.join(map(str, errors))[:300]}")
        elif part == "event":
            from datadog_api_client.v1.api.events_api import EventsApi

            EventsApi(api).create_event(body=_event_model(body))
        elif part == "slos":
            _sync_slos(api, body)
        elif part == "experiment":
            from ._llmobs import send_experiment

            with warnings.catch_warnings():
                # the client warns on every unstable call; the suite opted in explicitly
                warnings.filterwarnings("ignore", message="Using unstable operation")
                send_experiment(api, body)
        else:
            raise ValueError(f"unknown Datadog payload part {part!r}")


class _Refused(Exception):
    pass


def _sync_slos(api: Any, slos: list[dict[str, Any]]) -> None:
    """Create each objective's metric SLO, or update the one an earlier run created (found by
    its `harness_objective:` tag), so Datadog's SLO page shows the suite's objectives."""
    from datadog_api_client.v1.api.service_level_objectives_api import ServiceLevelObjectivesApi
    from datadog_api_client.v1.model.service_level_objective import ServiceLevelObjective
    from datadog_api_client.v1.model.service_level_objective_query import ServiceLevelObjectiveQuery
    from datadog_api_client.v1.model.service_level_objective_request import ServiceLevelObjectiveRequest
    from datadog_api_client.v1.model.slo_threshold import SLOThreshold
    from datadog_api_client.v1.model.slo_timeframe import SLOTimeframe
    from datadog_api_client.v1.model.slo_type import SLOType

    slo_api = ServiceLevelObjectivesApi(api)
    for s in slos:
        fields = dict(
            name=s["name"], description=s["description"], type=SLOType.METRIC, tags=s["tags"],
            query=ServiceLevelObjectiveQuery(numerator=s["numerator"], denominator=s["denominator"]),
            thresholds=[SLOThreshold(timeframe=SLOTimeframe(s["timeframe"]), target=s["target"])],
        )
        found = slo_api.list_slos(tags_query=s["tags"][-1]).get("data") or []
        if found:
            slo_api.update_slo(found[0]["id"], body=ServiceLevelObjective(**fields))
        else:
            slo_api.create_slo(body=ServiceLevelObjectiveRequest(**fields))


PARTS = ("series", "event", "slos", "experiment")
DESTINATION = {"series": "datadog metrics", "event": "datadog event", "slos": "datadog slos",
               "experiment": "datadog llm observability"}


async def send(payload: dict[str, Any], spec: DatadogSpec, redactor: Redactor, *, retries: int = 3,
               backoff_s: float = 2.0, timeout_s: float = 30.0) -> list[DeliveryError]:
    """Send each part of a payload; return one DeliveryError per part that did not get through
    (each with `remaining` = just that part), so metrics are not re-sent when only the event failed."""
    failures = []
    for part in PARTS:
        if part not in payload:
            continue
        try:
            await asyncio.to_thread(_send_part, spec, part, payload[part], retries, backoff_s, timeout_s)
        except Exception as exc:  # the client raises many types; each becomes one warning line
            failures.append(DeliveryError(DESTINATION[part], redactor.scrub(_describe(exc)),
                                          remaining={part: payload[part]}, attempts=retries + 1,
                                          status=getattr(exc, "status", None)))
    return failures


def _describe(exc: BaseException) -> str:
    """One line for any client error: status and reason, never headers (which carry keys)."""
    status = getattr(exc, "status", None)
    if status is not None:
        reason = getattr(exc, "reason", "") or ""
        body = getattr(exc, "body", "") or ""
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        detail = " ".join(str(body).split())[:200]
        return f"HTTP {status} {reason}".strip() + (f": {detail}" if detail else "")
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


# ---------------------------------------------------------------- the notifier


@register
class DatadogNotifier(Notifier):
    """`notify.datadog`: metrics, an event when the verdict is not ok, optionally LLM Observability."""

    name = "datadog"
    config_model = DatadogSpec
    description = "Datadog: run and topic metrics, an event for every run not ok, LLM Observability"

    config: DatadogSpec

    @classmethod
    def is_off(cls, raw: dict[str, Any]) -> bool:
        return "api_key" in raw and not raw.get("api_key")

    def owns(self, destination: str) -> bool:
        return destination.startswith("datadog")

    def payload(self, pub: Publication) -> dict[str, Any]:
        if self.config.llm_observability and self.config.app_key is None:
            pub.notes.append("datadog llm observability: skipped, it needs notify.datadog.app_key")
        if self.config.slos and self.config.app_key is None and slo_definitions(pub.run, self.config):
            pub.notes.append("datadog slos: skipped, they need notify.datadog.app_key")
        return build_payload(pub.run, pub.results, pub.summary, self.config, pub.link)

    async def send(self, payload: dict[str, Any], redactor: Redactor, *, retries: int, backoff_s: float,
                   timeout_s: float) -> list[DeliveryError]:
        return await send(payload, self.config, redactor, retries=retries, backoff_s=backoff_s, timeout_s=timeout_s)

