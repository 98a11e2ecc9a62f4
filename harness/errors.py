"""Errors a user can act on, and the exit codes the CLI documents.

Every error here renders as one line. A user's mistake never becomes a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # every case passed
    FAILED = 1  # a check failed, or a regression or drift was found
    CONFIG = 2  # bad configuration or input
    UNREACHABLE = 3  # the target or a required service could not be reached
    INTERRUPTED = 130  # stopped by SIGINT, SIGTERM or SIGHUP (the shell's 128 + SIGINT)


class HarnessError(Exception):
    """Base class: an error with a one-line message and an exit code."""

    exit_code: ExitCode = ExitCode.CONFIG

    def line(self) -> str:
        return str(self)


@dataclass
class Position:
    path: str
    line: int  # 1-based
    col: int  # 1-based

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


class ConfigError(HarnessError):
    """A mistake in a golden or suite file (or on the command line)."""

    exit_code = ExitCode.CONFIG

    def __init__(self, message: str, position: Position | None = None, path: str | None = None):
        self.message = message
        self.position = position
        self.path = path if path is not None else (position.path if position else None)
        super().__init__(self.line())

    def line(self) -> str:
        if self.position is not None:
            return f"{self.position}: {self.message}"
        if self.path:
            return f"{self.path}: {self.message}"
        return self.message


class ConfigErrors(HarnessError):
    """Several configuration errors found in one pass (each still one line)."""

    exit_code = ExitCode.CONFIG

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        super().__init__("\n".join(e.line() for e in errors))


class InfraError(HarnessError):
    """The target or a service failed for reasons outside the agent's behaviour.

    kind is one of: timeout, rate_limited, server_error, connection, protocol, outage.
    Infra errors are retried when `retryable`, and never count as a failed check.

    `down`: the failure says the service behind the endpoint is down (a connection or a
    timeout; a gateway's 5xx naming its upstream's failure), so it counts towards the
    circuit breaker. `misconfigured`: the endpoint refused what we sent as a mistake of
    ours (a wrong key, an unknown model alias): never retried, and it stops the run as a
    configuration error (exit 2) rather than an outage.
    """

    exit_code = ExitCode.UNREACHABLE

    def __init__(
        self,
        kind: str,
        detail: str,
        *,
        endpoint: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
        status: int | None = None,
        down: bool | None = None,
        misconfigured: bool = False,
    ):
        self.kind = kind
        self.detail = detail
        self.endpoint = endpoint
        self.retry_after = retry_after
        self.status = status
        self.retryable = (
            retryable if retryable is not None else kind in {"timeout", "rate_limited", "server_error", "connection"}
        ) and not misconfigured
        self.down = down if down is not None else kind in {"connection", "timeout"}
        self.misconfigured = misconfigured
        super().__init__(self.line())

    def line(self) -> str:
        where = f" ({self.endpoint})" if self.endpoint else ""
        return f"{self.kind}: {self.detail}{where}"


class TargetUnreachable(HarnessError):
    """The circuit breaker opened: the target is down, the run stops early."""

    exit_code = ExitCode.UNREACHABLE
