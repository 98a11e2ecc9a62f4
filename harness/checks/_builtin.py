"""Import the built-in check modules so their `@check` registrations run."""

from . import judge, latency, structure, text, voice  # noqa: F401
