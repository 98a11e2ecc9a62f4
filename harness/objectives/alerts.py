"""When a budget is worth paging about (`notify.slack.when: [budget]`), and the message.

Compared with the previous settled run of the suite (the one `notify.dedup` compares with),
an objective pages when

- a fast burn starts: a `page` burn alert fires now and did not before, or
- the policy's word crosses a threshold upwards (ok → slow down → freeze → post-mortem);

and it gets one recovery message when it was burning or past a threshold before and is back
to ok now. Anything else (still freezing, still burning, too little data) sends nothing: the
team heard it already. A missed objective is never a verdict class.
"""

from __future__ import annotations

from typing import Any

from .budget import WORDS
from .lines import line, objective_results, pct


def _state(d: dict[str, Any]) -> tuple[int, bool] | None:
    word = d.get("word")
    if word not in WORDS:  # no data, too little data, a mean: nothing to page about either way
        return None
    return WORDS.index(word), bool(d.get("fast_burn"))


def budget_changes(current: dict[str, Any] | None, previous: dict[str, Any] | None) -> tuple[list[dict], list[dict]]:
    """(objectives to page about, objectives recovered) between two runs' `extra`."""
    before = {d.get("name"): d for d in objective_results(previous)}
    pages, recovered = [], []
    for d in objective_results(current):
        now = _state(d)
        if now is None:
            continue
        old = _state(before[d["name"]]) if d.get("name") in before else None
        level, fast = now
        old_level, old_fast = old if old is not None else (0, False)
        if (fast and not old_fast) or level > old_level:
            pages.append(d)
        elif old is not None and (old_level > 0 or old_fast) and level == 0 and not fast:
            recovered.append(d)
    return pages, recovered


def _esc(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def budget_message(run: Any, previous: Any, mention: str | None = None) -> dict[str, Any] | None:
    """The Slack message (`{"text", "blocks"}`) for this run's budget changes, or None."""
    pages, recovered = budget_changes(run.extra if isinstance(run.extra, dict) else None,
                                      previous.extra if previous is not None and isinstance(previous.extra, dict) else None)
    if not pages and not recovered:
        return None
    if pages:
        worst = max((d.get("word") for d in pages), key=lambda w: WORDS.index(w) if w in WORDS else 0)
        fast = any(d.get("fast_burn") for d in pages)
        header = f":fire: {run.suite}: error budget {'burning fast' if fast else worst}"
    else:
        header = f":white_check_mark: {run.suite}: error budget recovered"
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": header[:150], "emoji": True}}]
    if pages:
        lead = "*" + _esc(f"{len(pages)} objective{'s' if len(pages) != 1 else ''} need attention") + "*"
        if mention:
            lead = f"{mention} {lead}"
        text = "\n".join(f"• {_esc(line(d))}" for d in pages[:20])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"{lead}\n{text}"[:3000]}})
    if recovered:
        text = "\n".join(f"• {_esc(d['name'])}: back to ok, budget {pct(d.get('budget_left'))} left over "
                         f"{_esc(d.get('window'))}" for d in recovered[:20])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Recovered*\n{text}"[:3000]}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _esc(
        f"run {run.run_id} · objectives are not verdicts: `harness slo status` for every budget")}]})
    names = ", ".join(d["name"] for d in pages) or ", ".join(d["name"] for d in recovered)
    return {"text": f"{header}: {names}"[:300], "blocks": blocks}
