"""The judge's one error type, in a module light enough to import before deepeval is."""

from __future__ import annotations

from ..errors import ExitCode, HarnessError


class JudgeError(HarnessError):
    """The judge could not give a verdict (unreachable, malformed output, misconfigured).

    Recorded as a check error: it says nothing about the agent's answer.
    """

    exit_code = ExitCode.UNREACHABLE
