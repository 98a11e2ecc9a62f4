"""Targets: what the harness calls (the embedded agent, an OpenAI-compatible model, a webhook).

Each target is a plugin (see `base`): its settings, its validation, its calls, the case
faults it injects and the `harness run` options it adds.
"""

from .base import (
    CallContext,
    Conversation,
    Target,
    TargetConfig,
    TargetOption,
    cli_options,
    create,
    fault_errors,
    lookup,
    register,
    registry,
    target_class,
    unregister,
    with_cli_options,
)

__all__ = [
    "CallContext",
    "Conversation",
    "Target",
    "TargetConfig",
    "TargetOption",
    "cli_options",
    "create",
    "fault_errors",
    "lookup",
    "register",
    "registry",
    "target_class",
    "unregister",
    "with_cli_options",
]
