"""pytest adapter: `pytest golden/` or `pytest --harness-suite suites/post-merge.yaml`.

Each golden case becomes one pytest item; topic and tags become markers (`-m reservation`,
`-k rsv-`); pytest's `--junitxml`, `-x`, `--lf` and the rest work as usual. The items do not
run anything themselves: the first one starts `harness.pipeline.run_suite` for exactly the
selected cases (one run, in the same store as `harness run`), in a background thread, and
each item waits for its own case's results. A failure prints the failing checks and quotes
the case's YAML.

Without `--harness-suite` (or the `harness_suite` ini option) the collected golden files run
against the embedded agent (`kind: sim`). The plugin stays out of the way otherwise: it only
collects YAML files below the `harness_golden_dirs` folders (default `golden/`) and imports
nothing heavy until such a file shows up.
"""

from __future__ import annotations

import glob
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

if TYPE_CHECKING:
    from .records import CaseResult
    from .spec import CaseSpec

YAML_SUFFIXES = (".yaml", ".yml")
_CONTEXT = pytest.StashKey["HarnessContext"]()
_QUOTE_MAX_LINES = 40


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "golden phone-call cases (harness)")
    group.addoption("--harness-suite", default=None, metavar="SUITE",
                    help="run this suite's cases as tests (its target, store and selection)")
    group.addoption("--harness-store", default=None, metavar="URL",
                    help="SQLAlchemy URL of the history store (default: the suite's)")
    group.addoption("--harness-reports", action="store_true", default=False,
                    help="also write the suite's HTML/JSON/JUnit reports (pytest's --junitxml works regardless)")
    parser.addini("harness_suite", "suite used when golden files are collected (default: the embedded agent)")
    parser.addini("harness_golden_dirs", "folders (relative to rootdir) whose YAML files are golden cases",
                  type="linelist", default=["golden"])


def pytest_configure(config: pytest.Config) -> None:
    suite = config.getoption("harness_suite")
    if suite and config.args_source != pytest.Config.ArgsSource.ARGS:
        # `pytest --harness-suite s.yaml` with no paths: collect the suite, not the testpaths
        config.args = [suite]
    config.stash[_CONTEXT] = HarnessContext(config)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in YAML_SUFFIXES:
        return None
    ctx = parent.config.stash[_CONTEXT]
    if ctx.is_suite_file(file_path):
        return SuiteFile.from_parent(parent, path=file_path)
    if ctx.is_golden_file(file_path):
        return GoldenYaml.from_parent(parent, path=file_path)
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    ctx = session.config.stash[_CONTEXT]
    ctx.selected = [item for item in session.items if isinstance(item, CaseItem)]


def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash[_CONTEXT].wait()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line with the run's figures, read from its `RunSummary` like every report."""
    line = terminalreporter.config.stash[_CONTEXT].summary_line()
    if line:
        terminalreporter.write_line(line)


# ---------------------------------------------------------------- the one run behind the items


class HarnessContext:
    """Which suite the items belong to, and the single run that produces their results."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.rootdir = Path(str(config.rootpath)).resolve()
        explicit = config.getoption("harness_suite") or config.getini("harness_suite") or None
        self.explicit_suite = Path(explicit).resolve() if explicit else None
        self.golden_dirs = [(self.rootdir / d).resolve() for d in config.getini("harness_golden_dirs")]
        self.selected: list[CaseItem] = []
        self._suite_cases: dict[str, Any] | None = None
        self.default_repeat = 1  # the suite's `repeat:`; a case's own `repeat:` wins
        self._results: dict[str, list[CaseResult]] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._done = False
        self.error: str | None = None
        self.run_id: str | None = None
        self.outcome: Any = None  # the run's RunOutcome, once it ended
        self._tmp: tempfile.TemporaryDirectory | None = None

    # -- collection

    def is_suite_file(self, path: Path) -> bool:
        return self.explicit_suite is not None and path.resolve() == self.explicit_suite

    def is_golden_file(self, path: Path) -> bool:
        resolved = path.resolve()
        return any(resolved.is_relative_to(d) for d in self.golden_dirs)

    def suite_cases(self) -> dict[str, CaseSpec]:
        """The explicit suite's selected cases by id (its own `select:` applied), loaded once."""
        if self._suite_cases is None:
            from .loading import load_cases, load_suite

            suite = load_suite(str(self.explicit_suite))
            self.default_repeat = suite.repeat
            self._suite_cases = {c.id: c for c in load_cases(suite)}
        return self._suite_cases

    def cases_of(self, path: Path) -> list[CaseSpec]:
        """The cases of one golden file that this session runs."""
        from .loading import display_path, load_golden_file

        cases = load_golden_file(display_path(str(path))).cases
        if self.explicit_suite is None:
            return list(cases)
        chosen = self.suite_cases()
        return [chosen[c.id] for c in cases if c.id in chosen]

    # -- running

    def results_for(self, case_id: str, expected: int) -> list[CaseResult]:
        """Block until `case_id` has `expected` results (or the run ended); start the run if needed."""
        self._start()
        with self._cond:
            self._cond.wait_for(lambda: self._done or len(self._results.get(case_id, ())) >= expected)
            return list(self._results.get(case_id, ()))

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="harness-pytest-run", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        from .errors import HarnessError
        from .pipeline import RunOptions, new_run_id, run_suite

        self.run_id = new_run_id()
        try:
            suite_path, store_url = self._suite_and_store()
            options = RunOptions(ids=tuple(sorted({i.case.id for i in self.selected})), progress=False,
                                 store_url=store_url, write_reports=self.config.getoption("harness_reports"),
                                 run_id=self.run_id)
            self.outcome = run_suite(suite_path, options, on_result=self._on_result)
        except HarnessError as e:
            self.error = e.line()
        except Exception as e:  # a bug must fail the items, not hang them
            self.error = f"{type(e).__name__}: {e}"
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _on_result(self, result: CaseResult) -> None:
        with self._cond:
            self._results.setdefault(result.case_id, []).append(result)
            self._cond.notify_all()

    def _suite_and_store(self) -> tuple[str, str | None]:
        store = self.config.getoption("harness_store")
        if self.explicit_suite is not None:
            return str(self.explicit_suite), store
        from .loading import find_root
        from .store import default_url

        files = sorted({str(Path(str(i.path)).resolve()) for i in self.selected})
        self._tmp = tempfile.TemporaryDirectory(prefix="harness-pytest-")
        suite = Path(self._tmp.name) / "pytest.yaml"
        golden = ", ".join(_yaml_str(glob.escape(f)) for f in files)
        suite.write_text(f"name: pytest\ngolden: [{golden}]\ntarget: {{kind: sim}}\n", encoding="utf-8")
        return str(suite), store or default_url(find_root(files[0]))

    def summary_line(self) -> str | None:
        """`harness run …: pass rate 75.0% (3 of 4 judged) · …`, or None when no run ended."""
        if self.outcome is None:
            return None
        from .report.summary import summarize

        summary = self.outcome.summary or summarize(self.outcome.results, self.outcome.run)
        line = f"harness run {self.outcome.run.run_id}: {summary.counts_text()}"
        if summary.verdict_stored:
            line += f" · verdict {summary.verdict_class}"
        return line

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self._tmp is not None:
            self._tmp.cleanup()


def _yaml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------- collectors and items


class _HarnessCollector(pytest.File):
    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        from .errors import HarnessError

        if isinstance(excinfo.value, HarnessError):
            return excinfo.value.line()  # a user's mistake: one line, no traceback
        return super().repr_failure(excinfo)

    def _items(self, cases: list[CaseSpec]) -> Iterator[CaseItem]:
        for case in cases:
            markers = [case.resolved_topic, *case.resolved_tags]
            for m in markers:
                self.config.addinivalue_line("markers", f"{m}: golden cases with this topic or tag")
            item = CaseItem.from_parent(self, name=case.id, case=case)
            for m in dict.fromkeys(markers):
                item.add_marker(m)
            yield item


class GoldenYaml(_HarnessCollector):
    """A golden file: one item per case (of the suite's selection, when a suite is given)."""

    def collect(self) -> Iterator[CaseItem]:
        yield from self._items(self.config.stash[_CONTEXT].cases_of(self.path))


class SuiteFile(_HarnessCollector):
    """The `--harness-suite` file itself: one item per case the suite selects."""

    def collect(self) -> Iterator[CaseItem]:
        yield from self._items(list(self.config.stash[_CONTEXT].suite_cases().values()))


class CaseFailed(Exception):
    """A case's checks said no (or it could not run); carries what to print."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


class CaseItem(pytest.Item):
    """One golden case: passes when every repeat of it passed in the session's run."""

    def __init__(self, *, case: CaseSpec, **kwargs: Any):
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        ctx = self.config.stash[_CONTEXT]
        expected = self.case.repeat or ctx.default_repeat
        results = ctx.results_for(self.case.id, expected)
        if ctx.run_id:
            self.user_properties.append(("harness_run_id", ctx.run_id))
        self.user_properties.append(("source", str(self.case.source)))
        if not results:
            raise CaseFailed(f"{self.case.id}: not run: {ctx.error or 'the run ended before this case'}")
        bad = [r for r in results if r.status != "passed"]
        if bad:
            raise CaseFailed(self._describe(results, bad))

    def _describe(self, results: list[CaseResult], bad: list[CaseResult]) -> str:
        lines = [f"{self.case.id} ({self.case.source}): {len(bad)} of {len(results)} run(s) did not pass"]
        for r in bad:
            head = f"  run {r.repeat_index + 1}: {r.status}"
            if r.status in ("error", "not_run"):
                lines.append(f"{head} ({r.error_kind}): {r.error}")
                continue
            lines.append(head)
            lines.extend(f"    - {reason}" for reason in r.failing_reasons)
        lines.append("")
        lines.extend(quote_case(self.case.source.path, self.case.source.line))
        return "\n".join(lines)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, CaseFailed):
            return excinfo.value.text
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        title = f" {self.case.title}" if self.case.title else ""
        return Path(self.case.source.path), max(0, self.case.source.line - 1), f"{self.case.id}{title}"


def quote_case(path: str, line: int) -> list[str]:
    """The YAML lines of the case starting at `line` (1-based), numbered, up to the next case."""
    try:
        text = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    if not 1 <= line <= len(text):
        return []
    start = line - 1
    first = text[start]
    indent = len(first) - len(first.lstrip(" -"))  # column of the case's keys
    end = start + 1
    while end < len(text) and end - start < _QUOTE_MAX_LINES:
        current = text[end]
        stripped = current.strip()
        if stripped and not stripped.startswith("#") and len(current) - len(current.lstrip(" ")) < indent:
            break  # the next case ("- id: …") or the end of the list
        end += 1
    while end > start + 1 and (not text[end - 1].strip() or text[end - 1].strip().startswith("#")):
        end -= 1  # blank lines and comments after the case belong to the next one
    width = len(str(end))
    return [f"{path}:{start + 1}-{end}:"] + [f"  {n + 1:>{width}} | {text[n]}" for n in range(start, end)]
