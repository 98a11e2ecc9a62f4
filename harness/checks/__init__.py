"""Checks: exact checks on text, structure and latency, and (later) judges."""

from .base import CheckInfo, CompiledCheck, Score, Subject, check, compile_check, registry

__all__ = ["CheckInfo", "CompiledCheck", "Score", "Subject", "check", "compile_check", "registry"]
