"""What a user writes: the pydantic models of golden files and suite files.

Models forbid unknown keys, so a misspelt key is an error with a position, never ignored.
Positions come from `harness.loading`, which keeps the YAML marks beside the data; the
models only hold them (`CheckSpec.pos`, `CaseSpec.source`) for errors raised later (for
example an unknown check name found when the checks are compiled).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from .errors import Position

CHECK_MODIFIERS = ("weight", "negate", "label")
CASE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$"


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


class TurnSpec(Strict):
    """One caller turn of a scripted call."""

    caller: str | None = None
    silence: float | None = Field(default=None, ge=0, description="caller says nothing for this many seconds")
    dtmf: str | None = Field(default=None, pattern=r"^[0-9*#A-D]+$", description="keypad digits")
    expect: list[CheckSpec] = Field(default_factory=list)
    pos: Position | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _one_input(self) -> "TurnSpec":
        given = [k for k in ("caller", "silence", "dtmf") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a turn needs exactly one of: caller, silence, dtmf")
        return self


class OutcomeSpec(Strict):
    """End-of-call state the call must reach."""

    intent: str | None = None
    slots: dict[str, Any] | None = None
    transferred: bool | None = None


class Budgets(Strict):
    """Latency budgets, in milliseconds, applied to every turn of the case."""

    first_token_ms: float | None = Field(default=None, gt=0)
    turn_ms: float | None = Field(default=None, gt=0)


class CaseSpec(Strict):
    """One golden case: a whole call (`turns`) or a one-turn shorthand (`prompt`)."""

    id: str = Field(pattern=CASE_ID_PATTERN)
    title: str | None = None
    topic: str | None = None
    tags: list[str] = Field(default_factory=list)
    language: str | None = None
    turns: list[TurnSpec] | None = Field(default=None, min_length=1)
    prompt: str | None = None
    expect: list[CheckSpec] = Field(default_factory=list)
    outcome: OutcomeSpec | None = None
    budgets: Budgets | None = None
    repeat: int | None = Field(default=None, ge=1, le=1000)
    timeout_s: float | None = Field(default=None, gt=0)

    # filled in by the loader
    _file: str = PrivateAttr(default="")
    _line: int = PrivateAttr(default=0)
    _col: int = PrivateAttr(default=0)
    _topic: str = PrivateAttr(default="")
    _tags: list[str] = PrivateAttr(default_factory=list)
    _language: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _turns_or_prompt(self) -> "CaseSpec":
        if (self.turns is None) == (self.prompt is None):
            raise ValueError("a case needs exactly one of: turns (a whole call) or prompt (one question)")
        return self

    # resolved view ---------------------------------------------------------------
    @property
    def source(self) -> Position:
        return Position(self._file, self._line, self._col)

    @property
    def resolved_topic(self) -> str:
        return self._topic

    @property
    def resolved_tags(self) -> list[str]:
        return self._tags

    @property
    def resolved_language(self) -> str | None:
        return self._language

    @property
    def call_turns(self) -> list[TurnSpec]:
        """The caller turns to play; the prompt shorthand becomes one turn carrying `expect`."""
        if self.turns is not None:
            return self.turns
        return [TurnSpec(caller=self.prompt, expect=self.expect)]

    @property
    def call_expect(self) -> list[CheckSpec]:
        """Checks on the whole call (empty for the prompt shorthand, whose expect is per turn)."""
        return self.expect if self.turns is not None else []


class GoldenFile(Strict):
    """A golden file: cases for one topic."""

    topic: str = Field(pattern=r"^[a-z][a-z0-9_\-]*$")
    tags: list[str] = Field(default_factory=list)
    language: str | None = None
    description: str | None = None
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
    timeout_s: float = Field(default=30.0, gt=0, description="per request")
    case_timeout_s: float = Field(default=300.0, gt=0, description="per whole call")
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


class Suite(Strict):
    """A suite: what runs, against what, and where results go."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    description: str | None = None
    golden: list[str] = Field(min_length=1)
    select: Selection = Field(default_factory=Selection)
    target: TargetSpec
    repeat: int = Field(default=1, ge=1, le=1000)
    store: StoreSpec = Field(default_factory=StoreSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    schedule: str | None = None
    timezone: str | None = None

    _file: str = PrivateAttr(default="")
    _root: str = PrivateAttr(default=".")

    @field_validator("golden", mode="before")
    @classmethod
    def _one_glob(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @property
    def file(self) -> str:
        return self._file

    @property
    def root(self) -> str:
        return self._root
