"""`harness schedule suites/`: a daemon that runs every suite with a `schedule:` on time.

One APScheduler cron job per suite (crontab meaning, in the suite's `timezone:`). Each fire
runs the suite in a child process (`harness.scheduling.worker`, a thin call of
`pipeline.run_suite`), so a crashing or hung run never takes the daemon down and stopping
one is a signal away. Rules, and where each is enforced:

* a fire missed while the daemon was down runs once on start-up if the newest missed fire
  is within the grace window (`scheduling.catchup`, from the last fire kept in the store);
  a fire that is merely late in a live daemon gets the same grace (APScheduler's
  `misfire_grace_time`), and piled-up fires coalesce into one;
* never two runs of one suite at once: one job instance per suite here, and a lock in the
  store (`harness.locks`, taken by the pipeline) against other processes and hosts;
* SIGTERM/SIGINT stop new fires, give a run in progress `stop_timeout` seconds to finish,
  then stop it (it is stored as `incomplete` with every finished result), and exit 0;
* every event is one JSON line on stdout; a run's line has suite, run id, status, verdict
  and duration.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, TextIO

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from ..errors import ConfigError, ExitCode, HarnessError
from .catchup import catch_up
from .cron import next_fires, trigger_for

DEFAULT_GRACE = timedelta(hours=6)
DEFAULT_STOP_TIMEOUT_S = 300.0
DEFAULT_KILL_AFTER_S = 30.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
VERDICTS = {0: "passed", 1: "failed", 2: "config_error", 3: "unreachable"}


def parse_duration(text: str, *, what: str) -> float:
    """"6h", "90m", "30s", "1d" or plain seconds → seconds; a mistake is a ConfigError."""
    m = _DURATION.match(str(text))
    if not m:
        raise ConfigError(f"{what} {text!r}: expected a duration such as 30s, 15m, 6h or 1d")
    return float(m[1]) * _UNITS[m[2]]


# ---------------------------------------------------------------- which suites, when


@dataclass
class ScheduledSuite:
    """A suite file with a schedule, read just far enough to know when it runs."""

    name: str
    path: str  # absolute
    schedule: str
    timezone: str | None
    trigger: CronTrigger
    store_url: str | None = None  # resolved when the daemon starts
    root: str | None = None  # the project root, also resolved then

    @property
    def tz_name(self) -> str:
        return str(self.trigger.timezone)


def suite_files(paths: list[str]) -> list[str]:
    """Suite files named directly, or *.yaml / *.yml directly inside a named folder."""
    files: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files.extend(str(f) for f in sorted(path.iterdir()) if f.suffix in (".yaml", ".yml") and f.is_file())
        elif path.is_file():
            files.append(str(path))
        else:
            raise ConfigError(f"{p}: no such file or folder (expected suite files or a folder of them)")
    if not files:
        raise ConfigError(f"no suite files in {', '.join(paths)} (expected *.yaml files with name, golden and target)")
    return files


def read_schedules(paths: list[str]) -> tuple[list[ScheduledSuite], list[str]]:
    """The scheduled suites among `paths` and the names of those without a schedule.

    Reads only `name`, `schedule` and `timezone` (no `${ENV}` needed), so `--list` works on
    a machine without the run's secrets. Errors point at the line and column.
    """
    from ..loading import SUITE_EXPECTED, read_yaml

    scheduled: list[ScheduledSuite] = []
    unscheduled: list[str] = []
    seen: dict[str, str] = {}
    for f in suite_files(paths):
        raw = read_yaml(f, expected=SUITE_EXPECTED)
        name = str(raw.get("name") or Path(f).stem)
        if name in seen:
            raise ConfigError(f"suite name {name!r} is also used by {seen[name]}; scheduled suites need unique names",
                              raw.value_pos.get("name"), path=f)
        seen[name] = f
        expr = raw.get("schedule")
        if expr is None:
            unscheduled.append(name)
            continue
        if not isinstance(expr, str):
            raise ConfigError('schedule must be a crontab string such as "0 6 * * *"', raw.value_pos.get("schedule"), path=f)
        tz = raw.get("timezone")
        trigger = trigger_for(expr, str(tz) if tz is not None else None, path=f,
                              schedule_pos=raw.value_pos.get("schedule"), timezone_pos=raw.value_pos.get("timezone"))
        scheduled.append(ScheduledSuite(name, os.path.abspath(f), expr, str(tz) if tz is not None else None, trigger))
    return scheduled, unscheduled


def listing(paths: list[str], *, count: int = 3, now: datetime | None = None) -> list[str]:
    """Lines for `harness schedule --list`: each suite's next fire times, in its own timezone."""
    scheduled, unscheduled = read_schedules(paths)
    now = now or datetime.now(timezone.utc)
    lines = []
    for s in scheduled:
        fires = next_fires(s.trigger, count, now)
        when = ", ".join(f.strftime("%Y-%m-%d %H:%M %a") for f in fires) or "never"
        lines.append(f"{s.name}  {s.schedule!r} ({s.tz_name})  next: {when}")
    lines.extend(f"{name}  (no schedule)" for name in unscheduled)
    return lines


# ---------------------------------------------------------------- the daemon


class JsonLog:
    """One JSON object per line; thread-safe; the daemon's only output."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self._lock = threading.RLock()  # re-entered when a signal handler logs mid-line

    def __call__(self, event: str, **fields: Any) -> None:
        record = {"ts": datetime.now(timezone.utc).isoformat(timespec="seconds"), "event": event, **fields}
        line = json.dumps(record, ensure_ascii=False, default=str)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


@dataclass
class _Running:
    suite: ScheduledSuite
    run_id: str
    proc: subprocess.Popen
    started: float = field(default_factory=time.monotonic)


class Daemon:
    """Runs scheduled suites until told to stop. `serve()` is the whole life cycle."""

    def __init__(
        self,
        suites: list[ScheduledSuite],
        *,
        grace: timedelta = DEFAULT_GRACE,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT_S,
        kill_after: float = DEFAULT_KILL_AFTER_S,
        store_url: str | None = None,
        lock_stale_s: float | None = None,
        log: Callable[..., None] | None = None,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
    ) -> None:
        self.suites = suites
        self.grace = grace
        self.stop_timeout = stop_timeout
        self.kill_after = kill_after
        self.store_url = store_url
        self.lock_stale_s = lock_stale_s
        self.log = log or JsonLog()
        self.python = python
        self.env = env
        self._stores: dict[str, Any] = {}  # store URL -> Store
        self._running: dict[str, _Running] = {}
        self._guard = threading.Lock()
        self._stopping = threading.Event()
        self._hurry = threading.Event()  # a second signal: stop the runs now
        self._scheduler: BackgroundScheduler | None = None

    # -- set-up

    def _resolve_stores(self) -> None:
        """Validate each suite fully (env included) and open its store; fail before serving."""
        from ..loading import load_suite
        from ..store import Store, default_url

        env = self.env if self.env is not None else dict(os.environ)
        for s in self.suites:
            suite = load_suite(s.path, env=env)
            url = self.store_url or suite.store.url or default_url(suite.root)
            if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
                # a relative SQLite path means relative to the project, as the pipeline reads it
                url = "sqlite:///" + os.path.join(suite.root, url[len("sqlite:///"):])
            s.store_url = url
            s.root = suite.root
            if url not in self._stores:
                self._stores[url] = Store.open(url, root=suite.root)

    def _store(self, s: ScheduledSuite):
        return self._stores[s.store_url]

    def start(self) -> None:
        """Open stores, decide about missed fires, and start the cron jobs (non-blocking)."""
        from .state import last_fire

        self._resolve_stores()
        scheduler = BackgroundScheduler(
            timezone=timezone.utc,
            executors={"default": ThreadPoolExecutor(max_workers=max(2, 2 * len(self.suites)))},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": max(1, int(self.grace.total_seconds()))},
        )
        scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        now = datetime.now(timezone.utc)
        for s in self.suites:
            scheduler.add_job(self.fire, trigger=s.trigger, args=[s, "cron"], id=s.name, name=s.name)
            decision = catch_up(s.trigger, last_fire(self._store(s), s.name), now, self.grace)
            if decision.run_for is not None:
                self.log("catch_up", suite=s.name, missed_fire=decision.run_for.isoformat(),
                         missed=decision.missed_within)
                scheduler.add_job(self.fire, trigger=DateTrigger(now, timezone=timezone.utc), args=[s, "catch_up"],
                                  id=f"{s.name}:catch-up", name=f"{s.name} (missed fire)")
            elif decision.missed_beyond:
                self.log("missed", suite=s.name, reason=f"missed while down, beyond the {_fmt(self.grace)} grace window")
        scheduler.start()
        self._scheduler = scheduler
        for s in self.suites:
            job = scheduler.get_job(s.name)
            self.log("scheduled", suite=s.name, schedule=s.schedule, timezone=s.tz_name,
                     next_fire=job.next_run_time.isoformat() if job and job.next_run_time else None)

    def _on_event(self, event: JobExecutionEvent | JobSubmissionEvent) -> None:
        name = event.job_id.split(":", 1)[0]
        if event.code == EVENT_JOB_MISSED:
            self.log("missed", suite=name, fire=str(event.scheduled_run_time),
                     reason=f"late by more than the {_fmt(self.grace)} grace window")
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            self.log("skipped", suite=name, reason="the previous run of this suite is still going")

    # -- one fire

    def fire(self, suite: ScheduledSuite, reason: str = "cron") -> dict[str, Any] | None:
        """Run `suite` once in a child process and log one line about it; returns that line."""
        from ..pipeline import new_run_id
        from .state import record_fire

        if self._stopping.is_set():
            return None
        run_id = new_run_id()
        with self._guard:
            if suite.name in self._running:
                self.log("skipped", suite=suite.name, reason="the previous run of this suite is still going")
                return None
            if self._stopping.is_set():
                return None
            record_fire(self._store(suite), suite.name, datetime.now(timezone.utc), run_id)
            cmd = [self.python, "-m", "harness.scheduling.worker", suite.path, "--run-id", run_id]
            if suite.store_url:
                cmd += ["--store", suite.store_url]
            if self.lock_stale_s:
                cmd += ["--lock-stale", str(self.lock_stale_s)]
            # its own session: a Ctrl-C in the daemon's terminal must not reach the run directly;
            # the daemon decides whether it finishes or stops
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=self.env, start_new_session=True,
                                    cwd=suite.root or os.path.dirname(suite.path))
            running = _Running(suite, run_id, proc)
            self._running[suite.name] = running
        self.log("started", suite=suite.name, run_id=run_id, reason=reason, pid=proc.pid)
        try:
            out, _ = proc.communicate()
        finally:
            with self._guard:
                self._running.pop(suite.name, None)
        line = self._result_line(running, out, reason)
        self.log("run", **line)
        return line

    def _result_line(self, running: _Running, out: str, reason: str) -> dict[str, Any]:
        report: dict[str, Any] = {}
        for text in reversed((out or "").strip().splitlines()):
            try:
                report = json.loads(text)
                break
            except ValueError:
                continue
        code = running.proc.returncode
        status = report.get("status")
        if not status:
            status = "incomplete"
            self._mark_incomplete(running, f"the run process ended without a result (exit status {code})")
        verdict = "incomplete" if status == "incomplete" else "skipped" if status == "skipped" else (
            VERDICTS.get(report.get("exit_code", code), "error"))
        line = {"suite": running.suite.name, "run_id": running.run_id, "status": status, "verdict": verdict,
                "exit_code": report.get("exit_code", code), "duration_s": round(time.monotonic() - running.started, 3),
                "reason": reason}
        if report.get("counts"):
            line["counts"] = report["counts"]
        if report.get("message"):
            line["message"] = report["message"]
        return line

    def _mark_incomplete(self, running: _Running, message: str) -> None:
        """A run whose process died without closing it: write `incomplete` with what it got."""
        store = self._stores.get(running.suite.store_url)
        if store is None:
            return
        try:
            info = store.get_run(running.run_id)
            if info is None or info.status not in ("running", "incomplete") or info.ended is not None:
                return
            counts: dict[str, int] = {"passed": 0, "failed": 0, "error": 0, "not_run": 0}
            for r in store.results(running.run_id):
                counts[r.status] = counts.get(r.status, 0) + 1
            store.finish_run(running.run_id, status="incomplete", ended=time.time(),
                             exit_code=int(ExitCode.UNREACHABLE), counts=counts, message=message)
        except HarnessError as e:
            self.log("warning", suite=running.suite.name, run_id=running.run_id, message=e.line())

    # -- stopping

    def request_stop(self, reason: str = "signal") -> None:
        """Stop taking new runs; a second request also stops the runs in progress now."""
        if self._stopping.is_set():
            self._hurry.set()
            return
        self._stopping.set()
        self.log("stopping", reason=reason, running=sorted(self._running))

    def shutdown(self) -> None:
        """Let runs in progress finish within `stop_timeout`, then stop them; close everything."""
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        deadline = time.monotonic() + self.stop_timeout
        while self._live() and time.monotonic() < deadline and not self._hurry.is_set():
            time.sleep(0.1)
        for running in self._live():
            self.log("terminating", suite=running.suite.name, run_id=running.run_id,
                     reason=f"still running after the {self.stop_timeout:g} s stop timeout")
            _signal(running.proc, signal.SIGTERM)
        deadline = time.monotonic() + self.kill_after
        while self._live() and time.monotonic() < deadline:
            time.sleep(0.1)
        for running in self._live():
            _signal(running.proc, signal.SIGKILL)
        # the job threads log each run's line and mark killed runs incomplete
        deadline = time.monotonic() + 10
        while self._running_names() and time.monotonic() < deadline:
            time.sleep(0.05)
        for store in self._stores.values():
            store.close()
        self.log("stopped")

    def _live(self) -> list[_Running]:
        with self._guard:
            return [r for r in self._running.values() if r.proc.poll() is None]

    def _running_names(self) -> list[str]:
        with self._guard:
            return list(self._running)

    def serve(self) -> int:
        """Start, wait for SIGTERM/SIGINT, shut down cleanly. Returns the exit code (0)."""
        stop = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            self.request_stop(signal.Signals(signum).name)
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            self.log("ready", suites=[s.name for s in self.suites], grace_s=self.grace.total_seconds(),
                     pid=os.getpid())
            while not stop.wait(60):
                pass
            self.shutdown()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass


def _fmt(delta: timedelta) -> str:
    s = delta.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{int(s // size)}{unit}"
    return f"{s:g}s"
