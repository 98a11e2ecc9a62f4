"""The trend report in a real browser: headless Chromium loads the file, the page's script
draws the charts and marks `<body data-ready="1">`; any script error is written into the
DOM (`data-js-error`), so `--dump-dom` shows both.

Needs Chromium (`bash scripts/chromium.sh` installs Debian's package). Skipped on a
developer's machine without it; in CI (env CI set) a missing browser fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.records import AgentReply, CaseResult, CheckResult, Outcome, RunInfo, Transcript, Turn
from harness.report.trend_html import write_trend_report
from harness.store import Store

BROWSERS = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
DAY = 86400.0


def _browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("Chromium is required in CI for the report's browser test: run `bash scripts/chromium.sh` first")
    pytest.skip("Chromium is not installed (run `bash scripts/chromium.sh`); the browser test runs in CI")


def _dump_dom(browser: str, page: Path) -> str:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
               "--window-size=1400,1000", "--dump-dom", page.resolve().as_uri()]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data

    def count(self, tag: str, cls: str | None = None) -> int:
        return sum(1 for t, a in self.tags if t == tag and (cls is None or cls in (a.get("class") or "").split()))

    def body(self) -> dict[str, str | None]:
        return next(a for t, a in self.tags if t == "body")


def _result(case_id: str, topic: str, status: str, text: str, ms: float) -> CaseResult:
    turns = [Turn(0, None, AgentReply("お電話ありがとうございます。", total_ms=90.0, route="primary"), kind="greeting"),
             Turn(1, "明日19時に4名で予約したい", AgentReply(text, first_token_ms=ms / 3, total_ms=ms, model="m-1",
                                                     route="fallback" if ms > 900 else "primary", tokens_in=80, tokens_out=30, cost=0.0004))]
    checks = [CheckResult("judge", status == "passed", score=0.9 if status == "passed" else 0.3, reason="rubric", turn=1)]
    return CaseResult(case_id, topic, ["restaurant", "ja"], 0, status, checks=checks,
                      transcript=Transcript(turns, Outcome(intent=topic)), started=time.time(), duration_ms=ms + 90)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("browser")
    now = time.time()
    evil = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"
    with Store.open(f"sqlite:///{folder / 'h.db'}") as store:
        for day in range(6):
            last = day == 5
            results = [
                _result("rsv-1", "reservation", "failed" if last else "passed",
                        evil if last else "19時に4名様ですね。", 500 + 60 * day),
                _result("faq-1", "question", "passed" if day % 2 else "failed", "11時から営業しています。", 950.0),
                _result("cxl-1", "cancellation", "passed", "キャンセルを承りました。", 400.0),
            ]
            verdict = {"class": "regression", "headline": "reservation fell", "evidence": [{"kind": "pass_rate", "detail": "100% → 0%"}]} if last else None
            info = RunInfo(run_id=f"run-{day}", suite="daily", target={"kind": "sim"}, started=now - (6 - day) * DAY,
                           planned=3, extra={"verdict": verdict} if verdict else {})
            store.start_run(info)
            store.add_results(info.run_id, results)
            store.finish_run(info.run_id, status="complete", ended=info.started + 30, exit_code=0,
                             counts={"passed": sum(r.status == "passed" for r in results)})
        return write_trend_report(store, suite="daily", since_s=None, out_dir=folder)


def test_report_renders_charts_and_tables_without_script_errors(report):
    dom_text = _dump_dom(_browser(), report)
    dom = _Dom()
    dom.feed(dom_text)
    body = dom.body()
    assert body.get("data-js-error") is None, re.search(r'id="js-errors".*?</div>', dom_text, re.S).group(0)
    assert body.get("data-ready") == "1"
    assert dom.count("figure", "chart") == 6  # one chart per metric
    assert dom.count("path", "line") >= 6 * 3  # a line per topic in each chart
    assert dom.count("button") >= 3  # legend entries and dimension tabs
    assert dom.count("table") >= 3  # topic summary, flaky cases, run history
    assert dom.count("details", "change") >= 1 and dom.count("details", "case") == 3
    # model output stayed text: no element was made from it and its script never ran
    assert "pwned" not in dom.title
    assert dom.count("img") == 0


def test_a_script_error_is_caught_and_shown(report, tmp_path):
    """The check above can fail: break the page's chart data and the error lands in the DOM."""
    html = report.read_text(encoding="utf-8")
    broken = re.sub(r'(<script type="application/json" id="trend-data">).*?(</script>)', r"\1{not json\2", html, flags=re.S)
    assert broken != html
    page = tmp_path / "broken.html"
    page.write_text(broken, encoding="utf-8")
    dom = _Dom()
    dom.feed(_dump_dom(_browser(), page))
    assert dom.body().get("data-js-error") == "1"
    assert dom.body().get("data-ready") is None
