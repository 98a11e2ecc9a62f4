"""One scheduled run, in its own process: `python -m harness.scheduling.worker SUITE --run-id ID`.

The daemon runs each fire in a child process so a crash, a leak or a hung target in one run
never takes the daemon down, and so stopping a run is just a signal: the pipeline turns
SIGTERM into an `incomplete` run with every finished result kept. The last line on stdout
is one JSON object the daemon reads back (status, exit code, counts, message).
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import ExitCode, HarnessError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness-schedule-worker")
    parser.add_argument("suite")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--store", default=None)
    parser.add_argument("--lock-stale", type=float, default=None, help="seconds before a silent lock holder is presumed dead")
    args = parser.parse_args(argv)

    from ..locks import LockHeld
    from ..pipeline import RunOptions, run_suite

    options = RunOptions(store_url=args.store, run_id=args.run_id, progress=False)
    if args.lock_stale:
        options.lock_stale_s = args.lock_stale
    try:
        outcome = run_suite(args.suite, options)
    except LockHeld as e:
        _say({"status": "skipped", "exit_code": int(e.exit_code), "message": e.line()})
        return int(e.exit_code)
    except HarnessError as e:
        _say({"status": "error", "exit_code": int(e.exit_code), "message": e.line()})
        return int(e.exit_code)
    run = outcome.run
    _say({"status": run.status, "exit_code": int(outcome.exit_code), "counts": run.counts,
          "message": run.message, "warnings": outcome.warnings})
    return int(outcome.exit_code)


def _say(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.UNREACHABLE))
