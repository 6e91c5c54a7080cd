#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on loopback for the knowledge-base tests and print its URL.
#
# Usage: tests/knowledge_base/start_postgres.sh [DATA_DIR]
#   export TRANSFER_AUTOML_TEST_PG_URL="$(tests/knowledge_base/start_postgres.sh)"
#
# Installs the Debian `postgresql` package only when no server binaries are present. The cluster
# lives in DATA_DIR (default: a new temporary directory), listens on 127.0.0.1:${PGPORT:-55432}
# only, trusts local connections (it is a test server, never reachable from outside) and runs as
# the `postgres` user when started by root. Stop it with: pg_ctl -D DATA_DIR/data stop
# Everything but the URL goes to stderr, so the script can be used in $(...).
set -euo pipefail

PORT="${PGPORT:-55432}"
DB="transfer_automl_test"
URL="postgresql+psycopg2://postgres@127.0.0.1:${PORT}/${DB}"

find_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

BIN="$(find_bin)"
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
    echo "installing postgresql (no server binaries found)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    BIN="$(find_bin)"
fi

as_owner() {
    if [ "$(id -u)" = "0" ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Already serving on this port (a second call in the same CI job): reuse it.
if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
    echo "a server already answers on 127.0.0.1:${PORT}" >&2
else
    ROOT="${1:-$(mktemp -d /tmp/transfer-automl-pg.XXXXXX)}"
    mkdir -p "$ROOT"
    [ "$(id -u)" = "0" ] && chown postgres "$ROOT"
    if [ ! -f "$ROOT/data/PG_VERSION" ]; then
        as_owner "$BIN/initdb" -D "$ROOT/data" -U postgres --auth=trust -E UTF8 >&2
    fi
    as_owner "$BIN/pg_ctl" -D "$ROOT/data" -l "$ROOT/server.log" -w \
        -o "-p ${PORT} -c listen_addresses=127.0.0.1 -k ${ROOT} -c fsync=off" start >&2
    echo "data directory: $ROOT/data" >&2
fi

if ! "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '${DB}'" | grep -q 1; then
    "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB"
fi
echo "$URL"
