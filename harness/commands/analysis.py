"""`harness baseline accept|show`, `harness diff` and `harness history`: the analysis commands.

Heavy imports (SQLAlchemy, rich tables, the analysis package) stay inside the commands so
`harness --help` starts fast. Case ids and answers come from models and files: they go
into rich `Text`, never into markup.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

STORE_HELP = "SQLAlchemy URL of the history store (default: the suite's, else .harness/history.db)."
SUITE_HELP = "Suite file (its store and name are used) or a suite name."


def _open(store_url: str | None, suite: str | None) -> tuple[Any, str | None]:
    """The store to read and the suite name to filter by, from --store and --suite."""
    import os

    from ..loading import find_root, load_suite
    from ..store import Store

    if suite and os.path.isfile(suite):
        spec = load_suite(suite)
        return Store.open(store_url or spec.store.url, root=spec.root), spec.name
    return Store.open(store_url, root=find_root(os.path.join(os.getcwd(), "_"))), suite


def _run(fn, *args: Any) -> None:
    from . import fail as _fail
    from ..errors import HarnessError

    try:
        fn(*args)
    except HarnessError as e:
        raise _fail(e)


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _when(ts: float | None) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "—"


def _cut(text: str | None, n: int = 60) -> str:
    if text is None:
        return "—"
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def baseline_accept(run: str, store: Optional[str], suite: Optional[str], note: Optional[str]) -> None:
    from ..analysis import accept_baseline

    st, _ = _open(store, suite)
    try:
        b = accept_baseline(st, run, note=note)
    finally:
        st.close()
    failing = sum(1 for c in b.cases.values() if c.failed)
    _console().print(f"accepted run {b.run_id} as the baseline of suite {b.suite} ({len(b.cases)} cases, "
                     f"{failing} of them failing)", markup=False)


def baseline_show(store: Optional[str], suite: Optional[str], limit: int) -> None:
    from rich.table import Table
    from rich.text import Text

    from ..analysis import list_baselines

    st, name = _open(store, suite)
    try:
        rows = list_baselines(st, name, limit=limit)
    finally:
        st.close()
    console = _console()
    if not rows:
        console.print("no accepted baselines" + (f" for suite {name}" if name else ""), markup=False)
        return
    table = Table("suite", "run", "accepted", "by", "git sha", "models served", "note", header_style="bold")
    for i, b in enumerate(rows):
        served = ", ".join(f"{r or '?'}: {m or '?'}/{f or '?'}" for r, m, f, _ in b.serving[:3])
        current = i == 0 or rows[i - 1].suite != b.suite
        table.add_row(Text(b.suite), Text(b.run_id, style="bold" if current else "dim"), _when(b.accepted_at),
                      Text(b.accepted_by or "—"), Text((b.git_sha or "—")[:12]), Text(served or "—"),
                      Text(_cut(b.note, 40)))
    console.print(table)


def diff(run_a: str, run_b: str, store: Optional[str], suite: Optional[str], changed_only: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    from ..analysis import Reference, diff_cases, load_observations
    from ..analysis.consistency import ALL
    from ..errors import ConfigError

    st, _ = _open(store, suite)
    try:
        a, b = st.get_run(run_a), st.get_run(run_b)
        for ref, found in ((run_a, a), (run_b, b)):
            if found is None:
                raise ConfigError(f"no run {ref!r} in the store {st.display_url}")
        obs = load_observations(st, [a.run_id, b.run_id])
    finally:
        st.close()
    reference = Reference(f"run {a.run_id}", a.run_id, a.git_sha, obs.get(a.run_id, {}))
    diffs, _ = diff_cases(obs.get(b.run_id, {}), reference, {}, ALL, 0.05)
    missing = sorted(set(reference.cases) - {d.case_id for d in diffs})
    console = _console()
    table = Table("case", "topic", "A", "B", "passes A→B", "change", "answer A", "answer B", header_style="bold",
                  title=Text(f"A {a.run_id} ({(a.git_sha or '?')[:10]}) → B {b.run_id} ({(b.git_sha or '?')[:10]})"),
                  title_justify="left")
    shown = 0
    for d in sorted(diffs, key=lambda d: (d.before == d.after and not d.answer_new, d.case_id)):
        changes = []
        if d.before is None:
            changes.append("new")
        elif d.before != d.after:
            changes.append(f"{d.before}→{d.after}")
        if d.answer_new:
            changes.append("answer")
        if changed_only and not changes:
            continue
        shown += 1
        base = reference.cases.get(d.case_id)
        before = f"{base.passed}/{base.executed}" if base is not None else "—"
        style = "red" if d.after == "failed" and d.before != "failed" else "green" if d.after == "passed" and d.before == "failed" else ""
        table.add_row(Text(d.case_id), Text(d.topic), Text(d.before or "—"), Text(d.after, style=style),
                      f"{before} → {d.passes}/{d.executed}", Text(", ".join(changes) or "same"),
                      Text(_cut(d.before_answer)), Text(_cut(d.after_answer)))
    for case_id in missing:
        shown += 1
        table.add_row(Text(case_id), Text(reference.cases[case_id].topic), Text("ran"), Text("—"), "",
                      Text("not in B"), Text(""), Text(""))
    if shown:
        console.print(table)
    changed = sum(1 for d in diffs if d.before != d.after or d.answer_new) + len(missing)
    console.print(f"{changed} of {len(diffs) + len(missing)} cases differ", markup=False)


def history(case: str, store: Optional[str], suite: Optional[str], limit: int) -> None:
    from rich.table import Table
    from rich.text import Text

    from ..analysis import case_history

    st, name = _open(store, suite)
    try:
        points = case_history(st, case, suite=name, limit=limit)
    finally:
        st.close()
    if not points:  # a case id nobody ran is a mistake in the command: exit 2, like any bad input
        from ..errors import HarnessError

        raise HarnessError(f"case {case} is in no stored run" + (f" of suite {name}" if name else "")
                           + " (expected a case id from `harness diff` or a report)")
    console = _console()
    table = Table("run", "when", "git sha", "verdict", "case", "passes", "agreement", "model/fingerprint",
                  "p95 ms", "answer", header_style="bold", title=Text(f"{case} over time (newest first)"),
                  title_justify="left")
    for p in points:
        style = {"passed": "green", "failed": "red", "error": "yellow"}.get(p.status, "")
        agree = "—" if p.agreement is None else f"{p.agreement * 100:.0f}%"
        ms = "—" if p.p95_turn_ms is None else f"{p.p95_turn_ms:,.0f}"
        table.add_row(Text(p.run_id), _when(p.started), Text((p.git_sha or "—")[:10]), Text(p.verdict or "—"),
                      Text(p.status, style=style), f"{p.passes}/{p.executed}", agree,
                      Text(", ".join(p.fingerprints) or "—"), ms, Text(_cut(p.answer, 50)))
    console.print(table)


def register(app: typer.Typer) -> None:
    baseline_app = typer.Typer(help="Accepted baselines: what later runs are compared with.", no_args_is_help=True)
    app.add_typer(baseline_app, name="baseline")

    @baseline_app.command("accept")
    def _accept(
        run: str = typer.Argument(
            ..., metavar="RUN", help="Run id, a unique prefix of it, 'latest' or 'latest:<suite>'."
        ),
        store: Optional[str] = typer.Option(None, "--store", metavar="URL", help=STORE_HELP),
        suite: Optional[str] = typer.Option(
            None, "--suite", metavar="SUITE", help="Suite file whose store holds the run."
        ),
        note: Optional[str] = typer.Option(None, "--note", metavar="TEXT", help="Why this run is the new baseline."),
    ) -> None:
        """Make a run its suite's baseline: later runs are compared with its answers, verdicts and latency."""
        _run(baseline_accept, run, store, suite, note)

    @baseline_app.command("show")
    def _show(
        store: Optional[str] = typer.Option(None, "--store", metavar="URL", help=STORE_HELP),
        suite: Optional[str] = typer.Option(None, "--suite", metavar="SUITE", help=SUITE_HELP),
        limit: int = typer.Option(20, "--limit", metavar="N", min=1, help="How many baselines to list."),
    ) -> None:
        """List accepted baselines, newest first (the first per suite is the one in use)."""
        _run(baseline_show, store, suite, limit)

    @app.command("diff")
    def _diff(
        run_a: str = typer.Argument(..., metavar="RUN_A", help="The earlier run (id, prefix or 'latest:<suite>')."),
        run_b: str = typer.Argument(..., metavar="RUN_B", help="The later run."),
        store: Optional[str] = typer.Option(None, "--store", metavar="URL", help=STORE_HELP),
        suite: Optional[str] = typer.Option(
            None, "--suite", metavar="SUITE", help="Suite file whose store holds the runs."
        ),
        changed: bool = typer.Option(False, "--changed", help="Show only the cases that differ."),
    ) -> None:
        """Compare two runs case by case: verdict flips, pass counts and answers that changed."""
        _run(diff, run_a, run_b, store, suite, changed)

    @app.command("history")
    def _history(
        case: str = typer.Argument(..., metavar="CASE", help="Case id."),
        store: Optional[str] = typer.Option(None, "--store", metavar="URL", help=STORE_HELP),
        suite: Optional[str] = typer.Option(None, "--suite", metavar="SUITE", help=SUITE_HELP),
        limit: int = typer.Option(20, "--limit", metavar="N", min=1, help="How many runs to show."),
    ) -> None:
        """Show one case over time: its verdict, agreement, fingerprint, latency and answer per run."""
        _run(history, case, store, suite, limit)
