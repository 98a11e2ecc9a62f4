"""Kept for `dedup`'s imports: the run summary lives in `harness.report.summary`, the one
module that computes every figure a report or a notifier shows."""

from ..report.summary import FailingCase, RunSummary, derive_verdict, failing_ids, group_by_topic, verdict_of

__all__ = ["FailingCase", "RunSummary", "derive_verdict", "failing_ids", "group_by_topic", "verdict_of"]
