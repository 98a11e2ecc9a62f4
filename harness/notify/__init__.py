"""Notifications: a registry of destinations (Slack, Datadog, a signed JSON webhook, …),
redacted, de-duplicated, and never lost.

    warnings = deliver(run, results, suite.notify, store, summary=summary)  # after every result is stored
    sent, still = resend_pending(store, suite.notify)                       # `harness notify --pending`

See `base` for the notifier surface and registry, `dedup` for when a run is sent, `redact`
for what is masked, `pending` for what is kept when a destination is down. Every notifier
reads the run's one `RunSummary` (`harness.report.summary`).
"""

from .base import Notifier, NotifierConfig, Publication, create_all, register, registry
from .dedup import Decision, History, decide, load_history
from .deliver import deliver, deliver_async, notifiers_of, resend_pending, resend_pending_async
from .errors import DeliveryError
from .pending import Pending, list_pending
from .redact import Redactor
from .summary import RunSummary, derive_verdict, verdict_of

__all__ = [
    "Decision",
    "DeliveryError",
    "History",
    "Notifier",
    "NotifierConfig",
    "Pending",
    "Publication",
    "Redactor",
    "RunSummary",
    "create_all",
    "decide",
    "deliver",
    "deliver_async",
    "derive_verdict",
    "list_pending",
    "load_history",
    "notifiers_of",
    "register",
    "registry",
    "resend_pending",
    "resend_pending_async",
    "verdict_of",
]
