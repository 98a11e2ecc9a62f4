"""Targets: what the harness calls (the embedded agent, an OpenAI-compatible model, a webhook)."""

from .base import CallContext, Conversation, Target, TargetConfig, create, register, registry

__all__ = ["CallContext", "Conversation", "Target", "TargetConfig", "create", "register", "registry"]
