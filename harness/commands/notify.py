"""`harness notify --pending`: re-send notifications (Slack, Datadog, webhook …) that failed earlier."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def notify(
        suite: str = typer.Argument(..., metavar="SUITE", help="The suite whose notify: settings to use."),
        pending: bool = typer.Option(False, "--pending", help="Re-send deliveries kept as pending."),
        store: str = typer.Option(None, "--store", metavar="URL", help="SQLAlchemy URL of the history store."),
    ) -> None:
        """Re-send notifications that could not be delivered when their run ended."""
        from rich.console import Console

        from ..errors import ConfigError, ExitCode, HarnessError
        from ..loading import load_suite, suite_position_of
        from ..notify import notifiers_of, resend_pending
        from ..store import Store

        err = Console(stderr=True, highlight=False)
        if not pending:
            err.print("error: nothing to do (use --pending to re-send deliveries kept as pending)", markup=False)
            raise typer.Exit(int(ExitCode.CONFIG))
        try:
            s = load_suite(suite)
            if not notifiers_of(s.notify, suite_position_of(s)):
                raise ConfigError("the suite has no notifier under notify: (slack, datadog, webhook, …)", path=suite)
            with Store.open(store or s.store.url, root=s.root) as st:
                sent, still = resend_pending(st, s.notify)
        except HarnessError as e:
            err.print(f"error: {e.line()}", markup=False, soft_wrap=True)
            raise typer.Exit(int(e.exit_code))
        Console(highlight=False).print(f"sent {sent} pending deliveries; {still} still pending", markup=False)
        raise typer.Exit(int(ExitCode.UNREACHABLE) if still else 0)
