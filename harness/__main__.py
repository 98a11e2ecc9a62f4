"""`python -m harness` and the `harness` command."""

import sys


def main() -> None:
    """The `harness` command. Ctrl-C while it is still importing its libraries is one line and
    exit 130, like Ctrl-C at any later moment; `harness.cli.main` handles everything after."""
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted before anything ran\n")
        sys.exit(130)
    cli_main()


if __name__ == "__main__":
    main()
