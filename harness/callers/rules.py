"""The rule-based caller brain: deterministic, offline, the one CI uses.

It hears what the agent asks (`_listen.hear`) and answers from its facts, one fact at a
time, the way a cooperative caller does. It corrects a wrong read-back, applies planned
corrections at the first confirmation, accepts (or refuses) an offered alternative time,
and, once its goal is reached, says it needs nothing else and hangs up. Asked for a fact it
does not have, it says it does not know: the agent must cope, and the call must still end.
"""

from __future__ import annotations

from typing import Any

from ..normalize import normalize_value
from ..records import AgentReply
from ._base import CallerBrain, CallerMove
from ._listen import ASKS, hear
from ._say import line, say_change, say_fact, say_no_but

_DONE_CUE = {"reservation": "booked", "cancellation": "cancelled"}


class RuleBrain(CallerBrain):
    name = "rules"

    def __init__(self, goal: str, facts: dict[str, Any], *, language: str = "ja", question: str | None = None,
                 corrections: dict[str, Any] | None = None, flexible: bool = True):
        self.goal = goal
        self.facts = dict(facts)
        self.lang = language if language in ("ja", "en") else "ja"
        self.question = question
        self.corrections = dict(corrections or {})
        self.flexible = flexible
        self.goal_reached = False
        self._opened = False
        self._closed = False
        self._last_said = ""
        self._agreed: set[str] = set()  # slots the caller let the agent change (an offered time)

    async def next(self, agent: AgentReply | None) -> CallerMove:
        move = self._decide(agent)
        if move.kind == "say":
            self._last_said = move.text
        return move

    # --- decisions ---------------------------------------------------------------------
    def _decide(self, agent: AgentReply | None) -> CallerMove:
        if agent is not None and agent.ended:
            return CallerMove.hangup("the agent ended the call")
        if self._closed:
            return CallerMove.hangup("goal reached and said goodbye")
        cue = hear(agent.text) if agent is not None else "how_help"
        if not self._opened:
            self._opened = True
            return self._open()
        self._note_goal(cue, agent)
        if self.goal_reached:
            if cue == "goodbye":
                return CallerMove.hangup("the agent said goodbye")
            self._closed = True
            return CallerMove("say", line("closing", self.lang), "goal reached", last=True)
        if cue == "kept":
            self._closed = True
            return CallerMove("say", line("closing", self.lang), "the agent kept the booking", last=True)
        if cue == "goodbye":
            return CallerMove.hangup("the agent said goodbye before the goal")
        if cue in ASKS:
            return self._answer(cue)
        if cue == "not_found":
            return self._answer("booking_id", note="the agent could not find the booking; the caller repeats it")
        if cue == "alternative":
            key = "accept_alt" if self.flexible else "refuse_alt"
            if self.flexible:
                self._agreed.add("time")
            return CallerMove("say", line(key, self.lang), "the agent offered another time")
        if cue in ("other_day", "other_time"):
            return CallerMove("say", line("only_day", self.lang), f"the agent asked for {cue.replace('_', ' ')}")
        if cue == "confirm_cancel":
            return CallerMove("say", line("yes_cancel" if self.goal == "cancellation" else "dont_know", self.lang),
                              "the agent asked to confirm the cancellation")
        if cue == "confirm":
            return self._confirm(agent)
        if cue == "hello":
            return CallerMove("say", line("here", self.lang), "the agent checked the line")
        if cue == "not_understood" and self._last_said:
            return CallerMove("say", self._last_said, "the agent did not understand; said again")
        if cue in ("how_help", "anything_else"):
            return self._open()
        return CallerMove("say", line("dont_know", self.lang), f"no rule for the agent's reply ({cue})")

    def _open(self) -> CallerMove:
        if self.goal == "question":
            return CallerMove("say", self.question or "", "asks the question")
        return CallerMove("say", line(f"open_{self.goal}", self.lang), f"states the goal: {self.goal}")

    def _note_goal(self, cue: str, agent: AgentReply | None) -> None:
        if self.goal_reached:
            return
        done = _DONE_CUE.get(self.goal)
        if done is not None and cue == done:
            self.goal_reached = True
        elif self.goal == "transfer" and (cue == "transfer" or (agent is not None and agent.state.get("transferred"))):
            self.goal_reached = True
        elif self.goal == "question" and cue in ("anything_else", "unknown", "goodbye"):
            self.goal_reached = True  # the agent answered and moved on

    def _answer(self, slot: str, note: str = "") -> CallerMove:
        if slot in self.facts:
            return CallerMove("say", say_fact(slot, self.facts[slot], self.lang), note or f"the agent asked for {slot}")
        return CallerMove("say", line("dont_know", self.lang), f"the agent asked for {slot}, which the caller does not know")

    def _confirm(self, agent: AgentReply | None) -> CallerMove:
        if self.corrections:
            slot, value = next(iter(self.corrections.items()))
            del self.corrections[slot]
            self.facts[slot] = value
            return CallerMove("say", say_change(slot, value, self.lang), f"planned correction: {slot}")
        wrong = self._wrong_slot(agent)
        if wrong is not None:
            return CallerMove("say", say_no_but(wrong, self.facts[wrong], self.lang), f"the agent read back a wrong {wrong}")
        return CallerMove("say", line("yes", self.lang), "the read-back matches the caller's facts")

    def _wrong_slot(self, agent: AgentReply | None) -> str | None:
        """A slot the agent reports with a value other than the caller's (when it reports slots)."""
        slots = agent.state.get("slots") if agent is not None else None
        if not isinstance(slots, dict):
            return None
        for key, mine in self.facts.items():
            if key in self._agreed or (key == "date" and not _is_iso(mine)):
                continue  # "明日" cannot be compared with the agent's ISO date
            if key in slots and normalize_value(key, slots[key]) != normalize_value(key, mine):
                return key
        return None


def _is_iso(value: Any) -> bool:
    s = str(value)
    return len(s) == 10 and s[4] == "-" and s[7] == "-"
