"""The LLM judge: GEval / ConversationalGEval on any OpenAI-compatible model.

Public names are loaded on first use: this package is imported whenever the check
registry is (its checks, `harness.checks.judge`, read its errors), and neither SQLAlchemy's cache tables nor
deepeval should slow down `harness --help`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["JudgeError", "JudgeService", "Rubric", "Verdict", "load_rubrics"]

if TYPE_CHECKING:
    from ._errors import JudgeError
    from .rubrics import Rubric, load_rubrics
    from .service import JudgeService, Verdict

_WHERE = {
    "JudgeError": "._errors",
    "JudgeService": ".service",
    "Verdict": ".service",
    "Rubric": ".rubrics",
    "load_rubrics": ".rubrics",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        from importlib import import_module

        return getattr(import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
