"""Loading golden and suite YAML into validated models, with file:line:col errors.

The YAML is read with positions kept beside the data (`PosDict`, `PosList`), `${ENV}`
references in suites are expanded on that data, and pydantic errors are mapped back to the
line and column of the mistake. Every user mistake is one line: `path:line:col: what is
wrong (expected …; did you mean …?)`.
"""

from ..yamlio import (  # re-exported: the YAML layer under the loader, for older imports
    PosDict,
    PositionFinder,
    PositionLoader,
    PosList,
    parse_yaml,
    read_yaml,
    validation_error_to_config_error,
    validation_errors_to_config_errors,
)
from ._cases import display_path, golden_files, load_cases
from ._env import expand_env
from ._golden import GOLDEN_EXPECTED, golden_file_errors, load_golden_file
from ._suite import SUITE_EXPECTED, find_root, load_suite, suite_file_errors, suite_position_of, suite_target_raw
from ._validate import validate_paths

__all__ = [
    "GOLDEN_EXPECTED",
    "SUITE_EXPECTED",
    "PosDict",
    "PosList",
    "PositionFinder",
    "PositionLoader",
    "display_path",
    "expand_env",
    "find_root",
    "golden_file_errors",
    "golden_files",
    "load_cases",
    "load_golden_file",
    "load_suite",
    "parse_yaml",
    "read_yaml",
    "suite_file_errors",
    "suite_position_of",
    "suite_target_raw",
    "validate_paths",
    "validation_error_to_config_error",
    "validation_errors_to_config_errors",
]
