#!/usr/bin/env bash
# Scale-out under load: `tessera bench-load` on PostgreSQL with two replicas behind HAProxy, one
# killed with -9 mid-run, then on SQLite with one replica. Each run checks the database afterwards
# (nothing lost, duplicated or inconsistent; the audit chain intact) and exits non-zero otherwise.
# Usage: TESSERA_TEST_DATABASE_URL=postgres://... [TESSERA_BIN=target/debug/tessera] ./scripts/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TESSERA_BIN:-$PWD/target/debug/tessera}
: "${TESSERA_TEST_DATABASE_URL:?set TESSERA_TEST_DATABASE_URL to a PostgreSQL server (scripts/test.sh does)}"
if ! command -v haproxy >/dev/null; then
  echo "installing haproxy"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null; }
fi
# A service the package may have started is not ours: the bench runs its own on a loopback port.
export RUST_LOG=${RUST_LOG:-error}

echo "--- PostgreSQL, 2 replicas behind HAProxy, 20 stations, 40 s, replica 0 killed at 15 s"
"$BIN" bench-load --backend postgres --database-url "$TESSERA_TEST_DATABASE_URL" \
  --replicas 2 --stations 20 --duration 40 --kill-replica-at 15

echo "--- SQLite, 1 replica, 10 stations, 20 s"
"$BIN" bench-load --backend sqlite --replicas 1 --stations 10 --duration 20
echo "scale: both runs sound"
