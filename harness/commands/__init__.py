"""Commands that live beside their feature.

Each module here defines `register(app: typer.Typer) -> None` and is found by `harness.cli`
automatically. Keep module-level imports light (typer, stdlib): `harness --help` must start fast.
"""

from __future__ import annotations

import typer

from ..errors import HarnessError


def fail(err: HarnessError) -> typer.Exit:
    """Print a user's mistake as one line on stderr; the Exit to raise carries its exit code."""
    from rich.console import Console

    from ..secrets import mask

    Console(stderr=True, highlight=False).print(f"error: {mask(err.line())}", markup=False, soft_wrap=True)
    return typer.Exit(int(err.exit_code))
