#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests and the benchmark; prints its SQLAlchemy URL.
#
#   export HARNESS_TEST_POSTGRES_URL="$(bash scripts/postgres.sh)"   # start (or reuse) and print the URL
#   bash scripts/postgres.sh stop                                     # stop it and delete its data
#
# Installs Debian's postgresql packages when no server binaries are found (needs root), then
# runs a private cluster on 127.0.0.1 at a free port, with its data under a temp folder
# ($HARNESS_PG_DIR, default /tmp/harness-postgres-<uid>). The server never runs as root: as
# root the cluster belongs to the `postgres` user the package creates. Running it again
# while the server is up only prints the URL. Trust authentication on 127.0.0.1 only: this
# is a test server, never a place for real data.
set -euo pipefail

STATE_DIR="${HARNESS_PG_DIR:-${TMPDIR:-/tmp}/harness-postgres-$(id -u)}"
DATA="$STATE_DIR/data"
say() { echo "postgres.sh: $*" >&2; }
die() { say "$*"; exit 1; }

find_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$d" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then dirname "$(command -v pg_ctl)"; fi
}

BINDIR=$(find_bindir)
if [ -z "$BINDIR" ]; then
  [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed; install it (sudo apt-get install -y postgresql) or run this as root"
  say "installing Debian's postgresql packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  BINDIR=$(find_bindir)
  [ -n "$BINDIR" ] || die "postgresql was installed but pg_ctl was not found under /usr/lib/postgresql/*/bin"
fi

# as root, everything server-side runs as the unprivileged `postgres` user
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$STATE_DIR" --shell /usr/sbin/nologin postgres
  if command -v runuser >/dev/null 2>&1; then as_db() { runuser -u postgres -- "$@"; }
  else as_db() { su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; }; fi
  DB_USER=postgres
else
  as_db() { "$@"; }
  DB_USER=$(id -un)
fi

running() { [ -d "$DATA" ] && as_db "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

if [ "${1:-start}" = "stop" ]; then
  if running; then as_db "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null; fi
  rm -rf "$STATE_DIR"
  exit 0
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if ! running; then
  mkdir -p "$STATE_DIR"
  [ "$(id -u)" = 0 ] && chown postgres "$STATE_DIR"
  chmod 700 "$STATE_DIR"
  if [ ! -f "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA"
    as_db "$BINDIR/initdb" -D "$DATA" -U "$DB_USER" --auth=trust -E UTF8 --locale=C >"$STATE_DIR/initdb.log" 2>&1 \
      || { cat "$STATE_DIR/initdb.log" >&2; die "initdb failed"; }
  fi
  port=$(cat "$STATE_DIR/port" 2>/dev/null || true)
  if [ -z "$port" ] || ! python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', $port))" 2>/dev/null; then
    port=$(free_port)
  fi
  echo "$port" >"$STATE_DIR/port"
  as_db "$BINDIR/pg_ctl" -D "$DATA" -l "$STATE_DIR/server.log" -w -t 60 \
    -o "-p $port -k $STATE_DIR -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null \
    || { tail -n 20 "$STATE_DIR/server.log" >&2; die "the server did not start (log above)"; }
fi

port=$(cat "$STATE_DIR/port")
as_db "$BINDIR/pg_isready" -h 127.0.0.1 -p "$port" -t 30 >/dev/null || die "the server on port $port is not answering"
echo "postgresql+psycopg://$DB_USER@127.0.0.1:$port/postgres"
