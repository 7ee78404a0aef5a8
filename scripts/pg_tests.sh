#!/usr/bin/env bash
# The PostgreSQL pass of `make test`: the assignment tests (row locks, FOR UPDATE SKIP LOCKED) and several
# rlhf_worker processes sharing one job queue (tests/rlhf/test_workers_postgresql.py) on a throwaway
# PostgreSQL server, listening on 127.0.0.1 only, in a temp dir removed afterwards. The rest of the suite runs on
# SQLite. PostgreSQL comes from Debian's `postgresql` package (installed here when missing and we are root).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
TESTS=${PG_TESTS:-tests/annotation/services/test_assignments.py tests/annotation/test_hot_sql.py tests/rlhf/test_workers_postgresql.py}

find_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
bindir=$(find_bindir || true)
if [ -z "$bindir" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian's postgresql for the PostgreSQL tests ..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bindir=$(find_bindir)
  else
    echo "PostgreSQL not found: install Debian's 'postgresql' package (root needed) to run the PostgreSQL tests." >&2
    exit 1
  fi
fi

tmp=$(mktemp -d /tmp/pgtest.XXXXXX)
as_owner=()
if [ "$(id -u)" = 0 ]; then  # the server refuses to run as root
  chown nobody "$tmp"
  as_owner=(runuser -u nobody --)
fi
port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
  "${as_owner[@]}" "$bindir/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
"${as_owner[@]}" "$bindir/initdb" -D "$tmp/data" -U postgres --auth=trust -E UTF8 >/dev/null
"${as_owner[@]}" "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $tmp -F" start >/dev/null
echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port: $TESTS"
# shellcheck disable=SC2086 # TESTS is a list of paths
DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres" $PY -m pytest -q $TESTS
