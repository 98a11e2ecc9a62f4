"""History store: every run and case result, in SQLite by default or any SQLAlchemy URL.

    store = Store.open(None, root=project_root)      # <root>/.harness/history.db
    store.start_run(info)
    with ResultWriter(store, info.run_id) as writer:  # group commit, off the event loop
        writer.add(result)
    store.finish_run(info.run_id, status="complete", ended=..., exit_code=0, counts=...)

The store owns every table and every statement: the features built on it call named
methods (`store.locks`, `store.schedule_state`, `store.notifications`, `store.baselines`,
`store.trends`, `store.judge_cache()`, …) and never see SQLAlchemy.
"""

from .features import BaselineRow, Pending
from .locks import LockInfo
from .migrations import MIGRATIONS
from .schema import SCHEMA_VERSION
from .store import Store, StoreError, default_url, redact_url, scrub_secrets
from .writer import ResultWriter

__all__ = [
    "BaselineRow",
    "LockInfo",
    "Pending",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ResultWriter",
    "Store",
    "StoreError",
    "default_url",
    "redact_url",
    "scrub_secrets",
]
