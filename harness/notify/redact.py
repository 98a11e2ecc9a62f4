"""Masking personal data and secrets in everything that leaves the machine.

Model answers in a phone service repeat what callers said: phone numbers, e-mail
addresses, names. The store and the local HTML report keep the raw text (the team needs
it to debug), but a Slack channel or a Datadog account is shared far more widely, so every
string of an outgoing payload goes through `Redactor.payload` first.

Masks are short bracketed words (`[phone]`, `[email]`, `[redacted]`) so a reader still sees
that something was there. Known secret values (webhook URL, tokens, API keys) become `***`
wherever they appear, as a last line of defence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .. import secrets as _suite_secrets
from ..errors import ConfigError

PHONE_MASK = "[phone]"
EMAIL_MASK = "[email]"
CUSTOM_MASK = "[redacted]"
SECRET_MASK = "***"

# Digits and hyphens as Japanese text writes them too: full-width digits and the dash-like
# characters an ASR transcript or a model may produce.
_D = "[0-9０-９]"
_SEP = "[-‐－―ー−\\s.]"
_SEP_OPT = f"{_SEP}?"

_PHONE_PATTERNS = [
    # +81 90-1234-5678, +81-3-1234-5678, +819012345678
    rf"[+＋]81{_SEP_OPT}\(?[0０]?\)?{_D}{{1,4}}{_SEP_OPT}{_D}{{1,4}}{_SEP_OPT}{_D}{{3,4}}",
    # Japanese domestic with separators: 090-1234-5678, 03-1234-5678, 0120-123-456
    rf"(?<![0-9０-９A-Za-z])[0０]{_D}{{1,4}}{_SEP}{_D}{{1,4}}{_SEP}{_D}{{3,4}}(?![0-9０-９A-Za-z])",
    # Japanese domestic without separators: 09012345678 (11 digits), 0312345678 (10 digits)
    # (letters around it mean a hash or an id, not a phone number)
    rf"(?<![0-9０-９A-Za-z])[0０]{_D}{{9,10}}(?![0-9０-９A-Za-z])",
    # US: (555) 123-4567, 555-123-4567, 555.123.4567, +1 555 123 4567
    r"(?<![\w+])(?:\+1[-.\s]?)?\(?[2-9]\d{2}\)?[-.\s]\d{3}[-.\s]\d{4}(?!\d)",
    r"\+1\d{10}(?!\d)",
    # any other international number written with a leading +
    r"\+(?:[2-9]\d{0,2})[-\s]?\d{1,4}(?:[-\s]?\d{2,4}){2,4}(?!\d)",
]
_EMAIL = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"

# Credentials whose shape is unmistakable, masked even when this suite does not hold them
# (a model or a log line may echo another team's token).
_CREDENTIALS = re.compile(
    r"xox[abposre]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|https?://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[^\s<>|\"']+"  # Slack webhooks
)

_BUILTIN = re.compile("|".join(f"(?:{p})" for p in _PHONE_PATTERNS))
_EMAIL_RE = re.compile(_EMAIL)


def compile_patterns(patterns: Iterable[str], where: str = "notify.redact") -> list[re.Pattern[str]]:
    """Compile user patterns; a bad one is a one-line ConfigError naming it."""
    out = []
    for i, p in enumerate(patterns):
        try:
            out.append(re.compile(p))
        except re.error as exc:
            raise ConfigError(f"{where}[{i}]: {p!r} is not a valid regular expression ({exc})") from None
    return out


def secret_fragments(secrets: Iterable[str | None]) -> list[str]:
    """The strings that must never leave: each secret, and for a URL also its path and last
    segment (an HTTP error may print the path without the host)."""
    out: set[str] = set()
    for s in secrets:
        if not s:
            continue
        out.add(s)
        if "://" in s:
            rest = s.split("://", 1)[1]
            if "/" in rest:
                path = "/" + rest.split("/", 1)[1]
                if len(path) > 8:
                    out.add(path)
                last = path.rstrip("/").rsplit("/", 1)[-1]
                if len(last) >= 8:
                    out.add(last)
    # longest first, so a URL is masked whole before its path is
    return sorted(out, key=len, reverse=True)


class Redactor:
    """Masks phone numbers, e-mail addresses, custom patterns and known secrets."""

    def __init__(self, patterns: Iterable[str] = (), secrets: Iterable[str | None] = ()) -> None:
        self._custom = compile_patterns(patterns)
        self._secrets = secret_fragments(secrets)

    def scrub(self, text: str) -> str:
        """Only the secrets masked: for warnings and error lines."""
        for s in self._secrets:
            if s in text:
                text = text.replace(s, SECRET_MASK)
        text = _suite_secrets.mask(text)  # every ${ENV} secret of the suite (target, judge, store …) too
        return _CREDENTIALS.sub(SECRET_MASK, text)

    def text(self, text: str) -> str:
        """Everything masked: for strings that leave the machine."""
        text = self.scrub(text)
        for pattern in self._custom:
            text = pattern.sub(CUSTOM_MASK, text)
        text = _EMAIL_RE.sub(EMAIL_MASK, text)
        return _BUILTIN.sub(PHONE_MASK, text)

    def payload(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string (keys included) masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.payload(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.payload(v) for v in value]
        return value
