"""The HTML trend report: numbers from the store, changed and flaky cases, the command,
and that untrusted text and secrets never get through.

Stores are real SQLite files filled through the Store API; nothing is patched.
"""

from __future__ import annotations

import json
import re
import time
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import ConfigError, HarnessError
from harness.records import AgentReply, CaseResult, CheckResult, Outcome, RunInfo, Transcript, Turn
from harness.report.trend import load_trend, parse_since
from harness.report.trend_html import render_trend_html, report_filename, write_trend_report
from harness.store import Store

from pg_fixtures import pg_server, pg_url  # noqa: F401  (fixtures)

DAY = 86400.0
NOW = time.time()
EVIL = [
    "<script>document.title='pwned'</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "</textarea><b>x</b>",
    "</script><script>alert(2)</script>",
]
SECRETS = ["sk-live-TREND-SECRET", "pw-TREND-SECRET", "sk-q-TREND-SECRET", "SECRETHOOK", "dd-TREND-SECRET", "tok-TREND-SECRET"]


def _reply(text: str, ms: float, route: str = "primary", judge_model: str = "gpt-4o-mini") -> AgentReply:
    return AgentReply(text, first_token_ms=ms / 3, total_ms=ms, model=judge_model, route=route,
                      tokens_in=100, tokens_out=20, cost=0.001)


def _result(case_id: str, topic: str, status: str, answer: str, *, tags=("restaurant",), rep: int = 0,
            ms: float = 500.0, judge: float | None = 0.9, route: str = "primary") -> CaseResult:
    if status == "error":
        return CaseResult(case_id, topic, list(tags), rep, "error", error="rate_limited: 429 from gateway",
                          error_kind="rate_limited", started=NOW, duration_ms=10.0)
    turns = [Turn(0, None, _reply("お電話ありがとうございます。", 100.0), kind="greeting"),
             Turn(1, "明日19時に4名で", _reply(answer, ms, route=route))]
    checks = [CheckResult("contains", status == "passed", reason="" if status == "passed" else "'19時' not found", turn=1)]
    if judge is not None:
        checks.append(CheckResult("judge", judge >= 0.5, score=judge, reason="rubric", turn=1))
    return CaseResult(case_id, topic, list(tags), rep, status, checks=checks,
                      transcript=Transcript(turns, Outcome(intent=topic)), started=NOW, duration_ms=ms + 100)


def _add_run(store: Store, run_id: str, started: float, results: list[CaseResult], *, suite: str = "daily",
             verdict: dict | None = None, target: dict | None = None, extra: dict | None = None) -> None:
    info = RunInfo(run_id=run_id, suite=suite, target=target or {"kind": "sim", "model": "sim-1"}, model="sim-1",
                   started=started, planned=len(results), extra={**(extra or {}), **({"verdict": verdict} if verdict else {})})
    store.start_run(info)
    store.add_results(run_id, results)
    counts = {s: sum(r.status == s for r in results) for s in ("passed", "failed", "error", "not_run")}
    store.finish_run(run_id, status="complete", ended=started + 60, exit_code=0, counts=counts)


def _history(store: Store) -> None:
    """Five daily runs of suite `daily`, one run of suite `other`.

    - rsv-1 passes every day; on the last day its answer changes wording and it fails.
    - faq-1 alternates pass/fail every day (flaky between days).
    - faq-2 has split repeats on the last day (flaky between repeats).
    - cxl-1 hits an infra error on the last day.
    """
    for day in range(5):
        last = day == 4
        t0 = NOW - (5 - day) * DAY
        results = [
            _result("rsv-1", "reservation", "failed" if last else "passed",
                    "明日19時、4名様でお取りしました。" if not last else "明日の19時に4名様で予約を承りました。",
                    tags=("restaurant", "ja"), ms=400 + 100 * day, judge=0.9 if not last else 0.4),
            _result("faq-1", "question", "passed" if day % 2 == 0 else "failed", "We open at 11:00.", tags=("faq", "en"), judge=None),
            _result("faq-2", "question", "passed", "We close at 22:00.", tags=("faq", "en"), rep=0, judge=None),
            _result("cxl-1", "cancellation", "error" if last else "passed", "キャンセルを承りました。", tags=("restaurant", "ja"),
                    route="fallback" if day == 3 else "primary"),
        ]
        if last:
            results.append(_result("faq-2", "question", "failed", "We close at 10pm.", tags=("faq", "en"), rep=1, judge=None))
        _add_run(store, f"run-{day}", t0, results)
    _add_run(store, "other-0", NOW - 2 * DAY, [_result("x-1", "question", "passed", "ok", tags=("client-acme",))], suite="other")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    path = tmp_path_factory.mktemp("trend") / "history.db"
    s = Store.open(f"sqlite:///{path}")
    _history(s)
    yield s
    s.close()


@pytest.fixture(scope="module")
def data(store):
    return load_trend(store, suite="daily", since_s=None)


@pytest.fixture(scope="module")
def page(data) -> str:
    return render_trend_html(data)


def _series(data, dim: str, metric: str, key: str) -> list:
    return data.trends.dims[dim]["metrics"][metric][key]


# ---------------------------------------------------------------- numbers


def test_trend_metrics_per_topic_per_run(data):
    assert [p["run_id"] for p in data.trends.points] == [f"run-{d}" for d in range(5)]
    assert data.trends.period == "run"
    # question: faq-1 alternates, faq-2 passes until its split last day (1 of 2 repeats failed)
    assert _series(data, "topic", "pass_rate", "question") == [1.0, 0.5, 1.0, 0.5, pytest.approx(2 / 3, abs=1e-3)]
    assert _series(data, "topic", "error_rate", "cancellation") == [0, 0, 0, 0, 1.0]
    # the greeting (100 ms) and the answer (400 + 100·day ms): p95 by linear interpolation
    assert _series(data, "topic", "p95_turn_ms", "reservation")[0] == pytest.approx(100 + 0.95 * 300, abs=1)
    assert _series(data, "topic", "judge_score", "reservation") == [0.9, 0.9, 0.9, 0.9, 0.4]
    assert _series(data, "topic", "judge_score", "question") == [None] * 5  # no judge checks
    assert _series(data, "overall", "tokens", "all")[0] == pytest.approx(240.0)  # 2 turns × (100 + 20)
    assert _series(data, "overall", "cost", "all")[0] == pytest.approx(0.008)  # 4 calls × 2 turns × 0.001


def test_trend_dimensions_cover_tags_models_and_suites(data):
    assert set(data.trends.dims["tag"]["keys"]) == {"restaurant", "ja", "faq", "en"}
    assert data.trends.dims["suite"]["keys"] == ["daily"]
    assert data.trends.dims["model"]["keys"][0] == "gpt-4o-mini"
    assert _series(data, "tag", "pass_rate", "faq") == _series(data, "topic", "pass_rate", "question")


def test_several_suites_are_bucketed_per_day(store):
    both = load_trend(store, suite=None, since_s=None)
    assert both.trends.period == "day"
    assert set(both.trends.dims["suite"]["keys"]) == {"daily", "other"}
    assert "client-acme" in both.tags


def test_since_window_drops_old_runs(store):
    recent = load_trend(store, suite="daily", since_s=2.5 * DAY)
    assert [r.run_id for r in recent.runs] == ["run-4", "run-3"]


def test_focus_run_and_run_stats(store, data):
    assert data.focus.run_id == "run-4"
    assert data.baseline.run_id == "run-3"
    assert data.run_stats["run-0"]["pass_rate"] == 1.0
    older = load_trend(store, suite="daily", since_s=None, focus_run="run-2")
    assert older.focus.run_id == "run-2" and older.baseline.run_id == "run-1"
    with pytest.raises(HarnessError, match="not in the store"):
        load_trend(store, suite="daily", since_s=None, focus_run="no-such-run")


@pytest.mark.parametrize("text, seconds", [("30d", 30 * DAY), ("12h", 12 * 3600), ("2w", 14 * DAY), ("90m", 5400), ("7", 7 * DAY)])
def test_parse_since(text, seconds):
    assert parse_since(text) == seconds


@pytest.mark.parametrize("bad", ["", "3x", "-1d", "0d", "d"])
def test_parse_since_rejects_nonsense(bad):
    with pytest.raises(ConfigError, match="--since"):
        parse_since(bad)


def test_postgres_store_gives_the_same_trends(pg_url, data):
    """The JSON reads have a PostgreSQL spelling; it must agree with SQLite's."""
    with Store.open(pg_url) as s:
        _history(s)
        pg = load_trend(s, suite="daily", since_s=None)
    assert pg.trends.points == data.trends.points
    assert pg.trends.dims == data.trends.dims
    assert pg.run_stats == data.run_stats
    assert [(c.case_id, c.change) for c in pg.changes] == [(c.case_id, c.change) for c in data.changes]
    assert [(f.case_id, f.flips, f.mixed_runs) for f in pg.flaky] == [(f.case_id, f.flips, f.mixed_runs) for f in data.flaky]


# ---------------------------------------------------------------- changes and flaky cases


def test_changes_computed_against_previous_run(data, page):
    assert data.changes_source == "computed"
    kinds = {c.case_id: c.change for c in data.changes}
    assert kinds == {"rsv-1": "regressed", "cxl-1": "error", "faq-1": "fixed", "faq-2": "regressed"}
    rsv = next(c for c in data.changes if c.case_id == "rsv-1")
    assert rsv.previous is not None and rsv.current is not None
    # the diff marks what the new answer removed and added, escaped, in order of severity
    section = page[page.index('id="changes"'):page.index('id="flaky"')]
    assert section.index("rsv-1") < section.index("faq-1")
    inline = re.search(r'<p class="diff-inline">(.*?)</p>', section, re.S).group(1)
    # dropping the insertions gives the old answer back, dropping the deletions the new one
    assert re.sub(r"<[^>]+>", "", re.sub(r"<ins>.*?</ins>", "", inline)) == "明日19時、4名様でお取りしました。"
    assert re.sub(r"<[^>]+>", "", re.sub(r"<del>.*?</del>", "", inline)) == "明日の19時に4名様で予約を承りました。"


def test_changes_come_from_the_verdict_when_present(tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as s:
        _add_run(s, "a", NOW - 2 * DAY, [_result("rsv-1", "reservation", "passed", "Table for four at 7 pm, Mr Yamada.")])
        _add_run(s, "b", NOW - DAY, [_result("rsv-1", "reservation", "passed", "Table for 4 at 19:00, Mr Yamada.")],
                 verdict={"class": "drift", "headline": "answers reworded", "baseline_run": "a",
                          "evidence": [{"kind": "similarity", "detail": "mean similarity 0.62 (was 0.98)"}],
                          "topics": {"reservation": {"pass_rate": 1.0, "baseline_pass_rate": 1.0, "delta": 0.0,
                                                     "p_value": 1.0, "judge_score": 0.9, "p95_turn_ms": 480}},
                          "changed_cases": [{"case_id": "rsv-1", "topic": "reservation", "change": "answer drift",
                                             "before": "0.98", "after": "0.62"}]})
        data = load_trend(s, suite=None, since_s=None)
        html = render_trend_html(data)
    assert data.changes_source == "verdict" and data.baseline.run_id == "a"
    assert [c.change for c in data.changes] == ["answer drift"]
    assert "answers reworded" in html and "mean similarity 0.62" in html and "answer drift" in html
    assert "<del>four</del>" in html.replace(" ", "") or "<del>four" in html
    assert "<ins>4</ins>" in html


def test_evidence_figures_are_shown_rounded(tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as s:
        _add_run(s, "a", NOW, [_result("rsv-1", "reservation", "passed", "ok")],
                 verdict={"class": "noise", "evidence": [{"kind": "infra", "detail": "2 of 78 calls did not reach a model",
                                                          "share": 2 / 78, "repeats": 78}]})
        html = render_trend_html(load_trend(s, suite=None, since_s=None))
    assert "&#34;share&#34;: 0.0256" in html or '"share": 0.0256' in html
    assert "0.02564102564102564" not in html and "78" in html


def test_flaky_cases_between_days_and_repeats(data, page):
    flaky = {f.case_id: f for f in data.flaky}
    assert set(flaky) == {"faq-1", "faq-2"}
    assert flaky["faq-1"].flips == 4 and flaky["faq-1"].mixed_runs == 0
    assert flaky["faq-2"].mixed_runs == 1
    assert [h[2] for h in flaky["faq-1"].history] == ["passed", "failed", "passed", "failed", "passed"]
    assert page.count('class="sq q-') >= 10


def test_no_verdict_no_baseline_first_run(tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as s:
        _add_run(s, "only", NOW, [_result("rsv-1", "reservation", "passed", "ok")])
        html = render_trend_html(load_trend(s, suite=None, since_s=None))
    assert "No verdict stored for this run" in html
    assert "first run of its suite" in html


def test_empty_store_renders_a_page(tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as s:
        path = write_trend_report(s, suite="nothing", since_s=30 * DAY, out_dir=tmp_path / "out")
    html = path.read_text(encoding="utf-8")
    assert "No runs in the store for suite nothing" in html


# ---------------------------------------------------------------- the page


def test_page_is_self_contained_with_verdict_charts_and_transcripts(page):
    assert page.startswith("<!doctype html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)  # nothing loads from the network
    assert "Content-Security-Policy" in page and "script-src &#39;sha256-" in page
    blob = re.search(r'<script type="application/json" id="trend-data">(.*?)</script>', page, re.S).group(1)
    chart = json.loads(blob)
    assert [m["id"] for m in chart["metrics"]] == ["pass_rate", "judge_score", "p95_turn_ms", "error_rate", "tokens", "cost"]
    assert chart["focus"] == "run-4"
    # transcripts of the focus run: per-turn timings and the route that served each turn
    cases = page[page.index('id="cases-list"'):]
    assert "route <strong>primary</strong>" in cases and "first token" in cases
    assert cases.count('<details class="case f-item"') == 5
    for attr in ('data-topic="question"', "data-tags='[\"faq\", \"en\"]'", 'data-status="failed"'):
        assert attr in cases


def test_long_answers_keep_the_page_under_budget(tmp_path):
    """Past 3 MB, passed calls lose their transcript; failing calls keep theirs."""
    long = "ご予約ありがとうございます。" * 1500  # ~21 000 characters, ~63 KB of UTF-8
    results = [_result(f"c-{i:03d}", "question", "passed", long) for i in range(60)]
    results.append(_result("bad-1", "question", "failed", "FAILING ANSWER " + long))
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as s:
        _add_run(s, "big", NOW, results)
        path = write_trend_report(s, suite=None, since_s=None, out_dir=tmp_path)
    html = path.read_text(encoding="utf-8")
    assert path.stat().st_size <= 3 * 1024 * 1024
    assert "FAILING ANSWER" in html
    assert html.count("Transcript omitted for passed cases") == 60


def test_filenames_are_safe():
    assert report_filename("daily", None) == "daily-trend.html"
    assert report_filename(None, None) == "all-trend.html"
    assert report_filename("daily", "../../etc/passwd") == "daily-etc_passwd-trend.html"


# ---------------------------------------------------------------- untrusted text and secrets


class _Elements(HTMLParser):
    """Collects the elements and attributes a browser would build from the page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_model_output_is_inert(tmp_path):
    evil_tag = EVIL[1]
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as s:
        _add_run(s, "a", NOW - DAY, [_result("c-1", "question", "passed", "before " + " ".join(EVIL), tags=(evil_tag,))])
        _add_run(s, "b", NOW, [_result("c-1", "question", "failed", " ".join(reversed(EVIL)) + " after", tags=(evil_tag,)),
                               _result(EVIL[0], EVIL[3], "failed", EVIL[4], tags=(EVIL[2],))],
                 verdict={"class": EVIL[0], "headline": EVIL[1], "evidence": [{"kind": EVIL[2], "detail": EVIL[4]}]})
        html = write_trend_report(s, suite=None, since_s=None, out_dir=tmp_path).read_text(encoding="utf-8")
    for e in EVIL:
        assert e not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    parser = _Elements()
    parser.feed(html)
    scripts = [a for t, a in parser.tags if t == "script"]
    assert len(scripts) == 2 and scripts[0] == {"type": "application/json", "id": "trend-data"} and scripts[1] == {}
    assert not [t for t, _ in parser.tags if t in ("img", "textarea", "b")]
    assert not [(t, a) for t, a in parser.tags for k in a if k.startswith("on")]
    assert not [a for t, a in parser.tags if (a.get("href") or "").lower().startswith("javascript")]
    # chart data keeps the text, but as JSON that cannot close its script element
    blob = re.search(r'<script type="application/json" id="trend-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in blob and ">" not in blob
    assert evil_tag in json.loads(blob)["dims"]["tag"]["keys"]


def test_secrets_never_reach_the_report(tmp_path):
    target = {"kind": "openai", "model": "primary", "api_key": "sk-live-TREND-SECRET",
              "base_url": "https://user:pw-TREND-SECRET@gw.example/v1?api_key=sk-q-TREND-SECRET"}
    extra = {"slack_webhook_url": "https://hooks.slack.com/services/T000/B000/SECRETHOOK",
             "datadog": {"api_key": "dd-TREND-SECRET"}, "auth_token": "tok-TREND-SECRET",
             "notes": {"hook": "https://hooks.slack.com/services/T000/B000/SECRETHOOK"}}
    verdict = {"class": "infra", "headline": "gateway rate limited",
               "evidence": [{"kind": "infra", "detail": "429 ×12", "endpoint": "https://gw.example/v1?api_key=sk-q-TREND-SECRET",
                             "token": "tok-TREND-SECRET"}]}
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as s:
        _add_run(s, "a", NOW - DAY, [_result("c-1", "question", "passed", "ok")], target=target, extra=extra)
        _add_run(s, "b", NOW, [_result("c-1", "question", "error", "")], target=target, extra=extra, verdict=verdict)
        html = write_trend_report(s, suite=None, since_s=None, out_dir=tmp_path, focus_run="b").read_text(encoding="utf-8")
    assert "gateway rate limited" in html and "gw.example" in html
    for secret in SECRETS:
        assert secret not in html


# ---------------------------------------------------------------- the command


def test_report_command_writes_the_page(tmp_path, store):
    url = str(store.engine.url)
    out = tmp_path / "site"
    res = CliRunner().invoke(app, ["report", "--store", url, "--suite", "daily", "--since", "30d", "-o", str(out)])
    assert res.exit_code == 0, res.output
    path = out / "daily-trend.html"
    assert f"html: {path}" in res.output
    assert "Trends · daily" in path.read_text(encoding="utf-8")


def test_report_command_one_line_errors(tmp_path, store):
    url = str(store.engine.url)
    bad = CliRunner().invoke(app, ["report", "--store", url, "--since", "soon", "-o", str(tmp_path)])
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines() == ["error: --since 'soon': expected a duration like 30d, 12h, 2w or 90m"]
    missing = CliRunner().invoke(app, ["report", "--store", url, "--run", "nope", "-o", str(tmp_path)])
    assert missing.exit_code == 2 and "Traceback" not in missing.output
    assert "run 'nope' is not in the store" in missing.output
