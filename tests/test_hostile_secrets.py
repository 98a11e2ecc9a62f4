"""Issue 16, finding 8: a key taken from ${ENV} never reaches an artifact, whatever a server echoes.

Every error path of the openai and http targets and of the judge, against servers that quote
the request's headers back (in a 200 without choices, a 500 body, an invalid SSE event, an
answer). The artifacts: stdout, stderr, the store file, every report file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Project
from hostile_server import HostileServer

CANARY = "sk-canary-7f3a9c1e5b2d4680"
TOKEN = "tok-canary-0b1c2d3e4f5a6978"


def _artifacts(project: Project, out) -> str:
    text = out.stdout + out.stderr
    for path in project.root.rglob("*"):
        if path.is_file() and path.suffix not in (".yaml",):
            text += path.read_bytes().decode("utf-8", "replace")
    return text


def _golden(project: Project, judged: bool = False) -> None:
    expect = "[{judge: {criteria: The answer is polite.}}]" if judged else "[{contains: zzz}]"
    project.write("golden/q.yaml", f"""
        topic: question
        cases:
          - id: q
            prompt: hello
            expect: {expect}
    """)


TARGETS = {
    "openai": '{{kind: openai, base_url: "{url}", model: m, stream: {stream}, api_key: "${{KEY}}", '
              'headers: {{X-Token: "${{TOKEN}}"}}, limits: {{retries: 0}}}}',
    "http": '{{kind: http, url: "{url}/chat/completions", reply_path: "$.choices[0].message.content", '
            'headers: {{Authorization: "Bearer ${{KEY}}", X-Token: "${{TOKEN}}"}}, limits: {{retries: 0}}}}',
}


PATHS = [("echo", "false"), ("echo_500", "false"), ("echo_sse", "true"), ("echo_answer", "false"),
         ("echo_answer", "true")]


@pytest.mark.parametrize("target,mode,stream", [(t, m, s) for t in sorted(TARGETS) for m, s in PATHS
                                                if not (t == "http" and s == "true")])  # http does not stream
def test_a_canary_key_echoed_by_the_target_reaches_no_artifact(project: Project, target: str, mode: str,
                                                               stream: str) -> None:
    with HostileServer(mode) as srv:
        _golden(project)
        project.write("suites/s.yaml", f"""
            name: canary
            golden: ["golden/**/*.yaml"]
            target: {TARGETS[target].format(url=srv.url, stream=stream)}
        """)
        out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress",
                              env={"KEY": CANARY, "TOKEN": TOKEN})
        assert any(CANARY in str(h) for h in srv.seen_headers)  # the server did get (and echo) it
    assert out.returncode in (1, 3), (out.stdout + out.stderr)[-3000:]
    text = _artifacts(project, out)
    assert CANARY not in text and TOKEN not in text
    if not (target == "http" and mode == "echo"):  # (that error names the reply path, not the body)
        assert "***" in text  # the echo itself is there, masked


@pytest.mark.parametrize("mode", ["echo", "echo_500", "echo_answer"])
def test_a_canary_judge_key_echoed_by_the_judge_reaches_no_artifact(project: Project, mode: str) -> None:
    with HostileServer(mode) as judge:
        _golden(project, judged=True)
        project.write("suites/s.yaml", f"""
            name: canary-judge
            golden: ["golden/**/*.yaml"]
            target: {{kind: sim}}
            judge: {{base_url: "{judge.url}", model: judge-model, api_key: "${{KEY}}", when: always}}
        """)
        out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress",
                              env={"KEY": CANARY})
        assert any(CANARY in str(h) for h in judge.seen_headers)
    text = _artifacts(project, out)
    assert "Traceback" not in text
    assert CANARY not in text
