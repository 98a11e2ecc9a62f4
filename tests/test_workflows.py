"""The GitHub Actions workflows: valid against the workflow schema, and saying what we mean.

actionlint cannot be installed from a package registry here, so the files are checked
against SchemaStore's workflow schema (vendored in tests/schemas) plus the rules that
matter to us: shell steps parse, `harness` is called with suites and options that exist,
secrets reach steps only through `env`, and the drift cron fires when the suite says.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.scheduling import crontab_trigger, next_fires

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
SCHEMA = json.loads((REPO / "tests" / "schemas" / "github-workflow.json").read_text(encoding="utf-8"))
NAMES = ("ci.yml", "post-merge.yml", "daily-drift.yml")
EXPR = re.compile(r"\$\{\{.*?\}\}")


def load(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    if True in doc:  # YAML 1.1 reads the key `on` as the boolean true
        doc["on"] = doc.pop(True)
    return doc


def steps(doc: dict) -> list[dict]:
    return [step for job in doc["jobs"].values() for step in job.get("steps", [])]


def run_scripts(doc: dict) -> list[str]:
    return [step["run"] for step in steps(doc) if "run" in step]


@pytest.mark.parametrize("name", NAMES)
def test_workflow_matches_the_schema(name: str) -> None:
    errors = sorted(jsonschema.Draft7Validator(SCHEMA).iter_errors(load(name)), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{name}: {'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_the_schema_check_can_fail() -> None:
    doc = load("ci.yml")
    doc["jobs"]["test"]["runs-on"] = {"unknown": True}
    doc["jobs"]["test"]["stepz"] = []
    assert list(jsonschema.Draft7Validator(SCHEMA).iter_errors(doc))


@pytest.mark.parametrize("name", NAMES)
def test_shell_steps_parse(name: str) -> None:
    for script in run_scripts(load(name)):
        plain = EXPR.sub("X", script)
        out = subprocess.run(["bash", "-n"], input=plain, capture_output=True, text=True)
        assert out.returncode == 0, f"{name}: {out.stderr}\n{script}"


@pytest.mark.parametrize("name", NAMES)
def test_secrets_reach_steps_only_through_env(name: str) -> None:
    # Interpolating ${{ secrets.X }} into a script puts the value in the script's text;
    # through env it stays a masked variable.
    for script in run_scripts(load(name)):
        assert "secrets." not in script, f"{name}: use env for secrets, not the script text:\n{script}"


@pytest.mark.parametrize("name", NAMES)
def test_actions_are_pinned_to_a_major_version(name: str) -> None:
    for step in steps(load(name)):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+", step["uses"]), step["uses"]


def harness_calls(doc: dict) -> list[list[str]]:
    calls = []
    for script in run_scripts(doc):
        joined = EXPR.sub("X", script.replace("\\\n", " "))
        for line in joined.splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["harness"]:
                calls.append(words)
    return calls


def test_harness_is_called_with_suites_and_options_that_exist() -> None:
    help_text = subprocess.run([sys.executable, "-m", "harness", "run", "--help"], capture_output=True, text=True,
                               cwd=REPO, env={"COLUMNS": "300", "PATH": "/usr/bin:/bin"}).stdout
    seen_suites = set()
    for name in NAMES:
        doc = load(name)
        for words in harness_calls(doc):
            assert words[1] == "run"
            for word in words[2:]:
                if word.startswith("--"):
                    assert word in help_text, f"{name}: harness run has no option {word}"
            for script in run_scripts(doc):
                seen_suites.update(re.findall(r"suites/[\w.-]+\.yaml", script))
    assert {"suites/post-merge.yaml", "suites/daily-drift.yaml", "suites/post-merge-service.yaml"} <= seen_suites
    missing = sorted(s for s in seen_suites if not (REPO / s).is_file())
    assert not missing, f"workflows name suite files that do not exist: {missing}"


def readme_test_command() -> str:
    """The quickstart's second command: the one that runs the whole test suite."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.strip() for line in block.strip().splitlines() if line.strip()]
    assert len(commands) == 2, commands
    assert "pytest" in commands[1]
    return commands[1]


def test_ci_runs_the_readmes_test_command() -> None:
    command = readme_test_command()
    assert command in "\n".join(run_scripts(load("ci.yml")))
    assert command in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_post_merge_runs_on_push_to_main_and_fails_on_regression() -> None:
    doc = load("post-merge.yml")
    assert doc["on"]["push"]["branches"] == ["main"]
    (words,) = harness_calls(doc)
    assert "--junit" in words and "--shard" in words
    # the run step has no `continue-on-error` and no `|| true`: a red run fails the job
    run_step = next(s for s in steps(doc) if "harness run" in s.get("run", ""))
    assert not run_step.get("continue-on-error") and "|| true" not in run_step["run"]
    assert all(s.get("if") == "always()" for s in steps(doc) if s.get("uses", "").startswith(
        ("actions/upload-artifact", "mikepenz/action-junit-report")))


def test_the_drift_cron_fires_when_the_suite_says() -> None:
    doc = load("daily-drift.yml")
    assert "workflow_dispatch" in doc["on"]
    (cron,) = [entry["cron"] for entry in doc["on"]["schedule"]]
    suite = yaml.safe_load((REPO / "suites" / "daily-drift.yaml").read_text(encoding="utf-8"))
    now = datetime(2026, 11, 23, tzinfo=timezone.utc)
    github = next_fires(crontab_trigger(cron, "UTC"), 10, now)
    ours = next_fires(crontab_trigger(suite["schedule"], suite["timezone"]), 10, now)
    assert github == ours
    job_env = doc["jobs"]["drift"]["env"]
    for secret in ("LLM_GATEWAY_URL", "LLM_GATEWAY_KEY", "SLACK_WEBHOOK_URL", "DD_API_KEY", "HARNESS_STORE_URL"):
        assert job_env[secret] == f"${{{{ secrets.{secret} }}}}"
    cache_steps = [s for s in steps(doc) if s.get("uses", "").startswith("actions/cache/")]
    assert cache_steps and all("HARNESS_STORE_URL == ''" in s["if"] for s in cache_steps)
