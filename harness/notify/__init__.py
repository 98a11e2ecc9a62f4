"""Notifications: Slack and Datadog, redacted, de-duplicated, and never lost.

    warnings = deliver(run, results, suite.notify, store)   # after every result is stored
    sent, still = resend_pending(store, suite.notify)       # `harness notify --pending`

See `dedup` for when a Slack message is sent, `redact` for what is masked, `pending` for
what is kept when a destination is down.
"""

from .dedup import Decision, History, decide, load_history
from .deliver import deliver, deliver_async, resend_pending, resend_pending_async
from .errors import DeliveryError
from .pending import Pending, list_pending
from .redact import Redactor
from .summary import RunSummary, derive_verdict, summarize, verdict_of

__all__ = [
    "Decision",
    "DeliveryError",
    "History",
    "Pending",
    "Redactor",
    "RunSummary",
    "decide",
    "deliver",
    "deliver_async",
    "derive_verdict",
    "list_pending",
    "load_history",
    "resend_pending",
    "resend_pending_async",
    "summarize",
    "verdict_of",
]
