"""Importing this module registers the built-in targets."""

from . import http, openai, sim, voice  # noqa: F401
