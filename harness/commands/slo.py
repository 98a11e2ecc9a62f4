"""`harness slo status|export|import`: objectives and error budgets from the history store.

    harness slo status                              # every suite in suites/ that has objectives
    harness slo status suites/post-merge.yaml --json
    harness slo export suites/post-merge.yaml -o slo/   # OpenSLO v1, one file per objective
    harness slo import slo/*.yaml                   # OpenSLO back to `objectives:` YAML

`status` reads only the store (each run's tally; a run counted before its suite had these
objectives is counted once from its rows) and exits 0 whatever the budgets say: the gate
that fails a run is `budget_policy: {gate: true}` on `harness run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

STORE_HELP = "SQLAlchemy URL of the history store (default: the suite's, else .harness/history.db)."


def _suites(paths: list[str]) -> list[Any]:
    """The suites named, or every suite file under the project's suites/ that has objectives."""
    import os

    from ..errors import ConfigError
    from ..loading import SUITE_EXPECTED, find_root, load_suite, read_yaml

    if paths:
        out = []
        for p in paths:
            if not os.path.isfile(p):
                raise ConfigError(f"suite file {p} does not exist (expected a suite file such as suites/post-merge.yaml)")
            suite = load_suite(p)
            if not suite.objectives:
                raise ConfigError("the suite has no objectives: (see the README, \"Objectives and error budgets\")", path=p)
            out.append(suite)
        return out
    root = Path(find_root(os.path.join(os.getcwd(), "_")))
    out = []
    for f in sorted([*(root / "suites").glob("*.yaml"), *(root / "suites").glob("*.yml")]):
        try:  # only suites that declare objectives are loaded (others may need secrets to load)
            declares = "objectives" in read_yaml(f, expected=SUITE_EXPECTED)
        except ConfigError:
            continue
        if declares:
            out.append(load_suite(f))
    if not out:
        raise ConfigError(f"no suite in {root / 'suites'} has objectives: (name a suite file)")
    return out


def _status(suites: list[str], store: Optional[str], as_json: bool) -> None:
    import json
    import time

    from ..objectives.evaluate import evaluate
    from ..pipeline import suite_store_url
    from ..store import Store

    now = time.time()
    report = []
    for suite in _suites(suites):
        st = Store.open(store or suite_store_url(suite), root=suite.root)
        try:
            results = evaluate(suite, st.objectives, now=now)
        finally:
            st.close()
        report.append((suite, results))
    if as_json:
        doc = {"evaluated_at": now, "suites": [
            {"suite": s.name, "policy": {"slow_down": s.budget_policy.slow_down, "freeze": s.budget_policy.freeze,
                                         "post_mortem": s.budget_policy.post_mortem, "gate": s.budget_policy.gate},
             "objectives": [r.to_dict() for r in res]} for s, res in report]}
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2, allow_nan=False, default=str))
        return
    _print_status(report)


WORD_STYLE = {"ok": "green", "slow down": "yellow", "freeze": "bold red", "post-mortem": "bold magenta",
              "missed": "red", "no data": "dim", "too little data": "dim"}


def _print_status(report: list[tuple[Any, list[Any]]]) -> None:
    from rich.console import Console
    from rich.text import Text

    from ..objectives.lines import burn_text, pct, rests_on, value_text, window_text

    console = Console(highlight=False)
    for suite, results in report:
        p = suite.budget_policy
        console.print(Text.assemble((suite.name, "bold"), f": slow down at {pct(p.slow_down)}, freeze at "
                                    f"{pct(p.freeze)}, post-mortem at {pct(p.post_mortem)} of the budget consumed"
                                    + ("; a run exits 1 while one says freeze" if p.gate else "")))
        width = max((len(r.name) for r in results), default=0)
        for r in results:
            d = r.to_dict()
            run = d["run"]
            met = run.get("met")
            parts = [
                (f"  {d['name']:<{width}}  ", "bold"),
                (d["word"], WORD_STYLE.get(d["word"], "")),
                f"  {d['objective']}: this run {value_text(d, run.get('value'))}",
                (" (missed)" if met is False else "", "red"),
                f" · {window_text(d)} over {d['window']}",
            ]
            if d["budget_left"] is not None:
                parts.append(f" · budget {pct(d['budget_left'])} left · burn {burn_text(d)}")
            if d["fast_burn"]:
                parts.append((" · fast burn", "bold red"))
            parts.append((f" · {rests_on(d)}", "dim"))
            console.print(Text.assemble(*parts), soft_wrap=True)
            for n in d["notes"]:
                console.print(Text(f"  {' ' * width}  {n}", style="dim"), soft_wrap=True)


def _export(suites: list[str], out_dir: Optional[str]) -> None:
    import yaml

    from ..objectives.openslo import export

    docs = []
    for suite in _suites(suites):
        docs += export(suite)
    if out_dir is None:
        typer.echo(yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True), nl=False)
        return
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for d in docs:
        path = out / f"{d['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(d, sort_keys=False, allow_unicode=True), encoding="utf-8")
        typer.echo(str(path))


def _import(files: list[str]) -> None:
    import yaml

    from ..errors import ConfigError
    from ..objectives.openslo import from_openslo

    items = []
    for f in files:
        try:
            text = Path(f).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read {f}: {e.strerror or e}") from None
        try:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{f}:{mark.line + 1}:{mark.column + 1}" if mark else f
            raise ConfigError(f"{where}: not YAML ({getattr(e, 'problem', None) or e})") from None
        for i, d in enumerate(docs):
            try:
                items.append(from_openslo(d, f if len(docs) == 1 else f"{f} (document {i + 1})"))
            except ValueError as e:
                raise ConfigError(str(e).splitlines()[0]) from None
    typer.echo(yaml.safe_dump({"objectives": items}, sort_keys=False, allow_unicode=True), nl=False)


def _run(fn, *args: Any) -> None:
    from ..errors import HarnessError
    from . import fail

    try:
        fn(*args)
    except HarnessError as e:
        raise fail(e)


def register(app: typer.Typer) -> None:
    slo_app = typer.Typer(help="Objectives and error budgets over the run history.", no_args_is_help=True)
    app.add_typer(slo_app, name="slo")

    @slo_app.command("status")
    def _status_cmd(
        suite: List[str] = typer.Argument(None, metavar="[SUITE]...",
                                          help="Suite files (default: every suite in suites/ with objectives)."),
        store: Optional[str] = typer.Option(None, "--store", metavar="URL", help=STORE_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """One line per objective: this run's SLI, the target, the budget left, the burn rate and the policy's word."""
        _run(_status, list(suite or []), store, as_json)

    @slo_app.command("export")
    def _export_cmd(
        suite: List[str] = typer.Argument(None, metavar="[SUITE]...",
                                          help="Suite files (default: every suite in suites/ with objectives)."),
        out_dir: Optional[str] = typer.Option(None, "--output", "-o", metavar="DIR",
                                              help="Write one file per objective here (default: stdout)."),
    ) -> None:
        """Write the objectives as OpenSLO v1 documents (kind: SLO, Occurrences budgeting)."""
        _run(_export, list(suite or []), out_dir)

    @slo_app.command("import")
    def _import_cmd(
        files: List[str] = typer.Argument(..., metavar="FILE...", help="OpenSLO v1 SLO files."),
    ) -> None:
        """Read OpenSLO v1 SLO documents back as a suite's `objectives:` YAML (printed)."""
        _run(_import, list(files))
