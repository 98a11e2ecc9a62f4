"""Structured state an agent reports with its replies, and the end-of-call outcome built from it.

Targets that talk to a real agent (a model told to answer in JSON, a webhook returning
intent and slots) report per-turn state in `AgentReply.state`; the outcome of the call is
the latest value of each field across the turns, because an agent usually reports only what
changed or what it knows so far.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..records import AgentReply, Outcome

STATE_KEYS = ("intent", "slots", "transferred", "transfer_reason", "ended", "side_effects")
_FENCED = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.DOTALL)


def split_structured(text: str) -> tuple[str, dict[str, Any]] | None:
    """(reply text, state) when `text` is a JSON object carrying a string `reply`, else None.

    The object may stand alone or fill a ```json fenced block. A JSON answer without a
    `reply` key is left alone: it is the answer itself, not an agent's envelope. The model's
    output is only parsed as data, never evaluated.
    """
    s = text.strip()
    if not s:
        return None
    m = _FENCED.match(s)
    if m:
        s = m.group(1).strip()
    if not (s.startswith("{") and s.endswith("}")):
        return None
    try:
        obj = json.loads(s)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("reply"), str):
        return None
    state = {k: v for k, v in obj.items() if k != "reply"}
    return obj["reply"], state


MAX_VERSION_CHARS = 100


def service_version_of(value: Any) -> str | None:
    """A service's self-reported version as stored: a short single-line string, or None."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = " ".join(str(value).split())
    return text[:MAX_VERSION_CHARS] or None


def ends_call(state: dict[str, Any]) -> bool:
    """An agent that hung up or handed the caller to a human ends the call."""
    return bool(state.get("ended")) or state.get("transferred") is True


def outcome_from(replies: list[AgentReply]) -> Outcome:
    """The end state: the last reported intent, the slots merged turn by turn, any transfer."""
    out = Outcome()
    for r in replies:
        st = r.state
        if st.get("intent") is not None:
            out.intent = str(st["intent"])
        if isinstance(st.get("slots"), dict):
            out.slots.update(st["slots"])
        if st.get("transferred") is not None:
            out.transferred = bool(st["transferred"])
        if st.get("transfer_reason") is not None:
            out.transfer_reason = str(st["transfer_reason"])
        if isinstance(st.get("side_effects"), dict):
            out.side_effects.update(st["side_effects"])
    if replies:
        out.ended_by = "agent" if replies[-1].ended else "caller"
    return out
