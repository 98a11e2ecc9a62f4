"""What every caller brain shares: the move it makes and the surface the call driver calls.

A brain hears the agent's latest reply and decides the caller's next move. It never talks
to the target itself: the driver (`harness.calls`) plays each move, records it as a turn,
and stops the call when the brain hangs up, the agent ends the call, or `max_turns` passes.
Because every move lands in the transcript as an ordinary turn, a recorded call can be
replayed as a scripted one without the brain.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

from ..records import AgentReply

MoveKind = Literal["say", "dtmf", "silence", "hangup"]


@dataclass(slots=True)
class CallerMove:
    """One caller move. `last` means: hang up after the agent answers this one."""

    kind: MoveKind
    text: str = ""
    note: str = ""  # why the brain chose it (for debugging a brain, never checked)
    last: bool = False

    @classmethod
    def hangup(cls, note: str) -> "CallerMove":
        return cls("hangup", "", note)


class CallerBrain(ABC):
    """Decides the caller's side of a goal-driven call."""

    name: str = "brain"
    goal_reached: bool = False

    @abstractmethod
    async def next(self, agent: AgentReply | None) -> CallerMove:
        """The move after the agent's reply (`None` before the agent has said anything)."""

    async def aclose(self) -> None:
        """Release what the brain holds (an HTTP client)."""
        return None
