"""Issue 16, finding 10: a judge outage after a green baseline is infra (exit 3), never a
regression: a judged check that could not run makes its case an infra error of kind `judge`,
the verdict says the judge could not answer, Slack says infra, and the judge has its own
breaker (a judge that keeps failing is not asked again for every case).

Through `python -m harness` against local servers: a judge that answers well, then one that
refuses connections, answers 500, or answers nonsense.
"""

from __future__ import annotations

import json
import socket

import pytest
from fake_slack import FakeSlack
from hostile_server import HostileServer

from conftest import Project

GOOD_JUDGE = json.dumps({"steps": ["Check the answer is polite."], "score": 9, "reason": "polite"})


def _golden(project: Project, n: int = 4, *, own_criteria: bool = False) -> None:
    project.write("golden/q.yaml", "topic: question\ncases:\n" + "".join(
        f"  - id: q{i}\n    prompt: What are your opening hours? ({i})\n"
        f"    expect: [{{contains: open}}, {{judge: {{criteria: The answer is polite{f' ({i})' if own_criteria else ''}.}}}}]\n"
        for i in range(n)))


def _suite(project: Project, judge_url: str, slack_url: str) -> None:
    project.write("suites/s.yaml", f"""
        name: judged
        golden: ["golden/**/*.yaml"]
        target: {{kind: sim}}
        judge: {{base_url: "{judge_url}", model: judge-model, when: always}}
        output: {{dir: reports/}}
        notify:
          slack: {{webhook_url: "{slack_url}", when: [always]}}
    """)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("outage", ["refused", "500"])
def test_a_judge_outage_after_a_green_baseline_is_infra_not_a_regression(project: Project, outage: str) -> None:
    _golden(project)
    with FakeSlack() as slack:
        with HostileServer("text", answer=GOOD_JUDGE) as judge:
            _suite(project, judge.url, slack.webhook_url)
            first = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress")
        assert first.returncode == 0, first.stdout + first.stderr
        accepted = project.harness("baseline", "accept", "latest", "--store", project.store_url)
        assert accepted.returncode == 0, accepted.stdout + accepted.stderr

        if outage == "refused":
            _suite(project, f"http://127.0.0.1:{_closed_port()}/v1", slack.webhook_url)
            out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress")
        else:
            with HostileServer("page", status=500, answer="internal error") as judge:
                _suite(project, judge.url, slack.webhook_url)
                out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress")
        text = out.stdout + out.stderr
        assert out.returncode == 3, text
        assert "Traceback" not in text
        assert "regression" not in text.lower(), text
        verdict = next(line for line in out.stdout.splitlines() if line.startswith("Verdict:"))
        assert "infra" in verdict and "judge could not answer" in verdict, out.stdout
        assert "judge ×4" in out.stdout  # its own line among the infra errors
        last = slack.messages[-1]
        said = json.dumps(last, ensure_ascii=False)
        assert "infra" in said and "regression" not in said.lower(), said
    doc = json.loads(max((project.root / "reports").glob("judged-*.json"), key=lambda p: p.stat().st_mtime)
                     .read_text())
    statuses = {r["case_id"]: (r["status"], r["error_kind"]) for r in doc["results"]}
    assert statuses == {f"q{i}": ("error", "judge") for i in range(4)}, statuses


def test_an_exact_check_that_fails_still_fails_when_the_judge_is_down(project: Project) -> None:
    project.write("golden/q.yaml", """
        topic: question
        cases:
          - id: wrong
            prompt: What are your opening hours?
            expect: [{contains: zzz-not-there}, {judge: {criteria: The answer is polite.}}]
    """)
    with FakeSlack() as slack:
        _suite(project, f"http://127.0.0.1:{_closed_port()}/v1", slack.webhook_url)
        out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress",
                              "--json", "r.json")
    [result] = json.loads((project.root / "r.json").read_text())["results"]
    assert result["status"] == "failed", result  # the agent's own mistake is not hidden by the judge's
    assert out.returncode == 1, out.stdout + out.stderr


def test_the_judge_has_its_own_breaker(project: Project) -> None:
    """A judge answering nonsense every time: after a few errors in a row it is not asked again."""
    _golden(project, n=30, own_criteria=True)  # no verdict or steps shared between cases
    with FakeSlack() as slack, HostileServer("text", answer="no json here") as judge:
        _suite(project, judge.url, slack.webhook_url)
        out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress")
        asked = len(judge.seen_headers)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "the judge is down, not asked again this run" in out.stdout, out.stdout
    # without the breaker every one of the 30 cases asks, 3 times each (90 requests); with it, only
    # the cases already being judged when it opened (one per concurrent call)
    assert asked <= 45, asked
