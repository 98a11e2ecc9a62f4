"""What a user writes: the pydantic models of golden files and suite files.

Models forbid unknown keys, so a misspelt key is an error with a position, never ignored.
Positions come from `harness.loading`, which keeps the YAML marks beside the data; the
models only hold them (`CheckSpec.pos`, `CaseSpec.source`) for errors raised later (for
example an unknown check name found when the checks are compiled).
"""

from __future__ import annotations

import operator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from .errors import Position
from .objective_spec import BudgetPolicy, ObjectiveSpec

CHECK_MODIFIERS = ("weight", "negate", "label")
CASE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$"

# Every timeout is finite: `.inf` would let a silent server hang a run for good (one day at most).
MAX_TIMEOUT_S = 86_400.0


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class CheckSpec(BaseModel):
    """One expectation: `{contains: "19時"}` or `{regex: {pattern: "…", normalize: false}, weight: 2}`.

    Exactly one key names the check; `weight`, `negate` and `label` are modifiers that the
    dispatcher applies to every check the same way.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    arg: Any = None
    weight: float = Field(default=1.0, ge=0)
    negate: bool = False
    label: str | None = None
    pos: Position | None = Field(default=None, exclude=True)
    name_pos: Position | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, data: Any) -> Any:
        if isinstance(data, str):
            # a bare check name with no argument, e.g. "- json"
            return {"name": data, "pos": getattr(data, "pos", None), "name_pos": getattr(data, "pos", None)}
        if not isinstance(data, dict):
            raise ValueError("expected a mapping such as {contains: \"text\"}")
        if len(data) == 1:  # the usual `{contains: "19時"}`: the same result as below, in fewer steps
            (name, arg), = data.items()
            if name != "name" and name not in CHECK_MODIFIERS:
                pos = getattr(data, "pos", None)
                key_pos = getattr(data, "key_pos", None)
                return {"name": name, "arg": arg, "pos": pos, "name_pos": key_pos.get(name) if key_pos else pos}
        if "name" in data and set(data) <= {"name", "arg", "pos", "name_pos", *CHECK_MODIFIERS}:
            return data  # already in model form
        names = [k for k in data if k not in CHECK_MODIFIERS]
        if len(names) != 1:
            if not names:
                raise ValueError("a check needs a name, e.g. {contains: \"text\"}")
            raise ValueError(f"one check per list item, found {len(names)}: {', '.join(map(str, names))}")
        name = names[0]
        out = {k: data[k] for k in CHECK_MODIFIERS if k in data}
        out["name"] = name
        out["arg"] = data[name]
        out["pos"] = getattr(data, "pos", None)
        key_pos = getattr(data, "key_pos", None)
        out["name_pos"] = key_pos.get(name) if key_pos else out["pos"]
        return out


class BargeIn(Strict):
    """The caller talks over the agent's answer (voice targets; text targets ignore it)."""

    after_ms: float = Field(ge=0, description="how far into the agent's answer the caller starts talking")
    say: str = Field(min_length=1)


class TurnSpec(Strict):
    """One caller turn of a scripted call."""

    caller: str | None = None
    silence: float | None = Field(default=None, ge=0, description="caller says nothing for this many seconds")
    dtmf: str | None = Field(default=None, pattern=r"^[0-9*#A-D]+$", description="keypad digits")
    barge_in: BargeIn | None = None
    expect: list[CheckSpec] = Field(default_factory=list)
    pos: Position | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _one_input(self) -> "TurnSpec":
        if (self.caller is not None) + (self.silence is not None) + (self.dtmf is not None) != 1:
            raise ValueError("a turn needs exactly one of: caller, silence, dtmf")
        if self.barge_in is not None and self.caller is None:
            raise ValueError("barge_in goes with a caller line (the caller's turn the agent answers)")
        return self


class TurnCount(Strict):
    """Bounds on how many caller turns a call took: `{max: 8}`, `{min: 3, max: 8}`."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _some_bound(self) -> "TurnCount":
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both, e.g. {max: 8}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self


ENDED_BY = ("caller", "agent", "max_turns")


class OutcomeSpec(Strict):
    """End-of-call state the call must reach."""

    intent: str | None = None
    slots: dict[str, Any] | None = None
    transferred: bool | None = None
    transfer_reason: str | None = Field(default=None, description="why the agent handed over, e.g. emergency")
    ended_by: Literal["caller", "agent", "max_turns"] | None = Field(
        default=None, description="who ended the call: caller, agent (hung up or transferred), max_turns")
    turns: int | TurnCount | None = Field(default=None, description="caller turns: exactly n, or {min:, max:}")
    booking_exists: bool | None = Field(
        default=None, description="the agent's backend holds (or, with false, holds no) new booking for this call")
    cancelled: bool | str | None = Field(
        default=None, description="a booking was really cancelled (true, or the booking number); false: none was")
    side_effects: dict[str, Any] | None = Field(
        default=None, description="the target's reported side effects include these values")

    @field_validator("turns")
    @classmethod
    def _turns_positive(cls, v: Any) -> Any:
        if isinstance(v, int) and v < 1:
            raise ValueError("a call has at least 1 caller turn")
        return v


class Budgets(Strict):
    """Latency budgets, in milliseconds: every turn (`turn_ms`) and the call's pace (p50/p95)."""

    first_token_ms: float | None = Field(default=None, gt=0)
    turn_ms: float | None = Field(default=None, gt=0)
    p50_turn_ms: float | None = Field(default=None, gt=0, description="median turn time of the call")
    p95_turn_ms: float | None = Field(default=None, gt=0, description="95th percentile turn time of the call")
    # measured on the audio by a voice target
    response_ms: float | None = Field(default=None, gt=0, description="caller stops talking → agent's first audio")
    p95_response_ms: float | None = Field(default=None, gt=0)
    stop_ms: float | None = Field(default=None, gt=0, description="barge-in → the agent stops talking")
    silence_ms: float | None = Field(default=None, gt=0, description="longest dead air inside an answer")


CALLER_GOALS = ("reservation", "cancellation", "question", "transfer")
# Slot names every built-in part knows (goal-driven facts, outcome slots, the slots check).
# A golden file names any other slots its agent uses in `slots:`.
SLOT_NAMES = ("date", "time", "party_size", "name", "phone", "booking_id")


class CallerModelSpec(Strict):
    """The LLM that plays goal-driven callers (`brain: llm`): any OpenAI-compatible endpoint.

    Set in a suite (`caller:`); `brain` there is the default for cases that do not choose.
    """

    brain: Literal["rules", "llm"] = "rules"
    base_url: str | None = None
    model: str | None = None
    api_key: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    temperature: float = Field(default=0.0, ge=0, le=2)
    seed: int | None = Field(default=None, description="sent to the model; with the case id, fixes its draws")
    timeout_s: float = Field(default=30.0, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)
    retries: int = Field(default=2, ge=0, le=10)


class CallerSpec(Strict):
    """A goal-driven caller: facts and a goal instead of a script; it answers what the agent asks.

    ```yaml
    caller: {goal: reservation, facts: {date: 明日, time: "19:00", party_size: 4, name: 山田}, max_turns: 10}
    ```
    """

    goal: Literal["reservation", "cancellation", "question", "transfer"]
    facts: dict[str, Any] = Field(default_factory=dict, description="what the caller knows, by slot name")
    question: str | None = Field(default=None, description="what a caller with goal: question asks")
    corrections: dict[str, Any] = Field(
        default_factory=dict, description="facts the caller changes when the agent first reads the booking back")
    flexible: bool = Field(default=True, description="accept another time when the agent offers one")
    brain: Literal["rules", "llm"] | None = Field(default=None, description="default: the suite's caller.brain")
    max_turns: int = Field(default=12, ge=1, le=200, description="caller turns before the call is stopped")
    persona: str | None = Field(default=None, description="for the llm brain: who the caller is, how they speak")
    language: str | None = Field(default=None, description="default: the case's language")
    pos: Position | None = Field(default=None, exclude=True)

    # filled in by the loader from the suite's `caller:` block
    _model: CallerModelSpec | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _goal_needs(self) -> "CallerSpec":
        if self.goal == "question" and not self.question:
            raise ValueError("a caller with goal: question needs `question:` (what to ask)")
        return self

    @property
    def model(self) -> CallerModelSpec | None:
        return self._model

    @property
    def resolved_brain(self) -> str:
        return self.brain or (self._model.brain if self._model is not None else "rules")


REDUCERS = ("all", "majority", "at_least_k", "pass@k", "mean_score")


class ReducerSpec(BaseModel):
    """How a case's repeats reduce to one pass/fail: `majority`, `{at_least_k: 2}`, `{mean_score: 0.8}`.

    all: every repeat passed · majority: more than half passed · at_least_k: at least k
    passed · pass@k: one of the first k repeats passed (k defaults to all) · mean_score:
    the mean check score reaches the threshold (default 0.8). Infra errors never count.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["all", "majority", "at_least_k", "pass@k", "mean_score"]
    value: float | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = {"name": data}
        elif isinstance(data, dict) and "name" not in data:
            if len(data) != 1:
                raise ValueError("a reducer is a name or one {name: value} pair, e.g. {at_least_k: 2}")
            (name, value), = data.items()
            data = {"name": name, "value": value}
        if isinstance(data, dict) and data.get("name") not in REDUCERS:
            import difflib

            hint = difflib.get_close_matches(str(data.get("name")), REDUCERS, n=1)
            more = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ValueError(f"unknown reducer {data.get('name')!r} (expected one of: {', '.join(REDUCERS)}{more})")
        return data

    @model_validator(mode="after")
    def _value_fits(self) -> "ReducerSpec":
        if self.name == "at_least_k" and (self.value is None or self.value < 1 or not float(self.value).is_integer()):
            raise ValueError("at_least_k needs a whole number k >= 1, e.g. {at_least_k: 2}")
        if self.name == "pass@k" and self.value is not None and (self.value < 1 or not float(self.value).is_integer()):
            raise ValueError("pass@k takes a whole number k >= 1, e.g. {pass@k: 3}")
        if self.name == "mean_score" and self.value is not None and self.value > 1:
            raise ValueError("mean_score takes a threshold between 0 and 1, e.g. {mean_score: 0.8}")
        if self.name in ("all", "majority") and self.value is not None:
            raise ValueError(f"the {self.name} reducer takes no value")
        return self

    def label(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value:g}"


class _Derived(dict):
    """What is worked out from a case and kept for reuse: its prompt's turn, its compiled checks.

    Equal to any other, so it never tells two cases apart, and left behind by pickle and
    deepcopy (compiled checks hold functions, which do not pickle): it is worked out again.
    A `model_copy` shares it, which is safe: each user checks an entry still fits the case.
    """

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Derived)

    def __reduce__(self) -> Any:
        return (_Derived, ())


def _same_items(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(map(operator.is_, a, b))


def _loader_attr(name: str) -> property:
    """`case._topic` and the other values the loader fills in, read and set like attributes.

    They live in pydantic's private-state dict, the one `model_copy` copies, but are not
    declared as PrivateAttr: pydantic would then build every default for every case it
    validates and serve each read through its slow `__getattr__`, which together cost more
    than validating the cases themselves on a large golden set. `model_post_init` sets
    them all in one go instead.
    """

    def get(self: "CaseSpec") -> Any:
        return self.__pydantic_private__[name]

    def set(self: "CaseSpec", value: Any) -> None:
        self.__pydantic_private__[name] = value

    return property(get, set)


def fault_text(name: Any, value: Any) -> str:
    """One fault of a `{name: value}` mapping as the "name:value" text a target reads."""
    return str(name) if value is None else f"{name}:{value}"


class CaseSpec(Strict):
    """One golden case: a whole call (`turns`) or a one-turn shorthand (`prompt`)."""

    id: str = Field(pattern=CASE_ID_PATTERN)
    title: str | None = None
    topic: str | None = None
    tags: list[str] = Field(default_factory=list)
    language: str | None = None
    turns: list[TurnSpec] | None = Field(default=None, min_length=1)
    prompt: str | None = None
    caller: CallerSpec | None = Field(default=None, description="a goal-driven caller instead of scripted turns")
    faults: list[str] = Field(default_factory=list,
                              description="faults the target injects during this call (chaos cases): a name, "
                                          "'name:value' or {name: value}, as in the target's own faults")
    expect: list[CheckSpec] = Field(default_factory=list)
    outcome: OutcomeSpec | None = None
    budgets: Budgets | None = None
    repeat: int | None = Field(default=None, ge=1, le=1000)
    reducer: ReducerSpec | None = Field(default=None, description="how repeats reduce to one verdict; default: the suite's")
    timeout_s: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)

    # Filled in by the loader (see `_loader_attr`): where the case was written and what it
    # inherits from its file.
    _file = _loader_attr("_file")
    _line = _loader_attr("_line")
    _col = _loader_attr("_col")
    _topic = _loader_attr("_topic")
    _tags = _loader_attr("_tags")
    _language = _loader_attr("_language")
    _source = _loader_attr("_source")

    @field_validator("faults", mode="before")
    @classmethod
    def _fault_mappings(cls, v: Any) -> Any:
        """`{latency: 800}` is "latency:800", as in a target's faults; names and values are
        checked by the target that runs the case, each at its own position (harness.targets.fault_errors)."""
        if not isinstance(v, list):
            return v
        out: list[Any] = []
        for item in v:
            if isinstance(item, dict):
                out += [fault_text(k, value) for k, value in item.items()]
            else:
                out.append(item)
        return out

    def model_post_init(self, context: Any, /) -> None:
        # the loader's values as a case that did not come from a file has them, in one dict
        object.__setattr__(self, "__pydantic_private__", {
            "_file": "", "_line": 0, "_col": 0, "_topic": "", "_tags": [], "_language": None, "_source": None,
            "_derived": _Derived(),
        })

    @property
    def _derived(self) -> dict[str, Any]:
        """Kept for reuse: `prompt_turn` (see call_turns) and `checks`, the checks the loader
        compiled, by (id(spec), scope), which harness.runner.compile_case takes over."""
        return self.__pydantic_private__["_derived"]

    def set_loaded(self, source: Position, topic: str, tags: list[str], language: str | None) -> None:
        """Set everything the loader knows about the case at once."""
        self.__pydantic_private__.update(_file=source.path, _line=source.line, _col=source.col, _topic=topic,
                                         _tags=tags, _language=language, _source=source)

    @model_validator(mode="after")
    def _turns_or_prompt(self) -> "CaseSpec":
        if (self.turns is not None) + (self.prompt is not None) + (self.caller is not None) == 1:
            return self
        given = [k for k in ("turns", "prompt", "caller") if getattr(self, k) is not None]
        if self.caller is None:
            raise ValueError("a case needs exactly one of: turns (a whole call) or prompt (one question)")
        raise ValueError("a goal-driven caller plays the whole call: give caller or turns or prompt, not "
                         + " and ".join(given))

    # resolved view ---------------------------------------------------------------
    @property
    def source(self) -> Position:
        state = self.__pydantic_private__
        pos = state["_source"]  # set by the loader together with _file, _line and _col
        return pos if pos is not None else Position(state["_file"], state["_line"], state["_col"])

    @property
    def resolved_topic(self) -> str:
        return self.__pydantic_private__["_topic"]

    @property
    def resolved_tags(self) -> list[str]:
        return self.__pydantic_private__["_tags"]

    @property
    def resolved_language(self) -> str | None:
        return self.__pydantic_private__["_language"]

    @property
    def call_turns(self) -> list[TurnSpec]:
        """The scripted caller turns; the prompt shorthand becomes one turn carrying `expect`.

        A goal-driven call (`caller:`) has no scripted turns: its caller decides each line.
        """
        if self.turns is not None:
            return self.turns
        if self.caller is not None:
            return []
        # Built once and kept: loading and compile_case both ask, and a TurnSpec costs a
        # validation. Built again if prompt or expect changed since.
        derived = self._derived
        turn = derived.get("prompt_turn")
        if turn is None or turn.caller != self.prompt or not _same_items(turn.expect, self.expect):
            turn = derived["prompt_turn"] = TurnSpec(caller=self.prompt, expect=self.expect)
        return [turn]

    @property
    def call_expect(self) -> list[CheckSpec]:
        """Checks on the whole call (empty for the prompt shorthand, whose expect is per turn)."""
        return self.expect if self.prompt is None else []


class GoldenFile(Strict):
    """A golden file: cases for one topic."""

    topic: str = Field(pattern=r"^[a-z][a-z0-9_\-]*$")
    tags: list[str] = Field(default_factory=list)
    language: str | None = None
    description: str | None = None
    slots: list[str] = Field(default_factory=list, description="slot names this file uses beyond the built-in ones")
    cases: list[CaseSpec] = Field(min_length=1)


class Selection(Strict):
    """Which cases a suite runs. Empty lists select everything."""

    topics: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list, description="a case must carry at least one of these")
    exclude_tags: list[str] = Field(default_factory=list)
    ids: list[str] = Field(default_factory=list, description="case id globs, e.g. rsv-*")


class Limits(Strict):
    """How hard the runner may push a target."""

    concurrency: int = Field(default=10, ge=1, le=10000)
    rpm: float | None = Field(default=None, gt=0, description="requests per minute")
    timeout_s: float = Field(default=30.0, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False, description="per request")
    case_timeout_s: float = Field(default=300.0, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False,
                                  description="per whole call")
    retries: int = Field(default=3, ge=0, le=20)
    backoff_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    breaker_threshold: int = Field(default=5, ge=1, description="consecutive infra failures that stop the run")


class TargetSpec(BaseModel):
    """`kind` picks the target; the other keys are checked by that target's own model."""

    model_config = ConfigDict(extra="allow")

    kind: str
    limits: Limits = Field(default_factory=Limits)


class StoreSpec(Strict):
    url: str | None = Field(default=None, description="SQLAlchemy URL; default sqlite:///.harness/history.db")


class OutputSpec(Strict):
    dir: str = "reports/"
    html: bool = True
    json_: bool = Field(default=True, alias="json")
    junit: bool = True

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class JudgeSpec(Strict):
    """The LLM judge: any OpenAI-compatible endpoint."""

    base_url: str
    model: str
    api_key: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    temperature: float = 0.0
    timeout_s: float = Field(default=60.0, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)
    concurrency: int = Field(default=8, ge=1, le=1000)
    repeats: int = Field(default=1, ge=1, le=15, description="judge each answer k times (majority / median)")
    when: Literal["always", "exact_passed"] = "exact_passed"
    max_calls: int | None = Field(default=None, ge=0, description="judge calls allowed per run")
    max_cost_usd: float | None = Field(default=None, ge=0, description="judge spend allowed per run")
    prices: dict[str, dict[str, float]] = Field(default_factory=dict)
    canaries: list[str] = Field(default_factory=list, description="files of labelled answers judged every run")
    cache: bool = True


class NotifySpec(Strict):
    """`notify:`: settings every destination shares, and one entry per destination (`slack:`,
    `datadog:`, `webhook:` …). Each entry is checked by its notifier's own settings model
    (`harness.notify`), with positions, like a target's keys."""

    report_url: str | None = Field(default=None, description="base URL where the HTML reports are published")
    redact: list[str] = Field(default_factory=list, description="extra regex patterns masked before sending")
    fail_on_error: bool = False
    # every other key: the notifier entries as written, by notifier name (checked by harness.notify)
    destinations: SkipJsonSchema[dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _entries(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        shared = {k: v for k, v in data.items() if k in ("report_url", "redact", "fail_on_error")}
        return {**shared, "destinations": {k: v for k, v in data.items() if k not in shared}}

    @field_validator("report_url", mode="before")
    @classmethod
    def _empty_url_is_none(cls, v: Any) -> Any:
        return None if v == "" else v

    @field_validator("redact")
    @classmethod
    def _valid_patterns(cls, v: list[str]) -> list[str]:
        import re

        for p in v:
            try:
                re.compile(p)
            except re.error as e:
                raise ValueError(f"{p!r} is not a valid regular expression ({e})") from None
        return v


class AnalysisSpec(Strict):
    """How a run is compared with its baseline and history."""

    baseline: Literal["accepted", "previous", "none"] = "accepted"
    window: int = Field(default=14, ge=2, le=365, description="trailing runs of the same suite")
    alpha: float = Field(default=0.05, gt=0, lt=1, description="significance level")
    min_pass_rate_drop: float = Field(default=0.1, ge=0, le=1)
    infra_error_rate: float = Field(default=0.2, ge=0, le=1, description="error share that makes a run infra")
    latency_shift: float = Field(default=0.5, ge=0, description="relative p95 change worth reporting")
    attribute: int = Field(default=0, ge=0, le=10_000,
                           description="a mixed run resends the reference's inputs for up to N moved cases "
                                       "(harness attribute; openai targets); 0: off")
    fallback_share: float = Field(default=0.1, ge=0, le=1,
                                  description="share of replies a fallback route served that makes a run infra "
                                              "(the primary was down, the service stayed up)")
    gate: Literal["checks", "verdict"] = Field(
        default="checks",
        description="what sets the exit code: the checks and the verdict (checks), or the verdict alone "
                    "(verdict: failing cases that did not move exit 0; for drift suites on live models)")


class TracingSpec(Strict):
    """OpenTelemetry traces of a run (`harness.tracing`): a trace per case and repeat, sent over
    OTLP/HTTP. Unset keys fall back on the standard OTEL_* environment variables."""

    enabled: bool = True
    endpoint: str | None = Field(default=None, description="OTLP/HTTP collector, e.g. http://collector:4318 "
                                                          "(default: OTEL_EXPORTER_OTLP_ENDPOINT)")
    headers: dict[str, SecretStr] = Field(default_factory=dict, description="sent to the collector; write ${ENV_VAR}")
    service_name: str | None = Field(default=None, description="default: OTEL_SERVICE_NAME, else harness")
    record_content: bool = Field(default=False, description="put what caller and agent said on the spans")
    trace_url: str | None = Field(default=None, description="a link to one trace, with {trace_id}, e.g. "
                                                           "https://jaeger.example.com/trace/{trace_id}")

    @field_validator("endpoint", "trace_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, v: Any) -> Any:
        return None if v == "" else v

    @field_validator("endpoint")
    @classmethod
    def _http_endpoint(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL such as http://127.0.0.1:4318")
        return v

    @field_validator("trace_url")
    @classmethod
    def _trace_template(cls, v: str | None) -> str | None:
        if v is not None and (not v.startswith(("http://", "https://")) or "{trace_id}" not in v):
            raise ValueError("expected an http(s) URL holding {trace_id}, e.g. https://jaeger.example.com/trace/{trace_id}")
        return v


class Suite(Strict):
    """A suite: what runs, against what, and where results go."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    description: str | None = None
    golden: list[str] = Field(min_length=1)
    select: Selection = Field(default_factory=Selection)
    target: TargetSpec
    repeat: int = Field(default=1, ge=1, le=1000,
                        description="calls per case; or {min, max}: min calls, more only where a case moved")
    repeat_max: SkipJsonSchema[int | None] = Field(default=None, ge=1, le=1000)  # from repeat: {min, max}
    reducer: ReducerSpec = Field(default_factory=lambda: ReducerSpec(name="all"),
                                 description="how a case's repeats reduce to one verdict (a case may override)")
    store: StoreSpec = Field(default_factory=StoreSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    schedule: str | None = None
    timezone: str | None = None
    judge: JudgeSpec | None = None
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    notify: NotifySpec = Field(default_factory=NotifySpec)
    budgets: Budgets | None = Field(default=None, description="latency budgets for every case (a case's own win)")
    caller: CallerModelSpec | None = Field(default=None, description="the model that plays goal-driven callers")
    objectives: list[ObjectiveSpec] = Field(default_factory=list, description="service level objectives over the history")
    budget_policy: BudgetPolicy = Field(default_factory=BudgetPolicy, description="what the error budget consumed means")
    tracing: TracingSpec | None = Field(default=None, description="OpenTelemetry traces of every call (off by default)")

    _file: str = PrivateAttr(default="")
    _root: str = PrivateAttr(default=".")
    _source: Any = PrivateAttr(default=None)  # harness.loading keeps the positioned YAML here

    @field_validator("golden", mode="before")
    @classmethod
    def _one_glob(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="before")
    @classmethod
    def _adaptive_repeat(cls, data: Any) -> Any:
        """`repeat: {min: 1, max: 5}`: `repeat` is the minimum, `repeat_max` the most a case gets."""
        if isinstance(data, dict) and isinstance(data.get("repeat"), dict):
            r = dict(data["repeat"])
            unknown = set(r) - {"min", "max"}
            if unknown or "max" not in r:
                raise ValueError("repeat: a number, or {min: N, max: M} (adaptive: min calls per case, up to max "
                                 "where a case moved)")
            lo, hi = r.get("min", 1), r["max"]
            if isinstance(lo, int) and isinstance(hi, int) and hi < lo:
                raise ValueError(f"repeat: max ({hi}) is below min ({lo})")
            data = {**data, "repeat": lo, "repeat_max": hi}
        return data

    @property
    def file(self) -> str:
        return self._file

    @property
    def root(self) -> str:
        return self._root
