"""`harness attribute RUN`: resend the reference's inputs for the moved cases, to tell the model's
doing from ours (see harness.analysis.attribute)."""

from __future__ import annotations

from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("attribute")(attribute)


def attribute(
    run: str = typer.Argument(..., metavar="RUN", help="Run id, a unique prefix of it, 'latest' or 'latest:<suite>'."),
    suite_path: str = typer.Option(..., "--suite", metavar="SUITE", help="The suite file the run belongs to."),
    budget: int = typer.Option(50, "--budget", min=1, metavar="N", help="At most N model calls."),
    store: Optional[str] = typer.Option(None, "--store", metavar="URL", help="SQLAlchemy URL of the history store."),
) -> None:
    """Resend the reference run's inputs for the cases that moved: the model moved, or our change did it."""
    from rich.console import Console

    from ..analysis.attribute import attribute_run
    from ..errors import HarnessError
    from ..loading import load_suite
    from ..pipeline import suite_store_url
    from ..store import Store

    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    try:
        suite = load_suite(suite_path)
        db = Store.open(store or suite_store_url(suite), root=suite.root)
        try:
            verdict, found, calls = attribute_run(db, suite, run, budget=budget)
        finally:
            db.close()
    except HarnessError as e:
        err.print(f"error: {e.line()}", markup=False, soft_wrap=True)
        raise typer.Exit(int(e.exit_code)) from None
    for a in found:
        word = {"model": "the model moved", "ours": "our change", "unknown": "could not tell"}[a.side]
        out.print(f"{a.case_id}: {word}", markup=False)
    out.print(verdict.evidence_of("attributed")[-1].detail + f" ({calls} calls)", markup=False)
