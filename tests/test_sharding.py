"""`harness run --shard K/N --group G`: a stable split of the cases, read back as one run."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from harness.errors import ConfigError
from harness.sharding import (
    Shard,
    default_group,
    group_results,
    group_summary,
    parse_shard,
    select_shard,
    shard_of,
)
from harness.store import Store

from conftest import Project

IDS = [f"case-{i:04d}" for i in range(400)]


def test_parse_shard() -> None:
    assert parse_shard("2/4") == Shard(2, 4)
    assert str(parse_shard(" 1 / 1 ")) == "1/1"
    for bad in ("0/4", "5/4", "2", "a/b", "2/0", ""):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)


def test_shards_partition_the_cases_and_are_balanced() -> None:
    shards = [select_shard(IDS, Shard(k, 4), key=str) for k in range(1, 5)]
    assert sorted(sum(shards, [])) == IDS  # every case once, none twice
    assert all(70 < len(s) < 130 for s in shards), [len(s) for s in shards]
    assert select_shard(IDS, Shard(1, 1), key=str) == IDS and select_shard(IDS, None, key=str) == IDS


def test_adding_or_removing_a_case_moves_no_other_case() -> None:
    before = {i: shard_of(i, 4) for i in IDS}
    grown = ["new-case", *IDS[:100], "another", *IDS[100:]]
    assert {i: shard_of(i, 4) for i in grown if i in before} == before
    assert {i: shard_of(i, 4) for i in IDS[::2]} == {i: before[i] for i in IDS[::2]}


def test_the_hash_is_pinned() -> None:
    # Changing the hash would move every case to another CI machine; make it a conscious choice.
    assert [shard_of(x, 4) for x in ("rsv-ja-001", "faq-en-hours", "cxl-en-001")] == [3, 1, 4]


def test_default_group_from_the_environment() -> None:
    assert default_group({"HARNESS_RUN_GROUP": "nightly-42", "GITHUB_RUN_ID": "9"}) == "nightly-42"
    assert default_group({"GITHUB_RUN_ID": "9", "GITHUB_RUN_ATTEMPT": "2"}) == "gh-9-2"
    assert default_group({}) is None


GOLDEN = "topic: question\ntags: [en]\ncases:\n" + "".join(
    f"  - id: q-{i:02d}\n    prompt: What are your opening hours?\n    expect:\n      - contains: \"11\"\n"
    + ("    repeat: 2\n" if i % 5 == 0 else "")
    for i in range(20)
)


def test_two_shards_of_one_group_read_back_as_one_run(project: Project) -> None:
    project.write("golden/question/faq.yaml", GOLDEN)
    project.write("suites/s.yaml", "name: smoke\ngolden: [golden/**/*.yaml]\ntarget: {kind: sim}\n")
    for k in (1, 2):
        out = project.harness("run", "suites/s.yaml", "--shard", f"{k}/2", "--group", "ci-7", "--store",
                              project.store_url, "--no-reports", "-q", env={"GITHUB_RUN_ID": ""})
        assert out.returncode == 0, out.stderr
    store = Store.open(project.store_url)
    runs = store.list_runs("smoke")
    assert len(runs) == 2 and {r.group for r in runs} == {"ci-7"}
    assert {r.extra.get("shard") for r in runs} == {"1/2", "2/2"}
    results = group_results(store, "ci-7")
    keys = [(r.case_id, r.repeat_index) for r in results]
    assert len(keys) == len(set(keys)) == 24  # 20 cases, 4 of them twice; nothing lost or doubled
    per_run = [{r.case_id for r in store.results(run.run_id)} for run in runs]
    assert not per_run[0] & per_run[1]  # all repeats of a case ran in the same shard
    summary = group_summary(store, "ci-7")
    assert summary.counts["passed"] == 24 and summary.planned == 24 and summary.status == "complete"
    assert summary.exit_code == 0 and summary.extra["shards"] == 2
    assert group_summary(store, "nope") is None
    store.close()

    # the report treats the group as one run: one JUnit file holding every shard's cases
    out = project.harness("report", "--group", "ci-7", "--store", project.store_url, "-o", "out")
    assert out.returncode == 0, out.stderr
    junit = ET.parse(project.root / "out" / "smoke-group-ci-7.junit.xml").getroot()
    assert sum(int(s.get("tests")) for s in junit.iter("testsuite")) == 24
    data = json.loads((project.root / "out" / "smoke-group-ci-7.json").read_text())
    assert data["run"]["run_id"] == "ci-7" and data["run"]["counts"]["passed"] == 24
    assert (project.root / "out" / "smoke-group-ci-7.html").is_file()
    missing = project.harness("report", "--group", "nope", "--store", project.store_url, "-o", "out")
    assert missing.returncode == 2 and "no run in the store belongs to group 'nope'" in missing.stderr


def test_a_bad_shard_is_a_one_line_config_error(project: Project) -> None:
    project.write("golden/question/faq.yaml", GOLDEN)
    project.write("suites/s.yaml", "name: smoke\ngolden: [golden/**/*.yaml]\ntarget: {kind: sim}\n")
    out = project.harness("run", "suites/s.yaml", "--shard", "5/4", "--store", project.store_url)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["error: --shard '5/4': K must be between 1 and N, and N at least 1"]
