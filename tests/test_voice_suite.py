"""suites/voice.yaml through the command line, offline: the embedded agent answers the phone
(`harness agent serve --voice`, started by the suite's `serve: embedded`), English and
Japanese calls pass on pace, barge-in, silence and DTMF, and each voice fault injected with
`--sim-fault` is caught by the check that names it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest

from tests.embedded_voice import EmbeddedVoiceAgent

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def voice_agent() -> Iterator[EmbeddedVoiceAgent]:
    """The embedded agent on the phone, on a free port, for one test."""
    with EmbeddedVoiceAgent() as agent:
        yield agent


def _project(tmp: Path) -> Path:
    """suites/voice.yaml and its golden calls in a project of their own (reports stay there)."""
    (tmp / "suites").mkdir()
    shutil.copy(ROOT / "suites" / "voice.yaml", tmp / "suites" / "voice.yaml")
    shutil.copytree(ROOT / "golden-voice", tmp / "golden-voice")
    (tmp / "pyproject.toml").write_text("")
    return tmp


def _harness(tmp: Path, *args: str, name: str = "out") -> tuple[subprocess.CompletedProcess, dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp / f"{name}.json"
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(tmp / "suites" / "voice.yaml"), "--no-notify",
                           "--no-progress", "--store", f"sqlite:///{tmp / (name + '.db')}", "--json", str(out), *args],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp)
    return proc, json.loads(out.read_text()) if out.exists() else {}


def _failed(result: dict) -> dict[str, str]:
    return {c["name"]: c["reason"] for c in result["checks"] if not c["passed"]}


def test_the_voice_suite_passes_offline_and_each_voice_fault_is_caught(tmp_path: Path) -> None:
    project = _project(tmp_path)
    faulty = {  # fault → (the call it shows in, the check that must catch it)
        "slow_first_audio": ("voice-en-keypad", "max_response_ms"),
        "ignores_barge_in": ("voice-en-barge-in", "max_stop_ms"),
        "dead_air": ("voice-en-keypad", "max_silence_ms"),
    }

    def faulted(fault: str) -> tuple[subprocess.CompletedProcess, dict]:
        case = faulty[fault][0] if fault in faulty else "voice-en-booking"
        return _harness(project, "--sim-fault", fault, "--id", case, "-o", str(project / fault.split(":")[0]),
                        name=fault.split(":")[0])

    with ThreadPoolExecutor(5) as pool:
        clean = pool.submit(_harness, project)
        runs = {f: pool.submit(faulted, f) for f in [*faulty, "drops_stream:1"]}
        proc, data = clean.result()
        runs = {f: r.result() for f, r in runs.items()}

    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    results = {r["case_id"]: r for r in data["results"]}
    assert set(results) == {"voice-en-booking", "voice-en-barge-in", "voice-en-keypad", "voice-en-silence",
                            "voice-ja-keypad"}
    assert all(r["status"] == "passed" for r in results.values()), {k: _failed(r) for k, r in results.items()}
    # measured on the audio: the agent answers ~0.5 s (its end-of-speech wait) after the caller's last sound
    booking = results["voice-en-booking"]["transcript"]
    answers = [t["reply"]["voice"]["response_ms"] for t in booking["turns"][1:]]
    assert len(answers) == 4 and all(300 <= ms <= 2500 for ms in answers), answers
    assert booking["outcome"]["ended_by"] == "agent"  # it said goodbye and hung up
    barge = results["voice-en-barge-in"]["transcript"]["turns"][1]["reply"]["voice"]["barge_in"]
    assert barge["cleared"] is True and barge["stop_ms"] <= 800
    silence = results["voice-en-silence"]["transcript"]["turns"][1]["reply"]["voice"]
    assert silence["reprompt_ms"] is not None
    ja = results["voice-ja-keypad"]["transcript"]["turns"]
    assert [t["kind"] for t in ja] == ["greeting", "dtmf", "say"] and ja[1]["reply"]["voice"]["digits"] == "1"
    assert data["run"]["target"]["serve"] == "embedded"
    # a stereo recording of each call beside the run
    with wave.open(str(project / "reports" / "calls" / "voice-en-booking.0.wav")) as w:
        assert w.getnchannels() == 2 and w.getframerate() == 8000
    # the page to open shows each call's timeline, its recording linked beside the run
    latest = (project / "reports" / "voice-latest.html").read_text(encoding="utf-8")
    assert latest.count('<figure class="tl"') == 5
    assert 'src="calls/voice-en-booking.0.wav"' in latest and "data:audio" not in latest

    for fault, (case, check) in faulty.items():
        fproc, fdata = runs[fault]
        assert fproc.returncode == 1, (fault, fproc.stderr[-2000:])
        result = fdata["results"][0]
        assert result["case_id"] == case and check in _failed(result), (fault, _failed(result), result.get("error"))
        assert fdata["run"]["target"]["faults"] == [fault]
    # a stream that drops mid-call is an infra error (the call could not be tested), not a failed case
    fproc, fdata = runs["drops_stream:1"]
    result = fdata["results"][0]
    assert result["status"] == "error" and result["error_kind"] == "connection", result
    assert fproc.returncode == 3, fproc.stderr[-2000:]


def test_agent_serve_answers_a_voice_target_and_keeps_its_own_record(tmp_path: Path,
                                                                     voice_agent: EmbeddedVoiceAgent) -> None:
    """`harness agent serve --voice` on its own, a plain `url:` voice target told the caller's words:
    the agent's record of when each answer's first audio left it matches what the harness measured."""
    (tmp_path / "cases.yaml").write_text(textwrap.dedent("""\
        topic: voice
        language: en
        cases:
          - id: served
            turns:
              - caller: I'd like to cancel my booking.
              - dtmf: "0"
        """))
    (tmp_path / "suite.yaml").write_text(textwrap.dedent(f"""\
        name: voice-served
        golden: cases.yaml
        target: {{kind: voice, url: "{voice_agent.url}", tell_words: true, turn_end_ms: 1500, stt: {{kind: none}}}}
        """))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(tmp_path / "suite.yaml"), "--no-notify",
                           "--no-progress", "-o", str(tmp_path / "reports"), "--store", f"sqlite:///{tmp_path / 'h.db'}", "--json",
                           str(tmp_path / "out.json")], capture_output=True, text=True, env=env, timeout=120)
    data = json.loads((tmp_path / "out.json").read_text())
    result = data["results"][0]
    assert result["status"] == "passed", (result.get("error"), proc.stderr[-2000:])
    answers = voice_agent.answers()
    texts = [a["text"] for a in answers]
    assert "booking number" in texts[1].lower()  # it understood a cancellation from the told words
    assert "transfer" in texts[2].lower() or "staff" in texts[2].lower(), texts  # keypad 0: a human
    assert result["transcript"]["outcome"]["ended_by"] == "agent"  # the transfer ends the agent's part
    assert [a["case"] for a in answers] == ["served"] * 3


def test_a_bad_fault_for_the_embedded_agent_is_one_clear_line(tmp_path: Path) -> None:
    project = _project(tmp_path)
    proc, _ = _harness(project, "--sim-fault", "dead_aer")
    assert proc.returncode == 2, proc.stderr
    assert "did you mean 'dead_air'" in proc.stderr and "Traceback" not in proc.stderr
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    served = subprocess.run([sys.executable, "-m", "harness", "agent", "serve", "--voice", "--fault",
                             "drops_stream:0.5"], capture_output=True, text=True, env=env, timeout=60)
    assert served.returncode == 2 and "whole number" in served.stderr and "Traceback" not in served.stderr
    served = subprocess.run([sys.executable, "-m", "harness", "agent", "serve"], capture_output=True, text=True,
                            env=env, timeout=60)
    assert served.returncode == 2 and "--voice" in served.stderr
