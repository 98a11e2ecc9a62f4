"""Loading golden and suite YAML: every user mistake is one exact `file:line:col: message` line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.errors import ConfigError, ConfigErrors, Position
from harness.loading import (
    display_path,
    find_root,
    load_cases,
    load_golden_file,
    load_suite,
    parse_yaml,
    suite_position_of,
    suite_target_raw,
    validate_paths,
    validation_error_to_config_error,
)
from harness.schema import json_schema
from harness.spec import CaseSpec, Limits

CASE_KEYS = ", ".join(CaseSpec.model_fields)  # the message lists the model's fields in order


def write(folder: Path, name: str, text: str | bytes) -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return str(path)


def golden_error(tmp_path: Path, text: str | bytes, name: str = "g.yaml") -> tuple[str, str]:
    """Load a golden file that must fail; return (path, the one error line)."""
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as info:
        load_golden_file(path)
    return path, info.value.line()


def suite_error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    path = write(tmp_path, "suite.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_suite(path, env=env or {})
    return path, info.value.line()


ONE_CASE = """
topic: reservation
cases:
  - id: rsv-001
    prompt: 予約したい
"""

SUITE = """
name: daily
golden: ["golden/**/*.yaml"]
target: {kind: http, url: "http://127.0.0.1:9/call"}
"""


# --- mistakes in golden files -------------------------------------------------------------


def test_unknown_key_says_did_you_mean(tmp_path):
    path, line = golden_error(tmp_path, """
        topic: reservation
        cases:
          - id: rsv-001
            titel: 明日の予約
            prompt: 予約したい
        """)
    assert line == (
        f"{path}:4:5: unknown key 'titel' (expected one of: {CASE_KEYS}; did you mean 'title'?)"
    )


def test_wrong_type_says_what_was_found_and_expected(tmp_path):
    path, line = golden_error(tmp_path, ONE_CASE + "    repeat: four\n")
    assert line == f"{path}:5:13: repeat: expected an integer, got 'four'"


def test_missing_field_points_at_the_mapping_that_lacks_it(tmp_path):
    path, line = golden_error(tmp_path, """
        topic: reservation
        cases:
          - id: rsv-001
            prompt: a
          - title: no id here
            prompt: b
        """)
    assert line == f"{path}:5:5: missing required key 'id'"


def test_missing_topic_at_top_of_file(tmp_path):
    path, line = golden_error(tmp_path, """
        # a golden file
        cases:
          - {id: a, prompt: b}
        """)
    assert line == f"{path}:2:1: missing required key 'topic'"


def test_unknown_check_says_did_you_mean(tmp_path):
    path, line = golden_error(tmp_path, ONE_CASE + "    expect:\n      - containz: 19時\n")
    assert line.startswith(f"{path}:6:9: unknown check 'containz' (expected one of: ")
    assert line.endswith("; did you mean 'contains'?)")
    assert "\n" not in line


def test_unknown_check_setting_says_did_you_mean(tmp_path):
    path, line = golden_error(tmp_path, ONE_CASE + "    expect:\n      - contains: {value: x, ignorecase: true}\n")
    assert line == (
        f"{path}:6:9: check 'contains' has no setting 'ignorecase' "
        "(expected: value, normalize, ignore_case; did you mean 'ignore_case'?)"
    )


def test_bad_regex_is_an_error_at_the_check(tmp_path):
    path, line = golden_error(tmp_path, ONE_CASE + "    expect:\n      - regex: \"山田(.*\"\n")
    assert line.startswith(f"{path}:6:9: check 'regex': ")
    assert "山田(.*" in line and "\n" not in line


def test_misspelt_check_modifier(tmp_path):
    path, line = golden_error(tmp_path, ONE_CASE + "    expect:\n      - {contains: x, wieght: 2}\n")
    assert line == (
        f"{path}:6:9: one check per list item, found 2: contains, wieght (did you mean 'weight' instead of 'wieght'?)"
    )


def test_duplicate_case_id_in_one_file_names_both_places(tmp_path):
    write(tmp_path, "suite.yaml", SUITE)
    path = write(tmp_path, "golden/a.yaml", """
        topic: reservation
        cases:
          - id: rsv-001
            prompt: a
          - id: rsv-001
            prompt: b
        """)
    with pytest.raises(ConfigError) as info:
        load_cases(load_suite(tmp_path / "suite.yaml", env={}))
    shown = display_path(path)
    assert info.value.line() == f"{shown}:5:5: duplicate case id 'rsv-001' (first defined at {shown}:3:5)"


def test_duplicate_case_id_across_files_names_both_places(tmp_path):
    write(tmp_path, "suite.yaml", SUITE)
    first = write(tmp_path, "golden/a.yaml", ONE_CASE)
    second = write(tmp_path, "golden/b.yaml", """
        topic: question
        cases:
          - id: faq-1
            prompt: x
          - id: rsv-001
            prompt: y
        """)
    with pytest.raises(ConfigError) as info:
        load_cases(load_suite(tmp_path / "suite.yaml", env={}))
    assert info.value.line() == (
        f"{display_path(second)}:5:5: duplicate case id 'rsv-001' (first defined at {display_path(first)}:3:5)"
    )


def test_empty_file(tmp_path):
    path, line = golden_error(tmp_path, "# nothing yet\n")
    assert line == f"{path}:1:1: file is empty (expected a mapping with topic and cases)"


def test_tabs_for_indentation(tmp_path):
    path, line = golden_error(tmp_path, "topic: reservation\ncases:\n  - id: a\n\t  prompt: b\n")
    assert line == f"{path}:4:1: tabs are not allowed for indentation; use spaces"


def test_invalid_utf8_gives_the_bad_byte_position(tmp_path):
    text = b'topic: x\ncases:\n  - id: a\n    prompt: "' + "予約".encode() + b'\xff"\n'  # 0xff is never UTF-8
    path, line = golden_error(tmp_path, text)
    assert line == f"{path}:4:16: invalid UTF-8 byte 0xff (expected a UTF-8 text file)"


def test_duplicate_mapping_key(tmp_path):
    path, line = golden_error(tmp_path, ONE_CASE + "    prompt: 二回目\n")
    assert line == f"{path}:5:5: duplicate key 'prompt' (first defined at line 4)"


def test_both_turns_and_prompt(tmp_path):
    path, line = golden_error(tmp_path, ONE_CASE + "    turns:\n      - caller: こんにちは\n")
    assert line == f"{path}:3:5: a case needs exactly one of: turns (a whole call) or prompt (one question)"


def test_neither_turns_nor_prompt(tmp_path):
    path, line = golden_error(tmp_path, """
        topic: reservation
        cases:
          - id: rsv-001
            title: nothing to say
        """)
    assert line == f"{path}:3:5: a case needs exactly one of: turns (a whole call) or prompt (one question)"


def test_bad_case_id(tmp_path):
    path, line = golden_error(tmp_path, """
        topic: reservation
        cases:
          - id: rsv 001
            prompt: x
        """)
    assert line == (
        f"{path}:3:9: id: 'rsv 001' is not valid "
        "(expected a case id: letters, digits and _ . : - , starting with a letter or digit)"
    )


def test_negative_repeat(tmp_path):
    path, line = golden_error(tmp_path, ONE_CASE + "    repeat: -2\n")
    assert line == f"{path}:5:13: repeat: -2 is out of range (expected at least 1)"


def test_list_where_a_mapping_was_expected(tmp_path):
    path, line = golden_error(tmp_path, ONE_CASE + "    outcome: [reservation, true]\n")
    assert line == f"{path}:5:14: outcome: expected a mapping, got a list"


def test_mapping_where_a_list_was_expected(tmp_path):
    path, line = golden_error(tmp_path, ONE_CASE + "    expect: {contains: x}\n")
    assert line == f"{path}:5:13: expect: expected a list, got a mapping"


def test_dtmf_with_letters(tmp_path):
    path, line = golden_error(tmp_path, """
        topic: reservation
        cases:
          - id: rsv-001
            turns:
              - caller: もしもし
              - dtmf: 12x
        """)
    assert line == f"{path}:6:15: dtmf: '12x' is not valid (expected keypad keys: digits 0-9, *, # and A-D)"


def test_number_where_text_was_expected_says_to_quote_it(tmp_path):
    path, line = golden_error(tmp_path, """
        topic: reservation
        cases:
          - id: rsv-001
            turns:
              - dtmf: 1234
        """)
    assert line == f'{path}:5:15: dtmf: expected text, got 1234 (put it in quotes: "1234")'


def test_top_level_list(tmp_path):
    path, line = golden_error(tmp_path, "- id: a\n  prompt: b\n")
    assert line == f"{path}:1:1: the top level is a list (expected a mapping with topic and cases)"


def test_yaml_syntax_error_is_one_line(tmp_path):
    path, line = golden_error(tmp_path, "topic: reservation\ncases: [{id: a, prompt: b}\n")
    assert line.startswith(f"{path}:3:1: invalid YAML: ")
    assert "(while parsing a flow sequence that starts at 2:8)" in line and "\n" not in line


def test_two_documents_in_one_file(tmp_path):
    path, line = golden_error(tmp_path, ONE_CASE + "---\ntopic: question\n")
    assert line == f"{path}:5:1: invalid YAML: found another document (expected a single document in the stream)"


def test_several_independent_mistakes_are_all_reported(tmp_path):
    path = write(tmp_path, "g.yaml", ONE_CASE + "    repeat: 0\n    titel: x\n")
    with pytest.raises(ConfigErrors) as info:
        load_golden_file(path)
    assert [e.line() for e in info.value.errors] == [
        f"{path}:5:13: repeat: 0 is out of range (expected at least 1)",
        f"{path}:6:5: unknown key 'titel' (expected one of: {CASE_KEYS}; did you mean 'title'?)",
    ]


# --- mistakes in suites -------------------------------------------------------------------


def test_missing_environment_variable(tmp_path):
    path, line = suite_error(tmp_path, """
        name: daily
        golden: golden/*.yaml
        target: {kind: openai, api_key: "${GATEWAY_KEY}"}
        """)
    assert line == f"{path}:3:33: environment variable GATEWAY_KEY is not set (used in target.api_key)"


def test_environment_value_is_never_quoted_in_an_error(tmp_path):
    path, line = suite_error(tmp_path, """
        name: daily
        golden: golden/*.yaml
        target:
          kind: openai
          limits: {concurrency: "${CONC}"}
        """, env={"CONC": "hunter2"})
    assert line == f"{path}:5:25: concurrency: expected an integer, got a value from the environment"
    assert "hunter2" not in line


def test_glob_that_matches_nothing_points_at_the_glob(tmp_path):
    write(tmp_path, "golden/a.yaml", ONE_CASE)
    path = write(tmp_path, "suite.yaml", """
        name: daily
        golden:
          - golden/*.yaml
          - golden/missing/**/*.yaml
        target: {kind: http, url: "http://127.0.0.1:9/call"}
        """)
    with pytest.raises(ConfigError) as info:
        load_cases(load_suite(path, env={}))
    assert info.value.line() == (
        f"{path}:4:5: golden glob 'golden/missing/**/*.yaml' matches no file (expected YAML files under {tmp_path})"
    )


def test_literal_setting_says_did_you_mean(tmp_path):
    path, line = suite_error(tmp_path, SUITE + "analysis: {baseline: acepted}\n")
    assert line == (
        f"{path}:4:22: baseline: got 'acepted' (expected 'accepted', 'previous' or 'none'; did you mean 'accepted'?)"
    )


def test_unknown_suite_key(tmp_path):
    path, line = suite_error(tmp_path, SUITE + "repeats: 3\n")
    assert line.startswith(f"{path}:4:1: unknown key 'repeats' (expected one of: name, ")
    assert line.endswith("; did you mean 'repeat'?)")


def test_unknown_target_kind(tmp_path):
    from harness.targets import create, registry

    path = write(tmp_path, "suite.yaml", SUITE.replace("kind: http", "kind: openia"))
    suite = load_suite(path, env={})
    with pytest.raises(ConfigError) as info:
        create(suite_target_raw(suite), suite_position_of(suite))
    kinds = ", ".join(sorted(registry()))
    assert info.value.line() == f"{path}:3:16: unknown target kind 'openia' (expected one of: {kinds}; did you mean 'openai'?)"


def test_validation_error_with_a_plain_position_callable_and_prefix():
    """The shape targets/base.py uses: a bare callable, a prefix, the model that failed."""
    from pydantic import ValidationError

    seen: list[tuple] = []

    def position_of(loc: tuple) -> Position:
        seen.append(loc)
        return Position("s.yaml", 7, 3)

    with pytest.raises(ValidationError) as info:
        Limits.model_validate({"concurrency": 0, "rpn": 5})
    err = validation_error_to_config_error(info.value, position_of, prefix=("target", "limits"), model=Limits)
    assert err.line() == "s.yaml:7:3: concurrency: 0 is out of range (expected at least 1)"
    assert ("target", "limits", "concurrency") in seen


# --- what loads -----------------------------------------------------------------------------


def test_valid_golden_file_loads_with_positions_and_inheritance(tmp_path):
    path = write(tmp_path, "g.yaml", """
        topic: reservation
        tags: [restaurant, ja]
        language: ja
        cases:
          - id: rsv-ja-001
            title: 明日19時に4名で予約
            tags: [smoke, ja]
            turns:
              - caller: 明日の19時に4名で予約したいです
                expect:
                  - contains_any: ["19時", "19:00"]
                  - json
              - dtmf: "0120"
            outcome:
              intent: reservation
              slots: {party_size: 4, time: 19:00, date: 2025-01-02}
              transferred: false
            expect:
              - slots: {party_size: 4}
          - id: faq-hours
            topic: question
            language: no
            prompt: 営業時間を教えてください
            expect:
              - contains: "11時"
            repeat: 5
        """)
    golden = load_golden_file(path)
    rsv, faq = golden.cases
    assert (rsv.source, faq.source) == (Position(path, 5, 5), Position(path, 20, 5))
    assert rsv.resolved_topic == "reservation" and faq.resolved_topic == "question"
    assert rsv.resolved_tags == ["restaurant", "ja", "smoke"] and faq.resolved_tags == ["restaurant", "ja"]
    assert rsv.resolved_language == "ja" and faq.resolved_language == "no"  # `no` is not false here
    assert [t.pos for t in rsv.turns] == [Position(path, 9, 9), Position(path, 13, 9)]
    assert rsv.turns[1].dtmf == "0120"  # a leading zero keeps digits as text
    assert rsv.outcome.slots == {"party_size": 4, "time": "19:00", "date": "2025-01-02"}  # not 1140, not a date
    assert rsv.outcome.transferred is False
    checks = rsv.turns[0].expect
    assert [c.name for c in checks] == ["contains_any", "json"]
    assert checks[0].pos == Position(path, 11, 13) and checks[1].pos == Position(path, 12, 13)
    assert faq.repeat == 5 and [c.arg for c in faq.call_turns[0].expect] == ["11時"]


def test_positions_in_nested_flow_and_block_yaml():
    data = parse_yaml("a:\n  b: [1, {c: 2}]\n", "x.yaml")
    assert data.pos == Position("x.yaml", 1, 1)
    assert data.value_pos["a"] == Position("x.yaml", 2, 3)
    inner = data["a"]["b"]
    assert inner.item_pos == [Position("x.yaml", 2, 7), Position("x.yaml", 2, 10)]
    assert inner[1].key_pos["c"] == Position("x.yaml", 2, 11)


def _selection_project(tmp_path: Path) -> str:
    write(tmp_path, "golden/reservation/rsv.yaml", """
        topic: reservation
        tags: [restaurant]
        cases:
          - {id: rsv-001, prompt: a, tags: [smoke]}
          - {id: rsv-002, prompt: b, tags: [slow]}
        """)
    write(tmp_path, "golden/question/faq.yaml", """
        topic: question
        cases:
          - {id: faq-001, prompt: c, tags: [smoke]}
          - {id: cnl-001, prompt: d, topic: cancellation}
        """)
    return write(tmp_path, "suite.yaml", SUITE + "select: {exclude_tags: [slow]}\n")


def test_selection_by_topic_tag_and_id_glob(tmp_path):
    suite = load_suite(_selection_project(tmp_path), env={})
    ids = lambda **kw: [c.id for c in load_cases(suite, **kw)]  # noqa: E731
    assert ids() == ["faq-001", "cnl-001", "rsv-001"]  # sorted files; the suite excludes `slow`
    assert ids(topics=["cancellation"]) == ["cnl-001"]
    assert ids(tags=["smoke"]) == ["faq-001", "rsv-001"]
    assert ids(tags=["restaurant"], ids=["rsv-*"]) == ["rsv-001"]
    assert ids(exclude_tags=["smoke"]) == ["cnl-001"]


def test_selection_that_leaves_nothing_is_an_error(tmp_path):
    path = _selection_project(tmp_path)
    suite = load_suite(path, env={})
    with pytest.raises(ConfigError) as info:
        load_cases(suite, ids=["zzz-*"])
    assert info.value.line() == (
        f"{path}: no case matches the selection select.exclude_tags slow; --id zzz-* "
        "(expected at least one of 4 cases; topics: cancellation, question, reservation)"
    )


def test_root_is_found_from_a_nested_suite(tmp_path):
    lonely = write(tmp_path, "other/sub/s.yaml", SUITE)
    assert find_root(lonely) == str((tmp_path / "other" / "sub").resolve())  # nothing above: its own folder
    write(tmp_path, "golden/a.yaml", ONE_CASE)
    path = write(tmp_path, "suites/nightly/deep.yaml", SUITE)
    suite = load_suite(path, env={})
    assert suite.root == str(tmp_path.resolve()) and suite.file == path
    assert [c.id for c in load_cases(suite)] == ["rsv-001"]
    write(tmp_path / "proj", "pyproject.toml", "[project]\n")
    assert find_root(write(tmp_path / "proj", "suites/s.yaml", SUITE)) == str((tmp_path / "proj").resolve())


def test_environment_interpolation_and_target_positions(tmp_path):
    path = write(tmp_path, "suite.yaml", """
        name: daily
        golden: golden/*.yaml
        target:
          kind: openai
          base_url: "${URL:-http://127.0.0.1:9/v1}"
          api_key: "${KEY}"
          note: "costs $${NOT_A_VAR}"
        """)
    suite = load_suite(path, env={"KEY": "k-123"})
    raw = suite_target_raw(suite)
    assert raw == {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k-123",
                   "note": "costs ${NOT_A_VAR}"}
    assert suite_position_of(suite)(("target", "api_key")) == Position(path, 6, 12)
    assert suite.golden == ["golden/*.yaml"]


def test_validate_paths_collects_errors_from_a_folder(tmp_path):
    write(tmp_path, "golden/ok.yaml", ONE_CASE)
    bad = write(tmp_path, "golden/bad.yaml", ONE_CASE + "    repeat: four\n")
    empty = write(tmp_path, "golden/empty.yml", "")
    suite = write(tmp_path, "suites/s.yaml", SUITE.replace("daily", "bad name"))
    lines = [e.line() for e in validate_paths([str(tmp_path)])[0]]
    assert lines == [
        f"{display_path(bad)}:5:13: repeat: expected an integer, got 'four'",
        f"{display_path(empty)}:1:1: file is empty (expected a mapping with topic and cases)",
        f"{display_path(suite)}:1:7: name: 'bad name' is not valid "
        "(expected letters, digits and _ . -, starting with a letter or digit)",
    ]
    assert validate_paths([str(tmp_path)])[1] == 4
    assert validate_paths([str(tmp_path / "golden" / "ok.yaml")]) == ([], 1)
    assert [e.line() for e in validate_paths([str(tmp_path / "nope.yaml")])[0]] == [
        f"{tmp_path / 'nope.yaml'}: no such file or folder"
    ]


def test_validate_paths_checks_a_suites_golden_files(tmp_path):
    bad = write(tmp_path, "golden/bad.yaml", ONE_CASE + "    expect:\n      - containz: x\n")
    suite = write(tmp_path, "suites/s.yaml", SUITE)
    lines = [e.line() for e in validate_paths([suite])[0]]
    assert len(lines) == 1 and lines[0].startswith(f"{display_path(bad)}:6:9: unknown check 'containz'")


def test_validate_paths_checks_the_target_settings(tmp_path):
    write(tmp_path, "golden/a.yaml", ONE_CASE)
    suite = write(tmp_path, "suites/s.yaml", """
        name: daily
        golden: golden/*.yaml
        target:
          kind: openai
          base_url: http://127.0.0.1:9/v1
          modle: primary
        """)
    lines = [e.line() for e in validate_paths([suite])[0]]
    assert len(lines) == 2
    assert lines[0] == f"{display_path(suite)}:4:3: missing required key 'model'"
    assert lines[1].startswith(f"{display_path(suite)}:6:3: unknown key 'modle' (expected one of: kind, limits, ")
    assert lines[1].endswith("; did you mean 'model'?)")


# --- JSON Schema ---------------------------------------------------------------------------


def test_golden_schema_accepts_good_files_and_rejects_unknown_checks(tmp_path):
    schema = json_schema("golden")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = yaml.safe_load(textwrap.dedent(ONE_CASE) + "    expect:\n      - contains: x\n      - json\n"
                          "      - {regex: {pattern: 'a.*'}, weight: 2}\n")
    assert list(validator.iter_errors(good)) == []
    bad = yaml.safe_load(textwrap.dedent(ONE_CASE) + "    expect:\n      - containz: x\n")
    assert list(validator.iter_errors(bad))
    two = yaml.safe_load(textwrap.dedent(ONE_CASE) + "    expect:\n      - {contains: x, regex: y}\n")
    assert list(validator.iter_errors(two))


def test_suite_schema_is_valid_and_has_no_loader_internals():
    schema = json_schema("suite")
    jsonschema.Draft202012Validator.check_schema(schema)
    good = yaml.safe_load(SUITE)
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(good)) == []
    assert "Position" not in schema["$defs"] and "Position" not in json_schema("golden")["$defs"]
