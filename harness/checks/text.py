"""Exact checks on the agent's reply text: substrings, equality, regex, length and JSON.

Text checks share one preparation step (`_prep`): NFKC plus whitespace folding when
`normalize` is on, casefolding when `ignore_case` is on, applied to both the reply and the
expected values, so `１９時` in a reply matches `19時` in a golden file.
"""

from __future__ import annotations

import json as jsonlib
import re
from typing import Annotated, Any, Callable

from pydantic import AfterValidator, BeforeValidator, Field

from ..normalize import normalize_text
from .base import CheckFn, Score, Subject, check

__all__ = ["quote", "Text"]


def _number_to_text(v: Any) -> Any:
    # YAML reads `contains: 4` as an int; the user meant the text "4"
    return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def _not_empty(v: str) -> str:
    if not v:
        raise ValueError("must not be empty (an empty text is found in every reply)")
    return v


def _one_or_more(v: Any) -> Any:
    return v if isinstance(v, list) else [v]


Text = Annotated[str, BeforeValidator(_number_to_text)]
NonEmptyText = Annotated[str, BeforeValidator(_number_to_text), AfterValidator(_not_empty)]
TextList = Annotated[list[NonEmptyText], Field(min_length=1)]


def quote(text: str, limit: int = 80) -> str:
    """One-line, double-quoted, clipped form of a text for a check's reason."""
    flat = normalize_text(str(text), nfkc=False, casefold=False)
    return f'"{flat[:limit]}…"' if len(flat) > limit else f'"{flat}"'


def _prep(normalize: bool, ignore_case: bool) -> Callable[[str], str]:
    return lambda s: normalize_text(s, nfkc=normalize, whitespace=normalize, casefold=ignore_case)


def _quoted_list(values: list[str]) -> str:
    return ", ".join(quote(v, 40) for v in values)


@check("equals", primary="value")
def equals(value: Text, normalize: bool = True, ignore_case: bool = True) -> CheckFn:
    """The reply is exactly this text (after normalisation)."""
    prep = _prep(normalize, ignore_case)
    want = prep(value)

    def run(s: Subject) -> Score:
        ok = prep(s.text) == want
        return Score(ok, f"equals {quote(value)}" if ok else f"expected {quote(value)}; got {quote(s.text)}")

    return run


@check("contains", primary="value")
def contains(value: NonEmptyText, normalize: bool = True, ignore_case: bool = True) -> CheckFn:
    """The reply contains this text."""
    prep = _prep(normalize, ignore_case)
    want = prep(value)

    def run(s: Subject) -> Score:
        if want in prep(s.text):
            return Score(True, f"found {quote(value)} in {quote(s.text)}")
        return Score(False, f"expected to contain {quote(value)}; got {quote(s.text)}")

    return run


@check("contains_any", primary="values")
def contains_any(
    values: TextList, normalize: bool = True, ignore_case: bool = True
) -> CheckFn:
    """The reply contains at least one of these texts."""
    prep = _prep(normalize, ignore_case)
    wants = [(v, prep(v)) for v in values]

    def run(s: Subject) -> Score:
        text = prep(s.text)
        found = [v for v, w in wants if w in text]
        if found:
            return Score(True, f"found {quote(found[0])} in {quote(s.text)}")
        return Score(False, f"expected any of {_quoted_list(values)}; got {quote(s.text)}")

    return run


@check("contains_all", primary="values")
def contains_all(
    values: TextList, normalize: bool = True, ignore_case: bool = True
) -> CheckFn:
    """The reply contains every one of these texts (score: the fraction found)."""
    prep = _prep(normalize, ignore_case)
    wants = [(v, prep(v)) for v in values]

    def run(s: Subject) -> Score:
        text = prep(s.text)
        missing = [v for v, w in wants if w not in text]
        frac = 1 - len(missing) / len(wants)
        if not missing:
            return Score(True, f"found all {len(wants)} in {quote(s.text)}", 1.0)
        found = len(wants) - len(missing)
        return Score(False, f"missing {_quoted_list(missing)} ({found} of {len(wants)} found); got {quote(s.text)}",
                     frac)

    return run


@check("not_contains", primary="value")
def not_contains(
    value: Annotated[TextList, BeforeValidator(_one_or_more)], normalize: bool = True, ignore_case: bool = True
) -> CheckFn:
    """The reply contains none of these texts (one text or a list)."""
    values = value
    prep = _prep(normalize, ignore_case)
    wants = [(v, prep(v)) for v in values]

    def run(s: Subject) -> Score:
        text = prep(s.text)
        found = [v for v, w in wants if w in text]
        if found:
            return Score(False, f"expected not to contain {_quoted_list(found)}; got {quote(s.text)}")
        return Score(True, f"none of {_quoted_list(values)} in {quote(s.text)}")

    return run


_REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}
REGEX_TIMEOUT_S = 1.0  # default time one regex search may take on one reply


@check("regex", primary="pattern")
def regex(pattern: str, flags: str = "", normalize: bool = True, ignore_case: bool = True,
          timeout_s: Annotated[float, Field(gt=0, le=60)] = REGEX_TIMEOUT_S) -> CheckFn:
    """The reply matches this regular expression (searched anywhere; flags: any of "imsx").

    Only NFKC is applied to the pattern: whitespace folding or casefolding would change
    what `\\S` or `[ ]{2}` mean, so `ignore_case` becomes re.IGNORECASE instead.
    A search that takes longer than `timeout_s` (a pattern that backtracks without end,
    like `(a+)+$`) stops there and the check is an error; the run goes on.
    """
    import regex as regex_engine  # the `regex` module: Python's syntax, with a time limit per search

    bad = set(flags) - set(_REGEX_FLAGS)
    if bad:
        raise ValueError(f"unknown regex flag(s) {''.join(sorted(bad))!r} (expected any of 'imsx')")
    bits = re.IGNORECASE if ignore_case else 0
    for f in flags:
        bits |= _REGEX_FLAGS[f]
    source = normalize_text(pattern, whitespace=False, casefold=False) if normalize else pattern
    try:
        re.compile(source, bits)  # the syntax users know: an invalid pattern is said as Python says it
        compiled = regex_engine.compile(source, bits)
    except (re.error, regex_engine.error) as e:
        raise ValueError(f"invalid regex {pattern!r}: {e}") from None
    prep = _prep(normalize, ignore_case=False)

    def run(s: Subject) -> Score:
        try:
            m = compiled.search(prep(s.text), timeout=timeout_s)
        except TimeoutError:
            raise RegexTimeout(f"regex /{pattern}/ did not finish within {timeout_s:g} s on this reply "
                               f"({len(s.text)} chars); it backtracks too much, simplify it") from None
        if m:
            return Score(True, f"/{pattern}/ matched {quote(m.group(0))}")
        return Score(False, f"expected to match /{pattern}/; got {quote(s.text)}")

    return run


class RegexTimeout(Exception):
    """A regex search ran out of its time budget."""


@check("max_length", primary="chars")
def max_length(chars: Annotated[int, Field(ge=0)], normalize: bool = True) -> CheckFn:
    """The reply is at most this many characters (after whitespace folding when normalize is on)."""
    prep = _prep(normalize, ignore_case=False)

    def run(s: Subject) -> Score:
        n = len(prep(s.text))
        if n <= chars:
            return Score(True, f"{n} chars (limit {chars})")
        return Score(False, f"{n} chars, over the limit of {chars}; got {quote(s.text)}")

    return run


_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(?P<body>.*?)\n\s*```\s*$", re.DOTALL)


def _load_json(text: str) -> Any:
    """Parse the reply as JSON, tolerating one surrounding Markdown code fence."""
    m = _FENCE.match(text)
    return jsonlib.loads(m["body"] if m else text)


def _parsed(s: Subject) -> tuple[Any, Score | None]:
    try:
        return _load_json(s.text), None
    except ValueError as e:
        return None, Score(False, f"not valid JSON ({e}); got {quote(s.text)}")


@check("json", primary="schema", mapping_primary=True)
def json(schema: dict[str, Any] | None = None) -> CheckFn:
    """The reply is valid JSON, and matches this JSON Schema when one is given."""
    validator = None
    if schema is not None and set(schema) == {"schema"} and isinstance(schema["schema"], dict):
        # `json: {schema: {...}}` reads naturally; as a schema it would silently accept anything
        schema = schema["schema"]
    if schema is not None:
        import jsonschema  # imported here: ~40 ms that a run without JSON schemas need not pay

        cls = jsonschema.validators.validator_for(schema)
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError as e:
            raise ValueError(f"invalid JSON Schema: {e.message}") from None
        validator = cls(schema)

    def run(s: Subject) -> Score:
        data, failed = _parsed(s)
        if failed:
            return failed
        if validator is not None:
            from jsonschema.exceptions import best_match

            err = best_match(validator.iter_errors(data))
            if err is not None:
                where = "/".join(str(p) for p in err.absolute_path) or "(root)"
                return Score(False, f"JSON does not match the schema at {where}: {err.message[:120]}")
        return Score(True, "valid JSON" + (" matching the schema" if validator else ""))

    return run


@check("json_path", primary="path")
def json_path(
    path: str,
    equals: Any = None,
    contains: Text | None = None,
    exists: bool = True,
    normalize: bool = True,
    ignore_case: bool = True,
) -> CheckFn:
    """The reply's JSON has a value at this JSONPath (optionally equal to, or containing, a value)."""
    from jsonpath_ng.ext import parse as parse_jsonpath  # imported here: only json_path needs it

    try:
        expr = parse_jsonpath(path)
    except Exception as e:  # jsonpath-ng raises several unrelated error types for a bad path
        raise ValueError(f"invalid JSONPath {path!r}: {e}") from None
    if not exists and (equals is not None or contains is not None):
        raise ValueError("exists: false cannot be combined with equals or contains")
    prep = _prep(normalize, ignore_case)

    def same(got: Any) -> bool:
        if isinstance(got, str) and isinstance(equals, str):
            return prep(got) == prep(equals)
        # True must not equal 1 here, as it would in plain Python
        return isinstance(got, bool) == isinstance(equals, bool) and got == equals

    def run(s: Subject) -> Score:
        data, failed = _parsed(s)
        if failed:
            return failed
        found = [m.value for m in expr.find(data)]
        shown = quote(jsonlib.dumps(found, ensure_ascii=False))
        if not exists:
            return Score(not found, f"{path} has {shown}" if found else f"{path} absent")
        if not found:
            return Score(False, f"{path} not found in {quote(s.text)}")
        if equals is not None and not any(same(v) for v in found):
            return Score(False, f"expected {path} = {jsonlib.dumps(equals, ensure_ascii=False)}; got {shown}")
        if contains is not None and not any(prep(contains) in prep(str(v)) for v in found):
            return Score(False, f"expected {path} to contain {quote(contains)}; got {shown}")
        return Score(True, f"{path} = {shown}")

    return run
