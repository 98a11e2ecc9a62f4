"""Issue 16, finding 15: the one-run HTML page shows the verdict as the trend page does (class,
headline, evidence sentences, baseline), never as raw JSON (`topics {"cancellation": …`)."""

from __future__ import annotations

import html
import re

from conftest import Project


def _verdict_box(page: str) -> str:
    m = re.search(r'<section class="verdict [^"]*" aria-label="Verdict">(.*?)</section>', page, re.S)
    assert m, page[:2000]
    return m.group(1)


def test_the_run_page_shows_the_verdict_like_the_trend_page(project: Project) -> None:
    project.write("golden/q.yaml", """
        topic: cancellation
        cases:
          - id: c1
            prompt: I want to cancel my booking
            expect: [{contains: cancel}]
          - id: c2
            prompt: What are your opening hours?
            expect: [{contains: "zzz-never"}]
    """)
    project.write("suites/s.yaml", """
        name: page
        golden: ["golden/*.yaml"]
        target: {kind: sim}
        output: {dir: reports/}
    """)
    for _ in range(2):
        out = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress")
        assert out.returncode == 1, out.stdout + out.stderr
    reports = project.root / "reports"
    newest = sorted(p for p in reports.glob("page-2*.html") if not p.name.endswith("-trend.html"))[-1]
    trend = newest.with_name(newest.stem + "-trend.html")
    run_box, trend_box = _verdict_box(newest.read_text()), _verdict_box(trend.read_text())
    text = html.unescape(run_box)
    assert '{"' not in text and "pass_rate" not in text, run_box  # no raw JSON
    assert '<p class="headline">' in run_box
    headline = re.search(r'<p class="headline">(.*?)</p>', run_box, re.S).group(1)
    assert headline and headline == re.search(r'<p class="headline">(.*?)</p>', trend_box, re.S).group(1)
    assert run_box == trend_box  # one box, one template
