"""Slack: one short Block Kit summary per run, details in a thread.

Two ways in, both through slack-sdk:

- **Bot token + channel** (`AsyncWebClient.chat_postMessage`): the summary is posted, then
  the details (every failing case, changed cases, evidence) go in a thread reply under it,
  so the channel shows one message per run.
- **Incoming webhook** (`AsyncWebhookClient`): a webhook cannot learn the `ts` of what it
  posted, so it cannot thread. The summary then carries a compact details section and says
  that the full list is in the report.

Slack rejects a message with more than 50 blocks, a section text over 3,000 characters or
a header over 150, and cuts fallback text; every list here is cut to fit with
"… and N more", so a 5,000-case run still posts. Model output is untrusted: `&`, `<`, `>`
are escaped, so an answer holding `<!channel>` cannot ping anyone.

Retries use slack-sdk's own handlers: rate limits (429, honouring Retry-After), connection
errors and server errors (500/503). slack-sdk's webhook client consults handlers only for
429 and connection errors, and the Web API client's server-error handler only for 500/503,
so the other 5xx answers get the same backoff from a small loop here. The clients get a
quiet logger: slack-sdk logs request URLs at INFO when retrying, and a webhook URL is a
secret.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Literal

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from pydantic import Field, SecretStr

from ..records import RunInfo
from ..report.summary import FailingCase, RunSummary, group_by_topic, rate_text
from .base import ALERTS, Notifier, NotifierConfig, NotifyWhen, Publication, register, report_link
from .dedup import History
from .errors import DeliveryError
from .redact import Redactor

MAX_BLOCKS = 50
SECTION_TEXT = 3000
HEADER_TEXT = 150
FALLBACK_TEXT = 4000
CONTEXT_ELEMENTS = 10
BUTTON_URL = 3000
TOP = 10  # cases listed per group in the summary
LINE = 280  # characters of one case line in the summary
DETAIL_LINE = 600  # … in the thread

_QUIET = logging.getLogger("harness.notify.slack_sdk")
_QUIET.setLevel(logging.WARNING)


# `budget`: page on an error budget burning fast or crossing a policy threshold, once, and a
# recovery message (harness.objectives.alerts); Slack's own, beside the run's summary
SlackWhen = Literal[NotifyWhen, "budget"]


class SlackSpec(NotifierConfig):
    """`notify.slack`: an incoming webhook, or a bot token and a channel (details in a thread)."""

    when: list[SlackWhen] = Field(default_factory=lambda: list(ALERTS))
    webhook_url: SecretStr | None = None
    token: SecretStr | None = None
    channel: str | None = None
    api_url: str | None = Field(default=None, description="Slack Web API base URL override (proxies, tests)")
    mention: str | None = None


# ---------------------------------------------------------------- text helpers


def esc(text: Any) -> str:
    """Slack mrkdwn escaping: the three characters Slack itself asks to escape."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def lines_text(title: str, lines: list[str], limit: int = SECTION_TEXT) -> str:
    """`title` and as many lines as fit in `limit`, then "… and N more"."""
    out = title
    for i, line in enumerate(lines):
        after = len(lines) - i - 1
        # keep room for the "… and N more" line a later cut would need
        reserve = len(f"\n… and {after} more") if after else 0
        if len(out) + 1 + len(line) + reserve > limit:
            return out + f"\n… and {len(lines) - i} more"
        out += "\n" + line
    return out


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut_block(text, SECTION_TEXT)}}


def cut_block(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def context(parts: list[str]) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": cut_block(p, 3000)} for p in parts[:CONTEXT_ELEMENTS] if p],
    }


pct = rate_text


def delta_text(d: float | None) -> str:
    if d is None:
        return "no baseline"
    pts = d * 100
    sign = "+" if pts > 0 else ("−" if pts < 0 else "±")
    return f"{sign}{abs(pts):.1f} pts vs baseline"


def case_line(c: FailingCase, label: str | None, limit: int) -> str:
    head = f"• `{esc(c.case_id)}` ({esc(c.topic)})"
    if label:
        head += f" — {label}"
    if c.trace is not None:  # the case's OpenTelemetry trace: a link when the suite names a trace URL
        head += f" <{esc(c.trace.url)}|trace>" if c.trace.url else f" trace `{c.trace.trace_id}`"
    return head + f": {esc(cut(c.reason, limit))}"


# ---------------------------------------------------------------- message building


def _topic_lines(summary: RunSummary) -> list[str]:
    out = []
    for t in summary.topics:
        line = f"`{esc(t.topic)}` {pct(t.pass_rate)} ({delta_text(t.delta)})"
        if t.infra_errors:
            line += f" · {t.infra_errors} infra errors"
        out.append(line)
    return out


def _counts_line(summary: RunSummary) -> str:
    return summary.counts_text()


def _failing_groups(summary: RunSummary, history: History | None, limit: int, top: int | None) -> list[str]:
    """Sections: new failures, still failing, recovered, infra errors, changed cases."""
    texts = []
    new_ids = history.new if history else sorted(summary.failing)
    still_ids = history.still if history else []
    new = [summary.failing[c] for c in new_ids if c in summary.failing]
    still = [summary.failing[c] for c in still_ids if c in summary.failing]

    def take(items: list[str]) -> list[str]:
        if top is None or len(items) <= top:
            return items
        return items[:top] + [f"… and {len(items) - top} more"]

    if new:
        title = "*New failures*" if history and history.previous else "*Failing*"
        texts.append(lines_text(f"{title} ({len(new)})", take([case_line(c, None, limit) for c in new])))
    if still:
        lines = [case_line(c, history.streaks[c.case_id].label(), limit) for c in still]
        texts.append(lines_text(f"*Still failing* ({len(still)})", take(lines)))
    if history and history.recovered:
        lines = [f"• recovered: `{esc(c)}`" for c in history.recovered]
        texts.append(lines_text(f"*Recovered* ({len(history.recovered)})", take(lines)))
    if summary.erroring:
        errs = list(summary.erroring.values())
        lines = [case_line(c, None, limit) for c in errs]
        texts.append(lines_text(f"*Infra errors* ({len(errs)}, not counted as failures)", take(lines)))
    changed = summary.changed_cases
    if changed:
        lines = []
        for ch in changed:
            line = f"• `{esc(ch.get('case_id', '?'))}` ({esc(ch.get('topic', '?'))}): {esc(cut(ch.get('change', ''), limit))}"
            if top is None and (ch.get("before") or ch.get("after")):
                line += f"\n   before: {esc(cut(ch.get('before') or '–', limit))}\n   after: {esc(cut(ch.get('after') or '–', limit))}"
            lines.append(line)
        texts.append(lines_text(f"*Changed against the baseline* ({len(lines)})", take(lines)))
    return texts


def _evidence_text(summary: RunSummary, top: int | None) -> str | None:
    ev = summary.evidence
    if not ev:
        return None
    lines = [f"• _{esc(e.kind)}_: {esc(cut(e.detail, LINE))}" for e in ev]
    if top is not None and len(lines) > top:
        lines = lines[:top] + [f"… and {len(ev) - top} more"]
    return lines_text("*Evidence*", lines)


def fit_blocks(blocks: list[dict[str, Any]], note: str = "see the report") -> list[dict[str, Any]]:
    """At most 50 blocks: the tail is replaced by one block saying how many were left out."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    kept = blocks[: MAX_BLOCKS - 1]
    return kept + [section(f"… and {len(blocks) - len(kept)} more sections; {note}")]


def build_summary(
    run: RunInfo,
    summary: RunSummary,
    history: History | None,
    spec: SlackSpec,
    report_url: str | None,
    *,
    threaded: bool,
) -> dict[str, Any]:
    """The summary message: `{"text": fallback, "blocks": [...]}`."""
    cls = summary.verdict_class
    emoji = cls.emoji
    headline = summary.headline
    header = cut(f"{emoji} {run.suite}: {cls}", HEADER_TEXT)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}}]
    lead = f"*{esc(cut(headline, 1000))}*" if headline else f"*{cls}*"
    if spec.mention and not cls.healthy:
        lead = f"{spec.mention} {lead}"  # the suite's own text: a mention such as <!subteam^ID>
    blocks.append(section(lead))
    meta = [f"run `{esc(run.run_id)}`", _counts_line(summary)]
    if run.model:
        meta.append(f"model `{esc(run.model)}`")
    if run.target.get("kind"):
        meta.append(f"target {esc(run.target['kind'])}")
    if run.git_sha:
        meta.append(f"commit `{esc(run.git_sha[:10])}`")
    if summary.baseline_run:
        meta.append(f"baseline `{esc(summary.baseline_run)}`")
    blocks.append(context([" · ".join(meta)]))
    topic_lines = _topic_lines(summary)
    if topic_lines:
        blocks.append(section(lines_text("*Pass rate by topic*", topic_lines)))
    groups = _failing_groups(summary, history, LINE, TOP)
    if groups:
        blocks.append({"type": "divider"})
        blocks.extend(section(t) for t in groups)
    evidence = _evidence_text(summary, 3)
    if evidence:
        blocks.append(section(evidence))
    if not threaded:
        details = _webhook_details(summary, history)
        if details:
            blocks.append(section(details))
    link = report_link(run, report_url)
    if link and len(link) <= BUTTON_URL:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open the report"}, "url": link,
                     "action_id": "open_report"}
                ],
            }
        )
    if threaded:
        note = "Every failing case, change and piece of evidence is in the thread."
    else:
        note = "Full details are in the report (an incoming webhook cannot post a thread; use a bot token for one)."
    blocks.append(context([note]))
    fallback = cut(f"{emoji} {run.suite}: {cls} — {headline or _counts_line(summary)}", FALLBACK_TEXT)
    return {"text": fallback, "blocks": fit_blocks(blocks)}


def _webhook_details(summary: RunSummary, history: History | None) -> str | None:
    """A compact list of the cases the summary had no room for (webhook mode only)."""
    shown = set()
    if history:
        shown.update(history.new[:TOP])
        shown.update(history.still[:TOP])
    else:
        shown.update(sorted(summary.failing)[:TOP])
    rest = [c for cid, c in sorted(summary.failing.items()) if cid not in shown]
    if not rest:
        return None
    lines = [f"`{esc(c.case_id)}`" for c in rest]
    text = "*More failing cases*: " + ", ".join(lines)
    if len(text) > SECTION_TEXT:
        out, n = "*More failing cases*: ", 0
        for line in lines:
            if len(out) + len(line) + 40 > SECTION_TEXT:
                break
            out += ("" if n == 0 else ", ") + line
            n += 1
        text = out + f" … and {len(lines) - n} more"
    return text


def build_thread(run: RunInfo, summary: RunSummary, history: History | None) -> list[dict[str, Any]]:
    """The thread replies: everything, grouped by topic, each message within Slack's limits."""
    blocks: list[dict[str, Any]] = []
    failing = list(summary.failing.values())
    for topic, cases in group_by_topic(failing).items():
        lines = []
        for c in cases:
            label = history.streaks[c.case_id].label() if history and c.case_id in history.streaks else None
            lines.append(case_line(c, label, DETAIL_LINE))
        blocks.extend(_chunked_sections(f"*{esc(topic)}*: failing ({len(cases)})", lines))
    groups = _failing_groups(summary, history, DETAIL_LINE, None)
    # the failing lists are above, per topic; keep recoveries, infra errors and changes
    for text in groups:
        if text.startswith(("*Recovered*", "*Infra errors*", "*Changed against the baseline*")):
            blocks.append(section(text))
    evidence = _evidence_text(summary, None)
    if evidence:
        blocks.append(section(evidence))
    if not blocks:
        return []
    text = cut(f"Details of run {run.run_id} ({_counts_line(summary)})", FALLBACK_TEXT)
    return [{"text": text, "blocks": fit_blocks(blocks, "the report has every case")}]


def _chunked_sections(title: str, lines: list[str]) -> list[dict[str, Any]]:
    """Consecutive sections holding all `lines`, each within the section limit."""
    out, current = [], title
    for line in lines:
        line = cut_block(line, SECTION_TEXT - len(title) - 2)
        if len(current) + 1 + len(line) > SECTION_TEXT:
            out.append(section(current))
            current = title + " (continued)"
        current += "\n" + line
    out.append(section(current))
    return out


# ---------------------------------------------------------------- sending


def _handlers(retries: int, backoff_s: float, *, server_errors: bool = True) -> list[Any]:
    calc = BackoffRetryIntervalCalculator(backoff_factor=backoff_s)
    handlers = [
        AsyncRateLimitErrorRetryHandler(max_retry_count=retries),
        AsyncConnectionErrorRetryHandler(max_retry_count=retries, interval_calculator=calc),
    ]
    if server_errors:
        handlers.append(AsyncServerErrorRetryHandler(max_retry_count=retries, interval_calculator=calc))
    return handlers


async def send(
    payload: dict[str, Any],
    spec: SlackSpec,
    redactor: Redactor,
    *,
    retries: int = 3,
    backoff_s: float = 1.0,
    timeout_s: float = 30.0,
) -> dict[str, Any]:
    """Post a payload from `SlackNotifier.payload`; returns what Slack said (channel, ts).

    Raises DeliveryError (secrets scrubbed) with `remaining` set to what is still unsent.
    """
    if spec.token and spec.channel:
        return await _send_bot(payload, spec, redactor, retries, backoff_s, timeout_s)
    if spec.webhook_url:
        return await _send_webhook(payload, spec, redactor, retries, backoff_s, timeout_s)
    raise DeliveryError("slack", "neither webhook_url nor token + channel is set in notify.slack", remaining=payload)


async def _with_backoff(call, retries: int, backoff_s: float, retry_status) -> Any:
    """Run `call` again (with backoff) while it fails with a status slack-sdk does not retry."""
    attempt = 0
    while True:
        try:
            return await call()
        except _Retryable as exc:
            if attempt >= retries or not retry_status(exc.status):
                raise
            await asyncio.sleep(min(backoff_s * (2**attempt), 30.0))
            attempt += 1


class _Retryable(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(detail)


async def _send_webhook(payload, spec, redactor, retries, backoff_s, timeout_s) -> dict[str, Any]:
    client = AsyncWebhookClient(
        url=spec.webhook_url.get_secret_value(),
        timeout=max(1, int(timeout_s)),
        logger=_QUIET,
        # 5xx are retried below, for every status: whether slack-sdk's server-error handler
        # applies to webhooks differs between its releases (3.48 does, older ones did not),
        # and both at once would send each message (retries + 1)² times
        retry_handlers=_handlers(retries, backoff_s, server_errors=False),
    )
    messages = list(payload.get("messages") or [])
    # a webhook cannot thread: replies left over from a bot-mode payload go as plain messages
    messages += list(payload.get("thread") or [])
    for i, message in enumerate(messages):

        async def post(message=message):
            resp = await client.send_dict(dict(message, unfurl_links=False))
            if resp.status_code >= 500:
                raise _Retryable(resp.status_code, f"HTTP {resp.status_code}")
            return resp

        try:
            resp = await _with_backoff(post, retries, backoff_s, lambda s: s >= 500)
        except _Retryable as exc:
            raise _failed(payload, messages[i:], redactor, f"webhook answered {exc.detail}", retries + 1, exc.status)
        except Exception as exc:  # aiohttp / OS errors after slack-sdk's own retries
            raise _failed(payload, messages[i:], redactor, _one_line(exc), retries + 1, None)
        if resp.status_code != 200:
            body = cut(resp.body or "", 200)
            attempts = retries + 1 if resp.status_code == 429 else 1  # slack-sdk retried the 429s
            raise _failed(payload, messages[i:], redactor, f"webhook answered HTTP {resp.status_code} {body}".strip(),
                          attempts, resp.status_code)
    return {"channel": None, "ts": None}


async def _send_bot(payload, spec, redactor, retries, backoff_s, timeout_s) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"token": spec.token.get_secret_value(), "timeout": max(1, int(timeout_s)),
                              "logger": _QUIET, "retry_handlers": _handlers(retries, backoff_s)}
    if spec.api_url:
        kwargs["base_url"] = spec.api_url
    client = AsyncWebClient(**kwargs)
    channel = payload.get("channel") or spec.channel
    thread_ts = payload.get("thread_ts")
    try:
        for message in payload.get("messages") or []:
            resp = await _post_bot(client, channel, message, None, retries, backoff_s, redactor, payload, "summary")
            channel, thread_ts = resp.get("channel") or channel, resp.get("ts")
        replies = list(payload.get("thread") or [])
        for i, message in enumerate(replies):
            remaining = {"mode": "bot", "messages": [], "thread": replies[i:], "thread_ts": thread_ts,
                         "channel": channel}
            await _post_bot(client, channel, message, thread_ts, retries, backoff_s, redactor, remaining, "thread reply")
    finally:
        session = getattr(client, "session", None)
        if session is not None and not session.closed:
            await session.close()
    return {"channel": channel, "ts": thread_ts}


async def _post_bot(client, channel, message, thread_ts, retries, backoff_s, redactor, remaining, what) -> Any:
    async def post():
        try:
            return await client.chat_postMessage(channel=channel, text=message.get("text", ""),
                                                 blocks=message.get("blocks"), thread_ts=thread_ts,
                                                 unfurl_links=False, unfurl_media=False)
        except SlackApiError as exc:
            status = getattr(exc.response, "status_code", 0) or 0
            if status >= 500 and status not in (500, 503):  # 500/503 were retried by slack-sdk
                raise _Retryable(status, f"HTTP {status}") from None
            raise

    try:
        return await _with_backoff(post, retries, backoff_s, lambda s: s >= 500)
    except _Retryable as exc:
        raise _failed_bot(remaining, redactor, f"{what}: Web API answered {exc.detail}", retries + 1, exc.status)
    except SlackApiError as exc:
        status = getattr(exc.response, "status_code", None)
        error = exc.response.get("error") if hasattr(exc.response, "get") else None
        detail = f"{what}: Web API answered HTTP {status}" + (f" ({error})" if error else "")
        attempts = retries + 1 if status in (429, 500, 503) else 1
        raise _failed_bot(remaining, redactor, detail, attempts, status)
    except Exception as exc:
        raise _failed_bot(remaining, redactor, f"{what}: {_one_line(exc)}", retries + 1, None)


def _failed(payload, unsent, redactor, detail, attempts, status) -> DeliveryError:
    remaining = dict(payload, messages=unsent, thread=[])
    return DeliveryError("slack", redactor.scrub(detail), remaining=remaining, attempts=attempts, status=status)


def _failed_bot(remaining, redactor, detail, attempts, status) -> DeliveryError:
    return DeliveryError("slack", redactor.scrub(detail), remaining=remaining, attempts=attempts, status=status)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# ---------------------------------------------------------------- the notifier


@register
class SlackNotifier(Notifier):
    """`notify.slack`: one Block Kit summary per run (details in a thread with a bot token)."""

    name = "slack"
    config_model = SlackSpec
    description = "Slack: a Block Kit summary per run, by incoming webhook or bot token + channel"
    uses_history = True

    config: SlackSpec

    @classmethod
    def is_off(cls, raw: dict[str, Any]) -> bool:
        return not raw.get("webhook_url") and not raw.get("token")

    def payload(self, pub: Publication) -> dict[str, Any]:
        threaded = bool(self.config.token and self.config.channel)
        return {
            "mode": "bot" if threaded else "webhook",
            "messages": [build_summary(pub.run, pub.summary, pub.history, self.config, pub.report_url,
                                       threaded=threaded)],
            "thread": build_thread(pub.run, pub.summary, pub.history) if threaded else [],
            "thread_ts": None,
            "channel": None,
        }

    def alerts(self, pub: Publication) -> list[dict[str, Any]]:
        """With `when: [budget]`: one message when an objective starts a fast burn or crosses a
        policy threshold since the previous run, and one when it is back to ok."""
        if "budget" not in self.config.when:
            return []
        from ..objectives.alerts import budget_message

        message = budget_message(pub.run, pub.history.previous if pub.history else None, self.config.mention)
        if message is None:
            return []
        threaded = bool(self.config.token and self.config.channel)
        return [{"mode": "bot" if threaded else "webhook", "messages": [message], "thread": [], "thread_ts": None,
                 "channel": None}]

    async def send(self, payload: dict[str, Any], redactor: Redactor, *, retries: int, backoff_s: float,
                   timeout_s: float) -> list[DeliveryError]:
        try:
            await send(payload, self.config, redactor, retries=retries, backoff_s=backoff_s, timeout_s=timeout_s)
        except DeliveryError as exc:
            return [exc]
        return []

    async def resend(self, payload: dict[str, Any], created_at: float, redactor: Redactor, *, retries: int,
                     backoff_s: float, timeout_s: float) -> list[DeliveryError]:
        return await self.send(mark_delayed(payload, created_at), redactor, retries=retries, backoff_s=backoff_s,
                               timeout_s=timeout_s)


def mark_delayed(payload: dict[str, Any], created_at: float) -> dict[str, Any]:
    """Say on a re-sent summary that it is late, so nobody reads it as today's news."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(created_at))
    messages = [dict(m) for m in payload.get("messages") or []]
    blocks = messages[0].get("blocks") or [] if messages else []
    if messages and len(blocks) < MAX_BLOCKS and "Delayed delivery" not in str(blocks[-1:]):
        note = context([f":hourglass: Delayed delivery: this message could not be sent at {when}."])
        messages[0]["blocks"] = list(messages[0]["blocks"]) + [note]
    return dict(payload, messages=messages)
