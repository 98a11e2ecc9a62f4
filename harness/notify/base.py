"""The notifier surface: a registry of destinations, each one module with its own settings.

A suite's `notify:` block holds shared settings (`report_url`, `redact`, `fail_on_error`) and
one entry per destination, keyed by the notifier's name:

    notify:
      slack:   {webhook_url: "${SLACK_WEBHOOK_URL}", when: [regression, drift]}
      webhook: {url: "${HOOK_URL}", secret: "${HOOK_SECRET}"}

Each entry is checked by its notifier's own pydantic model, with file:line:col errors like
the rest of the suite. A notifier only turns a `Publication` (the run, its `RunSummary`, the
suite's history) into a JSON payload and sends a payload; when to send (`when:` and the
de-duplication in `dedup`), redaction, retries, and keeping what failed as pending are
shared, in `deliver`. Adding a destination is one module with a `@register`ed class and an
entry in `BUILTIN_MODULES` (or an import of that module): no edit to the pipeline.
"""

from __future__ import annotations

import difflib
import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from ..errors import ConfigError, ConfigErrors, Position
from ..records import CaseResult, RunInfo
from ..report.summary import RunSummary
from .dedup import History
from .errors import DeliveryError
from .redact import Redactor

NotifyWhen = Literal["always", "regression", "drift", "mixed", "infra", "judge_drift", "failing", "failed", "change"]
ALERTS: list[str] = ["regression", "drift", "mixed", "infra", "judge_drift", "change"]


class NotifierConfig(BaseModel):
    """Base of every notifier's settings (unknown keys are errors). `when` says which runs
    are sent (see `dedup` for the rules); each notifier sets its own default."""

    model_config = ConfigDict(extra="forbid")

    when: list[NotifyWhen] = Field(default_factory=lambda: list(ALERTS))


@dataclass
class Publication:
    """What a notifier reads to build its payload; the summary is the run's one `RunSummary`."""

    run: RunInfo
    results: list[CaseResult]
    summary: RunSummary
    history: History | None = None  # the suite's earlier runs, for "still failing (day 3)"
    report_url: str | None = None  # where the suite publishes its HTML reports
    link: str | None = None  # this run's report at that place
    notes: list[str] = field(default_factory=list)  # warnings a notifier adds while building


class Notifier(ABC):
    """One destination. Subclasses set `name`, `config_model`, and implement `payload` and `send`."""

    name: ClassVar[str]
    config_model: ClassVar[type[NotifierConfig]]
    description: ClassVar[str] = ""
    uses_history: ClassVar[bool] = False  # the payload names new / still failing / recovered cases

    def __init__(self, config: NotifierConfig) -> None:
        self.config = config

    @classmethod
    def is_off(cls, raw: dict[str, Any]) -> bool:
        """True when the entry is present but switched off, typically its credential given as
        `"${VAR:-}"` with the variable unset, so one suite serves machines without the secret."""
        return False

    def secrets(self) -> list[str]:
        """Every credential of this entry, masked in everything that leaves the machine.
        By default every `SecretStr` field of the config."""
        out = []
        for name in type(self.config).model_fields:
            value = getattr(self.config, name, None)
            if isinstance(value, SecretStr):
                out.append(value.get_secret_value())
            elif isinstance(value, dict):
                out.extend(v.get_secret_value() for v in value.values() if isinstance(v, SecretStr))
        return [s for s in out if s]

    def owns(self, destination: str) -> bool:
        """Whether a pending delivery kept under `destination` is this notifier's to re-send."""
        return destination == self.name

    @abstractmethod
    def payload(self, pub: Publication) -> dict[str, Any]:
        """The JSON payload for this run. The deliverer redacts it before it is sent or kept."""

    def alerts(self, pub: Publication) -> list[dict[str, Any]]:
        """Payloads sent beside the run's own, whatever its `when:` decided (Slack's page on a
        burning error budget, `when: [budget]`); each is redacted, sent and kept like it. None
        by default."""
        return []

    @abstractmethod
    async def send(self, payload: dict[str, Any], redactor: Redactor, *, retries: int, backoff_s: float,
                   timeout_s: float) -> list[DeliveryError]:
        """Send a payload; one DeliveryError (secrets scrubbed, `remaining` = what is still
        unsent) per part that did not get through, none when everything did."""

    async def resend(self, payload: dict[str, Any], created_at: float, redactor: Redactor, *, retries: int,
                     backoff_s: float, timeout_s: float) -> list[DeliveryError]:
        """Send a payload kept as pending since `created_at`."""
        return await self.send(payload, redactor, retries=retries, backoff_s=backoff_s, timeout_s=timeout_s)


def report_link(run: RunInfo, base: str | None) -> str | None:
    """Where the HTML report of this run is published, if the suite says where."""
    if not base:
        return None
    name = run.extra.get("report_file") if isinstance(run.extra, dict) else None
    name = name or f"{run.suite}-{run.run_id}.html"
    return base.rstrip("/") + "/" + str(name).lstrip("/")


_REGISTRY: dict[str, type[Notifier]] = {}

# The built-in notifiers by name and the module that registers each; a suite imports only the
# ones it uses (Datadog's client is heavy).
BUILTIN_MODULES = {"slack": ".slack", "datadog": ".datadog", "webhook": ".webhook"}


def register(cls: type[Notifier]) -> type[Notifier]:
    """Class decorator: make a notifier available under `notify.<name>`."""
    _REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Forget a notifier registered by `register` (a test's own notifier, once the test is done)."""
    _REGISTRY.pop(name, None)


def registry() -> dict[str, type[Notifier]]:
    """Every notifier, built-in ones included (for error hints and listings)."""
    for name in BUILTIN_MODULES:
        _lookup(name)
    return dict(_REGISTRY)


def _lookup(name: Any) -> type[Notifier] | None:
    if not isinstance(name, str):
        return None
    if name not in _REGISTRY and name in BUILTIN_MODULES:
        importlib.import_module(BUILTIN_MODULES[name], __package__)
    return _REGISTRY.get(name)


PositionOf = Callable[[tuple], "Position | None"]


def create_all(entries: dict[str, Any], position_of: PositionOf | None = None) -> list[Notifier]:
    """Build the notifiers of a `notify:` block's entries; every mistake is a ConfigError at
    its position (ConfigErrors when there are several). Entries switched off are left out."""
    out, errors = _build(entries, position_of)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)
    return out


def config_errors(entries: dict[str, Any], position_of: PositionOf | None = None) -> list[ConfigError]:
    """Every mistake in a `notify:` block's entries, each at its position, none raised
    (`harness validate`): the same checks `create_all` makes before a run."""
    return _build(entries, position_of)[1]


def suite_errors(suite: Any) -> list[ConfigError]:
    """Every mistake in a loaded suite's notifier entries, at its position in the suite file
    (the check `harness validate` adds to the loader's own)."""
    from ..loading import suite_position_of

    return config_errors(suite.notify.destinations, suite_position_of(suite))


def _build(entries: dict[str, Any], position_of: PositionOf | None) -> tuple[list[Notifier], list[ConfigError]]:
    from ..loading import validation_errors_to_config_errors

    out: list[Notifier] = []
    errors: list[ConfigError] = []
    for name, raw in entries.items():
        cls = _lookup(name)
        if cls is None:
            known = registry()
            hint = difflib.get_close_matches(str(name), list(known), n=1)
            more = f"; did you mean {hint[0]!r}?" if hint else ""
            where = _key_position(position_of, ("notify", name))
            errors.append(ConfigError(f"notify: unknown key or notifier {name!r} (expected report_url, redact, "
                                      f"fail_on_error or a notifier: {', '.join(sorted(known))}{more})", where))
            continue
        if isinstance(raw, dict) and cls.is_off(raw):
            continue
        try:
            config = cls.config_model.model_validate(dict(raw) if isinstance(raw, dict) else raw)
        except ValidationError as e:
            errors.extend(validation_errors_to_config_errors(e, position_of, prefix=("notify", name),
                                                             model=cls.config_model))
            continue
        out.append(cls(config))
    return out, errors


def _key_position(position_of: PositionOf | None, loc: tuple) -> Position | None:
    if position_of is None:
        return None
    key = getattr(position_of, "key", None)
    return key(loc) if callable(key) else position_of(loc)


__all__ = [
    "ALERTS",
    "BUILTIN_MODULES",
    "Notifier",
    "NotifierConfig",
    "NotifyWhen",
    "Publication",
    "config_errors",
    "create_all",
    "register",
    "registry",
    "report_link",
    "suite_errors",
    "unregister",
]
