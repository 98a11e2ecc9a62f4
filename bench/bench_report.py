"""Build time and size of the HTML trend report over a long history.

    python bench/bench_report.py                        # 90 daily runs × 500 results
    python bench/bench_report.py --runs 90 --cases 500 --keep /tmp/trend-bench

Fills a fresh SQLite store (in a temporary folder) through the Store API with a synthetic
but realistic history of the daily drift suite: 2–4 turn calls in Japanese and English,
turn timings and routes (primary, with some fallback), tokens and cost, judge scores, a few
cases repeated three times, infra errors on some days, a few flaky cases, a silent "model
update" two thirds of the way in that changes the wording of FAQ answers and lowers their
judge score, and a regression on the last day. Then it builds the trend report for the
last run, as `harness report` would, and prints the build time and the file size against
the budgets (≤ 5 s, ≤ 3 MB). Filling the store is not timed.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.records import AgentReply, CaseResult, CheckResult, Outcome, RunInfo, Transcript, Turn  # noqa: E402
from harness.report.trend_html import write_trend_report  # noqa: E402
from harness.store import Store  # noqa: E402

BUDGET_S = 5.0
BUDGET_BYTES = 3 * 1024 * 1024
DAY = 86400.0

TOPICS = {
    "reservation": (["restaurant", "ja"], "明日の19時に4名で予約したいです", ["19時に4名様ですね。お名前をお願いします。", "山田様、ご予約を承りました。"]),
    "cancellation": (["restaurant", "ja"], "予約をキャンセルしたいです", ["ご予約のお名前を教えてください。", "キャンセルを承りました。またのご利用をお待ちしております。"]),
    "question": (["faq", "en"], "What are your opening hours?", ["We are open from 11:00 to 22:00, every day except Tuesday."]),
    "clinic": (["clinic", "ja", "client-sakura"], "来週の月曜に診察の予約をお願いします", ["来週月曜日ですね。ご希望の時間はございますか。", "10時で承りました。保険証をお持ちください。"]),
}
FOLLOW_UPS = ["山田です", "10時でお願いします", "はい、それで大丈夫です", "ありがとうございます"]


def _case_list(n: int) -> list[tuple[str, str, list[str], int]]:
    """(case_id, topic, tags, repeats): 20 cases run three times, the rest once."""
    names = list(TOPICS)
    cases, total, i = [], 0, 0
    while total < n:
        topic = names[i % len(names)]
        repeats = 3 if i < 20 and total + 3 <= n else 1
        tags = list(TOPICS[topic][0]) + (["client-acme"] if i % 7 == 0 else [])
        cases.append((f"{topic[:3]}-{i:04d}", topic, tags, repeats))
        total += repeats
        i += 1
    return cases


def _result(rng: random.Random, day: int, days: int, case: tuple[str, str, list[str], int], rep: int, started: float) -> CaseResult:
    case_id, topic, tags, _ = case
    _, first, answers = TOPICS[topic]
    updated = day >= days * 2 // 3  # the silent model update
    last_day = day == days - 1
    idx = int(case_id.split("-")[1])
    if rng.random() < (0.08 if day % 17 == 5 else 0.004):
        kind = rng.choice(["rate_limited", "timeout", "server_error"])
        return CaseResult(case_id, topic, tags, rep, "error", error=f"{kind}: gateway answered 429" if kind == "rate_limited" else f"{kind}: no answer",
                          error_kind=kind, started=started, duration_ms=rng.uniform(100, 30000))
    n_turns = rng.randint(2, 4)
    turns = [Turn(0, None, AgentReply("お電話ありがとうございます。さくらレストランです。", total_ms=rng.uniform(80, 160), route="primary"), kind="greeting")]
    model = "gpt-4o-mini-2024-07-18" if not updated else "gpt-4o-mini-2025-01-30"
    for t in range(1, n_turns):
        text = answers[min(t - 1, len(answers) - 1)]
        if updated and topic == "question":
            text = "Our hours are 11am–10pm daily; we are closed on Tuesdays. Anything else I can help with?"
        text += f" (ref {idx}-{t})"
        fallback = rng.random() < 0.06
        base = 650 + day * 3 + (400 if fallback else 0)
        turns.append(Turn(t, first if t == 1 else FOLLOW_UPS[(t - 2) % len(FOLLOW_UPS)], AgentReply(
            text, first_token_ms=base * 0.3 + rng.uniform(0, 80), total_ms=base + rng.expovariate(1 / 250),
            model=model if not fallback else "claude-3-haiku", fingerprint="fp_a1b2" if not updated else "fp_c3d4",
            route="fallback" if fallback else "primary", tokens_in=rng.randint(300, 900), tokens_out=rng.randint(20, 90),
            cost=rng.uniform(0.0001, 0.0006), state={"intent": topic}, ended=t == n_turns - 1)))
    flaky = idx % 50 == 3
    fail_p = 0.03 + (0.12 if updated and topic == "question" else 0) + (0.5 if flaky else 0) + (0.25 if last_day and topic == "reservation" else 0)
    failed = rng.random() < fail_p
    judge = max(0.0, min(1.0, rng.gauss(0.86 - (0.12 if updated and topic == "question" else 0), 0.07)))
    checks = [
        CheckResult("contains_any", not failed, reason="" if not failed else "none of ['19時', '19:00'] found", args={"values": ["19時", "19:00"]}, turn=1),
        CheckResult("judge", judge >= 0.6, score=judge, reason="repeats the party size and time", turn=1),
        CheckResult("latency", True, args={"turn_ms": 2000}),
    ]
    status = "failed" if failed or judge < 0.6 else "passed"
    outcome = Outcome(intent=topic, slots={"party_size": 4, "time": "19:00"} if topic == "reservation" else {}, ended_by="agent")
    return CaseResult(case_id, topic, tags, rep, status, checks=checks, transcript=Transcript(turns, outcome),
                      started=started, duration_ms=sum(t.reply.total_ms or 0 for t in turns), source=f"golden/{topic}/cases.yaml:{idx + 3}")


def _topic_rates(results: list[CaseResult]) -> dict[str, tuple[int, int]]:
    """(passed, judged) per topic."""
    out: dict[str, tuple[int, int]] = {}
    for r in results:
        if r.status in ("passed", "failed"):
            p, n = out.get(r.topic, (0, 0))
            out[r.topic] = (p + (r.status == "passed"), n + 1)
    return out


def _verdict(cls: str, headline: str, evidence: list[dict], now: dict, before: dict, baseline: str) -> dict:
    """A verdict shaped like the analysis stage's, with per-topic pass rates and p-values."""
    from scipy.stats import fisher_exact

    topics = {}
    for topic, (p, n) in sorted(now.items()):
        bp, bn = before.get(topic, (0, 0))
        rate, base = p / n, (bp / bn if bn else None)
        pv = float(fisher_exact([[p, n - p], [bp, bn - bp]])[1]) if bn else None
        topics[topic] = {"pass_rate": rate, "baseline_pass_rate": base, "delta": rate - base if base is not None else None,
                         "p_value": pv, "judge_score": None, "p95_turn_ms": None}
    return {"class": cls, "headline": headline, "evidence": evidence, "topics": topics, "baseline_run": baseline}


def fill(store: Store, runs: int, cases: int, seed: int = 11) -> str:
    """Write `runs` daily runs ending now; return the last run's id."""
    rng = random.Random(seed)
    plan = _case_list(cases)
    start = time.time() - runs * DAY
    last, before = "", {}
    for day in range(runs):
        t0 = start + day * DAY
        run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime(t0)) + f"-{day:04d}"
        results = []
        for case in plan:
            for rep in range(case[3]):
                results.append(_result(rng, day, runs, case, rep, t0 + len(results) * 0.5))
        now = _topic_rates(results)
        verdict = None
        if day == runs - 1:
            (p, n), (bp, bn) = now["reservation"], before["reservation"]
            verdict = _verdict("regression", f"reservation pass rate fell {round((bp / bn - p / n) * 100)} points since the baseline",
                               [{"kind": "pass_rate", "detail": f"reservation {bp / bn:.0%} → {p / n:.0%} ({n - p} of {n} failed)"},
                                {"kind": "git", "detail": "first run after merge of the booking-prompt change"}],
                               now, before, last)
        elif day == runs * 2 // 3:
            verdict = _verdict("drift", "model fingerprint changed; FAQ answers reworded and judged lower",
                               [{"kind": "fingerprint", "detail": "fp_a1b2 → fp_c3d4"},
                                {"kind": "judge_score", "detail": "question 0.86 → 0.74"}], now, before, last)
        info = RunInfo(run_id=run_id, suite="daily-drift", suite_file="suites/daily-drift.yaml",
                       target={"kind": "openai", "model": "primary", "base_url": "https://gateway.example/v1"},
                       model="primary", git_sha=f"{rng.getrandbits(64):016x}", host="ci-runner", started=t0,
                       planned=cases, extra={"verdict": verdict} if verdict else {})
        store.start_run(info)
        store.add_results(run_id, results)
        counts = {s: sum(1 for r in results if r.status == s) for s in ("passed", "failed", "error", "not_run")}
        store.finish_run(run_id, status="complete", ended=t0 + 600, exit_code=1 if counts["failed"] else 0, counts=counts)
        last, before = run_id, now
    return last


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=90)
    ap.add_argument("--cases", type=int, default=500, help="results per run (cases × repeats)")
    ap.add_argument("--keep", help="build in this folder and keep the store and the report")
    args = ap.parse_args()
    if args.keep:
        return measure(Path(args.keep), args.runs, args.cases, keep=True)
    with tempfile.TemporaryDirectory(prefix="trend-bench-") as tmp:
        return measure(Path(tmp), args.runs, args.cases, keep=False)


def measure(folder: Path, runs: int, cases: int, *, keep: bool) -> int:
    """Fill a store in `folder`, build the report, print the figures; 0 when within budget."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "history.db"
    if db.exists():
        db.unlink()
    store = Store.open(f"sqlite:///{db}")
    t = time.perf_counter()
    fill(store, runs, cases)
    print(f"filled {runs} runs × {cases} results in {time.perf_counter() - t:.1f} s ({db.stat().st_size / 1e6:.0f} MB store)")
    t, cpu = time.perf_counter(), time.process_time()
    path = write_trend_report(store, suite="daily-drift", since_s=None, out_dir=folder / "reports")
    took, cpu = time.perf_counter() - t, time.process_time() - cpu
    size = path.stat().st_size
    store.close()
    ok_t, ok_s = took <= BUDGET_S, size <= BUDGET_BYTES
    print(f"build: {took:.2f} s wall, {cpu:.2f} s CPU (budget {BUDGET_S:.0f} s) {'ok' if ok_t else 'OVER'}")
    print(f"size:  {size / 1024 / 1024:.2f} MB (budget {BUDGET_BYTES / 1024 / 1024:.0f} MB) {'ok' if ok_s else 'OVER'}")
    if keep:
        print(f"report: {path}")
    return 0 if ok_t and ok_s else 1


if __name__ == "__main__":
    sys.exit(main())
