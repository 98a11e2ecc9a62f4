"""A service's self-reported version is our side of the call (issue 13).

The service under test names its version in a response header (`version_header`) or in
its JSON answer (`version_path`, http target). The version is folded into each result's
input fingerprint, so a deploy of the service that changes its answers is a regression
(ours), while the same answers changing under an unchanged version are the model's doing
(drift). Through the CLI in its own process, against a local OpenAI-compatible server.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from mock_openai import MockOpenAI
from test_target_http import Webhook

from conftest import Project
from harness.loading import load_golden_file
from harness.runner import Runner, compile_case, plan_items
from harness.targets import create

N = 30


def golden() -> str:
    lines = ["topic: faq", "cases:"]
    for i in range(N):
        lines += [f"  - id: faq-{i:02d}", f"    prompt: \"question {i}\"", "    expect:", "      - contains: answer"]
    return "\n".join(lines) + "\n"


SUITE = """\
name: versioned
golden: ["golden/*.yaml"]
target:
  kind: openai
  base_url: ${LLM_URL}
  model: phone-agent
  stream: true   # the version header arrives before the stream; the not-streamed path reads it too
  version_header: X-Agent-Version
"""


def plain(messages: list[dict[str, Any]]) -> str:
    q = messages[-1]["content"]
    return f"The answer to {q} is A."


def reworded(messages: list[dict[str, Any]]) -> str:
    q = messages[-1]["content"]
    return f"Sure! Here is the answer you asked for about {q}: it is option A, as always, have a nice day."


def broken(messages: list[dict[str, Any]]) -> str:
    i = int(messages[-1]["content"].split()[-1])
    return "Sorry, I cannot help with that." if i % 2 else plain(messages)


def run(project: Project, url: str, *args: str) -> tuple[int, dict, str]:
    before = set((project.root / "reports").glob("*.json")) if (project.root / "reports").is_dir() else set()
    p = project.harness("run", "suites/v.yaml", "--no-progress", "-o", "reports", *args, env={"LLM_URL": url})
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    new = sorted(set((project.root / "reports").glob("*.json")) - before)
    assert new, p.stdout[-2000:] + p.stderr[-2000:]
    return p.returncode, json.loads(new[-1].read_text())["verdict"], p.stdout


@pytest.fixture
def versioned(project: Project) -> Project:
    project.write("golden/faq.yaml", golden())
    project.write("suites/v.yaml", SUITE)
    return project


def evidence(verdict: dict, kind: str) -> list[dict]:
    return [e for e in verdict.get("evidence", []) if e.get("kind") == kind]


def test_answers_that_change_under_an_unchanged_version_are_the_models_drift(versioned: Project):
    with MockOpenAI(reply=plain, headers={"X-Agent-Version": "2.3.0"}) as m:
        code, verdict, _ = run(versioned, m.base_url, "--accept-baseline")
        assert code == 0 and verdict["class"] == "ok", verdict
        m.reply = broken
        code, verdict, out = run(versioned, m.base_url)
    assert verdict["class"] == "drift", verdict
    assert not evidence(verdict, "attribution"), verdict


def test_a_deploy_of_the_service_that_breaks_cases_is_a_regression_naming_both_versions(versioned: Project):
    with MockOpenAI(reply=plain, headers={"X-Agent-Version": "2.3.0"}) as m:
        code, verdict, _ = run(versioned, m.base_url, "--accept-baseline")
        assert code == 0 and verdict["class"] == "ok", verdict
        m.reply = broken
        m.extra_headers = {"X-Agent-Version": "2.4.0"}
        code, verdict, out = run(versioned, m.base_url)
    assert verdict["class"] == "regression", verdict
    assert code == 1
    (attribution,) = evidence(verdict, "attribution")
    assert "the service reports version 2.4.0 (the reference: 2.3.0)" in attribution["detail"], attribution
    assert attribution["service_version"] == {"reference": ["2.3.0"], "now": ["2.4.0"]}
    assert "2.4.0" in out, out


def test_a_deploy_that_changes_nothing_the_caller_hears_is_not_an_alarm(versioned: Project):
    with MockOpenAI(reply=plain, headers={"X-Agent-Version": "2.3.0"}) as m:
        run(versioned, m.base_url, "--accept-baseline")
        m.extra_headers = {"X-Agent-Version": "2.4.0"}
        code, verdict, _ = run(versioned, m.base_url)
    assert code == 0 and verdict["class"] == "ok", verdict


def test_the_version_is_stored_with_each_turn_and_read_back(versioned: Project):
    with MockOpenAI(reply=plain, headers={"X-Agent-Version": "2.3.0  build  7"}) as m:
        run(versioned, m.base_url)
    rows = sqlite3.connect(versioned.root / ".harness" / "history.db").execute("select transcript from results").fetchall()
    versions = {t["reply"].get("service_version") for (tr,) in rows for t in json.loads(tr)["turns"]}
    assert versions == {"2.3.0 build 7"}  # one line, spaces folded
    (page,) = [p for p in (versioned.root / "reports").glob("*.html") if not p.name.endswith(("-trend.html", "-latest.html"))]
    assert "service version <code>2.3.0 build 7</code>" in page.read_text(encoding="utf-8")


def test_a_key_the_service_echoes_as_its_version_is_masked_in_everything_written(project: Project):
    key = "sk-canary-VERSION-7f3a91"
    project.write("golden/faq.yaml", golden())
    project.write("suites/v.yaml", SUITE + "  api_key: ${AGENT_KEY}\n")
    with MockOpenAI(reply=plain, headers={"X-Agent-Version": f"2.3.0+{key}"}) as m:
        p = project.harness("run", "suites/v.yaml", "--no-progress", "-o", "reports",
                            env={"LLM_URL": m.base_url, "AGENT_KEY": key})
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    written = [f.read_bytes() for f in (project.root / "reports").iterdir()]
    written += [f.read_bytes() for f in (project.root / ".harness").glob("*.db")]
    assert written and all(key.encode() not in blob for blob in written)
    assert key not in p.stdout + p.stderr
    rows = sqlite3.connect(project.root / ".harness" / "history.db").execute("select transcript from results").fetchall()
    versions = {t["reply"].get("service_version") for (tr,) in rows for t in json.loads(tr)["turns"]}
    assert len(versions) == 1 and versions.pop().startswith("2.3.0+")  # the version kept, the key blanked


@pytest.mark.asyncio
async def test_the_http_target_reads_the_version_from_a_json_path_or_a_header(tmp_path: Path):
    cases = tmp_path / "c.yaml"
    cases.write_text("topic: faq\ncases:\n  - id: one\n    prompt: hello\n", encoding="utf-8")
    (case,) = load_golden_file(cases, compile_checks=False).cases

    async with Webhook() as hook:
        async def play(**settings: Any) -> Any:
            target = create({"kind": "http", "url": f"{hook.url}/turn", "reply_path": "$.response.text", **settings})
            results = []
            runner = Runner(target, on_result=results.append)
            try:
                await runner.run(plan_items([compile_case(case)]))
            finally:
                await target.aclose()
            (r,) = results
            assert r.status == "passed", r.error
            return r

        hook.version = {"build": {"id": "svc-7"}}
        by_path = await play(version_path="$.build.id")
        assert [t.reply.service_version for t in by_path.transcript.turns] == ["svc-7"]
        by_header = await play(version_header="X-Service-Build")
        assert [t.reply.service_version for t in by_header.transcript.turns] == ["hdr-9"]
        hook.version = {"build": {"id": "v" * 10_000}}
        (huge,) = [t.reply.service_version for t in (await play(version_path="$.build.id")).transcript.turns]
        assert huge == "v" * 100  # a hostile version is cut, never stored whole
        hook.version = {"build": {"id": ["not", "a", "version"]}}
        (odd,) = [t.reply.service_version for t in (await play(version_path="$.build.id")).transcript.turns]
        assert odd is None
        neither = await play()
        assert [t.reply.service_version for t in neither.transcript.turns] == [None]


def test_a_version_path_that_is_not_jsonpath_is_a_config_error_naming_the_field(project: Project):
    project.write("golden/faq.yaml", golden())
    project.write("suites/v.yaml", """\
        name: v
        golden: ["golden/*.yaml"]
        target: {kind: http, url: "http://127.0.0.1:9/turn", version_path: "$[[["}
        """)
    p = project.harness("run", "suites/v.yaml", "--no-progress")
    assert p.returncode == 2, p.stdout + p.stderr
    assert "version_path" in p.stderr and "Traceback" not in p.stderr
