"""Benchmark: how often the drift verdict is right — false alarms, detection, attribution, cost, real data.

    cd /work/main && .venv/bin/python bench/bench_drift.py            # the whole table (about a minute)
    .venv/bin/python bench/bench_drift.py --trials 20 --false-runs 50 --no-real

A stochastic model answers a 200-case suite: each case has a correct answer in a few wordings
(most cases word-for-word stable, some sampling among three paraphrases, like temperature)
and a wrong one; 170 cases are right 97 % of the time, 30 are weak (right 10 %). Latency is
log-normal around 400 ms, tokens follow the answer's length. Every trial draws a fresh
reference — an accepted baseline plus four healthy daily runs (the trailing window) — and a
run to classify, all with new seeds, then classifies it through the analysis API
(`compare` + the rule table: exactly what `harness run` does after its calls).

- **False alarms**: runs of the unchanged model called anything but ok / noise / failing.
- **Detection**: per scenario, the share of runs classified right (class, and for drift its
  direction); attribution scenarios (our prompt, a deploy of the service that reports its version,
  both sides) must come out regression / mixed; a deploy that changes nothing stays quiet.
- **Cost**: model calls per verdict with adaptive repeats (`repeat: {min: 1, max: 5}`) against a
  fixed `repeat: 5`, and the detection each reaches on the 10-point drop and the 25 % answer change.
- **Real data**: the recorded answers of real model snapshots (../shared/data/llmdrift-opinionqa)
  served from a local OpenAI-compatible server as one silent alias, through the real CLI: the
  verdict of an unchanged rerun and of each real update.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from harness.analysis import Reference, compare  # noqa: E402
from harness.analysis.adaptive import more_repeats  # noqa: E402
from harness.analysis.observe import CaseObs  # noqa: E402
from harness.analysis.rules import classify  # noqa: E402
from harness.records import RunInfo  # noqa: E402
from harness.spec import AnalysisSpec  # noqa: E402
from harness.workload import with_service_versions  # noqa: E402

CASES = 200
WEAK = 30
SPEC = AnalysisSpec()
QUIET = {"ok", "noise", "failing"}

OPENERS = ["Yes,", "Sure,", "Certainly,"]


class Model:
    """One behaviour of the model (and of our side), sampled per call."""

    def __init__(self, seed: int = 0):
        rng = random.Random(1000 + seed)  # the suite's cases: fixed across runs
        self.varied = {i for i in range(CASES) if rng.random() < 0.3}
        self.weak = set(range(CASES - WEAK, CASES))
        self.broken: set[int] = set()  # answer wrong
        self.fixed: set[int] = set()  # weak cases now right
        self.reworded: set[int] = set()  # a new wording, still right
        self.refusing: set[int] = set()
        self.short = False
        self.unbracketed = False
        self.latency = 1.0
        self.fp = "fp1"
        self.inputs: dict[int, str] = {}  # case -> our inputs (default in1)
        self.version = "2.3.0"  # what the service under test says it runs (version_header)

    def call(self, i: int, rng: random.Random) -> tuple[str, bool, float, int]:
        if i in self.refusing:
            text, ok = "I'm sorry, I can't help with that request.", False
        else:
            right = (i in self.fixed) or (rng.random() < (0.1 if i in self.weak else 0.97))
            right = right and i not in self.broken
            if right:
                opener = OPENERS[rng.randrange(3)] if i in self.varied else OPENERS[0]
                body = f"the booking for table {i} is confirmed for seven people at eight pm tonight"
                if i in self.reworded:
                    body = f"your reservation number {i} stands: party of seven, eight in the evening"
                head = "Yes" if self.unbracketed else "[Yes]"
                words = f"{head} {opener} {body}".split()
                if self.short:
                    words = words[: max(3, len(words) // 2)]
                text, ok = " ".join(words), True
            else:
                text, ok = f"[No] there is no table {i} tonight, sorry", False
        ms = 400.0 * self.latency * math.exp(rng.gauss(0, 0.25))
        return text.lower(), ok, ms, len(text.split()) * 2


def observe(model: Model, seed: int, repeats: int | dict[int, int] = 1) -> dict[str, CaseObs]:
    rng = random.Random(seed)
    out = {}
    for i in range(CASES):
        obs = CaseObs(f"c{i:03d}", "bookings")
        k = repeats if isinstance(repeats, int) else repeats.get(i, 1)
        for _ in range(k):
            add_call(obs, model, i, rng)
        # the runner folds a reported version into the input fingerprint (workload.with_service_versions)
        obs.note_inputs(with_service_versions(model.inputs.get(i, "in1"), [model.version]))
        obs.note_version(model.version)
        out[obs.case_id] = obs
    return out


def add_call(obs: CaseObs, model: Model, i: int, rng: random.Random) -> None:
    text, ok, ms, tokens = model.call(i, rng)
    obs.statuses.append("passed" if ok else "failed")
    obs.scores.append(1.0 if ok else 0.0)
    obs.answers.append(text)
    obs.turn_ms.append(ms)
    obs.tokens += tokens
    obs.serving[("primary", "gpt-x", model.fp)] += 1


def reference(seed: int, days: int = 4, repeats: int = 1) -> Reference:
    base = Model()
    ref = Reference("accepted baseline", "base", None, observe(base, seed, repeats))
    ref.history = [observe(base, seed + 1 + d, repeats) for d in range(days)]
    return ref


def verdict(now: dict[str, CaseObs], ref: Reference) -> tuple[str, str]:
    cmp = compare(now, ref, {}, SPEC)
    v = classify(RunInfo(run_id="now", suite="bench", status="complete"), cmp, ref, SPEC)
    headline = v.headline + (" [latency evidence]" if v.evidence_of("latency") else "")
    return v.cls.value, headline


def pick(n: int, pool: list[int], rng: random.Random) -> set[int]:
    return set(rng.sample(pool, n))


def scenario(name: str, rng: random.Random) -> tuple[Model, str]:
    """The changed model (and our side) of a scenario, and what a right verdict starts with."""
    m = Model()
    strong = [i for i in range(CASES) if i not in m.weak]
    if name.startswith("drop"):
        m.broken = pick(int(name.split()[1]) * CASES // 100, strong, rng)
        return m, "drift (worse)"
    if name == "rise 15":
        m.fixed = set(m.weak)
        return m, "drift (better)"
    if name == "answers 25%":
        m.reworded = pick(CASES // 4, strong, rng)
        return m, "drift (changed, pass rate unchanged)"
    if name == "verbosity halved":
        m.short = True
        return m, "drift (changed, pass rate unchanged)"
    if name == "refusals up":
        m.refusing = pick(CASES // 10, strong, rng)
        return m, "drift (worse)"
    if name == "format [Yes]→Yes":
        m.unbracketed = True
        return m, "drift (changed, pass rate unchanged)"
    if name == "latency ×2":
        m.latency = 2.0
        return m, "quiet, with latency evidence"  # an objective's business, not a verdict class
    if name == "fingerprint only":
        m.fp = "fp2"
        return m, "drift (model changed, behaviour unchanged)"
    if name == "our prompt":
        m.inputs = {i: "in2" for i in range(CASES)}
        m.broken = pick(CASES // 5, strong, rng)
        return m, "regression"
    if name == "service deploy":
        m.version = "2.4.0"  # our prompt is the same: the service under test was redeployed
        m.broken = pick(CASES // 5, strong, rng)
        return m, "regression naming 2.4.0"
    if name == "deploy, same behaviour":
        m.version = "2.4.0"
        return m, "quiet"
    if name == "both":
        ours = set(range(0, CASES, 2))
        m.inputs = {i: "in2" for i in ours}
        m.broken = pick(CASES // 10, [i for i in strong if i in ours], rng)
        m.reworded = pick(CASES // 5, [i for i in strong if i not in ours], rng)
        m.fp = "fp2"
        return m, "mixed"
    raise ValueError(name)


SCENARIOS = ["drop 5", "drop 10", "drop 20", "drop 35", "rise 15", "answers 25%", "verbosity halved",
             "refusals up", "format [Yes]→Yes", "latency ×2", "fingerprint only", "our prompt", "service deploy",
             "deploy, same behaviour", "both"]


def right(cls: str, headline: str, expected: str) -> bool:
    if expected == "quiet, with latency evidence":
        return cls in QUIET and headline.endswith("[latency evidence]")
    if expected == "quiet":
        return cls in QUIET
    if expected == "regression naming 2.4.0":
        return cls == "regression" and "version 2.4.0, was 2.3.0" in headline
    if expected.startswith("drift"):
        if cls != "drift":
            return False
        if expected == "drift (changed, pass rate unchanged)":
            return headline.startswith("drift (changed")
        return headline.startswith(expected)
    return cls == expected


def adaptive_run(model: Model, ref: Reference, seed: int, lo: int = 1, hi: int = 5) -> tuple[dict[str, CaseObs], int]:
    """`repeat: {min: lo, max: hi}`: one call per case, more only where `more_repeats` asks."""
    rng = random.Random(seed)
    now = observe(model, seed, lo)
    calls = lo * CASES
    for _ in range(hi - lo):
        wanted = [cid for cid, obs in now.items() if more_repeats(obs, ref.pooled(cid), hi)]
        if not wanted:
            break
        for cid in wanted:
            add_call(now[cid], model, int(cid[1:]), rng)
        calls += len(wanted)
    return now, calls


def real_data(rows: int) -> list[tuple[str, str, str]]:
    """Through the CLI: baseline, unchanged rerun, update, for each real pair."""
    from opinionqa import OpinionQA, golden, suite

    data = OpinionQA.load()
    questions = data.sample(rows)
    out = []
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    for old, new in (("gpt-4-0314", "gpt-4-0613"), ("gpt-3.5-turbo-0301", "gpt-3.5-turbo-0613")):
        with tempfile.TemporaryDirectory() as tmp, data.server(questions, old, noise=0.03, seed=7) as server:
            root = Path(tmp)
            (root / "golden").mkdir()
            (root / "suites").mkdir()
            (root / "golden" / "opinion.yaml").write_text(golden(questions), encoding="utf-8")
            (root / "suites" / "drift.yaml").write_text(suite(concurrency=64), encoding="utf-8")

            def run(*args: str) -> str:
                p = subprocess.run([sys.executable, "-m", "harness", "run", "suites/drift.yaml", "--no-progress",
                                    "-o", "reports", *args], cwd=root, capture_output=True,
                                   text=True, env={**env, "LLM_URL": server.base_url}, timeout=600)
                reports = sorted((root / "reports").glob("*.json"))
                if not reports:
                    raise SystemExit(f"no report: {p.stdout[-500:]} {p.stderr[-500:]}")
                return json.loads(reports[-1].read_text())["verdict"]["headline"]

            run("--accept-baseline")
            out.append((f"{old} rerun", "ok/noise/failing", run()))
            server.snapshot = new
            out.append((f"{old} → {new}", "drift", run()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--false-runs", type=int, default=50)
    ap.add_argument("--trials", type=int, default=20, help="runs per detection scenario")
    ap.add_argument("--real-rows", type=int, default=300, help="OpinionQA questions per real-data run")
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--only-real", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.only_real:
        args.false_runs = args.trials = 0

    print(f"## False alarms ({args.false_runs} runs of the unchanged model, {CASES} cases)")
    classes: Counter = Counter()
    for s in range(args.false_runs):
        ref = reference(10_000 + 10 * s)
        cls, headline = verdict(observe(Model(), 20_000 + s), ref)
        classes[cls] += 1
        if cls not in QUIET:
            print(f"   false alarm: {headline[:160]}")
    alarms = sum(n for c, n in classes.items() if c not in QUIET)
    print(f"false alarms: {alarms} of {args.false_runs}   classes: {dict(classes)}\n")

    print(f"## Detection ({args.trials} runs per scenario)")
    print(f"| scenario | expected | right | classes seen |\n| --- | --- | --- | --- |")
    for name in SCENARIOS if args.trials else []:
        ok = 0
        seen: Counter = Counter()
        for t in range(args.trials):
            rng = random.Random(zlib.crc32(f"{name}|{t}".encode()))
            ref = reference(30_000 + 10 * t)
            model, expected = scenario(name, rng)
            cls, headline = verdict(observe(model, 40_000 + t), ref)
            seen[cls] += 1
            ok += right(cls, headline, expected)
        print(f"| {name} | {expected} | {ok}/{args.trials} ({ok / args.trials:.0%}) | {dict(seen)} |")

    print(f"\n## Cost: model calls per verdict, adaptive repeat {{min: 1, max: 5}} vs fixed repeat 5")
    print("| scenario | adaptive calls | adaptive right | fixed-5 calls | fixed-5 right |\n| --- | --- | --- | --- | --- |")
    for name in ("unchanged", "drop 10", "answers 25%") if args.trials else []:
        calls_a = right_a = right_f = 0
        for t in range(args.trials):
            rng = random.Random(zlib.crc32(f"{name}|{t}|cost".encode()))
            ref = reference(50_000 + 10 * t)
            model, expected = (Model(), "quiet") if name == "unchanged" else scenario(name, rng)
            now, calls = adaptive_run(model, ref, 60_000 + t)
            calls_a += calls
            cls, headline = verdict(now, ref)
            right_a += cls in QUIET if expected == "quiet" else right(cls, headline, expected)
            cls, headline = verdict(observe(model, 70_000 + t, 5), reference(50_000 + 10 * t, repeats=5))
            right_f += cls in QUIET if expected == "quiet" else right(cls, headline, expected)
        n = args.trials
        print(f"| {name} | {calls_a / n:.0f} | {right_a}/{n} | {5 * CASES} | {right_f}/{n} |")

    if not args.no_real:
        print(f"\n## Real data: OpinionQA snapshots behind one silent alias ({args.real_rows} questions, real CLI)")
        print("| run | expected | verdict |\n| --- | --- | --- |")
        for run, expected, headline in real_data(args.real_rows):
            print(f"| {run} | {expected} | {headline[:150]} |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
