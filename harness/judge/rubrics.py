"""Judge rubrics: versioned YAML data in `<root>/rubrics/`, not code (openai/evals' lesson).

A rubric names what a good answer does (`criteria`), optionally how to check it step by
step (`evaluation_steps`, which saves the judge call that would generate them), and the
score an answer needs (`threshold`, 0..1). Checks refer to a rubric by name; the cache
keys verdicts by the rubric's name, version and content, so editing a rubric re-judges.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ConfigError, ConfigErrors
from ..yamlio import PositionFinder, read_yaml, validation_error_to_config_error

RUBRIC_NAME = r"^[a-z0-9][a-z0-9_.\-]*$"
RUBRIC_EXPECTED = "a rubric mapping with name, version, criteria, evaluation_steps and threshold"


class Rubric(BaseModel):
    """One rubric file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=RUBRIC_NAME)
    version: str = Field(min_length=1, description="bump it when the meaning changes")
    description: str | None = None
    scope: Literal["answer", "call", "any"] = Field(default="any", description="one answer, a whole call, or both")
    criteria: str = Field(min_length=1)
    evaluation_steps: list[str] = Field(default_factory=list)
    threshold: float = Field(default=0.5, ge=0, le=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: object) -> object:
        return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    @field_validator("criteria")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("criteria must not be blank")
        return v

    @field_validator("evaluation_steps")
    @classmethod
    def _steps_not_blank(cls, v: list[str]) -> list[str]:
        if any(not s.strip() for s in v):
            raise ValueError("evaluation steps must not be blank")
        return v

    @property
    def digest(self) -> str:
        """A short hash of what the judge is told, so an edit without a version bump still re-judges."""
        return _digest(self.criteria, self.evaluation_steps)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}#{self.digest}"


@dataclass(frozen=True, slots=True)
class Criteria:
    """What one judge check asks, resolved: from a rubric or written inline."""

    ref: str  # rubric name@version#digest, or "inline#digest": part of the cache key
    criteria: str | None
    evaluation_steps: tuple[str, ...]
    threshold: float
    label: str  # the name shown to deepeval and in reasons

    @classmethod
    def inline(cls, criteria: str | None, evaluation_steps: list[str] | None, threshold: float | None) -> "Criteria":
        steps = tuple(evaluation_steps or ())
        return cls(ref=f"inline#{_digest(criteria or '', list(steps))}", criteria=criteria, evaluation_steps=steps,
                   threshold=0.5 if threshold is None else threshold, label="inline criteria")

    @classmethod
    def from_rubric(cls, rubric: Rubric, threshold: float | None) -> "Criteria":
        return cls(ref=rubric.ref, criteria=rubric.criteria, evaluation_steps=tuple(rubric.evaluation_steps),
                   threshold=rubric.threshold if threshold is None else threshold, label=rubric.name)


def rubrics_dir(root: str | Path) -> Path:
    return Path(root) / "rubrics"


def load_rubric(path: str | Path) -> Rubric:
    """Read one rubric file; mistakes are one-line ConfigErrors at file:line:col."""
    raw = read_yaml(path, expected=RUBRIC_EXPECTED)
    try:
        return Rubric.model_validate(dict(raw))
    except ValidationError as e:
        raise validation_error_to_config_error(e, PositionFinder(raw, str(path)), model=Rubric) from None


def load_rubrics(folder: str | Path) -> dict[str, Rubric]:
    """Every `*.yaml` / `*.yml` rubric in `folder` by name (an absent folder holds none).

    All bad files are reported together; two files with one name is an error too.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    found: dict[str, Rubric] = {}
    where: dict[str, Path] = {}
    errors: list[ConfigError] = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            rubric = load_rubric(path)
        except ConfigError as e:
            errors.append(e)
            continue
        if rubric.name in found:
            errors.append(ConfigError(f"rubric name {rubric.name!r} is also used by {where[rubric.name]}", path=str(path)))
            continue
        found[rubric.name] = rubric
        where[rubric.name] = path
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)
    return found


def unknown_rubric(name: str, known: dict[str, Rubric], folder: str | Path) -> str:
    """The one line for a rubric name that no file defines, with the closest match."""
    hint = difflib.get_close_matches(name, list(known), n=1)
    more = f"; did you mean {hint[0]!r}?" if hint else ""
    have = ", ".join(sorted(known)) or "none"
    return f"unknown rubric {name!r} (rubrics in {folder}: {have}{more})"


def _digest(criteria: str, steps: list[str]) -> str:
    blob = json.dumps([criteria, steps], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]
