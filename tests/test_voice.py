"""The voice target end to end: `harness run` against a media-stream agent on 127.0.0.1,
real audio both ways (espeak-ng voices, WebRTC VAD), each injected fault caught by its check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.voice_agent import VoiceAgent

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent

FAULTS = {
    "slow": {"slow_first_audio_ms": 3000},
    "deaf": {"ignore_barge_in": True},
    "burst-deaf": {"ignore_barge_in": True, "burst": True},
    "dead-air": {"dead_air_ms": 2000},
    "drop": {"drop_after": 2},
    "hangs-up": {"hang_up_after": 2},
    "reprompt": {"reprompt_ms": 3000},
}

CASES = """\
topic: voice
language: en
cases:
  - id: good
    turns:
      - caller: "I would like a table for two tonight."
        expect: [{max_talk_over_ms: 100}]
      - caller: "Yes please."
        barge_in: {after_ms: 700, say: "Sorry, make that three people."}
        expect: [{max_stop_ms: 600}]
      - dtmf: "12"
    budgets: {response_ms: 1200, p95_response_ms: 1200, silence_ms: 1000}
  - id: slow
    turns: [{caller: "I would like a table for two tonight."}]
    budgets: {response_ms: 1200}
  - id: deaf
    turns:
      - caller: "Yes please."
        barge_in: {after_ms: 700, say: "Sorry, make that three people."}
    budgets: {stop_ms: 600}
  - id: burst-deaf
    turns:
      - caller: "Yes please."
        barge_in: {after_ms: 700, say: "Sorry, make that three people."}
    budgets: {stop_ms: 600}
  - id: dead-air
    turns: [{caller: "I would like a table for two tonight."}]
    budgets: {silence_ms: 1500}
  - id: drop
    turns: [{caller: "Hello?"}, {caller: "Are you there?"}]
  - id: hangs-up
    turns: [{caller: "Goodbye."}]
    expect: [hangs_up]
  - id: reprompt
    turns: [{silence: 5, expect: [{reprompt_within_ms: 3500}]}]
  - id: no-reprompt
    turns: [{silence: 2, expect: [{reprompt_within_ms: 1500}]}]
  - id: cut-short
    timeout_s: 6
    turns: [{silence: 30}]
"""


def _run(tmp: Path, url: str, extra: str = "", *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    (tmp / "cases.yaml").write_text(CASES)
    (tmp / "suite.yaml").write_text(textwrap.dedent(f"""\
        name: voice-test
        golden: cases.yaml
        target:
          kind: voice
          url: {url}
          turn_end_ms: 2500
          response_timeout_s: 6
          stt: {{kind: none}}
          recordings: calls
          limits: {{concurrency: 10, retries: 0}}
        """) + extra)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(tmp / "suite.yaml"), "--no-notify",
                           "--no-progress", "--store", f"sqlite:///{tmp / 'h.db'}", "--json", str(tmp / "out.json"),
                           "-o", str(tmp / "reports"), *args], capture_output=True, text=True, env=env, timeout=240)
    data = json.loads((tmp / "out.json").read_text()) if (tmp / "out.json").exists() else {}
    return proc, data


def _by_id(data: dict) -> dict[str, dict]:
    return {r["case_id"]: r for r in data["results"]}


def _failed(result: dict) -> dict[str, str]:
    return {c["name"]: c["reason"] for c in result["checks"] if not c["passed"]}


def test_voice_calls_measure_pace_and_catch_every_fault(tmp_path: Path) -> None:
    with VoiceAgent(per_case=FAULTS) as agent:
        proc, data = _run(tmp_path, agent.url)
    assert data, proc.stderr
    r = _by_id(data)

    # the well-behaved agent passes everything, with figures measured on the audio
    good = r["good"]
    assert good["status"] == "passed", (_failed(good), good.get("error"))
    turns = good["transcript"]["turns"]
    assert [t["kind"] for t in turns] == ["greeting", "say", "say", "dtmf"]
    say = turns[1]["reply"]["voice"]
    assert 150 <= say["response_ms"] <= 700  # the agent answers 300 ms after the caller's last sound
    assert turns[1]["reply"]["first_token_ms"] == say["response_ms"]
    assert say["caller_ms"][1] - say["caller_ms"][0] > 1000  # the caller's line went out in real time
    barge = turns[2]["reply"]["voice"]["barge_in"]
    assert barge["cleared"] is True and barge["stop_ms"] <= 600
    assert agent.digits.startswith("12")
    assert "connected" in agent.events and "stop" in agent.events
    start = agent.starts[0]
    assert start["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}

    # each fault is caught by the check that names it
    assert r["slow"]["status"] == "failed"
    reason = _failed(r["slow"])["max_response_ms"]
    measured = r["slow"]["transcript"]["turns"][1]["reply"]["voice"]["response_ms"]
    assert 3000 <= measured <= 3700, reason  # 3 s of the agent's delay + its 300 ms end-of-speech wait
    for case in ("deaf", "burst-deaf"):
        assert "max_stop_ms" in _failed(r[case]), (case, _failed(r[case]))
        assert r[case]["transcript"]["turns"][1]["reply"]["voice"]["barge_in"]["cleared"] is False
    assert "max_silence_ms" in _failed(r["dead-air"])
    assert r["dead-air"]["transcript"]["turns"][1]["reply"]["voice"]["silence_ms"] >= 1800
    # a stream that breaks mid-call is an infra error, not a failed case
    assert r["drop"]["status"] == "error" and r["drop"]["error_kind"] == "connection", r["drop"]
    assert r["hangs-up"]["status"] == "passed", _failed(r["hangs-up"])
    assert r["hangs-up"]["transcript"]["outcome"]["ended_by"] == "agent"
    assert r["reprompt"]["status"] == "passed", _failed(r["reprompt"])
    assert "the agent said nothing" in _failed(r["no-reprompt"])["reprompt_within_ms"]
    # a call cut short by its timeout is an error, and its line is still hung up (`stop`):
    # every call but the dropped one and the one the agent hung up ended with a `stop`
    assert r["cut-short"]["status"] == "error" and r["cut-short"]["error_kind"] == "timeout"
    assert agent.stops == len(r) - 2

    # a stereo recording of every call lands beside the run
    wav = tmp_path / "calls" / "good.0.wav"
    import wave

    with wave.open(str(wav)) as w:
        assert w.getnchannels() == 2 and w.getframerate() == 8000 and w.getnframes() > 8000 * 5


def test_transcripts_come_from_an_openai_compatible_stt_endpoint(tmp_path: Path) -> None:
    from tests.fake_stt import FakeStt

    with VoiceAgent() as agent, FakeStt(text="We have a table at seven tonight.") as stt:
        extra = textwrap.dedent(f"""\
            expect: [{{contains: "seven tonight"}}]
            """)
        (tmp_path / "cases.yaml").write_text("")
        proc, data = _run_stt(tmp_path, agent.url, stt.base_url)
    assert data, proc.stderr
    result = data["results"][0]
    assert result["status"] == "passed", _failed(result)
    assert stt.uploads and all(u["model"] == "whisper-1" and u["riff"] for u in stt.uploads)
    assert stt.authorizations == {"Bearer sk-voice-secret"}
    assert "sk-voice-secret" not in (tmp_path / "out.json").read_text()


def _run_stt(tmp: Path, url: str, stt_url: str) -> tuple[subprocess.CompletedProcess, dict]:
    (tmp / "cases.yaml").write_text(textwrap.dedent("""\
        topic: voice
        language: en
        cases:
          - id: heard
            turns:
              - caller: "A table for two tonight, please."
                expect: [{contains: "seven tonight"}]
        """))
    (tmp / "suite.yaml").write_text(textwrap.dedent(f"""\
        name: voice-stt
        golden: cases.yaml
        target:
          kind: voice
          url: {url}
          turn_end_ms: 800
          stt: {{kind: openai, base_url: "{stt_url}", api_key: "${{STT_KEY}}"}}
        """))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STT_KEY": "sk-voice-secret"}
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(tmp / "suite.yaml"), "--no-notify",
                           "--no-progress", "--store", f"sqlite:///{tmp / 'h.db'}", "--json", str(tmp / "out.json"),
                           "-o", str(tmp / "reports")], capture_output=True, text=True, env=env, timeout=120)
    data = json.loads((tmp / "out.json").read_text()) if (tmp / "out.json").exists() else {}
    return proc, data


def test_a_bad_voice_target_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "cases.yaml").write_text("topic: voice\ncases:\n  - id: a\n    turns: [{caller: hi}]\n")
    (tmp_path / "suite.yaml").write_text("name: v\ngolden: cases.yaml\ntarget: {kind: voice, url: http://x/media}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(tmp_path / "suite.yaml"), "--no-notify",
                           "--store", f"sqlite:///{tmp_path / 'h.db'}"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "ws:// or wss://" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "cases.yaml").write_text("topic: voice\ncases:\n  - id: a\n    turns: [{dtmf: '1', barge_in: "
                                         "{after_ms: 5, say: hi}}]\n")
    (tmp_path / "suite.yaml").write_text("name: v\ngolden: cases.yaml\ntarget: {kind: voice, url: ws://x/media}\n")
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(tmp_path / "suite.yaml"), "--no-notify",
                           "--store", f"sqlite:///{tmp_path / 'h.db'}"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "barge_in goes with a caller line" in proc.stderr, proc.stderr


def test_a_real_pipecat_bot_answers_and_stops_when_interrupted(tmp_path: Path) -> None:
    from tests.pipecat_bot import PipecatBot

    with PipecatBot() as bot:
        (tmp_path / "cases.yaml").write_text(textwrap.dedent("""\
            topic: voice
            language: en
            cases:
              - id: pipecat
                turns:
                  - caller: "I would like a table for two tonight."
                  - caller: "Yes please."
                    barge_in: {after_ms: 1000, say: "Actually, make that three people."}
                budgets: {response_ms: 2000, stop_ms: 800}
            """))
        (tmp_path / "suite.yaml").write_text(textwrap.dedent(f"""\
            name: voice-pipecat
            golden: cases.yaml
            target: {{kind: voice, url: {bot.url}, turn_end_ms: 1500, stt: {{kind: none}}}}
            """))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-m", "harness", "run", str(tmp_path / "suite.yaml"), "--no-notify",
                               "--no-progress", "--store", f"sqlite:///{tmp_path / 'h.db'}", "--json",
                               str(tmp_path / "out.json"), "-o", str(tmp_path / "reports")],
                              capture_output=True, text=True, env=env, timeout=180)
    data = json.loads((tmp_path / "out.json").read_text())
    result = data["results"][0]
    assert result["status"] == "passed", (_failed(result), result.get("error"), proc.stderr[-2000:])
    turns = result["transcript"]["turns"]
    assert turns[0]["kind"] == "greeting" and turns[0]["reply"]["voice"]["response_ms"] < 2000
    barge = turns[2]["reply"]["voice"]["barge_in"]
    assert barge["cleared"] is True  # Pipecat's interruption reached us as a Twilio `clear`
    assert bot.interruptions >= 1
    assert bot.starts[0]["start"]["mediaFormat"]["encoding"] == "audio/x-mulaw"


def test_a_japanese_call_offline_with_openjtalk_and_the_offline_stt(tmp_path: Path) -> None:
    (tmp_path / "cases.yaml").write_text(textwrap.dedent("""\
        topic: voice
        cases:
          - id: ja
            language: ja
            turns:
              - caller: 明日の19時に4名で予約したいです
              - dtmf: "3#"
            budgets: {response_ms: 1500}
        """))
    (tmp_path / "suite.yaml").write_text("")
    with VoiceAgent() as agent:
        (tmp_path / "suite.yaml").write_text(textwrap.dedent(f"""\
            name: voice-ja
            golden: cases.yaml
            target: {{kind: voice, url: {agent.url}, turn_end_ms: 1000, stt: {{kind: pocketsphinx}},
                      tts: {{cache_dir: tts-cache}}}}
            """))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-m", "harness", "run", str(tmp_path / "suite.yaml"), "--no-notify",
                               "--no-progress", "--store", f"sqlite:///{tmp_path / 'h.db'}", "--json",
                               str(tmp_path / "out.json"), "-o", str(tmp_path / "reports")],
                              capture_output=True, text=True, env=env, timeout=180)
    data = json.loads((tmp_path / "out.json").read_text())
    result = data["results"][0]
    assert result["status"] == "passed", (_failed(result), result.get("error"), proc.stderr[-2000:])
    turns = result["transcript"]["turns"]
    said = turns[1]["reply"]["voice"]["caller_ms"]
    assert said[1] - said[0] > 1500  # OpenJTalk spoke the whole Japanese line, in real time
    assert agent.digits == "3#"
    assert turns[2]["reply"]["voice"]["response_ms"] is not None
    # the offline English STT heard words in the agent's (English) answers
    assert all(t["reply"]["text"].strip() for t in turns)
    # OpenJTalk's audio is cached on disk by engine, voice and text
    assert [p.name.split("-")[0] for p in (tmp_path / "tts-cache").iterdir()] == ["openjtalk"]
