"""The `harness` command. A thin front over `harness.pipeline`; heavy imports stay lazy."""

from __future__ import annotations

import errno
import sys
from typing import List, Optional

import typer

from .errors import ConfigError, ExitCode, HarnessError

app = typer.Typer(
    name="harness",
    help=(
        "Regression and drift testing for LLM phone agents.\n\n"
        "Runs golden YAML cases (whole simulated calls or single prompts) against a target, "
        "checks every answer, keeps the history, and reports.\n\n"
        "Exit codes: 0 all passed · 1 a check failed or a regression/drift was found · "
        "2 bad configuration or input · 3 the target or a required service could not be reached."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
list_app = typer.Typer(help="List what is available: checks, targets, notifiers.", no_args_is_help=True)
app.add_typer(list_app, name="list")


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


class _RunCommand(typer.core.TyperCommand):
    """`harness run`, with the options the targets add (the embedded agent's `--sim-fault`).

    The targets are imported only when they are needed: for `--help`, or when the command
    line holds an option `run` does not know itself. A plain run imports just its own target.
    Each target option takes one value (`--sim-fault X` or `--sim-fault=X`) and may repeat.
    """

    def parse_args(self, ctx, args):
        known = {name for p in self.params for name in (*p.opts, *p.secondary_opts)} | {"--help"}
        if any(a.startswith("--") and a.split("=", 1)[0] not in known for a in args):
            from .targets import cli_options

            flags = {opt.flag for _kind, opt in cli_options()} - known
            given: dict[str, list[str]] = {}
            rest: list[str] = []
            i = 0
            while i < len(args):
                a = args[i]
                if a == "--":
                    rest += args[i:]
                    break
                flag, eq, value = a.partition("=")
                if flag in flags:
                    if not eq:
                        if i + 1 >= len(args):
                            raise typer.BadParameter("requires a value", param_hint=f"'{flag}'")
                        value, i = args[i + 1], i + 1
                    given.setdefault(flag, []).append(value)
                else:
                    rest.append(a)
                i += 1
            ctx.meta[TARGET_OPTIONS] = {flag: tuple(values) for flag, values in given.items()}
            args = rest
        return super().parse_args(ctx, args)

    def format_options(self, ctx, formatter) -> None:
        super().format_options(ctx, formatter)
        from .targets import cli_options

        # one row per flag: targets that share one (the sim's and the voice agent's --sim-fault) say so in it
        by_flag: dict[str, tuple[str, list[str]]] = {}
        for kind, opt in cli_options():
            by_flag.setdefault(opt.flag, (opt.metavar, []))[1].append(f"[{kind} target] {opt.help}")
        rows = [(f"{flag} {metavar}", " ".join(helps)) for flag, (metavar, helps) in by_flag.items()]
        if rows:
            with formatter.section("Target options"):
                formatter.write_dl(rows)


TARGET_OPTIONS = "harness.target_options"


def _fail(err: HarnessError) -> "typer.Exit":
    from .commands import fail

    return fail(err)


@app.command(cls=_RunCommand)
def run(
    ctx: typer.Context,
    suite: str = typer.Argument(..., metavar="SUITE", help="Suite file, e.g. suites/post-merge.yaml"),
    topic: List[str] = typer.Option(
        [], "--topic", "-t", metavar="TOPIC", help="Only cases of this topic (repeatable)."
    ),
    tag: List[str] = typer.Option(
        [], "--tag", metavar="TAG", help="Only cases carrying one of these tags (repeatable)."
    ),
    exclude_tag: List[str] = typer.Option([], "--exclude-tag", metavar="TAG", help="Skip cases carrying this tag."),
    case_id: List[str] = typer.Option(
        [], "--id", metavar="GLOB", help="Only case ids matching this glob, e.g. 'rsv-*'."
    ),
    repeat: Optional[int] = typer.Option(None, "--repeat", "-n", metavar="N", min=1, max=1000,
                                          help="Run every case N times (at most 1000, like repeat:)."),
    concurrency: Optional[int] = typer.Option(
        None, "--concurrency", "-c", metavar="N", min=1, help="Calls in flight at once."
    ),
    store: Optional[str] = typer.Option(None, "--store", metavar="URL", help="SQLAlchemy URL of the history store."),
    report_dir: Optional[str] = typer.Option(None, "--report-dir", "-o", metavar="DIR", help="Folder for the reports."),
    json_path: Optional[str] = typer.Option(None, "--json", metavar="PATH", help="Also write the JSON results here."),
    junit_path: Optional[str] = typer.Option(None, "--junit", metavar="PATH", help="Also write JUnit XML here."),
    html_path: Optional[str] = typer.Option(None, "--html", metavar="PATH", help="Also write the HTML report here."),
    no_reports: bool = typer.Option(False, "--no-reports", help="Write no report files (the store still has all)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No live progress bar."),
    no_notify: bool = typer.Option(False, "--no-notify", help="Send no Slack or Datadog notification."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the final status line."),
    shard: Optional[str] = typer.Option(
        None, "--shard", metavar="K/N", help="Run only shard K of N, e.g. 2/4 (cases split by a hash of their id)."
    ),
    group: Optional[str] = typer.Option(
        None, "--group", metavar="GROUP",
        help="Run group joining the shards of one CI job (default: $HARNESS_RUN_GROUP, "
        "else the GitHub Actions run)."
    ),
    accept_baseline: bool = typer.Option(
        False, "--accept-baseline",
        help="Make this run the suite's baseline (its behaviour, failing cases included; not an infra run)."
    ),
    lock_stale: Optional[str] = typer.Option(
        None, "--lock-stale", metavar="DURATION",
        help="A suite lock whose holder went silent this long is taken over (default 10m)."
    ),
) -> None:
    """Run a suite: every selected case against the suite's target, checked, stored and reported."""
    from .pipeline import RunOptions, run_suite

    # -q prints one plain line: it needs neither rich nor the report package (jinja2 and all)
    console = None if quiet else _console()
    options = RunOptions(
        topics=tuple(topic), tags=tuple(tag), exclude_tags=tuple(exclude_tag), ids=tuple(case_id),
        repeat=repeat, concurrency=concurrency, store_url=store,
        target_options=dict(ctx.meta.get(TARGET_OPTIONS, {})),
        report_dir=report_dir, json_path=json_path, junit_path=junit_path, html_path=html_path,
        write_reports=not no_reports, progress=not (no_progress or quiet), notify=not no_notify, shard=shard, group=group,
        accept_baseline=accept_baseline,
    )
    try:
        if lock_stale:
            from .scheduling.daemon import parse_duration

            options.lock_stale_s = parse_duration(lock_stale, what="--lock-stale")
            if options.lock_stale_s <= 0:
                raise ConfigError(f"--lock-stale {lock_stale!r}: must be longer than zero")
        outcome = run_suite(suite, options, console=console)
    except HarnessError as e:
        raise _fail(e)
    if console is not None:
        from .report import print_summary

        print_summary(console, outcome.run, outcome.results, outcome.summary)
        for name, path in outcome.reports.items():
            if name != "html_latest":
                console.print(f"{name}: {path}", markup=False)
    else:
        from .verdict import Verdict, VerdictClass

        c = outcome.run.counts
        verdict = Verdict.of_extra(outcome.run.extra)
        # an outage says why on the one line (an aborted run's own message follows on stderr)
        why = ""
        if verdict and verdict.headline and verdict.cls in (VerdictClass.INFRA, VerdictClass.FALLBACK):
            from .report._common import one_line
            from .secrets import mask

            why = f" — {one_line(mask(verdict.headline), 400)}"
        print(f"{outcome.run.status}: {c.get('passed', 0)} passed, {c.get('failed', 0)} failed, "
              f"{c.get('error', 0)} error, {c.get('not_run', 0)} not run"
              + (f"; verdict: {verdict.name}" if verdict else "") + why, flush=True)
    if outcome.run.extra.get("baseline_accepted"):
        c = outcome.run.counts
        print(f"baseline: accepted run {outcome.run.run_id} as the baseline of suite {outcome.run.suite} "
              f"({c.get('failed', 0)} of {c.get('passed', 0) + c.get('failed', 0)} cases fail)", flush=True)
    from .report._common import terminal_text
    from .secrets import mask

    if outcome.run.message:
        _console(stderr=True).print(f"error: {terminal_text(mask(outcome.run.message))}", markup=False,
                                    soft_wrap=True)
    for w in outcome.warnings:
        _console(stderr=True).print(f"warning: {terminal_text(mask(w))}", markup=False, soft_wrap=True)
    raise typer.Exit(int(outcome.exit_code))


@app.command()
def validate(
    paths: List[str] = typer.Argument(..., metavar="PATH", help="Golden files, suite files or folders."),
) -> None:
    """Check golden and suite files for mistakes without running anything."""
    from .loading import validate_paths
    from .notify import suite_errors as notifier_errors

    try:
        # the loader checks what sits at or below its layer; the notifiers (above it) add their own
        errors, checked = validate_paths(paths, suite_checks=(notifier_errors,))
    except HarnessError as e:
        raise _fail(e)
    err = _console(stderr=True)
    for e in errors:
        err.print(e.line(), markup=False, soft_wrap=True)
    warnings = [e for e in errors if e.message.startswith("warning: ")]  # risks, not mistakes
    errors = [e for e in errors if e not in warnings]
    if errors:
        err.print(f"{len(errors)} problem(s) in {checked} file(s)", markup=False)
        raise typer.Exit(int(ExitCode.CONFIG))
    more = f" ({len(warnings)} warning{'s' if len(warnings) != 1 else ''})" if warnings else ""
    _console().print(f"ok: {checked} file(s) valid{more}", markup=False)


@list_app.command("checks")
def list_checks() -> None:
    """The checks a golden case can use in `expect:`."""
    from rich.table import Table

    from .checks import registry

    table = Table(box=None, expand=True)
    table.add_column("check", no_wrap=True, style="bold")
    table.add_column("argument", no_wrap=True)
    table.add_column("settings", max_width=22)
    table.add_column("LLM", no_wrap=True)
    table.add_column("description", ratio=1)
    for name, info in sorted(registry().items()):
        settings = ", ".join(p for p in info.params if p != info.primary)
        table.add_row(name, info.primary or "-", settings or "-", "yes" if info.needs_llm else "", info.description)
    _console().print(table)


@list_app.command("targets")
def list_targets() -> None:
    """The kinds of target a suite can run against."""
    from rich.table import Table

    from .targets import registry

    table = Table("kind", "settings", "description", box=None)
    for kind, cls in sorted(registry().items()):
        fields = ", ".join(n for n in cls.config_model.model_fields if n not in ("kind",))
        doc = (cls.description or (cls.__doc__ or "").strip().splitlines()[0] if (cls.description or cls.__doc__) else "")
        table.add_row(kind, fields, doc)
    _console().print(table)


@list_app.command("notifiers")
def list_notifiers() -> None:
    """The destinations a suite's `notify:` block can send each run to."""
    from rich.table import Table

    from .notify import registry

    table = Table("notifier", "settings", "description", box=None)
    for name, cls in sorted(registry().items()):
        fields = ", ".join(cls.config_model.model_fields)
        doc = cls.description or next(iter((cls.__doc__ or "").strip().splitlines()), "")
        table.add_row(name, fields, doc)
    _console().print(table)


@app.command()
def schema(kind: str = typer.Argument("golden", metavar="golden|suite", help="Which files: golden or suite.")) -> None:
    """Print the JSON Schema of golden or suite files (for editor completion)."""
    import json

    from .schema import json_schema

    if kind not in ("golden", "suite"):
        raise _fail(HarnessError(f"unknown schema {kind!r} (expected golden or suite)"))
    sys.stdout.write(json.dumps(json_schema(kind), indent=2, ensure_ascii=False) + "\n")


def _register_feature_commands() -> None:
    import importlib
    import pkgutil

    from . import commands

    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{mod.name}").register(app)


_register_feature_commands()


_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EPIPE, errno.EIO, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _output_lost(e: OSError) -> None:
    """Standard output cannot be written (a full device, a closed pipe): one line on stderr,
    exit 3. Whatever the command stored (a run's results) is stored already."""
    import os

    try:  # later writes (and the interpreter's last flush) go nowhere instead of failing again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    try:
        sys.stderr.write(f"error: could not write the output: {e.strerror or e}\n")
        sys.stderr.flush()
    except OSError:
        pass
    sys.exit(int(ExitCode.UNREACHABLE))


def main() -> None:
    try:
        app()
    except HarnessError as e:  # anything a command did not catch itself
        _console(stderr=True).print(f"error: {e.line()}", markup=False, soft_wrap=True)
        sys.exit(int(e.exit_code))
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as e:
        if e.errno not in _OUTPUT_ERRNOS:
            raise
        _output_lost(e)
    finally:
        # The command is done and the process ends now. Frozen, the heap is not walked by the
        # collector again while the interpreter shuts down: that took 0.2 s after a
        # 1,000-case run. Files and connections are closed by then, so nothing waits on it.
        import gc

        gc.freeze()


if __name__ == "__main__":
    main()
