"""The console reporter: a per-topic table, the failures worth reading first, and the
one-line status; plus the progress bar the runner drives while cases run.

All data (case ids, reasons, topics) goes into rich `Text` objects, never into markup
strings: a reason such as `[bold]` or an ANSI escape from a model must print as text.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich import box
from rich.table import Table
from rich.text import Text

from ..records import CaseResult, RunInfo
from ..verdict import Verdict
from ._common import one_line
from .summary import ObjectivesView, RunSummary, Tally, rate_text, repeated_case_ids, status_line, summarize

LEVEL_STYLE = {"passed": "bold green", "failed": "bold red", "error": "bold yellow", "incomplete": "bold yellow", "empty": "bold"}
MAX_FAILING = 10
REASONS_PER_CASE = 2


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _count(n: int, style: str) -> Text:
    return Text(str(n), style=style if n else "dim")


def _row(t: Tally, name: Text) -> list[Text | str]:
    return [
        name,
        str(t.cases),
        _count(t.passed, "green"),
        _count(t.failed, "red"),
        _count(t.error, "yellow"),
        _count(t.not_run, "yellow"),
        rate_text(t.pass_rate),
        _ms(t.p50_ms),
        _ms(t.p95_ms),
    ]


def summary_table(run: RunInfo, results: Sequence[CaseResult], summary: RunSummary | None = None) -> Table:
    """One row per topic and a total row. Pass rate counts passed over passed + failed;
    latencies are per turn (the agent's total time to answer), in milliseconds."""
    summary = summary or summarize(results, run)
    title = Text.assemble("Run ", (one_line(run.suite, 80), "bold"), " · ", one_line(run.run_id, 60))
    table = Table(title=title, title_justify="left", header_style="bold", show_lines=False, box=box.SIMPLE_HEAD)
    # topic names are what a reader scans for: they never get cut; the numbers fit in 80 columns
    table.add_column("Topic", no_wrap=True, min_width=12)
    for name in ("Cases", "Pass", "Fail", "Error", "Not run", "Pass rate", "p50 ms", "p95 ms"):
        table.add_column(name, justify="right", min_width=6 if name == "Pass rate" else 5)
    for i, t in enumerate(summary.topics):
        table.add_row(*_row(t, Text(one_line(t.topic, 60))), end_section=i == len(summary.topics) - 1)
    table.add_row(*_row(summary.total, Text("Total", style="bold")), style="bold")
    target = run.target or {}
    bits = [str(target.get("kind") or ""), str(target.get("model") or run.model or ""), (run.git_sha or "")[:12]]
    caption = " · ".join(one_line(b, 60) for b in bits if b)
    if caption:
        table.caption = Text(caption, style="dim")
        table.caption_justify = "left"
    return table


def _case_label(r: CaseResult, repeated: set[str]) -> str:
    label = one_line(r.case_id, 80)
    return f"{label} [repeat {r.repeat_index + 1}]" if r.case_id in repeated else label


def print_summary(console: Console, run: RunInfo, results: Sequence[CaseResult],
                  summary: RunSummary | None = None) -> None:
    """Print the table, the pass rate, the verdict (if an analysis added one), up to ten
    failing cases with their first reasons, infra errors grouped by kind, the slowest turns,
    and the status line."""
    summary = summary or summarize(results, run)
    console.print(summary_table(run, results, summary))
    console.print(_figures_line(summary))

    if summary.verdict_stored:
        _print_verdict(console, summary.verdict)
    if summary.objectives is not None:
        _print_objectives(console, summary.objectives)

    failing = [r for r in results if r.status == "failed"]
    if failing:
        repeated = repeated_case_ids(results)
        console.print(Text(f"Failing cases ({len(failing)})", style="bold red"))
        for r in failing[:MAX_FAILING]:
            reasons = r.failing_reasons or ["a check failed (no reason given)"]
            line = Text.assemble(("  ✗ ", "red"), (_case_label(r, repeated), "bold"), (f"  ({one_line(r.topic, 40)})", "dim"))
            console.print(line)
            for reason in reasons[:REASONS_PER_CASE]:
                console.print(Text("      " + one_line(reason, 200)))
            if len(reasons) > REASONS_PER_CASE:
                console.print(Text(f"      … {len(reasons) - REASONS_PER_CASE} more", style="dim"))
        if len(failing) > MAX_FAILING:
            console.print(Text(f"  … and {len(failing) - MAX_FAILING} more failing cases (see the HTML or JSON report)", style="dim"))

    if summary.errors:
        console.print(Text("Infra errors by kind", style="bold yellow"))
        for g in summary.errors:
            more = f" ({g.distinct} distinct)" if g.distinct > 1 else ""
            console.print(
                Text.assemble(("  " + one_line(g.kind, 40), "yellow"), f" ×{g.count}{more}  ", ("e.g. " + one_line(g.example, 160), "dim"))
            )

    if summary.slowest:
        console.print(Text("Slowest turns", style="bold"))
        repeated = repeated_case_ids(results)
        for s in summary.slowest:
            label = one_line(s.case_id, 80) + (f" [repeat {s.repeat_index + 1}]" if s.case_id in repeated else "")
            where = "greeting" if s.turn == 0 else f"turn {s.turn}"
            console.print(Text.assemble("  ", (label, "bold"), f" {where}: ", (f"{s.ms:,.0f} ms", "cyan")))

    status = summary.status or status_line(run, summary)
    console.print(Text(status.text, style=LEVEL_STYLE.get(status.level, "bold")))


def _figures_line(summary: RunSummary) -> Text:
    """The run's headline figures, worded as on every other surface."""
    t = summary.total
    parts = [f"Pass rate {rate_text(t.pass_rate)} ({t.passed} of {t.judged} judged)"]
    if t.infra_errors:
        parts.append(f"infra errors {t.infra_errors} of {t.cases} ({rate_text(t.error_rate)}), not counted as failures")
    if t.judge_n:
        parts.append(f"judge score {t.judge_score:.2f}")
    if t.tokens:
        parts.append(f"{t.tokens:,} tokens")
    if t.cost:
        parts.append(f"${t.cost:.4f}")
    return Text(" · ".join(parts), style="bold")


def _print_verdict(console: Console, verdict: Verdict) -> None:
    headline = verdict.headline
    console.print(Text.assemble(("Verdict: ", "bold"), (one_line(verdict.name, 60), verdict.cls.style),
                                ("  " + one_line(headline, 200)) if headline else ""))
    evidence = verdict.evidence
    for item in evidence[:5]:
        console.print(Text("  • " + one_line(item.detail or item.kind, 200)))
    if len(evidence) > 5:
        console.print(Text(f"  … {len(evidence) - 5} more", style="dim"))


def _print_objectives(console: Console, view: ObjectivesView) -> None:
    """A line per missed objective, beside the verdict (never a verdict class)."""
    console.print(Text(f"Objectives off track ({len(view.missed)})", style="bold magenta"))
    for text in view.missed:
        console.print(Text("  ◆ " + one_line(text, 300)))
    if view.gate:
        console.print(Text("  gate: " + one_line(view.gate, 300), style="bold red"))


class ProgressReporter:
    """A progress bar with passed/failed/error counts, driven by the runner once per result.

    `advance` is called up to 10 000 times a run, so it only bumps counters and hands them to
    rich, which redraws at most `refresh_per_second` times. When the console is not a terminal
    (CI logs, a pipe), no live display runs: one plain line is printed at each tenth of the way,
    at most ten lines in all.
    """

    def __init__(self, console: Console | None = None, *, description: str = "running", refresh_per_second: float = 5):
        self.console = console or Console(stderr=True)
        self.description = description
        self.refresh_per_second = refresh_per_second
        self.counts = {"passed": 0, "failed": 0, "error": 0, "not_run": 0}
        self.done = 0
        self.total: int | None = None
        self._progress: Progress | None = None
        self._task = None
        self._next_line_at = 0  # plain mode: the count at which the next line is printed
        self._started_at = 0.0

    @property
    def live(self) -> bool:
        return self.console.is_terminal and not self.console.is_dumb_terminal

    def start(self, total: int | None) -> None:
        self.total = total
        self.done = 0
        self.counts = dict.fromkeys(self.counts, 0)
        self._started_at = time.monotonic()
        if self.live:
            self._progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("[green]{task.fields[passed]} passed[/] [red]{task.fields[failed]} failed[/] [yellow]{task.fields[error]} error[/]"),
                TimeElapsedColumn(),
                console=self.console,
                refresh_per_second=self.refresh_per_second,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=total, passed=0, failed=0, error=0)
        else:
            self._next_line_at = self._step()

    def _step(self) -> int:
        return max(1, -(-self.total // 10)) if self.total else 0

    def advance(self, status: str) -> None:
        """Count one finished result (passed, failed, error or not_run)."""
        self.counts[status] = self.counts.get(status, 0) + 1
        self.done += 1
        if self._progress is not None:
            self._progress.update(self._task, advance=1, **{status: self.counts[status]})
        elif self._next_line_at and self.done >= self._next_line_at:
            self._next_line_at += self._step()
            self._plain_line()

    def _plain_line(self) -> None:
        c = self.counts
        total = f"/{self.total}" if self.total else ""
        elapsed = time.monotonic() - self._started_at
        self.console.print(
            f"{self.description}: {self.done}{total} ({c['passed']} passed, {c['failed']} failed, {c['error']} error) {elapsed:.0f}s",
            markup=False,
            highlight=False,
        )

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> "ProgressReporter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
