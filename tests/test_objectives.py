"""Objectives and error budgets, through the CLI: the suite's `objectives:` and `budget_policy:`,
budgets and burn rates over seeded histories (figures worked out by hand below), the embedded
agent's faults making budgets burn, the CI gate, the report lines, and OpenSLO.

Histories are real SQLite stores filled through the Store API; runs go through `python -m
harness`; nothing is patched.
"""

from __future__ import annotations

import json
import shutil
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import REPO
from harness.records import AgentReply, CaseResult, CheckResult, Outcome, RunInfo, Transcript, Turn
from harness.store import Store
from pg_fixtures import pg_server, pg_url  # noqa: F401  (fixtures)

DAY = 86400.0
NOW = time.time()

RUBRIC = """
name: r1
version: 1
criteria: The agent answers the question it was asked.
threshold: 0.5
"""


# ---------------------------------------------------------------- seeded history


def _result(case_id: str, topic: str, status: str, *, ms: float = 100.0, json_ok: bool = True,
            contains_ok: bool = True, judge_ok: bool | None = None, judge_skipped: bool = False,
            started: float = NOW) -> CaseResult:
    if status == "error":
        return CaseResult(case_id, topic, [], 0, "error", error="server_error: 503", error_kind="server_error",
                          started=started, duration_ms=5.0)
    reply = AgentReply("{}", first_token_ms=ms / 4, total_ms=ms, model="m")
    turns = [Turn(0, None, AgentReply("hello", first_token_ms=9999.0, total_ms=9999.0), kind="greeting"),
             Turn(1, "question", reply)]
    checks = [CheckResult("json", json_ok, turn=1), CheckResult("contains", contains_ok, turn=1)]
    if judge_ok is not None or judge_skipped:
        checks.append(CheckResult("judge", bool(judge_ok), args={"rubric": "r1"}, turn=1, skipped=judge_skipped))
    return CaseResult(case_id, topic, [], 0, status, checks=checks, transcript=Transcript(turns, Outcome()),
                      started=started, duration_ms=ms)


def _store_run(store: Store, run_id: str, started: float, results: list[CaseResult], suite: str = "seeded") -> None:
    store.start_run(RunInfo(run_id=run_id, suite=suite, target={"kind": "sim"}, started=started, planned=len(results)))
    store.add_results(run_id, results)
    counts = {s: sum(r.status == s for r in results) for s in ("passed", "failed", "error", "not_run")}
    store.finish_run(run_id, status="complete", ended=started + 60, exit_code=0, counts=counts)


def _seed(store: Store) -> None:
    """Five runs of ten one-turn calls: five reservation, five question.

    run 0 (40 days ago): all fine (outside every day window, inside `10 runs`)
    run 1 (3 days ago):  all fine; one question's judge skipped (never counted)
    run 2 (2 days ago):  one question call is an infra error (no turn, no checks)
    run 3 (1 day ago):   two reservation calls fail `contains` and the judge
    run 4 (1 hour ago):  three turns take 1,500 ms; two question calls fail `json`;
                         one reservation call fails `contains`
    """
    def run(k: int, **kw) -> list[CaseResult]:
        started = kw.pop("started")
        out = []
        for i in range(5):
            out.append(_result(f"rsv-{i}", "reservation", "passed", judge_ok=True, started=started))
        for i in range(5):
            out.append(_result(f"faq-{i}", "question", "passed", started=started))
        return out

    r0 = run(0, started=NOW - 40 * DAY)
    r1 = run(1, started=NOW - 3 * DAY)
    r1[5] = _result("faq-0", "question", "passed", judge_skipped=True, started=NOW - 3 * DAY)
    r2 = run(2, started=NOW - 2 * DAY)
    r2[6] = _result("faq-1", "question", "error", started=NOW - 2 * DAY)
    r3 = run(3, started=NOW - DAY)
    for i in (0, 1):
        r3[i] = _result(f"rsv-{i}", "reservation", "failed", contains_ok=False, judge_ok=False, started=NOW - DAY)
    r4 = run(4, started=NOW - 3600)
    r4[0] = _result("rsv-0", "reservation", "failed", contains_ok=False, judge_ok=True, started=NOW - 3600)
    for i in (5, 6, 7):
        r4[i] = _result(f"faq-{i - 5}", "question", "failed" if i < 7 else "passed", ms=1500.0,
                        json_ok=i == 7, started=NOW - 3600)
    for k, (res, age) in enumerate(((r0, 40 * DAY), (r1, 3 * DAY), (r2, 2 * DAY), (r3, DAY), (r4, 3600))):
        _store_run(store, f"run-{k}", NOW - age, res)


SEEDED_SUITE = """
name: seeded
golden: ["golden/*.yaml"]
target: {kind: sim}
store: {url: "sqlite:///history.db"}
objectives:
  - {name: answer-time, indicator: turn_ms, stat: p90, target: "< 1000", window: 10 runs}
  - {name: availability, indicator: infra_error_rate, target: "< 8%", window: 7d}
  - {name: format, indicator: check_fail_rate, check: json, target: "< 20%"}
  - {name: quality, indicator: judge_fail_rate, rubric: r1, target: "< 25%"}
  - {name: reservations, indicator: pass_rate, topic: reservation, target: ">= 80%"}
  - {name: mean-turn, indicator: turn_ms, stat: mean, target: "< 200"}
budget_policy:
  slow_down: 25%
  freeze: 50%
  post_mortem: 100%
  alerts: [{severity: page, long: 2 runs, short: 1 run, rate: 1.4}]
"""

GOLDEN = """
topic: question
cases:
  - id: faq-en-hours
    prompt: What are your opening hours?
    expect:
      - contains_all: ["11 am", "10 pm"]
"""


@pytest.fixture
def seeded(project):
    project.write("golden/faq.yaml", GOLDEN)
    project.write("rubrics/r1.yaml", RUBRIC)
    project.write("suites/seeded.yaml", SEEDED_SUITE)
    store = Store.open(f"sqlite:///{project.root / 'history.db'}")
    try:
        _seed(store)
    finally:
        store.close()
    return project


def _status(project, *args: str) -> dict:
    out = project.harness("slo", "status", *args, "--json")
    assert out.returncode == 0, out.stderr
    return {o["name"]: o for o in json.loads(out.stdout)["suites"][0]["objectives"]}


def test_budgets_and_burn_rates_match_the_hand_computed_history(seeded):
    got = _status(seeded, "suites/seeded.yaml")

    # p90 < 1000 ms: 10% of turns may be slow. 10 runs reach all five: 10+10+9+10+10 = 49 caller
    # turns (the greeting's 9,999 ms is not a turn of the conversation), 3 slow: 3/49/0.10 consumed.
    t = got["answer-time"]
    assert (t["runs"], t["events"], t["bad"]) == (5, 49, 3)
    assert t["consumed"] == pytest.approx(3 / 49 / 0.10)
    assert t["budget_left"] == pytest.approx(1 - 3 / 49 / 0.10)
    assert t["word"] == "freeze"
    assert t["run"] == {"run_id": "run-4", "value": pytest.approx(1500.0), "met": False, "events": 10, "bad": 3}
    assert t["sli"] == pytest.approx(46 / 49)
    # long window 2 runs: 3/20/0.1 = 1.5; short 1 run: 3/10/0.1 = 3.0; both >= 1.4: a fast burn
    (alert,) = t["alerts"]
    assert alert["long"]["burn"] == pytest.approx(1.5) and alert["long"]["events"] == 20
    assert alert["short"]["burn"] == pytest.approx(3.0) and alert["short"]["runs"] == 1
    assert alert["firing"] and t["fast_burn"]

    # < 8% infra errors over 7 days: runs 1-4, 40 calls, 1 error: 0.025/0.08 = 0.3125 consumed
    a = got["availability"]
    assert (a["runs"], a["events"], a["bad"]) == (4, 40, 1)
    assert a["consumed"] == pytest.approx(0.3125) and a["word"] == "slow down"
    assert not a["fast_burn"]

    # json fails < 20% over 28 days: 39 checks (the error call has none), 2 failed: 2/39/0.2
    f = got["format"]
    assert (f["events"], f["bad"]) == (39, 2)
    assert f["consumed"] == pytest.approx(2 / 39 / 0.2) and f["word"] == "slow down"
    assert f["run"]["value"] == pytest.approx(0.2) and f["run"]["met"] is False

    # judge r1 < 25%: 20 judgements (the skipped one is not), 2 failed: 0.1/0.25 = 0.4
    q = got["quality"]
    assert (q["events"], q["bad"]) == (20, 2)
    assert q["consumed"] == pytest.approx(0.4) and q["word"] == "slow down"

    # reservation pass rate >= 80%: 20 calls, 3 failed: 0.15/0.20 = 0.75 consumed; the latest run
    # passed 4 of 5 = 80%, which meets the target
    r = got["reservations"]
    assert (r["events"], r["bad"]) == (20, 3)
    assert r["consumed"] == pytest.approx(0.75) and r["word"] == "freeze"
    assert r["sli"] == pytest.approx(0.85)
    assert r["run"]["value"] == pytest.approx(0.8) and r["run"]["met"] is True

    # a mean has no budget: (37*100 + 3*1500 + 9*100 ... ) over the 28d runs 1-4: 39 turns
    m = got["mean-turn"]
    assert m["budget_left"] is None
    assert m["sli"] == pytest.approx((36 * 100 + 3 * 1500) / 39)
    assert m["word"] == "missed"


def test_postgres_history_gives_the_same_figures(seeded, pg_url):
    on_sqlite = _status(seeded, "suites/seeded.yaml")
    store = Store.open(pg_url)
    try:
        _seed(store)
    finally:
        store.close()
    on_pg = _status(seeded, "suites/seeded.yaml", "--store", pg_url)
    assert on_pg == on_sqlite
    again = _status(seeded, "suites/seeded.yaml", "--store", pg_url)  # from the tallies kept in PostgreSQL
    assert again == on_sqlite


def test_status_prints_one_line_per_objective_with_its_word(seeded):
    out = seeded.harness("slo", "status")
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("  ") and not ln.startswith("   ")]
    assert len(lines) == 6
    by_name = {ln.split()[0]: ln for ln in lines}
    assert "freeze" in by_name["answer-time"] and "fast burn" in by_name["answer-time"]
    assert "budget 39% left" in by_name["answer-time"] and "5 runs, 49 turns" in by_name["answer-time"]
    assert "slow down" in by_name["availability"] and "4 runs, 40 calls" in by_name["availability"]


def test_tallies_are_kept_so_status_reads_them_back(seeded):
    first = _status(seeded, "suites/seeded.yaml")
    store = Store.open(f"sqlite:///{seeded.root / 'history.db'}")
    try:
        tally = store.get_run("run-3").extra["objectives"]["tally"]
    finally:
        store.close()
    assert tally["calls"]["reservation"] == [3, 2, 0, 0]
    assert tally["judge"]["r1"] == [5, 2]
    # the results rows are gone: the kept tallies alone give the same figures
    import sqlite3

    con = sqlite3.connect(seeded.root / "history.db")
    con.execute("DELETE FROM results")
    con.commit()
    con.close()
    assert _status(seeded, "suites/seeded.yaml") == first


def test_too_little_data_says_so(project):
    project.write("golden/faq.yaml", GOLDEN)
    project.write("rubrics/r1.yaml", RUBRIC)
    project.write("suites/seeded.yaml", SEEDED_SUITE.replace('target: "< 8%"', 'target: "< 0.1%"'))
    store = Store.open(f"sqlite:///{project.root / 'history.db'}")
    try:
        _store_run(store, "only", NOW - 60, [_result(f"c{i}", "question", "passed") for i in range(10)])
    finally:
        store.close()
    got = _status(project, "suites/seeded.yaml")
    a = got["availability"]
    assert a["word"] == "too little data"
    assert any("10 calls" in n and "1,000" in n for n in a["notes"])
    assert not a["fast_burn"]
    assert got["quality"]["word"] == "no data"


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("line, message", [
    ('  - {name: x, indicator: turn_p99, target: "< 5"}', "got 'turn_p99'"),
    ('  - {name: x, indicator: check_fail_rate, check: jsn, target: "< 1%"}', "unknown check 'jsn'"),
    ('  - {name: x, indicator: judge_fail_rate, rubric: rr1, target: "< 1%"}', "unknown rubric 'rr1'"),
    ('  - {name: x, indicator: pass_rate, target: "< 95%"}', "pass_rate is met at or above"),
    ('  - {name: x, indicator: infra_error_rate, stat: p99, target: "< 1%"}', "stat applies to"),
    ('  - {name: x, indicator: turn_ms, target: "fast"}', "is not a comparison"),
    ('  - {name: x, indicator: turn_ms, target: "< 5", window: 4weeks}', "is not a window"),
])
def test_a_mistake_in_objectives_is_one_positioned_line(project, line, message):
    project.write("golden/faq.yaml", GOLDEN)
    project.write("rubrics/r1.yaml", RUBRIC)
    project.write("suites/s.yaml", f"""
        name: s
        golden: ["golden/*.yaml"]
        target: {{kind: sim}}
        objectives:
        {line}
        """)
    for cmd in (("validate", "suites/s.yaml"), ("run", "suites/s.yaml"), ("slo", "status", "suites/s.yaml")):
        out = project.harness(*cmd)
        assert out.returncode == 2, (cmd, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr
        err = [ln for ln in out.stderr.splitlines() if "suites/s.yaml:5:" in ln]
        assert err and message in err[0], (cmd, out.stderr)


def test_unknown_check_suggests_the_closest(project):
    project.write("golden/faq.yaml", GOLDEN)
    project.write("suites/s.yaml", """
        name: s
        golden: ["golden/*.yaml"]
        target: {kind: sim}
        objectives:
          - name: fmt
            indicator: check_fail_rate
            check: jsno
            target: "< 1%"
        """)
    out = project.harness("validate", "suites/s.yaml")
    assert out.returncode == 2
    assert "suites/s.yaml:7:12: unknown check 'jsno'" in out.stderr and "did you mean 'json'?" in out.stderr


# ---------------------------------------------------------------- runs on the embedded agent


def _sim_project(project, objectives: str, policy: str = "") -> None:
    for rel in ("golden/question/en.yaml", "golden/reservation/goal-driven.yaml"):
        (project.root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, project.root / rel)
    project.write("suites/sim.yaml", f"""
name: sim
golden: ["golden/**/*.yaml"]
target: {{kind: sim, latency_ms: 5, jitter_ms: 0, seed: 7, limits: {{concurrency: 8, retries: 0, breaker_threshold: 1000}}}}
objectives:
{objectives}
{policy}
""")


def test_latency_fault_burns_the_budget_and_the_gate_fails_the_run(project):
    _sim_project(project, '  - {name: answer-time, indicator: turn_ms, stat: p90, target: "< 150", window: 5 runs}',
                 "budget_policy: {gate: true}")
    ok = project.harness("run", "suites/sim.yaml", "--no-reports")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Objectives off track" not in ok.stdout
    slow = project.harness("run", "suites/sim.yaml", "--no-reports", "--sim-fault", "latency:300")
    assert slow.returncode == 1, slow.stdout + slow.stderr
    assert "Objectives off track (1)" in slow.stdout
    assert "objective answer-time: p90 turn_ms" in slow.stdout and "(target < 150 ms, missed)" in slow.stdout
    assert "budget policy says" in slow.stderr and "answer-time" in slow.stderr and "of its budget left" in slow.stderr
    # half the turns of the window were slow: far past the post-mortem line
    got = _status(project, "suites/sim.yaml")["answer-time"]
    assert got["word"] == "post-mortem" and got["runs"] == 2
    assert got["bad"] > 0 and got["run"]["met"] is False


def test_without_the_gate_a_burning_budget_never_changes_the_exit_code(project):
    _sim_project(project, '  - {name: answer-time, indicator: turn_ms, stat: p90, target: "< 150"}')
    out = project.harness("run", "suites/sim.yaml", "--no-reports", "--sim-fault", "latency:300", "-q")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "budget policy" not in out.stderr


def test_server_errors_and_hallucinations_burn_their_budgets_and_reports_say_so(project):
    _sim_project(project, "\n".join([
        '  - {name: availability, indicator: infra_error_rate, target: "< 5%", window: 10 runs}',
        '  - {name: bookings, indicator: pass_rate, topic: reservation, target: ">= 90%", window: 10 runs}',
        '  - {name: side-effects, indicator: check_fail_rate, check: side_effects, target: "< 10%"}',
    ]))
    clean = project.harness("run", "suites/sim.yaml", "--no-reports")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    errors = project.harness("run", "suites/sim.yaml", "--no-reports", "--sim-fault", "server_error:0.5")
    assert errors.returncode == 3, errors.stdout + errors.stderr
    assert "objective availability:" in errors.stdout
    bad = project.harness("run", "suites/sim.yaml", "--sim-fault", "hallucination:1",
                          "--json", "out.json", "--junit", "out.xml", "--html", "out.html")
    got = _status(project, "suites/sim.yaml")
    assert got["availability"]["bad"] > 0 and got["availability"]["consumed"] > 1
    assert got["bookings"]["bad"] > 0 and got["bookings"]["run"]["met"] is False
    doc = json.loads((project.root / "out.json").read_text())
    missed = doc["objectives"]["missed"]
    assert any(m.startswith("objective availability:") for m in missed)
    assert any(m.startswith("objective bookings:") for m in missed)
    assert doc["verdict"]["class"] in ("infra", "noise", "failing", "regression", "drift")  # objectives are never a class
    props = {p.get("name"): p.get("value") for p in ET.parse(project.root / "out.xml").iter("property")}
    assert any(v.startswith("objective availability:") for k, v in props.items() if k.startswith("objective.missed."))
    html = (project.root / "out.html").read_text()
    assert "Objectives off track" in html and "objective availability:" in html
    assert bad.returncode == 1


# ---------------------------------------------------------------- OpenSLO


def test_export_and_import_round_trip(seeded, tmp_path):
    out = seeded.harness("slo", "export", "suites/seeded.yaml", "-o", str(tmp_path / "slo"))
    assert out.returncode == 0, out.stderr
    import yaml

    doc = yaml.safe_load((tmp_path / "slo" / "seeded-answer-time.yaml").read_text())
    assert doc["apiVersion"] == "openslo/v1" and doc["kind"] == "SLO"
    assert doc["spec"]["budgetingMethod"] == "Occurrences"
    assert doc["spec"]["objectives"] == [{"displayName": "p90 turn_ms < 1000 ms", "op": "lt", "value": 1000.0,
                                          "target": 0.9}]
    avail = yaml.safe_load((tmp_path / "slo" / "seeded-availability.yaml").read_text())
    assert avail["spec"]["timeWindow"] == [{"duration": "7d", "isRolling": True}]
    assert avail["spec"]["objectives"][0]["target"] == pytest.approx(0.92)
    assert "ratioMetric" in avail["spec"]["indicator"]["spec"]

    back = seeded.harness("slo", "import", *sorted(str(p) for p in (tmp_path / "slo").glob("*.yaml")))
    assert back.returncode == 0, back.stderr
    items = {o["name"]: o for o in yaml.safe_load(back.stdout)["objectives"]}
    assert items["answer-time"] == {"name": "answer-time", "indicator": "turn_ms", "stat": "p90",
                                    "target": "< 1000", "window": "10 runs"}
    assert items["format"]["check"] == "json" and items["format"]["target"] == "< 20%"
    assert items["reservations"]["target"] == ">= 80%" and items["reservations"]["topic"] == "reservation"
    # the imported objectives are a valid suite again
    seeded.write("suites/again.yaml", SEEDED_SUITE.split("objectives:")[0].replace("name: seeded", "name: again")
                 + yaml.safe_dump({"objectives": list(items.values())}))
    assert seeded.harness("validate", "suites/again.yaml").returncode == 0


def test_import_of_a_foreign_document_is_one_line(project, tmp_path):
    (tmp_path / "x.yaml").write_text("apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a}\nspec:\n"
                                     "  budgetingMethod: Occurrences\n  objectives: [{target: 0.99}]\n"
                                     "  indicator: {spec: {ratioMetric: {total: {metricSource: {type: Prometheus}}}}}\n")
    out = project.harness("slo", "import", str(tmp_path / "x.yaml"))
    assert out.returncode == 2 and "Prometheus" in out.stderr and "Traceback" not in out.stderr


# ---------------------------------------------------------------- Slack


def test_slack_budget_alerts_page_once_and_send_a_recovery(project):
    from fake_slack import FakeSlack

    with FakeSlack() as slack:
        _sim_project(project, '  - {name: answer-time, indicator: turn_ms, stat: p90, target: "< 150", window: 2 runs}',
                     "budget_policy: {alerts: [{severity: page, long: 2 runs, short: 1 run, rate: 3}]}\n"
                     f"notify: {{slack: {{webhook_url: '{slack.webhook_url}', when: [budget]}}}}")

        def run(*fault: str) -> list[dict]:
            before = len(slack.messages)
            out = project.harness("run", "suites/sim.yaml", "--no-reports", "-q", *fault)
            assert out.returncode == 0, out.stdout + out.stderr
            assert "warning" not in out.stderr, out.stderr
            return slack.messages[before:]

        assert run() == []  # a healthy first run: nothing to say (and `budget` alone sends no run summary)
        (page,) = run("--sim-fault", "latency:300")
        header = page["blocks"][0]["text"]["text"]
        assert header.startswith(":fire: sim: error budget burning fast")
        assert "objective answer-time: p90 turn_ms" in page["blocks"][1]["text"]["text"]
        assert "fast burn" in page["blocks"][1]["text"]["text"]
        assert run("--sim-fault", "latency:300") == []  # still burning: the team knows already
        assert run() == []  # the window still holds a slow run: still post-mortem, no recovery yet
        (ok,) = run()
        assert ok["blocks"][0]["text"]["text"] == ":white_check_mark: sim: error budget recovered"
        assert "answer-time: back to ok, budget 100% left over 2 runs" in ok["blocks"][1]["text"]["text"]


# ---------------------------------------------------------------- Datadog


def test_datadog_gets_gauges_per_objective_and_the_objectives_as_slos(project):
    from fake_datadog import FakeDatadog

    with FakeDatadog(app_key="dd-app-KEY-abcdef0123456789") as dd:
        _sim_project(project, "\n".join([
            '  - {name: answer-time, indicator: turn_ms, stat: p99, target: "< 5000", window: 7d}',
            '  - {name: availability, indicator: infra_error_rate, target: "< 0.1%"}',
            '  - {name: mean-turn, indicator: turn_ms, stat: mean, target: "< 100"}',
        ]), f"notify: {{datadog: {{api_key: '{dd.api_key}', app_key: '{dd.app_key}', host: '{dd.host}', "
            "env: ci, slos: true}}")
        for _ in range(2):
            out = project.harness("run", "suites/sim.yaml", "--no-reports", "-q")
            assert out.returncode == 0, out.stdout + out.stderr
            assert "warning" not in out.stderr, out.stderr
        assert dd.problems == []
        gauges = [s for s in dd.series if s["metric"].startswith("harness.objective.")]
        names = {s["metric"] for s in gauges}
        assert {"harness.objective.sli", "harness.objective.window_sli", "harness.objective.budget_left",
                "harness.objective.budget_consumed", "harness.objective.burn_rate", "harness.objective.events",
                "harness.objective.good_events"} <= names
        left = [s for s in gauges if s["metric"] == "harness.objective.budget_left"
                and "objective:answer-time" in s["tags"]]
        assert len(left) == 2 and left[-1]["points"][0]["value"] == pytest.approx(1.0)
        assert "suite:sim" in left[-1]["tags"] and "indicator:turn_ms" in left[-1]["tags"]
        assert "window:1_run" in {t for s in gauges if s["metric"] == "harness.objective.burn_rate" for t in s["tags"]}
        # a mean has no events to count: no SLO for it; the others were created once, then updated
        assert [w for w, _ in dd.slo_writes] == ["create", "create", "update", "update"]
        slos = {s["name"]: s for s in dd.slos.values()}
        assert set(slos) == {"sim · answer-time", "sim · availability"}
        avail = slos["sim · availability"]
        assert avail["thresholds"] == [{"timeframe": "30d", "target": 99.9}]
        assert avail["query"]["numerator"] == \
            "sum:harness.objective.good_events{suite:sim,objective:availability,env:ci}.as_count()"
        assert slos["sim · answer-time"]["thresholds"][0] == {"timeframe": "7d", "target": 99.0}


def test_datadog_slos_without_an_application_key_are_skipped_with_a_warning(project):
    from fake_datadog import FakeDatadog

    with FakeDatadog() as dd:
        _sim_project(project, '  - {name: availability, indicator: infra_error_rate, target: "< 5%"}',
                     f"notify: {{datadog: {{api_key: '{dd.api_key}', host: '{dd.host}', slos: true}}}}")
        out = project.harness("run", "suites/sim.yaml", "--no-reports", "-q")
        assert out.returncode == 0
        assert "datadog slos: skipped, they need notify.datadog.app_key" in out.stderr
        assert dd.slos == {} and any(s["metric"] == "harness.objective.budget_left" for s in dd.series)
