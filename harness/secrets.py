"""The secrets of this process: every value a suite took from `${ENV}` in a secret-bearing
field (an API key, a token, a header value, a webhook URL, a store password).

The loader registers them as it expands a suite (`harness.loading._env`); whatever the
harness then writes or sends (results on their way to the store and every report, run
messages, warnings, error lines) goes through `mask`, so a server that echoes a key back,
in an error body, an SSE event or an answer, cannot carry it into an artifact. Nothing
here imports the rest of harness: every layer may use it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

MASK = "***"
MIN_SECRET_CHARS = 6  # shorter values are placeholders ("EMPTY", "none"): blanking them would mangle words

# A field is secret-bearing when a step of its path says so (target.headers.X-Token,
# notify.slack.webhook_url, judge.api_key, store.url with a password, …).
_SECRET_FIELD = re.compile(r"key|token|secret|password|passwd|authori[sz]ation|webhook|credential|cookie|"
                           r"headers|signature|session", re.I)

_secrets: tuple[str, ...] = ()


def is_secret_field(loc: tuple) -> bool:
    return any(isinstance(step, str) and _SECRET_FIELD.search(step) for step in loc)


def register(value: str | None, *, url_path: bool = False) -> None:
    """Remember `value` (and the credential inside it: a Bearer token, a URL's password; with
    `url_path`, a webhook URL's path, which is its secret) as secret."""
    global _secrets
    if not value or not isinstance(value, str):
        return
    found = set(_secrets)
    for candidate in _parts(value, url_path):
        if len(candidate) >= MIN_SECRET_CHARS:
            found.add(candidate)
    _secrets = tuple(sorted(found, key=len, reverse=True))  # longest first: "Bearer k…" before "k…"


def _parts(value: str, url_path: bool) -> list[str]:
    out = [value.strip()]
    scheme, _, credential = value.partition(" ")
    if credential and scheme.lower() in ("bearer", "basic", "token"):
        out.append(credential.strip())
    if "://" in value:
        try:
            parts = urlsplit(value.strip())
            if parts.password:
                out.append(unquote(parts.password))
            if url_path and parts.path and len(parts.path) > 1:  # a webhook's secret is its path
                out.append(parts.path.lstrip("/"))
        except ValueError:
            pass
    return out


def secrets() -> tuple[str, ...]:
    return _secrets


def mask(text: str) -> str:
    """`text` with every registered secret replaced by ***."""
    if not _secrets or not text:
        return text
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_value(value: Any) -> Any:
    """`mask` through the strings of a JSON-like value (dicts, lists), copying only what changes."""
    if not _secrets:
        return value
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(v) for v in value]
    return value
