"""Text and slot-value normalisation shared by checks and the simulated agent.

Phone agents answer in Japanese and English with full-width digits, ideographic spaces
and many ways to say a time ("19時", "午後7時", "7 pm"). Comparing raw strings would make
golden files brittle, so checks compare normalised forms. The tables below are the whole
vocabulary: extend a table rather than adding branches.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

__all__ = ["normalize_text", "normalize_value", "parse_time", "parse_count", "without_surrogates"]


def normalize_text(s: str, *, nfkc: bool = True, whitespace: bool = True, casefold: bool = True) -> str:
    """Fold width variants (NFKC), collapse whitespace runs to one space, and casefold."""
    if nfkc:
        s = unicodedata.normalize("NFKC", s)
    if whitespace:
        # str.split() splits on Unicode whitespace (U+3000 included), exactly what a `\s+`
        # regex matches, in a fraction of its time: checks call this on every reply
        s = " ".join(s.split())
    if casefold:
        s = s.casefold()
    return s


def without_surrogates(value: Any) -> Any:
    """`value` with every lone UTF-16 surrogate in its strings (keys included) made U+FFFD.

    JSON may escape one (`"\\ud83d"`): a gateway that splits a character between two stream
    events sends each half so. Python reads it into a string that cannot be written as UTF-8,
    to a file, a database or a socket; model output must never make a result unstorable.
    """
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:  # a pair stays one character; a lone half becomes U+FFFD
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {without_surrogates(k): without_surrogates(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_surrogates(v) for v in value]
    return value


# --- numbers --------------------------------------------------------------------------

_KANJI_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "ひとり": 1, "ふたり": 2,
}
_COUNTERS = ("名様", "人様", "名", "人", "people", "persons", "person", "guests", "guest", "pax")
_NUMBER = r"\d+|[〇零一二三四五六七八九十]+|[a-z]+|ひとり|ふたり"
_COUNT_RE = re.compile(rf"^(?P<n>{_NUMBER})\s*(?:{'|'.join(_COUNTERS)})?$")


def _number(token: str) -> int | None:
    """An integer from ASCII digits, kanji numerals up to 99, or an English/kana word."""
    if token.isdigit():
        return int(token)
    if token in _WORDS:
        return _WORDS[token]
    if token and all(c in _KANJI_DIGITS or c == "十" for c in token):
        if "十" not in token:
            return int("".join(str(_KANJI_DIGITS[c]) for c in token))
        tens, _, ones = token.partition("十")
        if "十" in ones or len(tens) > 1 or len(ones) > 1:
            return None
        return (_KANJI_DIGITS[tens] if tens else 1) * 10 + (_KANJI_DIGITS[ones] if ones else 0)
    return None


def parse_count(text: str) -> int | None:
    """'4名', '4人', '４', 'four', '四', 'two people' -> the integer, else None."""
    m = _COUNT_RE.match(normalize_text(text))
    return _number(m["n"]) if m else None


# --- times ----------------------------------------------------------------------------

_PM = ("午後", "夕方", "夜", "晩", "pm", "p.m.")
_AM = ("午前", "朝", "am", "a.m.")
_MERIDIEM = "|".join(re.escape(w) for w in (*_PM, *_AM))
_TIME_RE = re.compile(
    rf"^(?P<pre>{_MERIDIEM})?\s*(?P<h>\d{{1,2}}|[〇一二三四五六七八九十]+)\s*"
    rf"(?:(?P<sep>:|時)\s*(?P<m>\d{{1,2}}|半)?\s*分?)?\s*(?P<post>{_MERIDIEM})?$"
)


def parse_time(text: str) -> str | None:
    """'19時', '19:00', '7 pm', '19時半', '午後7時', '夜7時' -> 'HH:MM', else None.

    A bare number is not a time: it needs a separator (':' or '時') or a meridiem word.
    """
    m = _TIME_RE.match(normalize_text(text))
    if not m or not (m["sep"] or m["pre"] or m["post"]) or (m["pre"] and m["post"]):
        return None
    hour = _number(m["h"])
    minute = 30 if m["m"] == "半" else int(m["m"] or 0)
    meridiem = m["pre"] or m["post"]
    if hour is None:
        return None
    if meridiem in _PM and hour < 12:
        hour += 12
    elif meridiem in _AM and hour == 12:
        hour = 0
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


# --- slot values ----------------------------------------------------------------------

_TIME_KEYS = ("time", "時刻", "時間")


def normalize_value(key: str, value: Any) -> Any:
    """The comparable form of one slot value: times as 'HH:MM', counts as int, text folded.

    The key only matters for bare numbers: `time: 19` means 19:00, `party_size: 4` means 4.
    ISO dates ('2024-05-01') have nothing to fold and pass through unchanged.
    """
    is_time_key = any(k in key.casefold() for k in _TIME_KEYS)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"{value:02d}:00" if is_time_key and 0 <= value <= 23 else value
    if not isinstance(value, str):
        return value
    text = normalize_text(value)
    if is_time_key and text.isdigit():
        return normalize_value(key, int(text))
    time = parse_time(text)
    if time is not None:
        return time
    count = parse_count(text)
    return count if count is not None else text
