"""harness: scheduled drift detection and phone-flow regression testing for LLM phone services."""

__version__ = "0.1.0"
__all__ = ["__version__", "main"]


def main() -> None:
    """The `harness` command. Ctrl-C while it is still importing its libraries is one line and
    exit 130, like Ctrl-C at any later moment; `harness.cli.main` handles everything after."""
    import sys

    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted before anything ran\n")
        sys.exit(130)
    cli_main()
