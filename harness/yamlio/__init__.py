"""YAML read with its positions kept, and pydantic errors told at those positions.

The layer under everything that reads a user's YAML: the loader (golden and suite files),
each target (its own `target:` settings) and the judge (rubrics, canaries). It knows no
golden file, suite or target; it only remembers where every value was written and turns
a pydantic `ValidationError` into one line `file:line:col: what is wrong (expected …)`.
"""

from ._explain import (
    PositionFinder,
    PositionOf,
    validation_error_to_config_error,
    validation_errors_to_config_errors,
)
from ._read import PosDict, PositionLoader, PosList, decode_utf8, describe_value, gc_paused, parse_yaml, read_yaml

__all__ = [
    "PosDict",
    "PosList",
    "PositionFinder",
    "PositionLoader",
    "PositionOf",
    "decode_utf8",
    "describe_value",
    "gc_paused",
    "parse_yaml",
    "read_yaml",
    "validation_error_to_config_error",
    "validation_errors_to_config_errors",
]
