"""Issue 16, "results lost": no finished result is lost to the store, whatever it refuses.

Through the real CLI: a full disk (a file size limit on the process), a PostgreSQL column
that a long value would not fit, a row PostgreSQL refuses outright, a malformed stored row.
"""

from __future__ import annotations

import json
import re
import os
import resource
import sqlite3
import subprocess
import sys
from pathlib import Path

from harness.store import Store

from conftest import Project
from hostile_server import HostileServer
from mock_openai import MockOpenAI
from pg_fixtures import pg_server, pg_url  # noqa: F401


def _many_cases(project: Project, n: int, *, text_len: int = 600) -> None:
    lines = ["topic: question", "cases:"]
    for i in range(n):
        lines += [f"  - id: c-{i:04d}", f"    prompt: \"What are your opening hours? {i} {'x' * text_len}\"",
                  "    expect:", "      - contains: \"11\""]
    project.write("golden/q.yaml", "\n".join(lines) + "\n")


def test_a_full_disk_mid_run_spills_what_the_store_refused_and_still_prints_the_summary(project: Project) -> None:
    _many_cases(project, 250)  # the spill file (under the same per-file limit) holds what the store refused
    project.write("suites/s.yaml", """
        name: full
        golden: ["golden/**/*.yaml"]
        target: {kind: sim, limits: {concurrency: 8}}
    """)
    limit = 600_000  # bytes any one file may grow to: the history fills up part way through the run

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-m", "harness", "run", "suites/s.yaml", "--store", project.store_url,
                          "--no-reports", "--no-progress"], cwd=project.root, env=env, capture_output=True,
                         text=True, timeout=300, preexec_fn=small_disk)
    text = out.stdout + out.stderr
    assert "Traceback" not in text, text[-3000:]
    assert out.returncode == 3, text[-3000:]
    assert re.search(r"Total\s+250\s+250\s", out.stdout), text[-3000:]  # the summary is printed
    spills = list(project.root.glob("spill-*.jsonl"))
    assert len(spills) == 1, text[-3000:]
    spilled = [json.loads(line) for line in spills[0].read_text().splitlines()]
    assert f"{len(spilled)} results could not be written to the store and were kept in {spills[0]}" in text
    with sqlite3.connect(project.root / "history.db") as db:
        stored = {row[0] for row in db.execute("select case_id from results")}
    # every finished result is somewhere: in the store or in the spill file, exactly once
    assert stored.isdisjoint({r["case_id"] for r in spilled})
    assert "neither to the store nor to a spill file" not in text, text[-3000:]
    assert len(stored) + len(spilled) == 250 and len(spilled) > 0 and len(stored) > 0


def test_one_value_postgres_refuses_costs_only_its_own_row(project: Project, pg_url: str) -> None:  # noqa: F811
    # a gateway reports 2**40 prompt tokens for one call: more than PostgreSQL's integer holds
    with HostileServer("usage", answer="an answer", poison="poison",
                       usage={"prompt_tokens": 2**40, "completion_tokens": 1, "total_tokens": 2**40 + 1}) as srv:
        lines = ["topic: question", "cases:"]
        for i in range(30):
            lines += [f"  - id: c-{i:02d}", f"    prompt: \"{'poison' if i == 7 else 'hello'} {i}\"",
                      "    expect:", "      - contains: answer"]
        project.write("golden/q.yaml", "\n".join(lines) + "\n")
        project.write("suites/s.yaml", f"""
            name: pgbig
            golden: ["golden/**/*.yaml"]
            target: {{kind: openai, base_url: "{srv.url}", model: m, api_key: k}}
        """)
        out = project.harness("run", "suites/s.yaml", "--store", pg_url, "--no-reports", "--no-progress")
    text = out.stdout + out.stderr
    assert "Traceback" not in text, text[-3000:]
    with Store.open(pg_url) as store:
        run = store.get_run("latest")
        stored = {r.case_id for r in store.results(run.run_id)}
    assert len(stored) >= 29, text[-3000:]  # every other result of the batch is stored
    assert run.status in ("complete", "incomplete"), text[-3000:]
    if len(stored) == 29:  # the refused one is in the spill file, and the run says so
        spills = list(project.root.glob(".harness/spill-*.jsonl"))
        assert spills and json.loads(spills[0].read_text().splitlines()[0])["case_id"] == "c-07"
        assert f"1 results could not be written to the store and were kept in {spills[0]}" in text
        assert run.status == "incomplete" and out.returncode == 3


def test_long_ids_topics_and_model_names_fit_in_postgres(project: Project, pg_url: str) -> None:  # noqa: F811
    long_model = "gw/" + "m" * 300
    with MockOpenAI(model=long_model, fingerprint="fp_" + "f" * 300, reply={"": "an answer"}) as mock:
        long_id = "case-" + "i" * 500
        project.write("golden/q.yaml", f"""
            topic: {'t' * 150}
            cases:
              - id: {long_id}
                prompt: hello
                expect: [{{contains: answer}}]
              - id: short
                prompt: hello
                expect: [{{contains: answer}}]
        """)
        project.write("suites/s.yaml", f"""
            name: pglong
            golden: ["golden/**/*.yaml"]
            target: {{kind: openai, base_url: "{mock.base_url}", model: "{long_model}", api_key: k}}
        """)
        out = project.harness("run", "suites/s.yaml", "--store", pg_url, "--no-reports", "--no-progress")
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    with Store.open(pg_url) as store:
        run = store.get_run("latest")
        results = {r.case_id: r for r in store.results(run.run_id)}
    assert run.status == "complete" and set(results) == {long_id, "short"}
    assert results[long_id].transcript.model == long_model


def test_a_malformed_stored_row_is_named_once_and_everything_else_still_works(project: Project) -> None:
    project.write("golden/q.yaml", """
        topic: question
        cases:
          - id: q
            prompt: What are your opening hours?
            expect: [{contains: "11"}]
    """)
    project.write("suites/s.yaml", """
        name: bad-row
        golden: ["golden/**/*.yaml"]
        target: {kind: sim}
    """)
    first = project.harness("run", "suites/s.yaml", "--store", project.store_url, "--no-progress")
    assert first.returncode == 0, first.stdout + first.stderr
    with sqlite3.connect(project.root / "history.db") as db:
        bad_id = db.execute("select run_id from runs").fetchone()[0]
        db.execute("update runs set counts = 'not json {' where run_id = ?", (bad_id,))
        db.execute("update results set checks = '[broken' where run_id = ?", (bad_id,))
    for args in (("run", "suites/s.yaml", "--store", project.store_url, "--no-progress"),
                 ("history", "q", "--store", project.store_url),
                 ("diff", bad_id, "latest", "--store", project.store_url),
                 ("report", "--store", project.store_url, "-o", "trend")):
        out = project.harness(*args)
        text = out.stdout + out.stderr
        assert "Traceback" not in text, (args, text[-3000:])
        assert out.returncode in (0, 1), (args, text[-3000:])
        named = [line for line in out.stderr.splitlines() if bad_id in line and "not valid JSON" in line]
        assert named, (args, text[-3000:])


def test_a_long_case_id_and_topic_can_be_accepted_into_a_baseline_in_postgres(project: Project,
                                                                              pg_url: str) -> None:  # noqa: F811
    """Store layout v5: the baseline tables hold case ids and topics as TEXT too."""
    long_id, long_topic = "case-" + "i" * 500, "t" * 150
    project.write("golden/q.yaml", f"""
        topic: {long_topic}
        cases:
          - id: {long_id}
            prompt: What are your opening hours?
            expect: [{{contains: open}}]
    """)
    project.write("suites/" + "s" * 10 + ".yaml", f"""
        name: {'suite-' + 'n' * 250}
        golden: ["golden/**/*.yaml"]
        target: {{kind: sim}}
    """)
    suite = "suites/" + "s" * 10 + ".yaml"
    first = project.harness("run", suite, "--store", pg_url, "--no-reports", "--no-progress")
    assert first.returncode == 0, first.stdout + first.stderr
    accepted = project.harness("baseline", "accept", "latest", "--store", pg_url)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "Traceback" not in accepted.stderr
    again = project.harness("run", suite, "--store", pg_url, "--no-reports", "--no-progress")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "matches the accepted baseline" in again.stdout or "baseline" in again.stdout, again.stdout


def test_a_v4_postgres_store_is_upgraded_to_the_current_layout(pg_url: str) -> None:  # noqa: F811
    from sqlalchemy import create_engine, inspect, text

    from harness.store.schema import SCHEMA_VERSION

    with Store.open(pg_url) as store:
        assert store.schema_version() == SCHEMA_VERSION
    engine = create_engine(pg_url)
    with engine.begin() as conn:  # the store as v4 left it
        conn.execute(text("ALTER TABLE baselines ALTER COLUMN suite TYPE VARCHAR(200)"))
        conn.execute(text("ALTER TABLE baseline_cases ALTER COLUMN case_id TYPE VARCHAR(200)"))
        conn.execute(text("ALTER TABLE baseline_cases ALTER COLUMN topic TYPE VARCHAR(100)"))
        conn.execute(text("ALTER TABLE results DROP COLUMN input_fp"))  # added by v6
        conn.execute(text("UPDATE meta SET value = '4' WHERE key = 'schema_version'"))
    with Store.open(pg_url) as store:
        assert store.schema_version() == SCHEMA_VERSION
    types = {(t, c["name"]): str(c["type"]) for t in ("baselines", "baseline_cases")
             for c in inspect(engine).get_columns(t)}
    engine.dispose()
    assert types[("baselines", "suite")] == "TEXT"
    assert types[("baseline_cases", "case_id")] == "TEXT" and types[("baseline_cases", "topic")] == "TEXT"
