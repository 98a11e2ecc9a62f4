"""Small helpers every reporter shares: keep secrets and control characters out of outputs.

Reports are read by people and parsed by tools (CI, browsers, XML parsers). Text that came
from a model or a config file is untrusted, so each output format cleans it at its edge:
these helpers hold the cleaning rules in one place.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"

# Keys whose values are secrets wherever they appear (target config, extra sections).
# Matched on the end of the key, so `dd_api_key` and `Authorization` are caught while
# `max_tokens` or `tokens_in` are not.
_SECRET_KEY = re.compile(
    r"(?:^|[_\-.])(?:api[_-]?key|key|token|secret|password|passwd|authorization|webhook(?:[_-]?url)?|cookie|credentials?|dsn)$",
    re.I,
)
# C0 controls except tab/newline, DEL and C1 controls: they can move a terminal cursor,
# hide text or break an XML parser.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Characters XML 1.0 forbids outright (a parser rejects the whole file for one of them).
_XML_BAD = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SPACE = re.compile(r"\s+")
# Bidirectional overrides, embeddings, isolates and marks: U+202E makes a terminal show
# "txt.exe" as "exe.txt"; shown as `\u202e` (the stored text keeps them as received).
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def one_line(text: Any, limit: int = 240) -> str:
    """A single printable line: control characters shown as `\\xNN`, whitespace collapsed,
    long text cut with an ellipsis (a console row or an XML attribute must stay one line)."""
    s = "" if text is None else str(text)
    s = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", s)
    if not s.isascii():
        s = _BIDI.sub(lambda m: f"\\u{ord(m.group()):04x}", s)
    s = _SPACE.sub(" ", s).strip()
    if limit and len(s) > limit:
        s = s[: limit - 1].rstrip() + "…"
    return s


def terminal_text(text: Any) -> str:
    """Text for a terminal, lines kept: control characters (but tab and newline) and
    bidirectional controls shown escaped, as `one_line` shows them."""
    s = "" if text is None else str(text)
    s = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", s)
    return _BIDI.sub(lambda m: f"\\u{ord(m.group()):04x}", s) if not s.isascii() else s


def xml_safe(text: Any) -> str:
    """Text an XML 1.0 parser accepts: forbidden characters become U+FFFD."""
    return _XML_BAD.sub("\ufffd", "" if text is None else str(text))


def redact_url(url: str) -> str:
    """Drop user:password from a URL and blank secret-looking query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1] if "@" in parts.netloc else parts.netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if _SECRET_KEY.search(k) or k.lower() in {"sig", "signature", "code"} else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact(value: Any) -> Any:
    """A copy of a JSON-like value with secret-named keys blanked and URLs cleaned.

    The runner already strips secrets from `RunInfo.target`; this is the second lock on
    the door, because a report is the thing most likely to be pasted somewhere public.
    """
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, str) and _SECRET_KEY.search(k) and v not in (None, "", [], {}):
                out[k] = REDACTED
            else:
                out[k] = redact(v)
        return out
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 text via a temporary file and a rename, so a reader (CI, a browser,
    another job) never sees half a report."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        # mkstemp makes the file private; a report is an ordinary file, readable as the umask allows
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
