"""Reporters: console table, JSON, JUnit XML and the one-run HTML page, built from plain records."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from rich.console import Console

from harness.records import AgentReply, CaseResult, CheckResult, Outcome, RunInfo, Transcript, Turn
from harness.report import (
    ProgressReporter,
    build_json,
    percentile,
    print_summary,
    render_run_html,
    status_line,
    summarize,
    summary_table,
    write_json,
    write_junit,
    write_run_html,
)

EVIL = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "</textarea><b>x</b>",
    "</script><script>alert(2)</script>",
]


def _run(**kw) -> RunInfo:
    base = dict(
        run_id="run-20240501-0600",
        suite="post-merge",
        suite_file="suites/post-merge.yaml",
        target={"kind": "sim", "model": "sim-restaurant-1", "api_key": "sk-live-SECRET", "base_url": "https://user:pw@gw.example/v1?api_key=sk-q&model=m", "max_tokens": 256},
        git_sha="0123456789abcdef0123",
        host="ci-1",
        started=1714543200.0,
        ended=1714543260.0,
        status="complete",
        planned=4,
    )
    base.update(kw)
    return RunInfo(**base)


def _transcript(agent_text: str = "明日19時、4名様ですね。お名前をお願いします。", total_ms: float = 800.0, last_ms: float = 1900.0) -> Transcript:
    return Transcript(
        turns=[
            Turn(0, None, AgentReply("お電話ありがとうございます。", total_ms=150.0), kind="greeting"),
            Turn(1, "明日の19時に4名で予約したいです", AgentReply(agent_text, first_token_ms=210.0, total_ms=total_ms, model="gpt-4o-mini", route="primary", state={"intent": "reservation"})),
            Turn(2, "山田です", AgentReply("山田様、ご予約を承りました。", first_token_ms=190.0, total_ms=last_ms, model="gpt-4o-mini", route="fallback")),
        ],
        outcome=Outcome(intent="reservation", slots={"party_size": 4, "time": "19:00"}, transferred=False, ended_by="agent"),
    )


def _results() -> list[CaseResult]:
    return [
        CaseResult(
            "rsv-ja-001", "reservation", ["restaurant", "ja"], 0, "failed",
            checks=[
                CheckResult("contains_any", False, 0.0, "none of ['19:00'] found in the reply", args={"values": ["19:00"]}, turn=1),
                CheckResult("regex", False, 0.0, "no match for 山田.*様", turn=2),
                CheckResult("intent", True, turn=None),
            ],
            transcript=_transcript(), duration_ms=2250.0, source="golden/reservation/basic.yaml:4",
        ),
        CaseResult("faq-hours", "question", ["faq"], 0, "passed", checks=[CheckResult("contains", True, turn=1)],
                   transcript=_transcript("営業時間は11時から22時です。", 400.0, 2100.0), duration_ms=420.0, source="golden/question/faq.yaml:2"),
        CaseResult("faq-hours", "question", ["faq"], 1, "error", error="timeout: no answer after 10.0s (http://gw/v1)",
                   error_kind="timeout", duration_ms=10000.0, source="golden/question/faq.yaml:2"),
        CaseResult("cxl-001", "cancellation", ["restaurant"], 0, "not_run", error="circuit open: target unreachable",
                   error_kind="outage", source="golden/cancellation/basic.yaml:2"),
    ]


def _record(render) -> str:
    console = Console(record=True, width=160, color_system=None)
    render(console)
    return console.export_text()


# --- stats -------------------------------------------------------------------------------


def test_percentile_interpolates_and_handles_empty():
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10, 20, 30, 40, 50], 95) == pytest.approx(48.0)
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_summary_counts_and_slowest_turns():
    s = summarize(_results())
    assert [t.topic for t in s.topics] == ["cancellation", "question", "reservation"]
    assert (s.total.cases, s.total.passed, s.total.failed, s.total.error, s.total.not_run) == (4, 1, 1, 1, 1)
    assert s.total.pass_rate == 0.5
    assert [g.kind for g in s.errors] == ["outage", "timeout"]
    assert [(x.case_id, x.turn, x.ms) for x in s.slowest][0] == ("faq-hours", 2, 2100.0)
    assert len(s.slowest) == 3


def test_summary_figures_follow_their_one_definition():
    """Pass rate over judged results; infra error rate over all cases (not run included);
    latency over every turn, greeting included; the judge's mean over the judge checks that ran."""
    results = _results()
    results[0].checks.append(CheckResult("judge", True, 0.8, turn=1))
    results[1].checks.append(CheckResult("judge", False, 0.2, turn=1))
    results[1].checks.append(CheckResult("judge", False, 0.0, turn=1, skipped=True))
    results[0].transcript.turns[1].reply.tokens_in, results[0].transcript.turns[1].reply.tokens_out = 100, 20
    results[0].transcript.turns[1].reply.cost = 0.002
    s = summarize(results, _run(extra={"verdict": {"class": "drift", "topics": {"question": {"baseline_pass_rate": 0.5}}}}))
    assert (s.judged, s.pass_rate, s.error_rate) == (2, 0.5, 0.5)
    assert s.latency(50) == pytest.approx(600.0) and len(s.total.turn_ms) == 6  # 150 150 400 800 1900 2100
    assert s.judge_score == pytest.approx(0.5)
    assert (s.tokens, s.cost) == (120, pytest.approx(0.002))
    assert [c.case_id for c in s.failing.values()] == ["rsv-ja-001"]
    assert [c.case_id for c in s.erroring.values()] == ["faq-hours"]
    question = s.topic("question")
    assert (question.pass_rate, question.baseline_pass_rate, question.delta) == (1.0, 0.5, 0.5)
    assert s.verdict_stored and str(s.verdict_class) == "drift"
    assert "pass rate 50.0% of 2 judged" in s.status.text
    derived = summarize(results, _run())
    assert not derived.verdict_stored and derived.headline.startswith("1/2 judged passed (50.0%)")


def test_status_line_prefers_the_abort_cause():
    results = _results()
    assert status_line(_run(), summarize(results)).text.startswith("FAILED: 1 of 4 cases failed")
    aborted = status_line(_run(status="aborted", message="target unreachable: 5 connection errors in a row"), summarize(results))
    assert aborted.level == "error" and aborted.text.startswith("ERROR: target unreachable")
    passed = [r for r in results if r.status == "passed"]
    assert status_line(_run(planned=1), summarize(passed)).text == "PASSED: 1 case"


# --- console -----------------------------------------------------------------------------


def test_console_table_rows_and_totals():
    text = _record(lambda c: c.print(summary_table(_run(), _results())))
    rows = {cells[0]: cells[1:] for cells in (line.split() for line in text.splitlines())
            if cells and cells[0] in ("reservation", "question", "cancellation", "Total")}
    assert rows["reservation"][:6] == ["1", "0", "1", "0", "0", "0.0%"]
    assert rows["question"][:6] == ["2", "1", "0", "1", "0", "100.0%"]
    assert rows["cancellation"][:5] == ["1", "0", "0", "0", "1"]
    assert rows["Total"][:6] == ["4", "1", "1", "1", "1", "50.0%"]
    assert rows["reservation"][6:] == ["800", "1,790"]  # p50 / p95 of 150, 800, 1900 ms


def test_print_summary_lists_failures_errors_slowest_and_status():
    results = _results()
    results[0].checks[0].reason = "[bold red]markup[/] \x1b[31mansi"
    run = _run(extra={"verdict": {"class": "regression", "evidence": ["rsv-ja-001 failed in 3 of 3 repeats"]}})
    text = _record(lambda c: print_summary(c, run, results))
    assert "rsv-ja-001" in text and "turn 1: contains_any: [bold red]markup[/] \\x1b[31mansi" in text
    assert "turn 2: regex: no match for 山田.*様" in text
    assert "timeout ×1" in text and "outage ×1" in text
    assert "Verdict: regression" in text and "failed in 3 of 3 repeats" in text
    assert "faq-hours [repeat 1] turn 2: 2,100 ms" in text
    assert text.strip().splitlines()[-1].startswith("FAILED: 1 of 4 cases failed")


def test_print_summary_caps_failing_cases_at_ten():
    many = [CaseResult(f"c-{i:02d}", "question", [], 0, "failed", checks=[CheckResult("equals", False, 0, f"reason {i}")]) for i in range(13)]
    text = _record(lambda c: print_summary(c, _run(planned=13), many))
    assert "c-09" in text and "c-10" not in text.split("Failing cases")[1].split("FAILED")[0]
    assert "and 3 more failing cases" in text


def test_progress_reporter_plain_mode_prints_at_most_ten_lines():
    console = Console(record=True, width=120, force_terminal=False)
    progress = ProgressReporter(console)
    progress.start(1000)
    for i in range(1000):
        progress.advance("passed" if i % 10 else "failed")
    progress.stop()
    lines = [ln for ln in console.export_text().splitlines() if ln.strip()]
    assert 1 <= len(lines) <= 10
    assert lines[-1].startswith("running: 1000/1000 (900 passed, 100 failed, 0 error)")
    assert progress.counts == {"passed": 900, "failed": 100, "error": 0, "not_run": 0}


def test_progress_reporter_terminal_mode_runs_a_bar():
    console = Console(record=True, width=120, force_terminal=True)
    with ProgressReporter(console) as progress:
        progress.start(3)
        for s in ("passed", "failed", "error"):
            progress.advance(s)
    text = console.export_text()
    assert "3/3" in text and "1 passed" in text and "1 failed" in text and "1 error" in text


# --- JSON --------------------------------------------------------------------------------


def test_json_round_trip(tmp_path):
    results = _results()
    run = _run(extra={"verdict": {"class": "drift", "evidence": ["wording changed"]}})
    path = write_json(tmp_path / "out" / "run.json", run, results)
    raw = path.read_text(encoding="utf-8")
    assert "明日の19時" in raw  # readable UTF-8, not \u escapes
    doc = json.loads(raw)
    assert list(doc) == ["schema_version", "run", "summary", "verdict", "results"]
    assert doc["verdict"] == {"class": "drift", "evidence": ["wording changed"]}
    assert doc["summary"]["totals"]["failed"] == 1 and doc["summary"]["topics"]["question"]["error"] == 1
    assert doc["summary"]["status_line"].startswith("FAILED")
    assert [r["case_id"] for r in doc["results"]] == [r.case_id for r in results]
    assert doc["results"][0] == json.loads(json.dumps(results[0].to_dict()))
    assert "sk-live-SECRET" not in raw and "user:pw" not in raw
    assert doc["run"]["target"]["api_key"] == "***" and doc["run"]["target"]["max_tokens"] == 256
    assert doc["run"]["target"]["base_url"] == "https://gw.example/v1?api_key=***&model=m"
    assert "sk-q" not in raw


def test_json_survives_nan_and_odd_values(tmp_path):
    results = _results()
    results[1].transcript.turns[1].reply.total_ms = float("nan")
    results[1].transcript.turns[1].reply.state = {"when": {1, 2}}
    doc = json.loads(write_json(tmp_path / "r.json", _run(), results).read_text(encoding="utf-8"))
    assert doc["results"][1]["transcript"]["turns"][1]["reply"]["total_ms"] is None
    assert build_json(_run(), [])["summary"]["totals"]["cases"] == 0


# --- JUnit -------------------------------------------------------------------------------


def test_junit_parses_and_counts_match(tmp_path):
    results = _results()
    results[0].checks[1].reason = "bad char \x00\x07 here"
    path = write_junit(tmp_path / "junit.xml", _run(), results)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("4", "1", "1", "1")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"reservation", "question", "cancellation"}
    for s in suites.values():
        cases = s.findall("testcase")
        assert int(s.get("tests")) == len(cases)
        assert int(s.get("failures")) == sum(1 for c in cases if c.find("failure") is not None)
        assert int(s.get("errors")) == sum(1 for c in cases if c.find("error") is not None)
        assert int(s.get("skipped")) == sum(1 for c in cases if c.find("skipped") is not None)
    failure = suites["reservation"].find("testcase/failure")
    assert failure.get("message") == "turn 1: contains_any: none of ['19:00'] found in the reply"
    assert "turn 2: regex: bad char" in failure.text and len(failure.text.splitlines()) == 2
    names = [c.get("name") for c in suites["question"].findall("testcase")]
    assert names == ["faq-hours [repeat 1]", "faq-hours [repeat 2]"]
    err = suites["question"].find("testcase/error")
    assert err.get("type") == "timeout" and "10.0s" in err.get("message")
    rsv = suites["reservation"].find("testcase")
    assert rsv.get("file") == "golden/reservation/basic.yaml" and rsv.get("time") == "2.250"
    assert rsv.get("classname") == "reservation"
    assert "sk-live-SECRET" not in path.read_text(encoding="utf-8")


# --- HTML --------------------------------------------------------------------------------


class _Collector(HTMLParser):
    """Collects tags with their attributes and the text inside <script> elements."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def test_html_has_every_case_and_transcript_lines(tmp_path):
    results = _results()
    run = _run(extra={"verdict": {"class": "regression", "evidence": ["rsv-ja-001 changed after commit 0123456"], "confidence": 0.9}})
    path = write_run_html(tmp_path / "html" / "run.html", run, results)
    html = path.read_text(encoding="utf-8")
    for r in results:
        assert r.case_id in html
    for line in ("明日の19時に4名で予約したいです", "山田様、ご予約を承りました。", "お電話ありがとうございます。"):
        assert line in html
    assert "none of [&#39;19:00&#39;] found in the reply" in html
    assert "timeout: no answer after 10.0s" in html
    assert "Verdict: <span class=\"verdict-class\">regression</span>" in html
    assert "rsv-ja-001 changed after commit 0123456" in html
    assert "FAILED" in html and "run-20240501-0600" in html and "0123456789ab" in html
    assert "sim-restaurant-1" in html and "fallback" in html and "1,900 ms" in html
    assert "sk-live-SECRET" not in html and "user:pw" not in html
    # the table rows filter on data attributes
    parser = _Collector()
    parser.feed(html)
    cases = [a for t, a in parser.tags if t == "details" and "case" in (a.get("class") or "")]
    assert len(cases) == 4
    assert {a["data-status"] for a in cases} == {"passed", "failed", "error", "not_run"}
    assert json.loads(cases[0]["data-tags"]) == ["restaurant", "ja"]


def test_html_is_self_contained():
    html = render_run_html(_run(), _results())
    parser = _Collector()
    parser.feed(html)
    for tag, attrs in parser.tags:
        for key in ("src", "href", "action", "formaction", "data", "poster"):
            value = (attrs.get(key) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//", "javascript:")), (tag, key, value)
        assert not (tag == "link" and "stylesheet" in (attrs.get("rel") or "")), "external stylesheet"
    assert "@import" not in html and "url(" not in html
    assert len(parser.scripts) == 1 and "getElementById" in parser.scripts[0]
    assert "Content-Security-Policy" in html


@pytest.mark.parametrize("evil", EVIL)
def test_html_escapes_model_text(evil):
    results = _results()
    reply = results[0].transcript.turns[1].reply
    reply.text = evil
    reply.route = evil
    results[0].checks[0].reason = evil
    results[0].case_id = "rsv-" + evil
    results[0].tags = [evil, "it's"]
    results[2].error = evil
    run = _run(message=evil, extra={"verdict": {"class": evil, "evidence": [evil]}})
    html = render_run_html(run, results)
    parser = _Collector()
    parser.feed(html)
    assert len(parser.scripts) == 1 and "alert" not in parser.scripts[0]
    assert evil not in html
    for tag, attrs in parser.tags:
        assert tag not in {"img", "textarea", "a"}, tag
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
        for key in ("href", "src"):
            assert "javascript:" not in (attrs.get(key) or "").lower()
    assert html.count("<script") == 1 and html.count("</script>") == 1
    details = next(a for t, a in parser.tags if t == "details" and a.get("data-status") == "failed")
    assert json.loads(details["data-tags"]) == [evil, "it's"]


def test_html_filters_offer_topics_tags_and_statuses():
    html = render_run_html(_run(), _results())
    for value in ("reservation", "question", "cancellation", "restaurant", "ja", "faq", "not_run"):
        assert f'<option value="{value}">' in html
    assert html.index("rsv-ja-001") < html.index("cxl-001")  # failing cases come first


def test_html_scales_linearly_with_many_results():
    base = _results()
    many = []
    for i in range(2000):
        src = base[i % len(base)]
        many.append(CaseResult(f"case-{i:05d}", src.topic, src.tags, 0, src.status, checks=src.checks,
                               transcript=src.transcript, error=src.error, error_kind=src.error_kind, duration_ms=300.0))
    t0 = time.perf_counter()
    html = render_run_html(_run(planned=2000), many)
    elapsed = time.perf_counter() - t0
    assert "case-01999" in html and html.count('<details class="case"') == 2000
    assert elapsed < 30  # a sanity bound only; normal is well under a second or two
    slim = render_run_html(_run(planned=2000), many, include_passed_transcripts=False)
    assert len(slim) < len(html) and "case-01999" in slim
