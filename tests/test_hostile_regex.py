"""Issue 16, finding 3: a regex that backtracks without end cannot hang a run."""

from __future__ import annotations

import json
import time

from conftest import Project
from hostile_server import HostileServer


def test_a_catastrophic_regex_fails_its_check_as_an_error_and_the_run_finishes(project: Project) -> None:
    with HostileServer("text", answer="a" * 60 + "!") as srv:
        project.write("golden/q.yaml", """
            topic: question
            cases:
              - id: backtracks
                prompt: say a lot of a
                expect:
                  - regex: "(a|aa)+$"
              - id: nested
                prompt: say a lot of a
                expect:
                  - regex: '^(\\S+\\s*)+Monday$'
              - id: fine
                prompt: say a lot of a
                expect:
                  - regex: "a{10}"
        """)
        project.write("suites/s.yaml", f"""
            name: rx
            golden: ["golden/**/*.yaml"]
            target: {{kind: openai, base_url: "{srv.url}", model: m, api_key: k}}
        """)
        started = time.monotonic()
        out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress",
                              "--json", "r.json", timeout=120)
        took = time.monotonic() - started
    text = out.stdout + out.stderr
    assert "Traceback" not in text and took < 60, text[-3000:]
    assert out.returncode == 1, text[-3000:]
    results = {r["case_id"]: r for r in json.loads((project.root / "r.json").read_text())["results"]}
    assert results["fine"]["status"] == "passed"
    assert results["nested"]["status"] == "failed"  # the pattern: finishes, does not match
    bad = results["backtracks"]
    assert bad["status"] == "failed" and bad["checks"][0]["error"] is True, bad  # the check could not run
    reason = bad["checks"][0]["reason"]
    assert "did not finish within 1 s" in reason and "\n" not in reason


def test_the_regex_time_budget_is_a_setting_of_the_check(project: Project) -> None:
    project.write("golden/q.yaml", """
        topic: question
        cases:
          - id: q
            prompt: hello
            expect:
              - regex: {pattern: "x", timeout_s: .inf}
    """)
    out = project.harness("validate", "golden/q.yaml")
    assert out.returncode == 2 and "timeout_s" in out.stderr and "golden/q.yaml:6" in out.stderr, out.stderr
    assert "less than or equal to 60" in out.stderr, out.stderr


def test_validate_warns_about_a_regex_that_backtracks_catastrophically(project: Project) -> None:
    """Finding 3: `validate` tries each regex on a few adversarial strings under a time budget and
    warns (one line at the pattern's file:line:col); the files are still valid (exit 0)."""
    project.write("golden/q.yaml", """
        topic: question
        cases:
          - id: nested
            prompt: say a lot of a
            expect:
              - regex: "(a+)+$"
          - id: long-form
            prompt: say a lot of a
            expect: [{regex: {pattern: '^(\\w+\\s?)+$', timeout_s: 2}}]
          - id: fine
            prompt: hours?
            expect: [{regex: "open (from|until) \\\\d+"}, {regex: "a{10}"}, {regex: '^(\\S+\\s*)+Monday$'}]
    """)
    started = time.monotonic()
    out = project.harness("validate", "golden/")
    took = time.monotonic() - started
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and took < 30
    warnings = [line for line in out.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 2, out.stderr
    assert warnings[0].startswith("golden/q.yaml:6:16: warning: regex /(a+)+$/ may backtrack catastrophically"), warnings
    assert warnings[1].startswith("golden/q.yaml:9:32: warning: regex /^(\\w+\\s?)+$/ may backtrack"), warnings
    assert "ok: 1 file(s) valid (2 warnings)" in out.stdout
