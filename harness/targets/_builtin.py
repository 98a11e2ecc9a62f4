"""Importing this module registers the built-in targets (every entry of `BUILTIN_MODULES`)."""

import importlib

from .base import BUILTIN_MODULES

for _module in BUILTIN_MODULES.values():
    importlib.import_module(_module, __package__)
