"""Our side of a call, as one fingerprint per case: what decides whether a change is ours.

Every result stores `input_fp`: a hash of what reached the model from our side — the
target's own inputs (`Target.inputs()`: prompt text, model name and parameters, the
request template, the embedded agent's version) and the case's definition (its turns and
checks). The git sha stays as information; attribution reads this instead, so it works
outside a git checkout and on a day main got an unrelated commit.

Per case: the same inputs and different behaviour is the model's doing; different inputs
with the same model identity is ours; both at once is said as such (`mixed`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

__all__ = ["case_fingerprint", "stamp_inputs", "target_digest"]


def _dump(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":")).encode()


def target_digest(target: Any) -> bytes:
    """The target's share of every case's fingerprint."""
    return hashlib.sha256(_dump(target.inputs())).digest()


def case_fingerprint(digest: bytes, case: Any) -> str:
    """16 hex digits: the target's inputs and the case's own definition."""
    h = hashlib.sha256(digest)
    h.update(case.model_dump_json().encode())
    return h.hexdigest()[:16]


def stamp_inputs(target: Any, compiled: Iterable[Any]) -> None:
    """Give every compiled case its fingerprint, once per run (a few µs a case)."""
    digest = target_digest(target)
    for cc in compiled:
        cc.inputs = case_fingerprint(digest, cc.case)
