"""Drift verdicts on real model changes, through the CLI in its own process (issue 13).

The agent is a local OpenAI-compatible server answering with the recorded answers of real
model snapshots (OpinionQA, ../shared/data) behind one silent alias: the model name stays
`gpt-4`, no fingerprint says anything. The project folder is not a git checkout, unless a
test makes it one to move the sha every day.

- a silent update that drops the pass rate is drift (worse), never regression;
- an update that changes the answers and not the pass rate is drift (changed …), never noise;
- an update that raises the pass rate is drift (better);
- `--accept-baseline` takes a run with failing cases and says how many fail;
- a first run with failing cases is `failing`: exit 1, Slack's default `when:` and a Datadog event;
- `--sim-fault model_update` outside a git checkout is drift;
- a git sha that changes every day blames nothing on our code; our prompt change is ours.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fake_datadog import FakeDatadog
from fake_slack import FakeSlack
from mock_openai import MockOpenAI
from opinionqa import OPTION_CHECK, OpinionQA, golden, suite

from conftest import REPO, Project

pytestmark = pytest.mark.slow

N = 120  # questions per run: enough for the tests' power, fast at 32 calls in flight


@pytest.fixture(scope="module")
def questions() -> list[dict]:
    return OpinionQA.load().sample(N)


def setup(project: Project, questions: list[dict], extra: str = "") -> None:
    project.write("golden/opinion.yaml", golden(questions))
    project.write("suites/drift.yaml", suite(extra=extra))


def run(project: Project, url: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    before = set((project.root / "reports").glob("*.json")) if (project.root / "reports").is_dir() else set()
    p = project.harness("run", "suites/drift.yaml", "--no-progress", "-o", "reports", *args,
                        env={"LLM_URL": url, **(env or {})}, timeout=240)
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    new = sorted(set((project.root / "reports").glob("*.json")) - before)
    assert new, p.stdout[-2000:] + p.stderr[-2000:]
    return p.returncode, json.loads(new[-1].read_text())["verdict"], p.stdout


def test_a_silent_update_that_drops_the_pass_rate_is_drift_outside_git(project: Project, questions):
    setup(project, questions)
    with OpinionQA.load().server(questions, "gpt-4-0314", noise=0.03, seed=1) as server:
        code, v, out = run(project, server.base_url, "--accept-baseline")
        # finding 4: a real model never passes 100%; its behaviour is the baseline, failures included
        failing = sum(1 for q in questions if not re.search(OPTION_CHECK, q["answers"]["gpt-4-0314"]["text"], re.I))
        assert "baseline: accepted run" in out and f"({failing} of {N} cases fail)" in out, out[-1500:]
        assert v["class"] == ("failing" if failing else "ok"), v["headline"]
        # an unchanged rerun: nothing moved
        code, v, _ = run(project, server.base_url)
        assert v["class"] in ("ok", "noise", "failing"), v["headline"]
        server.snapshot = "gpt-4-0613"  # the silent update: same alias, no fingerprint
        code, v, _ = run(project, server.base_url)
    # finding 1: not "regression … code version unknown"
    assert v["class"] == "drift", v["headline"]
    assert v["headline"].startswith("drift (worse): "), v["headline"]
    assert "with our inputs unchanged" in v["headline"]
    assert code == 1
    kinds = {e["kind"] for e in v["evidence"]}
    assert {"answers", "behaviour_outcome_worse"} <= kinds, kinds
    assert any(e.get("correction") == "Holm" for e in v["evidence"])


def test_answers_that_change_with_the_pass_rate_held_are_drift_not_noise(project: Project, questions):
    setup(project, questions)
    with OpinionQA.load().server(questions, "gpt-3.5-turbo-0301", noise=0.03, seed=2) as server:
        run(project, server.base_url, "--accept-baseline")
        code, v, _ = run(project, server.base_url)
        assert v["class"] in ("ok", "noise", "failing"), v["headline"]
        server.snapshot = "gpt-3.5-turbo-0613"
        code, v, _ = run(project, server.base_url)
    # finding 2
    assert v["class"] == "drift", v["headline"]
    assert v["headline"].startswith("drift (changed, pass rate unchanged): "), v["headline"]
    assert code == 1
    rates = v["topics"]["opinion"]
    assert abs(rates["pass_rate"] - rates["baseline_pass_rate"]) < 0.05  # the check's pass rate held


def test_an_update_that_raises_the_pass_rate_is_drift_better(project: Project, questions):
    setup(project, questions)
    with OpinionQA.load().server(questions, "gpt-4-0613", seed=3) as server:
        code, v, _ = run(project, server.base_url, "--accept-baseline")
        assert code == 1 and v["class"] == "failing", v["headline"]  # finding 5: never ok with failures
        server.snapshot = "gpt-4-0314"
        code, v, _ = run(project, server.base_url)
    # finding 3
    assert v["class"] == "drift", v["headline"]
    assert v["headline"].startswith("drift (better): "), v["headline"]
    assert any(e["kind"] == "behaviour_outcome_better" for e in v["evidence"])


def git(root: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin:/usr/local/bin"}
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True).stdout


def test_a_git_sha_that_changes_every_day_blames_nothing_on_our_code(project: Project, questions):
    """daily-drift.yml on a repository whose main gets a commit every day."""
    setup(project, questions[:80])
    git(project.root, "init", "-q")
    git(project.root, "add", "-A")
    git(project.root, "commit", "-qm", "day 0")
    with OpinionQA.load().server(questions[:80], "gpt-4-0314", noise=0.03, seed=4) as server:
        run(project, server.base_url, "--accept-baseline")
        shas = []
        for day in (1, 2):
            project.write("NOTES.md", f"day {day}\n")
            git(project.root, "add", "-A")
            git(project.root, "commit", "-qm", f"day {day}")
            shas.append(git(project.root, "rev-parse", "HEAD").strip())
            code, v, _ = run(project, server.base_url)
            assert v["class"] in ("ok", "noise", "failing"), v["headline"]  # not regression
        server.snapshot = "gpt-4-0613"
        project.write("NOTES.md", "day 3\n")
        git(project.root, "commit", "-qam", "day 3")
        code, v, _ = run(project, server.base_url)
    assert shas[0] != shas[1]
    assert v["class"] == "drift" and v["headline"].startswith("drift (worse)"), v["headline"]


def test_our_prompt_change_with_the_model_unchanged_is_ours(project: Project):
    """Different inputs, same model identity: a drop is a regression, not drift."""
    project.write("golden/q.yaml", "topic: faq\ncases:\n" + "".join(
        f"  - id: q{i}\n    prompt: question {i}\n    expect: [{{contains: 'answer {i}'}}]\n" for i in range(40)))

    def reply(messages: list[dict]) -> str:
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
        n = messages[-1]["content"].split()[-1]
        return f"Sorry, no." if "terse" in system and int(n) % 2 else f"The answer {n}."

    with MockOpenAI(reply=reply, model="gpt-4", fingerprint=None) as agent:
        project.write("suites/drift.yaml", suite(extra="") + "")
        text = (project.root / "suites/drift.yaml").read_text().replace(
            "  temperature: 0.1", "  temperature: 0.1\n  system_prompt: You are helpful.")
        (project.root / "suites/drift.yaml").write_text(text)
        code, v, _ = run(project, agent.base_url, "--accept-baseline")
        assert v["class"] == "ok", v["headline"]
        (project.root / "suites/drift.yaml").write_text(text.replace("You are helpful.", "Be terse."))
        code, v, _ = run(project, agent.base_url)
    assert v["class"] == "regression", v["headline"]
    assert "our inputs changed in 40 case(s) and the model did not" in v["headline"]


def test_a_first_run_with_failures_is_failing_and_notifies(project: Project, questions):
    """Finding 5: exit 1, Slack's default `when:` speaks, Datadog gets an event."""
    setup(project, questions[:40], extra='notify:\n  slack: {webhook_url: "${SLACK_URL}"}\n'
                                         '  datadog: {api_key: "${DD_API_KEY}", host: "${DD_HOST}"}\n')
    with OpinionQA.load().server(questions[:40], "gpt-4-0613") as server, FakeSlack() as slack, \
            FakeDatadog() as dd:
        code, v, out = run(project, server.base_url, env={"SLACK_URL": slack.webhook_url, "DD_API_KEY": dd.api_key,
                                                          "DD_HOST": dd.host})
    assert v["class"] == "failing", v["headline"]
    assert v["headline"].startswith("failing: ") and "no baseline or history" in v["headline"]
    assert code == 1 and "verdict: failing" in out
    assert slack.messages, slack.problems
    assert dd.events and dd.events[0]["alert_type"] == "error", dd.problems


def test_sim_model_update_outside_git_is_drift(tmp_path: Path):
    """Finding 6: the README's promise, in a copied project (a CI container, a pip install)."""
    for folder in ("golden", "prompts", "rubrics", "suites"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    p = Project.__new__(Project)
    p.root = tmp_path
    first = p.harness("run", "suites/post-merge.yaml", "--no-progress", "-o", "reports")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    second = p.harness("run", "suites/post-merge.yaml", "--no-progress", "-o", "reports", "--sim-fault",
                       "model_update")
    assert "verdict: drift" in second.stdout, second.stdout[-2000:]
    assert second.returncode == 1
    data = json.loads(sorted((tmp_path / "reports").glob("post-merge-*.json"))[-1].read_text())
    assert data["verdict"]["headline"].startswith("drift ("), data["verdict"]["headline"]
    assert any(e["kind"] == "fingerprint" for e in data["verdict"]["evidence"])


def test_both_sides_changed_is_mixed_and_attribute_tells_which_cases_went_which_way(project: Project):
    """Our prompt changed and the model was updated the same day: `mixed`; `harness attribute`
    resends the old prompt to today's model and names the cases on each side."""
    project.write("golden/q.yaml", "topic: faq\ncases:\n" + "".join(
        f"  - id: q{i}\n    prompt: question {i}\n    expect: [{{contains: 'answer {i}'}}]\n" for i in range(40)))
    state = {"updated": False}

    def reply(messages: list[dict]) -> str:
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
        n = int(messages[-1]["content"].split()[-1])
        if state["updated"] and n % 2 == 0:
            return f"Answer is {n}!"  # the model's new wording for even questions
        if "terse" in system and n % 2:
            return "Sorry, no."  # our new prompt's effect on odd questions
        return f"The answer {n}."

    with MockOpenAI(reply=reply, model="gpt-4", fingerprint="fp_1") as agent:
        project.write("suites/drift.yaml", suite(extra=""))
        path = project.root / "suites/drift.yaml"
        text = path.read_text().replace("  temperature: 0.1", "  temperature: 0.1\n  system_prompt: You are helpful.")
        path.write_text(text)
        code, v, _ = run(project, agent.base_url, "--accept-baseline")
        assert v["class"] == "ok", v["headline"]
        path.write_text(text.replace("You are helpful.", "Be terse."))
        state["updated"] = True
        agent.fingerprint = "fp_2"
        code, v, _ = run(project, agent.base_url)
        assert v["class"] == "mixed", v["headline"]
        assert code == 1 and "harness attribute" in v["headline"]
        p = project.harness("attribute", "latest:opinion-drift", "--suite", "suites/drift.yaml",
                            env={"LLM_URL": agent.base_url})
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    lines = dict(line.split(": ", 1) for line in p.stdout.splitlines() if line.startswith("q"))
    assert {k for k, side in lines.items() if side == "the model moved"} == {f"q{i}" for i in range(0, 40, 2)}
    assert {k for k, side in lines.items() if side == "our change"} == {f"q{i}" for i in range(1, 40, 2)}
    assert "20 answer differently too (the model moved), 20 answer as before (our change)" in p.stdout
    # the finding is stored with the run's verdict, for every report
    from harness.store import Store
    from harness.verdict import Verdict

    with Store.open(project.store_url) as st:
        stored = Verdict.of_extra(st.get_run("latest:opinion-drift").extra)
    (attributed,) = stored.evidence_of("attributed")
    assert sorted(attributed.figures["model"]) == sorted(f"q{i}" for i in range(0, 40, 2))
    assert stored.extra["attribution"]["q1"] == "ours"


def test_adaptive_repeats_spend_calls_where_cases_moved(project: Project, questions):
    """`repeat: {min: 1, max: 4}`: one call per case, more only where the answer moved; the calls
    spent are in the verdict's evidence."""
    qs = questions[:60]
    setup(project, qs)
    path = project.root / "suites/drift.yaml"
    path.write_text(path.read_text() + "repeat: {min: 1, max: 4}\n")
    with OpinionQA.load().server(qs, "gpt-3.5-turbo-0301", noise=0.03, seed=5) as server:
        run(project, server.base_url, "--accept-baseline")
        code, quiet, _ = run(project, server.base_url)
        server.snapshot = "gpt-3.5-turbo-0613"
        code, v, _ = run(project, server.base_url)
    spent = {e["kind"]: e for e in quiet["evidence"]}["calls"]["spent"]
    assert 60 <= spent < 60 * 2, spent  # an unchanged rerun: extra calls only for the few reworded answers
    moved = {e["kind"]: e for e in v["evidence"]}["calls"]["spent"]
    assert spent < moved <= 60 * 4
    assert v["class"] == "drift" and v["headline"].startswith("drift (changed"), v["headline"]
    bad = project.write("suites/bad.yaml", path.read_text().replace("{min: 1, max: 4}", "{min: 3, max: 2}"))
    p = project.harness("validate", str(bad), env={"LLM_URL": "http://127.0.0.1:9/v1"})
    assert p.returncode == 2 and "max (2) is below min (3)" in p.stdout + p.stderr and "Traceback" not in p.stderr


def test_a_suite_can_attribute_a_mixed_run_by_itself_within_a_call_budget(project: Project):
    """`analysis: {attribute: N}`: the mixed run resends the old inputs itself, at most N calls."""
    project.write("golden/q.yaml", "topic: faq\ncases:\n" + "".join(
        f"  - id: q{i}\n    prompt: question {i}\n    expect: [{{contains: 'answer {i}'}}]\n" for i in range(30)))
    state = {"updated": False}

    def reply(messages: list[dict]) -> str:
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
        n = int(messages[-1]["content"].split()[-1])
        if state["updated"] and n % 2 == 0:
            return f"Answer is {n}!"
        return "Sorry, no." if "terse" in system and n % 2 else f"The answer {n}."

    with MockOpenAI(reply=reply, model="gpt-4", fingerprint="fp_1") as agent:
        project.write("suites/drift.yaml", suite(extra="analysis: {attribute: 10}\n"))
        path = project.root / "suites/drift.yaml"
        text = path.read_text().replace("  temperature: 0.1", "  temperature: 0.1\n  system_prompt: You are helpful.")
        path.write_text(text)
        run(project, agent.base_url, "--accept-baseline")
        path.write_text(text.replace("You are helpful.", "Be terse."))
        state["updated"] = True
        agent.fingerprint = "fp_2"
        before = agent.requests
        code, v, _ = run(project, agent.base_url)
        spent = agent.requests - before
    assert v["class"] == "mixed", v["headline"]
    (attributed,) = [e for e in v["evidence"] if e["kind"] == "attributed"]
    assert attributed["calls"] == 10 and spent == 30 + 10
    assert len(attributed["model"]) + len(attributed["ours"]) == 10
