"""A real PostgreSQL server for the tests, and a fresh database per test.

`HARNESS_TEST_POSTGRES_URL` names a server to use (any database on it; tests create their
own). Without it, `scripts/postgres.sh` installs and starts a throwaway one. In CI
(CI=true) a missing server is a failure, never a skip: the PostgreSQL tests must run there.

Import the fixtures into a test module with `from pg_fixtures import pg_server, pg_url`.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "postgres.sh"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"PostgreSQL tests must run in CI, but: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server: {reason} (set HARNESS_TEST_POSTGRES_URL or install postgresql)")


def _start_server() -> str:
    try:
        out = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        _unavailable(f"scripts/postgres.sh could not run: {e}")
    if out.returncode != 0 or not out.stdout.strip():
        _unavailable(f"scripts/postgres.sh failed: {(out.stderr or out.stdout).strip().splitlines()[-1:]}")
    return out.stdout.strip().splitlines()[-1]


def _admin_engine(url: str):
    from sqlalchemy import create_engine

    return create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The SQLAlchemy URL of a running server (its maintenance database)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("the psycopg driver is not installed (pip install -e '.[test]')")
    url = os.environ.get("HARNESS_TEST_POSTGRES_URL") or _start_server()
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        engine = _admin_engine(url)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except SQLAlchemyError as e:
        _unavailable(f"cannot connect to {url}: {str(e).splitlines()[0]}")
    return url


def _with_database(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    from sqlalchemy import text

    name = f"harness_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(pg_server)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(pg_server, name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def terminate_backends(url: str) -> int:
    """Kill every server process connected to `url`'s database (a dropped connection, for real)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    admin = _admin_engine(_with_database(url, "postgres"))
    try:
        with admin.connect() as conn:
            killed = conn.execute(
                text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                     "WHERE datname = :db AND pid <> pg_backend_pid()"),
                {"db": database},
            ).scalar()
    finally:
        admin.dispose()
    return int(killed or 0)
