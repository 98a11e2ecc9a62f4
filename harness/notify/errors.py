"""The one error a destination raises when a delivery did not get through."""

from __future__ import annotations

from typing import Any

from ..errors import HarnessError


class DeliveryError(HarnessError):
    """A destination refused or could not be reached after its retries.

    `remaining` is the part of the payload still to send (for Slack, the thread replies
    when the summary already went out), so a re-send never posts the same message twice.
    The message never holds a secret: callers pass it through `Redactor.scrub` first.
    """

    def __init__(self, destination: str, detail: str, *, remaining: dict[str, Any] | None = None,
                 attempts: int = 1, status: int | None = None) -> None:
        self.destination = destination
        self.detail = detail
        self.remaining = remaining
        self.attempts = attempts
        self.status = status
        super().__init__(f"{destination}: {detail}")
