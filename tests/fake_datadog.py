"""A local stand-in for Datadog's intake: v2 series, v1 events, v1 service level objectives,
LLM Observability experiments.

Served on 127.0.0.1 from a background thread (see `fake_slack.ThreadedFake`). It checks the
API key header, validates each payload the way the real intake documents it (metric
types 0–3, integer epoch-second timestamps within the accepted window, event title ≤ 100
and text ≤ 4000 characters, a known alert type) and records what it accepted. It can be
told to answer 429 (with X-RateLimit-Reset) or 5xx.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from aiohttp import web
from fake_slack import BODY, Failure, ThreadedFake

ALERT_TYPES = {"error", "warning", "info", "success", "user_update", "recommendation", "snapshot"}


class FakeDatadog(ThreadedFake):
    def __init__(self, api_key: str = "dd-api-KEY-0123456789abcdef", app_key: str | None = None):
        super().__init__()
        self.api_key = api_key
        self.app_key = app_key
        self.series: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.projects: dict[str, str] = {}  # name → id
        self.datasets: dict[tuple[str, str], str] = {}
        self.experiments: list[dict[str, Any]] = []
        self.experiment_events: dict[str, list[dict[str, Any]]] = {}
        self.slos: dict[str, dict[str, Any]] = {}  # id → the SLO as last created or updated
        self.slo_writes: list[tuple[str, str]] = []  # (create|update, id)
        self.problems: list[str] = []
        self._ids = itertools.count(1)

    @property
    def host(self) -> str:
        return self.base_url

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v2/series", self._series)
        app.router.add_post("/api/v1/events", self._event)
        app.router.add_get("/api/v1/slo", self._list_slos)
        app.router.add_post("/api/v1/slo", self._create_slo)
        app.router.add_put("/api/v1/slo/{slo_id}", self._update_slo)
        app.router.add_get("/api/v2/llm-obs/v1/projects", self._list_projects)
        app.router.add_post("/api/v2/llm-obs/v1/projects", self._create_project)
        app.router.add_get("/api/v2/llm-obs/v1/{project_id}/datasets", self._list_datasets)
        app.router.add_post("/api/v2/llm-obs/v1/{project_id}/datasets", self._create_dataset)
        app.router.add_post("/api/v2/llm-obs/v1/experiments", self._create_experiment)
        app.router.add_post("/api/v2/llm-obs/v1/experiments/{experiment_id}/events", self._experiment_events)

    def failure_response(self, request: web.Request, failure: Failure) -> web.Response:
        headers = {}
        if failure.retry_after is not None:
            headers["X-RateLimit-Reset"] = str(int(failure.retry_after))
        return web.json_response({"errors": ["failure injected by the test"]}, status=failure.status, headers=headers)

    # -- helpers

    def _auth(self, request: web.Request, needs_app_key: bool = False) -> web.Response | None:
        if request.headers.get("DD-API-KEY") != self.api_key:
            return web.json_response({"errors": ["Forbidden"]}, status=403)
        if needs_app_key and (self.app_key is None or request.headers.get("DD-APPLICATION-KEY") != self.app_key):
            return web.json_response({"errors": ["Forbidden: application key"]}, status=403)
        return None

    def _refuse(self, problems: list[str]) -> web.Response:
        self.problems += problems
        return web.json_response({"errors": problems}, status=400)

    async def _json(self, request: web.Request) -> Any:
        return json.loads(request[BODY])  # the middleware read and decoded the body

    # -- metrics and events

    async def _series(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        body = await self._json(request)
        problems = []
        now = time.time()
        series = body.get("series")
        if not isinstance(series, list) or not series:
            problems.append("series must be a non-empty list")
            series = []
        for s in series:
            name = s.get("metric")
            if not isinstance(name, str) or not name or len(name) > 200:
                problems.append(f"bad metric name {name!r}")
            if s.get("type") not in (0, 1, 2, 3):
                problems.append(f"{name}: type {s.get('type')!r} is not 0..3")
            for p in s.get("points") or []:
                ts = p.get("timestamp")
                if not isinstance(ts, int):
                    problems.append(f"{name}: timestamp {ts!r} is not integer epoch seconds")
                elif not now - 3600 <= ts <= now + 600:
                    problems.append(f"{name}: timestamp {ts} outside the accepted window")
                if not isinstance(p.get("value"), (int, float)):
                    problems.append(f"{name}: value {p.get('value')!r} is not a number")
            if not s.get("points"):
                problems.append(f"{name}: no points")
            for tag in s.get("tags") or []:
                if not isinstance(tag, str) or len(tag) > 200:
                    problems.append(f"{name}: bad tag {tag!r}")
        if problems:
            return self._refuse(problems)
        self.series.extend(series)
        return web.json_response({"errors": []}, status=202)

    async def _event(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        body = await self._json(request)
        problems = []
        title, text = body.get("title"), body.get("text")
        if not isinstance(title, str) or not title or len(title) > 100:
            problems.append(f"title must be 1..100 characters, got {len(title or '')}")
        if not isinstance(text, str) or len(text) > 4000:
            problems.append(f"text must be at most 4000 characters, got {len(text or '')}")
        if body.get("alert_type", "info") not in ALERT_TYPES:
            problems.append(f"alert_type {body.get('alert_type')!r} unknown")
        if len(body.get("aggregation_key") or "") > 100:
            problems.append("aggregation_key over 100 characters")
        if problems:
            return self._refuse(problems)
        self.events.append(body)
        event_id = next(self._ids)
        return web.json_response({"status": "ok", "event": {"id": event_id, "title": title, "text": text}},
                                 status=202)

    # -- service level objectives (v1): metric SLOs only, as the harness writes them

    def _slo_problems(self, body: dict[str, Any]) -> list[str]:
        problems = []
        if body.get("type") != "metric":
            problems.append(f"type {body.get('type')!r} is not metric")
        if not isinstance(body.get("name"), str) or not body["name"]:
            problems.append("name is required")
        q = body.get("query") or {}
        for key in ("numerator", "denominator"):
            if not isinstance(q.get(key), str) or not q[key].startswith("sum:"):
                problems.append(f"query.{key} {q.get(key)!r} is not a metric query")
        thresholds = body.get("thresholds") or []
        if not thresholds:
            problems.append("thresholds are required")
        for t in thresholds:
            if t.get("timeframe") not in ("7d", "30d", "90d", "custom"):
                problems.append(f"timeframe {t.get('timeframe')!r} unknown")
            if not isinstance(t.get("target"), (int, float)) or not 0 < t["target"] < 100:
                problems.append(f"target {t.get('target')!r} is not between 0 and 100")
        return problems

    async def _list_slos(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, True)) is not None:
            return denied
        wanted = request.query.get("tags_query")
        data = [s for s in self.slos.values() if wanted is None or wanted in s.get("tags", [])]
        return web.json_response({"data": data, "errors": []})

    async def _create_slo(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, True)) is not None:
            return denied
        body = await self._json(request)
        if problems := self._slo_problems(body):
            return self._refuse(problems)
        sid = f"slo{next(self._ids)}"
        self.slos[sid] = {**body, "id": sid}
        self.slo_writes.append(("create", sid))
        return web.json_response({"data": [self.slos[sid]], "errors": []})

    async def _update_slo(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, True)) is not None:
            return denied
        sid = request.match_info["slo_id"]
        if sid not in self.slos:
            return web.json_response({"errors": ["SLO not found"]}, status=404)
        body = await self._json(request)
        if problems := self._slo_problems(body):
            return self._refuse(problems)
        self.slos[sid] = {**body, "id": sid}
        self.slo_writes.append(("update", sid))
        return web.json_response({"data": [self.slos[sid]], "errors": []})

    # -- LLM Observability

    def _stamp(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    async def _list_projects(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, True)) is not None:
            return denied
        name = request.query.get("filter[name]")
        data = [self._project(n, i) for n, i in self.projects.items() if name is None or n == name]
        return web.json_response({"data": data})

    def _project(self, name: str, pid: str) -> dict[str, Any]:
        return {"id": pid, "type": "projects", "attributes": {"name": name, "description": None,
                                                                "created_at": self._stamp(),
                                                                "updated_at": self._stamp()}}

    async def _create_project(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, True)) is not None:
            return denied
        name = (await self._json(request))["data"]["attributes"]["name"]
        pid = self.projects.setdefault(name, f"proj-{next(self._ids)}")
        return web.json_response({"data": self._project(name, pid)})

    def _dataset(self, name: str, did: str) -> dict[str, Any]:
        return {"id": did, "type": "datasets", "attributes": {
            "name": name, "description": None, "metadata": None, "current_version": 1,
            "created_at": self._stamp(), "updated_at": self._stamp()}}

    async def _list_datasets(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, True)) is not None:
            return denied
        project = request.match_info["project_id"]
        name = request.query.get("filter[name]")
        data = [self._dataset(n, d) for (p, n), d in self.datasets.items()
                if p == project and (name is None or n == name)]
        return web.json_response({"data": data})

    async def _create_dataset(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, True)) is not None:
            return denied
        project = request.match_info["project_id"]
        name = (await self._json(request))["data"]["attributes"]["name"]
        did = self.datasets.setdefault((project, name), f"ds-{next(self._ids)}")
        return web.json_response({"data": self._dataset(name, did)})

    async def _create_experiment(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, True)) is not None:
            return denied
        attrs = (await self._json(request))["data"]["attributes"]
        eid = f"exp-{next(self._ids)}"
        self.experiments.append({"id": eid, **attrs})
        return web.json_response({"data": {"id": eid, "type": "experiments", "attributes": {
            "name": attrs["name"], "project_id": attrs["project_id"], "dataset_id": attrs["dataset_id"],
            "config": None, "description": None, "metadata": attrs.get("metadata"),
            "created_at": self._stamp(), "updated_at": self._stamp()}}})

    async def _experiment_events(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, True)) is not None:
            return denied
        eid = request.match_info["experiment_id"]
        if not any(e["id"] == eid for e in self.experiments):
            return web.json_response({"errors": ["experiment not found"]}, status=404)
        attrs = (await self._json(request))["data"]["attributes"]
        self.experiment_events.setdefault(eid, []).append(attrs)
        return web.Response(status=202)
