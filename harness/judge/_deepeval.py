"""Import deepeval quietly: no telemetry, no login, no .env reading, no files in the user's repo.

deepeval takes seconds to import and, left to its defaults, starts telemetry (PostHog,
Sentry, an IP lookup), may check PyPI for updates, loads the user's `.env` into the
process and creates a `.deepeval/` folder in the working directory. Its flags are read
at import time, so they are set here, once, before the first import; only the judge
imports this module, and only when a judge check actually runs, so `harness --help`
never pays for it.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

# Flags that stop deepeval from reaching the network or reading the user's files. They
# are forced (not defaults): a judge run must never phone home, whatever the shell says.
_FORCED = {
    "DEEPEVAL_TELEMETRY_OPT_OUT": "YES",
    "DEEPEVAL_UPDATE_WARNING_OPT_IN": "0",
    "ERROR_REPORTING": "NO",
    "DEEPEVAL_DISABLE_DOTENV": "1",
    "CONFIDENT_TRACE_INTERNAL": "NO",
}
_DEFAULTS = {
    "DEEPEVAL_DISABLE_LEGACY_KEYFILE": "1",
}

_loaded: ModuleType | None = None


def load_deepeval(root: str | None = None) -> ModuleType:
    """Set deepeval's quiet flags, import it once, and return the `deepeval` module.

    `root` is the project root: anything deepeval still insists on writing goes to
    `<root>/.harness/deepeval/` rather than a `.deepeval/` folder wherever the user stands.
    """
    global _loaded
    if _loaded is not None:
        return _loaded
    for key, value in _FORCED.items():
        os.environ[key] = value
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    if root is not None:
        os.environ.setdefault("DEEPEVAL_CACHE_FOLDER", str(Path(root) / ".harness" / "deepeval"))

    import deepeval
    import deepeval.metrics.conversational_g_eval.conversational_g_eval as conversational

    # deepeval 3.9.x's ConversationalGEval prints every prompt it builds to stdout (a debug
    # helper left switched on). Those prompts hold callers' transcripts, which must not
    # land in our console or JSON output, so the helper is made silent.
    if callable(getattr(conversational, "_debug_print_prompt", None)):
        conversational._debug_print_prompt = _silent
    _loaded = deepeval
    return deepeval


def _silent(*_args: object, **_kwargs: object) -> None:
    return None
