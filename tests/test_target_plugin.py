"""A target is a plugin: one module and one registration, with no edit to the loader, the spec or the pipeline.

The `echo` target here exists only in this file. Registered, it runs a suite through the
public entry points (`run_suite`, the `harness run` command), checks its own settings at
their file:line:col, adds its own `harness run` option, and validates the case-level
`faults:` of the cases it runs.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, Sequence

import pytest
from pydantic import Field
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import ConfigError
from harness.loading import load_cases, load_suite, validate_paths
from harness.pipeline import RunOptions, run_suite
from harness.records import AgentReply, Outcome
from harness.targets import (
    CallContext, Conversation, Target, TargetConfig, TargetOption, register, registry, unregister,
)

ECHO_FAULTS = ("mute",)


class EchoConfig(TargetConfig):
    kind: Literal["echo"] = "echo"
    prefix: str = Field(default="echo: ", min_length=1)
    shout: bool = False
    faults: list[str] = Field(default_factory=list)


class EchoConversation(Conversation):
    def __init__(self, config: EchoConfig, faults: list[str]):
        self.config = config
        self.mute = "mute" in faults

    async def reply(self, caller: str, *, kind: str = "say") -> AgentReply:
        text = "" if self.mute else self.config.prefix + caller
        return AgentReply(text=text.upper() if self.config.shout else text, route="echo")

    async def close(self) -> Outcome:
        return Outcome(intent="echo")


class EchoTarget(Target):
    kind = "echo"
    config_model = EchoConfig
    description = "repeats the caller (a test-only target)"
    cli_options = (TargetOption("--echo-shout", "yes|no", "Answer in capitals."),)

    @classmethod
    def with_cli_options(cls, raw: Mapping[str, Any], given: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        out = dict(raw)
        for value in given.get("--echo-shout", ()):
            if value not in ("yes", "no"):
                raise ConfigError(f"--echo-shout {value}: expected yes or no")
            out["shout"] = value == "yes"
        return out

    @classmethod
    def fault_errors(cls, written):
        return [ConfigError(f"faults: the echo target has no fault {text!r} (expected one of: {', '.join(ECHO_FAULTS)})",
                            pos) for text, pos in written if text not in ECHO_FAULTS]

    async def open(self, case, ctx: CallContext) -> Conversation:
        return EchoConversation(self.config, [*self.config.faults, *case.faults])


@pytest.fixture(autouse=True)
def echo_registered():
    register(EchoTarget)  # the one line a new target needs (a built-in one: an entry in BUILTIN_MODULES)
    yield
    unregister("echo")


GOLDEN = """\
topic: question
cases:
  - id: echo-hello
    prompt: hello there
    expect:
      - contains: "echo: hello"
  - id: echo-quiet
    prompt: anyone?
    faults: [mute]
    expect:
      - regex: "^$"
"""


def project(tmp_path, target: str, golden: str = GOLDEN):
    (tmp_path / "golden").mkdir()
    (tmp_path / "golden" / "echo.yaml").write_text(golden, encoding="utf-8")
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"name: echo\ngolden: [golden/*.yaml]\ntarget:\n{target}output: {{dir: reports/}}\n",
                     encoding="utf-8")
    return suite


def options(tmp_path, **kw: Any) -> RunOptions:
    return RunOptions(store_url=f"sqlite:///{tmp_path}/h.db", write_reports=False, progress=False, notify=False, **kw)


def test_a_registered_target_runs_a_suite_through_the_pipeline(tmp_path):
    assert registry()["echo"] is EchoTarget
    suite = project(tmp_path, "  kind: echo\n  limits: {concurrency: 2}\n")
    outcome = run_suite(str(suite), options(tmp_path))
    assert [(r.case_id, r.status) for r in outcome.results] == [("echo-hello", "passed"), ("echo-quiet", "passed")]
    assert int(outcome.exit_code) == 0 and outcome.run.target == {"kind": "echo"}
    hello = next(r for r in outcome.results if r.case_id == "echo-hello")
    assert hello.transcript.turns[-1].reply.text == "echo: hello there"


def test_its_setting_mistakes_are_reported_at_file_line_col(tmp_path):
    suite = project(tmp_path, "  kind: echo\n  prefix: ''\n  shoutt: true\n")
    errors = [e.line() for e in validate_paths([str(suite)])[0]]
    assert errors == [
        f"{suite}:5:11: prefix is empty (expected at least 1 character)",
        f"{suite}:6:3: unknown key 'shoutt' (expected one of: kind, limits, prefix, shout, faults; did you mean 'shout'?)",
    ]
    with pytest.raises(ConfigError) as info:
        run_suite(str(suite), options(tmp_path))
    assert info.value.line() == errors[0]


def test_the_target_that_runs_a_case_checks_its_faults(tmp_path):
    suite = project(tmp_path, "  kind: echo\n", GOLDEN.replace("faults: [mute]", "faults: [mute, latency]"))
    with pytest.raises(ConfigError) as info:
        load_cases(load_suite(str(suite)))
    # 'latency' is a fault of the embedded agent, but this suite's target is the echo one
    assert info.value.line() == (f"{tmp_path / 'golden' / 'echo.yaml'}:9:20: faults: the echo target has no fault "
                                 "'latency' (expected one of: mute)")


def test_its_command_line_option_comes_with_it(tmp_path, monkeypatch):
    suite = project(tmp_path, "  kind: echo\n", GOLDEN.replace('contains: "echo: hello"',
                                                                  'contains: {value: "ECHO: HELLO", ignore_case: false}'))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert "--echo-shout" in runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).stdout
    store = f"sqlite:///{tmp_path}/h.db"
    shouted = runner.invoke(app, ["run", str(suite), "-q", "--no-reports", "--store", store, "--echo-shout", "yes"])
    assert shouted.exit_code == 0, shouted.stdout
    assert "complete: 2 passed, 0 failed" in shouted.stdout
    quiet = runner.invoke(app, ["run", str(suite), "-q", "--no-reports", "--store", store, "--echo-shout=no"])
    assert quiet.exit_code == 1 and "1 passed, 1 failed" in quiet.stdout
    wrong = runner.invoke(app, ["run", str(suite), "-q", "--store", store, "--echo-shout", "loud"])
    assert wrong.exit_code == 2 and "error: --echo-shout loud: expected yes or no" in wrong.stderr
    # another target's option is refused, naming the target it belongs to
    other = runner.invoke(app, ["run", str(suite), "-q", "--store", store, "--sim-fault", "model_update"])
    assert other.exit_code == 2
    assert "error: --sim-fault applies to the sim target only (this suite's target is 'echo')" in other.stderr
