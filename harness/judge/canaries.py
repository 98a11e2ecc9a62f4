"""Canaries: a few labelled answers (known good, known bad) the judge sees in every run.

If the judge stops agreeing with its own canaries, the judge moved, not the agent; the
analysis turns that into a `judge_drift` verdict instead of blaming the agent. A canary
file is YAML, either a list or a mapping with a `canaries:` list:

    canaries:
      - id: confirm-good
        input: 明日19時に4名で予約したいです
        answer: 明日19時に4名様ですね。お名前をお伺いしてもよろしいですか？
        rubric: confirms-reservation-details
        expected: pass
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ConfigError, ConfigErrors, Position
from ..yamlio import PositionFinder, decode_utf8, parse_yaml, validation_error_to_config_error

CANARY_EXPECTED = "a list of canaries, each {input, answer, criteria or rubric, expected: pass|fail}"


class Canary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    input: str | None = None
    answer: str
    criteria: str | None = None
    rubric: str | None = None
    evaluation_steps: list[str] = Field(default_factory=list)
    threshold: float | None = Field(default=None, ge=0, le=1)
    expected: Literal["pass", "fail"]

    @model_validator(mode="after")
    def _one_source(self) -> "Canary":
        if (self.criteria is None) == (self.rubric is None):
            raise ValueError("a canary needs exactly one of: criteria, rubric")
        return self


class _CanaryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    canaries: list[Canary] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class LoadedCanary:
    canary: Canary
    source: Position  # where it is written, for the drift evidence

    @property
    def label(self) -> str:
        return self.canary.id or f"{self.source.path}:{self.source.line}"


def load_canaries(paths: list[str], root: str | Path) -> list[LoadedCanary]:
    """Every canary of every file (paths relative to the project root); errors at file:line:col."""
    out: list[LoadedCanary] = []
    errors: list[ConfigError] = []
    for rel in paths:
        path = Path(rel) if Path(rel).is_absolute() else Path(root) / rel
        try:
            out.extend(_load_file(path, shown=rel))
        except ConfigError as e:
            errors.append(e)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)
    return out


def _load_file(path: Path, *, shown: str) -> list[LoadedCanary]:
    try:
        raw_bytes = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("canary file not found (judge.canaries lists it)", path=shown) from None
    except OSError as e:
        raise ConfigError(f"cannot read canary file: {e.strerror or e}", path=shown) from None
    data = parse_yaml(decode_utf8(raw_bytes, shown), shown)
    wrapped = {"canaries": data} if isinstance(data, list) else data
    if not isinstance(wrapped, dict):
        raise ConfigError(f"expected {CANARY_EXPECTED}", Position(shown, 1, 1))
    finder = PositionFinder(wrapped, shown)
    try:
        parsed = _CanaryFile.model_validate(dict(wrapped))
    except ValidationError as e:
        raise validation_error_to_config_error(e, finder, model=_CanaryFile) from None
    items = wrapped["canaries"]
    positions = getattr(items, "item_pos", [])
    return [
        LoadedCanary(c, positions[i] if i < len(positions) and positions[i] else Position(shown, 1, 1))
        for i, c in enumerate(parsed.canaries)
    ]
