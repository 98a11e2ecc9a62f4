"""`analysis: {gate: verdict}`: a drift suite on a live model is red when something moved.

A real model never passes every case, so a daily drift suite gated on its checks exits 1
every morning and the exit code says nothing. Gated on the verdict alone, the known
failures exit 0 (`failing`, `noise`), and a change (`drift`, `regression`, `mixed`) exits 1.
Through the CLI in its own process, against a local OpenAI-compatible server.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from mock_openai import MockOpenAI

from conftest import Project

N = 30
FAILS = 6  # cases the model never gets right


def golden() -> str:
    lines = ["topic: faq", "cases:"]
    for i in range(N):
        lines += [f"  - id: faq-{i:02d}", f"    prompt: \"question {i}\"", "    expect:", "      - contains: answer"]
    return "\n".join(lines) + "\n"


def suite(gate: str) -> str:
    return f"""\
name: live
golden: ["golden/*.yaml"]
target: {{kind: openai, base_url: "${{LLM_URL}}", model: live-model, stream: false}}
analysis: {{gate: {gate}}}
"""


def number(messages: list[dict[str, Any]]) -> int:
    return int(messages[-1]["content"].split()[-1])


def usual(messages: list[dict[str, Any]]) -> str:
    i = number(messages)
    return "I do not know." if i < FAILS else f"The answer to question {i} is A."


def worse(messages: list[dict[str, Any]]) -> str:
    i = number(messages)
    return "I do not know." if i < 3 * FAILS else f"The answer to question {i} is A."


def run(project: Project, url: str, *args: str) -> tuple[int, str]:
    before = set((project.root / "reports").glob("*.json")) if (project.root / "reports").is_dir() else set()
    p = project.harness("run", "suites/live.yaml", "--no-progress", "-o", "reports", *args, env={"LLM_URL": url})
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    (new,) = sorted(set((project.root / "reports").glob("*.json")) - before)
    return p.returncode, json.loads(new.read_text())["verdict"]["class"]


@pytest.mark.parametrize("gate, first, known", [("verdict", 0, 0), ("checks", 1, 1)])
def test_known_failures_exit_0_only_when_the_suite_gates_on_the_verdict(project: Project, gate, first, known):
    project.write("golden/faq.yaml", golden())
    project.write("suites/live.yaml", suite(gate))
    with MockOpenAI(reply=usual) as m:
        code, cls = run(project, m.base_url, "--accept-baseline")
        assert (code, cls) == (first, "failing")
        code, cls = run(project, m.base_url)
        assert cls in ("failing", "noise") and code == known
        m.reply = worse
        code, cls = run(project, m.base_url)
    assert (code, cls) == (1, "drift")


def test_an_outage_is_still_exit_3_when_gated_on_the_verdict(project: Project):
    project.write("golden/faq.yaml", golden())
    project.write("suites/live.yaml", suite("verdict"))
    with MockOpenAI(reply=usual, default="500") as m:
        code, cls = run(project, m.base_url)
    assert (code, cls) == (3, "infra")


def test_an_unknown_gate_is_a_config_error_with_its_position(project: Project):
    project.write("golden/faq.yaml", golden())
    project.write("suites/live.yaml", suite("vibes"))
    p = project.harness("validate", "suites/live.yaml", env={"LLM_URL": "http://127.0.0.1:9/v1"})
    assert p.returncode == 2
    assert "live.yaml:4:" in p.stdout + p.stderr and "gate" in p.stdout + p.stderr
