"""`harness schedule`: crontab meaning, time zones, missed fires, locks, and a clean stop.

Time-dependent rules are tested two ways: the pure parts (next fire, missed-fire decision)
with an explicit clock, and the daemon itself as a real process whose "missed fire" is
arranged by writing the last fire time into its store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import ConfigError
from harness.locks import LockHeld, SuiteLock, holder
from harness.scheduling.daemon import Daemon, listing, parse_duration, read_schedules
from harness.scheduling import catch_up, crontab_days, crontab_trigger, next_fires
from harness.scheduling.state import last_fire, record_fire
from harness.store import Store

from conftest import REPO, Project

UTC = timezone.utc
TOKYO = ZoneInfo("Asia/Tokyo")


def fire_after(expr: str, tz: str, now: datetime, count: int = 1) -> list[datetime]:
    return next_fires(crontab_trigger(expr, tz), count, now)


# ---------------------------------------------------------------- crontab meaning


def test_monday_in_crontab_fires_on_monday_in_the_suites_timezone() -> None:
    # Sunday 2026-11-22 12:00 UTC is Sunday 21:00 in Tokyo
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    (fire,) = fire_after("0 6 * * 1", "Asia/Tokyo", now)
    assert fire.astimezone(TOKYO).weekday() == 0  # Monday, not APScheduler's Tuesday
    assert (fire.astimezone(TOKYO).hour, fire.astimezone(TOKYO).minute) == (6, 0)
    assert fire.astimezone(UTC) == datetime(2026, 11, 22, 21, 0, tzinfo=UTC)  # still Sunday in UTC


@pytest.mark.parametrize("dow", ["0", "7", "sun", "SUN"])
def test_sunday_is_0_or_7_or_sun(dow: str) -> None:
    fires = fire_after(f"30 9 * * {dow}", "UTC", datetime(2026, 11, 23, tzinfo=UTC), count=3)
    assert [f.weekday() for f in fires] == [6, 6, 6]


def test_weekday_ranges_lists_and_steps_mean_what_crontab_means() -> None:
    assert crontab_days("1-5") == {1, 2, 3, 4, 5}
    assert crontab_days("*/2") == {0, 2, 4, 6}
    assert crontab_days("mon,wed-fri") == {1, 3, 4, 5}
    assert crontab_days("5-7") == {5, 6, 0}
    fires = fire_after("0 6 * * 1-5", "Asia/Tokyo", datetime(2026, 11, 20, tzinfo=UTC), count=7)
    assert sorted({f.astimezone(TOKYO).weekday() for f in fires}) == [0, 1, 2, 3, 4]


def test_local_time_holds_across_a_daylight_saving_change() -> None:
    fires = fire_after("0 6 * * *", "America/New_York", datetime(2026, 10, 30, tzinfo=UTC), count=4)
    assert {f.astimezone(ZoneInfo("America/New_York")).hour for f in fires} == {6}
    assert {f.astimezone(UTC).hour for f in fires} == {10, 11}  # the UTC hour moves, the local one does not


@pytest.mark.parametrize(
    "expr, needle",
    [
        ("0 6 * *", "expected 5"),
        ("0 6 1 * 1", "both day of month and day of week"),
        ("0 6 * * 8", "0-7"),
        ("0 6 * * fri-mon", "backwards"),
        ("61 6 * * *", "61"),
        ("@reboot", "macro"),
    ],
)
def test_bad_schedules_are_refused_with_a_reason(expr: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        crontab_trigger(expr, "UTC")


def test_macros_expand_to_crontab() -> None:
    (fire,) = fire_after("@weekly", "UTC", datetime(2026, 11, 23, tzinfo=UTC))
    assert fire == datetime(2026, 11, 29, tzinfo=UTC)  # Sunday midnight


# ---------------------------------------------------------------- suite files


SUITE = """
name: {name}
golden: ["golden/**/*.yaml"]
target: {{kind: sim, latency_ms: {latency}, limits: {{concurrency: 1}}}}
schedule: "{schedule}"
timezone: {tz}
output: {{dir: reports/}}
"""


def write_project(project: Project, *, cases: int = 2, latency: int = 0, schedule: str = "* * * * *",
                  tz: str = "UTC", name: str = "nightly") -> Path:
    lines = ["topic: question", "tags: [en]", "cases:"]
    for i in range(cases):
        lines += [f"  - id: q-{i:03d}", "    prompt: What are your opening hours?", "    expect:",
                  "      - contains: \"11\""]
    project.write("golden/question/faq.yaml", "\n".join(lines) + "\n")
    return project.write(f"suites/{name}.yaml", SUITE.format(name=name, latency=latency, schedule=schedule, tz=tz))


def test_a_bad_schedule_is_one_line_at_its_position(project: Project) -> None:
    write_project(project, schedule="0 6 * * 9")
    with pytest.raises(ConfigError) as err:
        read_schedules([str(project.root / "suites")])
    line = err.value.line()
    assert line.startswith(f"{project.root / 'suites' / 'nightly.yaml'}:4:11: ")
    assert "0-7" in line and "\n" not in line


def test_a_bad_timezone_is_one_line(project: Project) -> None:
    write_project(project, tz="Mars/Olympus")
    with pytest.raises(ConfigError, match=r"nightly.yaml:5:11: unknown timezone 'Mars/Olympus'"):
        read_schedules([str(project.root / "suites")])


def test_list_prints_next_fires_in_each_suites_timezone(project: Project) -> None:
    write_project(project, schedule="0 6 * * 1", tz="Asia/Tokyo")
    project.write("suites/adhoc.yaml", "name: adhoc\ngolden: [golden/**/*.yaml]\ntarget: {kind: sim}\n")
    lines = listing([str(project.root / "suites")], count=2, now=datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    assert lines == [
        "nightly  '0 6 * * 1' (Asia/Tokyo)  next: 2026-11-23 06:00 Mon, 2026-11-30 06:00 Mon",
        "adhoc  (no schedule)",
    ]
    out = CliRunner().invoke(app, ["schedule", "--list", str(project.root / "suites")])
    assert out.exit_code == 0, out.output
    assert "nightly  '0 6 * * 1' (Asia/Tokyo)  next: " in out.output and " Mon, " in out.output


def test_durations() -> None:
    assert parse_duration("6h", what="--grace") == 21600
    assert parse_duration("90", what="--grace") == 90
    with pytest.raises(ConfigError, match="--grace 'soon'"):
        parse_duration("soon", what="--grace")


# ---------------------------------------------------------------- missed fires (a controllable clock)


def test_a_missed_fire_within_grace_runs_once_for_the_newest() -> None:
    trigger = crontab_trigger("0 * * * *", "UTC")  # hourly
    now = datetime(2026, 11, 23, 10, 20, tzinfo=UTC)
    decision = catch_up(trigger, datetime(2026, 11, 23, 7, 0, 5, tzinfo=UTC), now, timedelta(hours=6))
    assert decision.run_for == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert decision.missed_within == 3  # 08:00, 09:00, 10:00 coalesce into one run
    assert not decision.missed_beyond


def test_a_missed_fire_beyond_grace_is_skipped() -> None:
    trigger = crontab_trigger("0 6 * * *", "Asia/Tokyo")
    now = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)  # 14:00 in Tokyo; today's 06:00 fire was 8 h ago
    decision = catch_up(trigger, now - timedelta(days=2), now, timedelta(hours=6))
    assert decision.run_for is None and decision.missed_beyond and decision.skipped_only
    # with a wider window the same fire is caught up
    assert catch_up(trigger, now - timedelta(days=2), now, timedelta(hours=9)).run_for == datetime(
        2026, 11, 23, 6, 0, tzinfo=TOKYO)


def test_nothing_missed_nothing_run() -> None:
    trigger = crontab_trigger("0 6 * * *", "UTC")
    now = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    assert catch_up(trigger, datetime(2026, 11, 23, 6, 0, 1, tzinfo=UTC), now, timedelta(hours=6)).run_for is None
    assert catch_up(trigger, None, now, timedelta(hours=6)).run_for is None  # first start: no history


# ---------------------------------------------------------------- the store lock


def test_one_holder_at_a_time_and_release(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/h.db")
    first = SuiteLock(store, "nightly", run_id="run-1")
    second = SuiteLock(store, "nightly", run_id="run-2")
    first.acquire()
    with pytest.raises(LockHeld, match=r"suite 'nightly' is already running \(run run-1 on "):
        second.acquire()
    assert holder(store, "nightly").run_id == "run-1"
    first.release()
    assert holder(store, "nightly") is None
    with second:
        assert holder(store, "nightly").run_id == "run-2"
    store.close()


def test_heartbeat_keeps_a_lock_and_silence_makes_it_stale(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/h.db")
    alive = SuiteLock(store, "nightly", stale_after=0.6, heartbeat_every=0.1)
    alive.acquire()
    time.sleep(1.0)  # longer than stale_after: only the heartbeat keeps it
    assert SuiteLock(store, "nightly", stale_after=0.6).try_acquire() is not None
    alive._stop.set()  # the holder goes silent (as a hung host would)
    alive._thread.join()
    time.sleep(0.8)
    taker = SuiteLock(store, "nightly", stale_after=0.6)
    assert taker.try_acquire() is None
    assert holder(store, "nightly").owner == taker.owner
    taker.release()
    store.close()


def test_a_dead_holder_on_this_host_frees_the_lock_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/h.db"
    Store.open(url).close()
    code = (
        "import os; from harness.store import Store; from harness.locks import SuiteLock; "
        f"s = Store.open({url!r}); SuiteLock(s, 'nightly', run_id='dead').acquire(); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)
    store = Store.open(url)
    assert holder(store, "nightly").run_id == "dead"
    with SuiteLock(store, "nightly", stale_after=3600, run_id="new"):
        assert holder(store, "nightly").run_id == "new"
    store.close()


# ---------------------------------------------------------------- the daemon


class DaemonProcess:
    """`harness schedule` as a real process, its JSON lines read as they come."""

    def __init__(self, project: Project, *args: str):
        env = {**os.environ, "NO_COLOR": "1"}
        env.pop("GITHUB_RUN_ID", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "harness", "schedule", "suites/", *args],
                                     cwd=project.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[dict] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for text in self.proc.stdout:
            with self._cond:
                self.lines.append(json.loads(text))
                self._cond.notify_all()

    def wait_for(self, event: str, timeout: float = 60) -> dict:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(l["event"] == event for l in self.lines), timeout)
        assert ok, f"no {event!r} line in {timeout}s; got {self.lines}; stderr: {self._stderr()}"
        return next(l for l in self.lines if l["event"] == event)

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read()

    def stop(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def seed_missed_fire(project: Project, suite: str, ago: timedelta) -> None:
    store = Store.open(project.store_url)
    record_fire(store, suite, datetime.now(UTC) - ago)
    store.close()


@pytest.mark.slow
def test_missed_fire_runs_at_start_and_a_stop_lets_the_run_finish(project: Project) -> None:
    write_project(project, cases=3, latency=150)
    seed_missed_fire(project, "nightly", timedelta(minutes=3))
    daemon = DaemonProcess(project, "--store", project.store_url, "--grace", "1h", "--stop-timeout", "60s")
    try:
        assert daemon.wait_for("catch_up")["suite"] == "nightly"
        started = daemon.wait_for("started")
        assert daemon.stop() == 0  # SIGTERM while the run is going: it finishes, then the daemon exits
    finally:
        daemon.kill()
    run = next(l for l in daemon.lines if l["event"] == "run")
    assert run["run_id"] == started["run_id"]
    assert (run["status"], run["verdict"], run["exit_code"]) == ("complete", "passed", 0)
    assert run["counts"]["passed"] == 3 and run["duration_s"] > 0
    assert daemon.lines[-1]["event"] == "stopped"
    store = Store.open(project.store_url)
    assert store.get_run(run["run_id"]).status == "complete"
    assert last_fire(store, "nightly") > datetime.now(UTC) - timedelta(minutes=1)
    store.close()


@pytest.mark.slow
def test_stop_mid_run_after_the_timeout_marks_the_run_incomplete_and_keeps_its_results(project: Project) -> None:
    write_project(project, cases=40, latency=250)
    seed_missed_fire(project, "nightly", timedelta(minutes=3))
    daemon = DaemonProcess(project, "--store", project.store_url, "--stop-timeout", "0.5s")
    try:
        started = daemon.wait_for("started")
        store = Store.open(project.store_url)
        deadline = time.monotonic() + 30
        while not store.results(started["run_id"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    events = [l["event"] for l in daemon.lines]
    assert "terminating" in events and events[-1] == "stopped"
    run_line = next(l for l in daemon.lines if l["event"] == "run")
    assert run_line["status"] == "incomplete"
    run = store.get_run(started["run_id"])
    kept = store.results(started["run_id"])
    assert run.status == "incomplete" and run.ended is not None
    assert 0 < len(kept) < 40 and sum(run.counts.values()) == len(kept)
    store.close()


def test_a_suite_locked_by_another_process_is_skipped_not_doubled(project: Project) -> None:
    write_project(project)
    (suite,) = read_schedules([str(project.root / "suites")])[0]
    lines: list[dict] = []
    daemon = Daemon([suite], store_url=project.store_url, log=lambda event, **f: lines.append({"event": event, **f}))
    daemon._resolve_stores()
    store = Store.open(project.store_url)
    with SuiteLock(store, "nightly", run_id="ci-run"):  # e.g. a CI job running the same suite
        line = daemon.fire(suite)
    assert line["status"] == "skipped" and "already running (run ci-run" in line["message"]
    assert [r for r in store.list_runs("nightly")] == []  # no second run was started
    line = daemon.fire(suite)  # lock free again: it runs
    assert line["status"] == "complete"
    daemon.shutdown()
    store.close()


def test_a_fire_missed_beyond_grace_is_logged_and_not_run(project: Project) -> None:
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    write_project(project, schedule=f"{two_hours_ago.minute} {two_hours_ago.hour} * * *")
    seed_missed_fire(project, "nightly", timedelta(hours=3))
    (suite,) = read_schedules([str(project.root / "suites")])[0]
    lines: list[dict] = []
    daemon = Daemon([suite], store_url=project.store_url, grace=timedelta(hours=1),
                    log=lambda event, **f: lines.append({"event": event, **f}))
    daemon.start()
    daemon.shutdown()
    events = [l["event"] for l in lines]
    assert "missed" in events and "catch_up" not in events and "started" not in events
    assert "beyond the 1h grace window" in next(l for l in lines if l["event"] == "missed")["reason"]
