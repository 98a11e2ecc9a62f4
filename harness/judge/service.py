"""The judge service a run lends to its checks: verdicts at one judge call per answer, or none.

GEval, left alone, asks the judge to write evaluation steps for every answer (two calls
per answer). Here steps come from the rubric, or are generated once per criteria and
judge model and remembered (in memory and in the cache store); verdicts are remembered
by (judge model and fingerprint, rubric or criteria, normalised answer and input), so an
unchanged answer costs nothing tomorrow; identical answers judged at the same moment
(repeats of a case at temperature 0) share one call. A per-run cap on calls or cost turns
further judgements into skips, counted in `stats()`.

The service owns one `ChatClient` (one connection pool) for every judge call of the run.
deepeval is imported on the first judgement, not before, because it takes seconds.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Literal

from pydantic import ValidationError

from ..errors import ConfigError, HarnessError
from ..normalize import normalize_text
from ..spec import JudgeSpec
from ..targets.pricing import Price, cost_of
from .cache import CachedVerdict, CacheTables, JudgeCache
from ._errors import JudgeError
from .canaries import LoadedCanary, load_canaries
from .rubrics import Criteria, Rubric, load_rubrics, rubrics_dir, unknown_rubric

if TYPE_CHECKING:
    from ..chat import ChatClient, ChatResult
    from .client import JudgeModel

Kind = Literal["answer", "call"]
CACHE_FORMAT = 1  # bump when the key or the stored meaning changes
BUDGET_SPENT = "skipped: judge budget spent"
NO_INPUT = "(the caller said nothing)"
JUDGE_BREAKER_AFTER = 5  # judge errors in a row (no verdict between them) that stop the judge for the run


@dataclass(slots=True)
class Verdict:
    """One judged answer (or call): the median score, the majority pass and the judge's reason."""

    passed: bool
    score: float  # 0..1
    reason: str
    threshold: float
    scores: list[float] = field(default_factory=list)  # one per judge repeat
    cached: bool = False
    skipped: bool = False


@dataclass(slots=True, eq=False)
class _Usage:
    """What one judgement spent (and may still spend); lives in a context variable while it runs."""

    reserved: int = 0  # calls promised to it by the budget
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0


class _BudgetSpent(Exception):
    pass


_usage: contextvars.ContextVar[_Usage | None] = contextvars.ContextVar("judge_usage", default=None)


class JudgeService:
    """Judges answers and calls for a run; create with `from_spec`, close with `aclose`."""

    def __init__(
        self,
        spec: JudgeSpec,
        *,
        root: str,
        rubrics: dict[str, Rubric] | None = None,
        canaries: list[LoadedCanary] | None = None,
        cache: JudgeCache | None = None,
        prices: dict[str, Price] | None = None,
        retries: int = 3,
        backoff_s: float = 0.5,
    ):
        self.spec = spec
        self.retries = retries  # for transient HTTP failures of the judge endpoint
        self.backoff_s = backoff_s
        self.root = root
        self.rubrics = rubrics or {}
        self.canaries = canaries or []
        self.cache = cache
        self.prices = prices or {}
        self._chat: ChatClient | None = None
        self._model: JudgeModel | None = None
        self._de: Any = None  # the deepeval names we use, once imported
        self._fingerprint_key = f"fingerprint:{spec.model}@{spec.base_url.rstrip('/')}"
        self._fingerprint = (cache.get_meta(self._fingerprint_key) if cache else None) or ""
        self._steps_mem: dict[str, list[str]] = {}
        self._steps_inflight: dict[str, asyncio.Future[list[str]]] = {}
        self._inflight: dict[str, asyncio.Future[Verdict]] = {}
        # counters for stats() and the budget
        self._calls_spent = 0  # every judge call made so far
        self._active: set[_Usage] = set()  # judgements running now, with their promised calls
        self._cached = 0
        self._skipped = 0
        self._errors = 0
        self._judged = 0
        self._in_row = 0  # judge errors in a row: the judge's own breaker opens at JUDGE_BREAKER_AFTER
        self._down: str | None = None  # the breaker's line once it is open
        self._tokens_in = 0
        self._tokens_out = 0
        self._cost = 0.0

    @classmethod
    def from_spec(cls, spec: JudgeSpec, *, root: str, cache: CacheTables | None = None,
                  retries: int = 3, backoff_s: float = 0.5) -> "JudgeService":
        """Build the service for a suite's `judge:` block.

        Rubrics (`<root>/rubrics/*.yaml`), canary files and prices are read and checked
        here, before the run, so their mistakes are configuration errors (exit 2). `cache`
        holds the verdict cache's rows, handed over by the store (`store.judge_cache(root)`);
        without it (or with `cache: false` in the spec) nothing is remembered between runs.
        `retries` and `backoff_s` govern retries of transient judge failures (429, 5xx,
        timeouts, refused connections).
        """
        rubrics = load_rubrics(rubrics_dir(root))
        canaries = load_canaries(spec.canaries, root)
        prices: dict[str, Price] = {}
        for model, raw in spec.prices.items():
            try:
                prices[model] = Price.model_validate(raw)
            except ValidationError as e:
                err = e.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                raise ConfigError(f"judge.prices.{model}.{loc}: {err['msg']} "
                                  "(expected {input_per_mtok: USD, output_per_mtok: USD})") from None
        memory = JudgeCache(cache) if spec.cache and cache is not None else None
        return cls(spec, root=root, rubrics=rubrics, canaries=canaries, cache=memory, prices=prices,
                   retries=retries, backoff_s=backoff_s)

    # --- public API ------------------------------------------------------------------------
    async def judge_answer(
        self,
        *,
        answer: str,
        input: str | None = None,
        criteria: str | None = None,
        rubric: str | None = None,
        evaluation_steps: list[str] | None = None,
        threshold: float | None = None,
        repeats: int | None = None,
    ) -> Verdict:
        """Judge one answer to one caller input with GEval (criteria inline or a named rubric)."""
        return await self._judge_answer(answer, input, criteria, rubric, evaluation_steps, threshold, repeats)

    async def judge_call(
        self,
        *,
        turns: list[tuple[str, str]],
        criteria: str | None = None,
        rubric: str | None = None,
        evaluation_steps: list[str] | None = None,
        threshold: float | None = None,
        repeats: int | None = None,
    ) -> Verdict:
        """Judge a whole call with ConversationalGEval; `turns` are (role, text), role user|assistant."""
        crit = self._criteria(criteria, rubric, evaluation_steps, threshold, "call")
        turns = [(role, text if text.strip() else "(no words)") for role, text in turns]
        if not turns:
            raise _judge_error("the call has no turns to judge")
        parts = {"turns": [[role, normalize_text(text)] for role, text in turns]}

        async def measure(steps: list[str]) -> tuple[float, str]:
            de = self._deepeval()
            metric = de.ConversationalGEval(
                name=crit.label, criteria=crit.criteria, evaluation_steps=steps, model=self._model,
                threshold=crit.threshold, async_mode=True,
            )
            case = de.ConversationalTestCase(turns=[de.Turn(role=role, content=text) for role, text in turns])
            await metric.a_measure(case, _show_indicator=False)
            return float(metric.score), str(metric.reason or "")

        return await self._judge("call", crit, parts, measure, repeats)

    async def run_canaries(self) -> dict[str, Any]:
        """Judge every canary afresh (never from the cache) and compare with its label.

        Returns {agreed, disagreed, errors, details}; each detail names the canary, where it
        is written, what was expected and what the judge said.
        """

        async def one(lc: LoadedCanary) -> dict[str, Any]:
            c = lc.canary
            base = {"canary": lc.label, "source": str(lc.source), "expected": c.expected}
            try:
                v = await self._judge_answer(c.answer, c.input, c.criteria, c.rubric, c.evaluation_steps or None,
                                             c.threshold, None, use_cache=False, budget=False)
            except HarnessError as e:
                return {**base, "got": "error", "score": None, "reason": e.line(), "agreed": None}
            got = "pass" if v.passed else "fail"
            return {**base, "got": got, "score": v.score, "reason": v.reason, "agreed": got == c.expected}

        details = list(await asyncio.gather(*(one(lc) for lc in self.canaries)))
        return {
            "agreed": sum(1 for d in details if d["agreed"] is True),
            "disagreed": sum(1 for d in details if d["agreed"] is False),
            "errors": sum(1 for d in details if d["agreed"] is None),
            "details": details,
        }

    def stats(self) -> dict[str, Any]:
        """Judge spend for the run: calls made, verdicts from cache, skips, tokens and cost (USD)."""
        return {
            "calls": self._calls_spent,
            "judged": self._judged,
            "cached": self._cached,
            "skipped": self._skipped,
            "errors": self._errors,
            "down": self._down,
            "tokens_in": self._tokens_in,
            "tokens_out": self._tokens_out,
            "cost": round(self._cost, 6),
        }

    async def aclose(self) -> None:
        if self.cache is not None:
            self.cache.close()
        if self._chat is not None:
            await self._chat.aclose()

    # --- judging ----------------------------------------------------------------------------
    async def _judge_answer(
        self, answer: str, input: str | None, criteria: str | None, rubric: str | None,
        evaluation_steps: list[str] | None, threshold: float | None, repeats: int | None,
        *, use_cache: bool = True, budget: bool = True,
    ) -> Verdict:
        crit = self._criteria(criteria, rubric, evaluation_steps, threshold, "answer")
        said = input if input and input.strip() else NO_INPUT
        answer = answer if answer.strip() else "(the agent said nothing)"
        parts = {"answer": normalize_text(answer), "input": normalize_text(said)}

        async def measure(steps: list[str]) -> tuple[float, str]:
            de = self._deepeval()
            metric = de.GEval(
                name=crit.label, evaluation_params=[de.SingleTurnParams.INPUT, de.SingleTurnParams.ACTUAL_OUTPUT],
                criteria=crit.criteria, evaluation_steps=steps, model=self._model, threshold=crit.threshold,
                async_mode=True,
            )
            await metric.a_measure(de.LLMTestCase(input=said, actual_output=answer), _show_indicator=False)
            return float(metric.score), str(metric.reason or "")

        return await self._judge("answer", crit, parts, measure, repeats, use_cache=use_cache, budget=budget)

    async def _judge(
        self,
        kind: Kind,
        crit: Criteria,
        parts: dict[str, Any],
        measure: Callable[[list[str]], Awaitable[tuple[float, str]]],
        repeats: int | None,
        *,
        use_cache: bool = True,
        budget: bool = True,
    ) -> Verdict:
        if self._down is not None:  # the judge's breaker is open: no more calls to a judge that is down
            self._errors += 1
            raise JudgeError(self._down)
        k = repeats or self.spec.repeats
        key = self._key(kind, crit, parts, k)
        if use_cache:
            hit = self.cache.get_verdict(key) if self.cache is not None else None
            if hit is not None:
                self._cached += 1
                return _aggregate(hit.scores, hit.reason, crit.threshold, cached=True)
            leader = self._inflight.get(key)
            if leader is not None:  # the same answer is being judged right now: share that call
                try:
                    shared = await asyncio.shield(leader)
                except HarnessError:
                    self._errors += 1
                    raise
                except asyncio.CancelledError:
                    if _being_cancelled():
                        raise
                    # the leader's call was cancelled (its case timed out): judge this one ourselves
                    return await self._judge(kind, crit, parts, measure, repeats, use_cache=use_cache, budget=budget)
                if shared.skipped:
                    self._skipped += 1
                    return shared
                self._cached += 1
                return _aggregate(shared.scores, shared.reason, crit.threshold, cached=True)
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        if use_cache:
            self._inflight[key] = future
        usage = _Usage()
        token = _usage.set(usage)
        self._active.add(usage)
        try:
            if budget and not self._reserve(k):
                raise _BudgetSpent
            self._ensure_model()
            steps = await self._steps(kind, crit, budget)
            results = await asyncio.gather(*(measure(steps) for _ in range(k)))
            scores = [round(min(1.0, max(0.0, s)), 4) for s, _ in results]
            verdict = _aggregate(scores, _median_reason(results), crit.threshold)
            self._judged += 1
            self._in_row = 0
            if use_cache and self.cache is not None:
                # the judge may have revealed a new fingerprint during this call: key by it
                self.cache.put_verdict(self._key(kind, crit, parts, k), CachedVerdict(
                    scores=scores, reason=verdict.reason, judge=self._identity(), rubric=crit.ref,
                    tokens_in=usage.tokens_in, tokens_out=usage.tokens_out, cost=usage.cost))
        except _BudgetSpent:
            self._skipped += 1
            verdict = Verdict(passed=False, score=0.0, reason=BUDGET_SPENT, threshold=crit.threshold, skipped=True)
        except HarnessError as e:
            self._errors += 1
            self._failed(e)
            future.set_exception(e)
            future.exception()  # mark retrieved: followers may not exist
            raise
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as e:  # deepeval raising on something we did not foresee: a judge error, not a crash
            self._errors += 1
            err = _judge_error(f"the judge failed: {type(e).__name__}: {e}")
            self._failed(err)
            future.set_exception(err)
            future.exception()
            raise err from None
        finally:
            _usage.reset(token)
            self._active.discard(usage)
            self._inflight.pop(key, None)
        future.set_result(verdict)
        return verdict

    def _failed(self, e: HarnessError) -> None:
        """One more judge error in a row; enough of them open the judge's breaker."""
        self._in_row += 1
        if self._down is None and self._in_row >= JUDGE_BREAKER_AFTER:
            self._down = (f"the judge is down, not asked again this run after {self._in_row} errors in a row "
                          f"({e.line()})")

    async def _steps(self, kind: Kind, crit: Criteria, budget: bool) -> list[str]:
        """The evaluation steps: the rubric's own, or generated once per criteria and judge model."""
        if crit.evaluation_steps:
            return list(crit.evaluation_steps)
        assert crit.criteria is not None
        key = _sha({"v": CACHE_FORMAT, "kind": kind, "criteria": crit.criteria, "judge": self.spec.model})
        found = self._steps_mem.get(key) or (self.cache.get_steps(key) if self.cache is not None else None)
        if found:
            self._steps_mem[key] = found
            return found
        leader = self._steps_inflight.get(key)
        if leader is not None:
            try:
                return list(await asyncio.shield(leader))
            except asyncio.CancelledError:
                if _being_cancelled():
                    raise
                return await self._steps(kind, crit, budget)  # the leader was cancelled: generate them here
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._steps_inflight[key] = future
        try:
            if budget and not self._reserve(1):
                raise _BudgetSpent
            found = await self._generate_steps(kind, crit.criteria)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as e:
            future.set_exception(e)
            future.exception()  # mark retrieved: there may be no follower
            raise
        finally:
            self._steps_inflight.pop(key, None)
        self._steps_mem[key] = found
        if self.cache is not None:
            self.cache.put_steps(key, self.spec.model, found)
        future.set_result(found)
        return found

    async def _generate_steps(self, kind: Kind, criteria: str) -> list[str]:
        de = self._deepeval()
        if kind == "answer":
            params = de.construct_g_eval_params_string([de.SingleTurnParams.INPUT, de.SingleTurnParams.ACTUAL_OUTPUT])
            prompt = de.GEvalTemplate.generate_evaluation_steps(parameters=params, criteria=criteria)
        else:
            params = de.construct_conversational_g_eval_turn_params_string(
                [de.MultiTurnParams.CONTENT, de.MultiTurnParams.ROLE])
            prompt = de.ConversationalGEvalTemplate.generate_evaluation_steps(parameters=params, criteria=criteria)
        assert self._model is not None
        out = await self._model.a_generate(prompt, schema=de.Steps)
        return [str(s).strip() for s in out.steps if str(s).strip()]

    # --- pieces ---------------------------------------------------------------------------
    def _criteria(self, criteria: str | None, rubric: str | None, steps: list[str] | None,
                  threshold: float | None, kind: Kind) -> Criteria:
        if rubric is None:
            return Criteria.inline(criteria, steps, threshold)
        found = self.rubrics.get(rubric)
        if found is None:
            raise _judge_error(unknown_rubric(rubric, self.rubrics, Path(self.root) / "rubrics"))
        if found.scope not in ("any", kind):
            use = "call_judge" if found.scope == "call" else "judge"
            raise _judge_error(f"rubric {rubric!r} judges {'whole calls' if found.scope == 'call' else 'one answer'}"
                               f" (scope: {found.scope}); use it with {use}")
        return Criteria.from_rubric(found, threshold)

    def _key(self, kind: Kind, crit: Criteria, parts: dict[str, Any], k: int) -> str:
        return _sha({"v": CACHE_FORMAT, "judge": self._identity(), "kind": kind, "rubric": crit.ref, "k": k, **parts})

    def _identity(self) -> str:
        return f"{self.spec.model}|{self._fingerprint}"

    def _reserve(self, n: int) -> bool:
        """Promise the running judgement `n` more calls, unless that would pass the run's caps.

        Spent calls plus the calls still promised to running judgements must stay within
        `max_calls`; once `max_cost_usd` is reached nothing new starts.
        """
        cap = self.spec.max_calls
        if cap is not None:
            promised = sum(max(0, u.reserved - u.calls) for u in self._active)
            if self._calls_spent + promised + n > cap:
                return False
        if self.spec.max_cost_usd is not None and self._cost >= self.spec.max_cost_usd:
            return False
        usage = _usage.get()
        if usage is not None:
            usage.reserved += n
        return True

    def _ensure_model(self) -> None:
        if self._model is not None:
            return
        from ._deepeval import load_deepeval

        load_deepeval(self.root)
        from .client import JudgeModel, judge_client

        self._chat = judge_client(self.spec, on_request=self._on_request, retries=self.retries,
                                  backoff_s=self.backoff_s)
        self._model = JudgeModel(self._chat, self.spec, on_reply=self._on_reply)

    def _deepeval(self) -> Any:
        if self._de is None:
            from types import SimpleNamespace

            from deepeval.metrics import ConversationalGEval, GEval
            from deepeval.metrics.conversational_g_eval.template import ConversationalGEvalTemplate
            from deepeval.metrics.g_eval.schema import Steps
            from deepeval.metrics.g_eval.template import GEvalTemplate
            from deepeval.metrics.g_eval.utils import (
                construct_conversational_g_eval_turn_params_string,
                construct_g_eval_params_string,
            )
            from deepeval.test_case import ConversationalTestCase, LLMTestCase, MultiTurnParams, SingleTurnParams, Turn

            self._de = SimpleNamespace(
                GEval=GEval, ConversationalGEval=ConversationalGEval, GEvalTemplate=GEvalTemplate,
                ConversationalGEvalTemplate=ConversationalGEvalTemplate, Steps=Steps, LLMTestCase=LLMTestCase,
                ConversationalTestCase=ConversationalTestCase, Turn=Turn, SingleTurnParams=SingleTurnParams,
                MultiTurnParams=MultiTurnParams, construct_g_eval_params_string=construct_g_eval_params_string,
                construct_conversational_g_eval_turn_params_string=construct_conversational_g_eval_turn_params_string,
            )
        return self._de

    def _on_request(self) -> None:
        self._calls_spent += 1
        usage = _usage.get()
        if usage is not None:
            usage.calls += 1

    def _on_reply(self, reply: "ChatResult") -> None:
        cost = cost_of(self.prices, (reply.model, self.spec.model), reply.tokens_in, reply.tokens_out) or 0.0
        self._tokens_in += reply.tokens_in or 0
        self._tokens_out += reply.tokens_out or 0
        self._cost += cost
        usage = _usage.get()
        if usage is not None:
            usage.tokens_in += reply.tokens_in or 0
            usage.tokens_out += reply.tokens_out or 0
            usage.cost += cost
        seen = f"{reply.model or ''}/{reply.fingerprint or ''}"
        if seen != self._fingerprint:
            self._fingerprint = seen
            if self.cache is not None:
                self.cache.set_meta(self._fingerprint_key, seen)


def _aggregate(scores: list[float], reason: str, threshold: float, *, cached: bool = False) -> Verdict:
    """Majority pass over the repeats (a tie goes to the median), median score."""
    median = statistics.median(scores)
    votes = sum(1 for s in scores if s >= threshold)
    passed = votes * 2 > len(scores) or (votes * 2 == len(scores) and median >= threshold)
    return Verdict(passed=passed, score=round(median, 4), reason=reason, threshold=threshold,
                   scores=list(scores), cached=cached)


def _median_reason(results: list[tuple[float, str]]) -> str:
    """The reason given with the score nearest the median: the most representative one."""
    median = statistics.median(s for s, _ in results)
    return min(results, key=lambda r: abs(r[0] - median))[1]


def _being_cancelled() -> bool:
    """Whether the running task itself is being cancelled (not just something it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _sha(obj: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


def _judge_error(message: str) -> JudgeError:
    return JudgeError(message)


__all__ = ["BUDGET_SPENT", "JudgeService", "Verdict"]
