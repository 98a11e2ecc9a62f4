"""A voice call's timeline in the HTML report, in headless Chromium: who spoke when on one axis
with the measured gaps, and the call's recording — a WAV beside the run, linked by a relative
path, never embedded — played from the point clicked (here from a link to that moment,
`report.html#tl-N@SECONDS`, which runs the same code as a click)."""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from harness.records import AgentReply, CaseResult, CheckResult, Outcome, RunInfo, Transcript, Turn
from harness.report import write_run_html
from harness.targets.voice import audio
from tests.test_report_browser import _browser, _Dom


def _call(recordings: Path) -> CaseResult:
    greet = {"kind": "greeting", "response_ms": 40.0, "silence_ms": 200.0, "answer_ms": [40.0, 2600.0],
             "timeline": [["agent", 40.0, 2600.0]]}
    say = {"kind": "say", "caller_ms": [4000.0, 6500.0], "talk_over_ms": 0.0, "response_ms": 520.0,
           "silence_ms": 300.0, "answer_ms": [7020.0, 9800.0],
           "barge_in": {"after_ms": 800.0, "said_ms": [7820.0, 9000.0], "stop_ms": 240.0, "cleared": True},
           "timeline": [["caller", 4000.0, 6500.0], ["barge_in", 7820.0, 9000.0], ["agent", 7020.0, 8060.0]]}
    keys = {"kind": "dtmf", "digits": "1#", "caller_ms": [11000.0, 11400.0], "response_ms": 610.0,
            "silence_ms": 0.0, "timeline": [["dtmf", 11000.0, 11400.0, "1#"], ["agent", 12010.0, 14000.0]]}
    turns = [Turn(0, None, AgentReply("", first_token_ms=40.0, total_ms=2600.0, voice=greet), kind="greeting"),
             Turn(1, "<b>A table</b> for two", AgentReply("", first_token_ms=520.0, total_ms=3300.0, voice=say)),
             Turn(2, "1#", AgentReply("", first_token_ms=610.0, total_ms=3000.0, voice=keys), kind="dtmf")]
    checks = [CheckResult("max_stop_ms", True, reason="turn 1: agent stopped after 240 ms", turn=1)]
    # the call's recording: 15 s of stereo (caller left, agent right), as the voice target writes it
    t = np.arange(15 * audio.RATE) / audio.RATE
    tone = audio.to_int16(0.2 * np.sin(2 * np.pi * 440 * t))
    recordings.mkdir(parents=True)
    (recordings / "voice-call.0.wav").write_bytes(audio.wav_bytes(np.stack([tone, tone], axis=1).reshape(-1), channels=2))
    return CaseResult("voice-call", "voice", ["voice"], 0, "passed", checks=checks,
                      transcript=Transcript(turns, Outcome(ended_by="caller")), started=time.time(), duration_ms=15000)


def _dump(page: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required",
                               f"--user-data-dir={profile}", "--virtual-time-budget=6000", "--window-size=1400,1000",
                               "--dump-dom", page], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_a_voice_call_timeline_plays_its_recording_from_the_point_clicked(tmp_path: Path) -> None:
    recordings = tmp_path / "calls"
    result = _call(recordings)
    run = RunInfo(run_id="run-v", suite="voice", target={"kind": "voice", "recordings": str(recordings)},
                  started=time.time(), planned=1)
    page = write_run_html(tmp_path / "reports" / "voice.html", run, [result])
    html = page.read_text(encoding="utf-8")
    # linked by a relative path, never embedded; the page's policy lets it load only that
    assert 'src="../calls/voice-call.0.wav"' in html and "data:audio" not in html
    assert len(html) < 200_000
    assert re.search(r"media-src 'self'", html)
    assert "<b>A table</b>" not in html  # the caller's words stay text

    dom = _Dom()
    dom.feed(_dump(page.resolve().as_uri() + "#tl-1@2.5"))
    assert dom.body().get("data-js-error") is None
    figure = next(a for t, a in dom.tags if t == "figure" and "tl" in (a.get("class") or "").split())
    assert figure.get("data-audio-s") == "15.00"  # the browser loaded the WAV beside the run
    assert figure.get("data-seek") == "2.50" and figure.get("data-playing") == "1", figure
    assert figure.get("data-play-error") is None
    heads = [a for t, a in dom.tags if t == "span" and a.get("class") == "tl-playhead"]
    assert len(heads) == 3 and all("hidden" not in a for a in heads)  # the playhead moved with the audio
    left = float(re.search(r"left:\s*([\d.]+)%", heads[0]["style"] or "").group(1))
    assert 2.5 / 15 * 100 <= left < 60
    # who spoke when, on one axis: caller, barge-in, DTMF on the caller's row; the agent; the gaps
    segs = [a for t, a in dom.tags if t == "span" and "tl-seg" in (a.get("class") or "")]
    kinds = [a["class"].split()[1] for a in segs]
    assert kinds.count("k-agent") == 3 and {"k-caller", "k-barge_in", "k-dtmf"} <= set(kinds)
    assert {"k-response", "k-stop"} <= set(kinds)
    titles = " | ".join(a.get("title") or "" for a in segs)
    assert "response time: caller's last sound → agent's first audio, 520 ms" in titles
    assert "the agent stopped 240 ms after the caller cut in (clear)" in titles
    response = next(a for a in segs if "k-response" in a["class"] and "520" in (a.get("title") or ""))
    # 6.5 s into a 15 s axis (the recording's length)
    assert abs(float(re.search(r"left:\s*([\d.]+)%", response["style"]).group(1)) - 6500 / 15000 * 100) < 0.1


def test_without_a_recording_the_timeline_still_shows_and_nothing_plays(tmp_path: Path) -> None:
    result = _call(tmp_path / "elsewhere")
    run = RunInfo(run_id="run-v", suite="voice", target={"kind": "voice"}, started=time.time(), planned=1)
    html = write_run_html(tmp_path / "voice.html", run, [result]).read_text(encoding="utf-8")
    assert 'class="tl"' in html and "<audio" not in html and "response 520 ms" in html
