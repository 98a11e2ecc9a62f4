"""Import the built-in check modules so their `@check` registrations run."""

from . import latency, structure, text, voice  # noqa: F401
from ..judge import checks as _judge_checks  # noqa: F401
