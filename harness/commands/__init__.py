"""Commands that live beside their feature.

Each module here defines `register(app: typer.Typer) -> None` and is found by `harness.cli`
automatically. Keep module-level imports light (typer, stdlib): `harness --help` must start fast.
"""
