#!/usr/bin/env bash
# The system of record under kill -9. On SQLite and on PostgreSQL: issue cards through the portal
# (a `tessera serve` process driven with curl) and headless (`tessera issue`), kill -9 the process
# at a random moment of each issuance, restart, and let `serve` take over what the dead processes
# left. Then assert from the database itself (sqlite3, psql):
#   - no Active card has a certificate that is not valid;
#   - no Failed or Terminated card has a certificate that is valid or on hold;
#   - every card has its DeviceRegistered event and an event that moved it to its state; every
#     certificate has its CertificateIssued event and an event for any later status;
#   - every job is terminal or waits for a person (none is left personalising or printing);
#   - PRAGMA integrity_check is ok (SQLite) and `tessera audit check` is ok.
# Then, during a live issuance, `tessera audit check` and a second `serve` replica run beside the
# server, and the issuance must end Active with every certificate valid and no failure event.
#
# Usage: scripts/crash.sh   (TESSERA_BIN, TESSERA_TEST_DATABASE_URL for PostgreSQL,
#                            TESSERA_CRASH_ISSUANCES per backend, default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TESSERA_BIN:-$PWD/target/debug/tessera}
N=${TESSERA_CRASH_ISSUANCES:-30}
T=$(mktemp -d /tmp/tessera-crash.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
# Short leases: the jobs of a killed process are taken over three seconds after its death.
export TESSERA_JOB_LEASE_SECONDS=3
export RUST_LOG=${RUST_LOG:-warn}
LEASE=3

fail() { echo "FAIL: $*" >&2; for f in "$T"/*.log; do echo "--- $f" >&2; tail -n 30 "$f" >&2; done; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A random delay in seconds, up to $1 milliseconds.
rand_ms() { awk -v r="$RANDOM$RANDOM" -v m="$1" 'BEGIN { printf "%.3f", (r % (m + 1)) / 1000 }'; }

# --- the portal, driven like a browser --------------------------------------------------------------
# portal_issue BASE JAR POLICY [continue|cancel|none]: signs in when needed, runs the wizard, follows
# the progress, and decides. Exits non-zero when the server goes away.
csrf() { grep -o 'name="csrf" value="[^"]*"' | head -n1 | sed 's/.*value="//; s/"$//'; }
# portal_page BASE JAR PATH: the page at PATH, signing in as admin first when the session is gone
# (a signed-in page has the Sign out form; a signed-out request is redirected, with no body).
portal_page() {
  local base=$1 jar=$2 path=$3 page token
  page=$(curl -sf -b "$jar" -c "$jar" "$base$path") || return 1
  if ! grep -q 'action="/logout"' <<<"$page"; then
    page=$(curl -sf -b "$jar" -c "$jar" "$base/login") || return 1
    token=$(csrf <<<"$page")
    curl -sf -b "$jar" -c "$jar" -o /dev/null --data-urlencode "csrf=$token" \
      --data-urlencode operator=admin --data-urlencode "password=$PASSWORD" "$base/login" || return 1
    page=$(curl -sf -b "$jar" -c "$jar" "$base$path") || return 1
  fi
  printf '%s' "$page"
}
portal_issue() {
  local base=$1 jar=$2 policy=$3 decision=${4:-continue} page token url job step
  page=$(portal_page "$base" "$jar" /users/jdoe/issue) || return 1
  token=$(csrf <<<"$page")
  if ! grep -q 'id="change-reader"' <<<"$page"; then
    curl -sf -b "$jar" -c "$jar" -o /dev/null --data-urlencode "csrf=$token" \
      --data-urlencode "printer=Demo Card Printer" --data-urlencode "reader=Demo Card Printer Encoder" \
      "$base/users/jdoe/issue/configure" || return 1
  fi
  url=$(curl -sf -b "$jar" -c "$jar" -o /dev/null -L -w '%{url_effective}' --data-urlencode "csrf=$token" \
    --data-urlencode layout=corporate-badge "$base/users/jdoe/issue/start") || return 1
  job=${url##*/issue/}
  echo "$job" >"$jar.job"
  curl -sf -b "$jar" -c "$jar" -o /dev/null --data-urlencode "csrf=$token" --data-urlencode "policy=$policy" \
    --data-urlencode pin=24681357 --data-urlencode pin_confirm=24681357 "$base/issue/$job/policy" || return 1
  for _ in $(seq 1 600); do
    step=$(curl -sf -b "$jar" "$base/api/v1/jobs/$job" | jq -r .step) || return 1
    case $step in
      printed) break ;;
      issuing|printing) sleep 0.05 ;;
      *) echo "job $job ended in $step" >&2; return 2 ;;
    esac
  done
  [ "$decision" = none ] && return 0
  curl -sf -b "$jar" -c "$jar" -o /dev/null --data-urlencode "csrf=$token" "$base/issue/$job/$decision" || return 1
}

# cancel_open BASE JAR: cancels, as an operator on the Jobs in progress page would, every issuance a
# kill left waiting for a person (Started with a card fed, Printed, Print failed). One issuance at a
# time per person and per printer: until they are cancelled the next Start would be refused.
cancel_open() {
  local base=$1 jar=$2 page token id
  page=$(portal_page "$base" "$jar" /jobs) || return 1
  token=$(csrf <<<"$page")
  for id in $(grep -o 'data-job="[^"]*"' <<<"$page" | sed 's/data-job="//; s/"$//'); do
    curl -sf -b "$jar" -c "$jar" -o /dev/null --data-urlencode "csrf=$token" \
      --data-urlencode "reason=left by a kill -9" "$base/issue/$id/cancel" || return 1
  done
}

# --- one backend ------------------------------------------------------------------------------------
# crash_backend NAME [DATABASE_URL]
crash_backend() {
  local name=$1 url=${2:-} D=$T/$1 port base server="" kills=0 headless=0 portal=0 i rc
  local db=()
  [ -n "$url" ] && db=(--database-url "$url")
  "$BIN" init --demo --data "$D" "${db[@]}" 2>"$T/$name-init.log" || fail "init on $name"
  PASSWORD=$(sed -n 's/^ *Password: //p' "$T/$name-init.log")
  port=$(free_port)
  base=http://127.0.0.1:$port
  start_server() {
    "$BIN" serve --data "$D" "${db[@]}" --listen "127.0.0.1:$port" >>"$T/$name-serve.log" 2>&1 &
    server=$!
    PIDS+=("$server")
    for _ in $(seq 1 200); do curl -sf -o /dev/null "$base/healthz" && return 0; sleep 0.05; done
    fail "serve did not start on $name"
  }
  sql() {
    if [ -n "$url" ]; then psql -tA "$url" -c "$1"; else sqlite3 "$D/tessera.db" "$1"; fi
  }

  # How long one issuance takes here, to spread the kills over all of it.
  local t0 t1 span
  t0=$(date +%s%N)
  "$BIN" issue --data "$D" "${db[@]}" --user jdoe --policy piv-standard --layout corporate-badge \
    --pin 24681357 --json >/dev/null 2>>"$T/$name-issue.log" || fail "a first issuance on $name"
  t1=$(date +%s%N)
  span=$(( (t1 - t0) / 1000000 ))
  echo "$name: one headless issuance takes ${span} ms; killing at random points within it"

  start_server
  # settle: the jobs a kill left personalising or printing end (their leases run out and the
  # server takes them over), and those left waiting for a person are cancelled.
  settle() {
    local busy
    for _ in $(seq 1 150); do
      busy=$(sql "SELECT COUNT(*) FROM jobs WHERE step IN ('issuing','printing')")
      [ "$busy" = 0 ] && break
      sleep 0.05
    done
    cancel_open "$base" "$T/$name.jar" 2>>"$T/$name-portal.log" || true
  }
  for i in $(seq 1 "$N"); do
    settle
    if (( i % 2 )); then
      headless=$((headless + 1))
      "$BIN" issue --data "$D" "${db[@]}" --user jdoe --policy piv-standard --layout corporate-badge \
        --pin 24681357 --json >/dev/null 2>>"$T/$name-issue.log" &
      local victim=$!
      sleep "$(rand_ms "$span")"
      kill -9 "$victim" 2>/dev/null && kills=$((kills + 1))
      wait "$victim" 2>/dev/null || true
    else
      portal=$((portal + 1))
      portal_issue "$base" "$T/$name.jar" piv-standard continue >/dev/null 2>>"$T/$name-portal.log" &
      local client=$!
      sleep "$(rand_ms $((span + 400)))"
      kill -9 "$server" 2>/dev/null && kills=$((kills + 1))
      wait "$server" 2>/dev/null || true
      wait "$client" 2>/dev/null || true
      start_server
    fi
  done
  # Let the last leases run out and the server take the abandoned jobs over.
  sleep $((LEASE + 2))
  local running
  for _ in $(seq 1 100); do
    running=$(sql "SELECT COUNT(*) FROM jobs WHERE step IN ('issuing','printing')")
    [ "$running" = 0 ] && break
    sleep 0.1
  done

  local active_bad failed_bad no_registered no_state_event no_issued no_status_event integrity
  active_bad=$(sql "SELECT COUNT(*) FROM devices d JOIN certificates c ON c.device = d.id
                    WHERE d.state = 'active' AND c.status <> 'valid'")
  failed_bad=$(sql "SELECT COUNT(*) FROM devices d JOIN certificates c ON c.device = d.id
                    WHERE d.state IN ('failed','terminated') AND c.status IN ('valid','on_hold')")
  no_registered=$(sql "SELECT COUNT(*) FROM devices d WHERE NOT EXISTS (SELECT 1 FROM audit a
                    WHERE a.device = d.id AND a.name = 'DeviceRegistered')")
  no_state_event=$(sql "SELECT COUNT(*) FROM devices d WHERE NOT EXISTS (SELECT 1 FROM audit a
                    WHERE a.device = d.id AND a.name = 'DeviceStateChanged'
                    AND a.details LIKE '%\"to\":\"' || d.state || '\"%')")
  no_issued=$(sql "SELECT COUNT(*) FROM certificates c WHERE NOT EXISTS (SELECT 1 FROM audit a
                    WHERE a.name = 'CertificateIssued' AND a.details LIKE '%\"serial\":\"' || c.serial || '\"%')")
  no_status_event=$(sql "SELECT COUNT(*) FROM certificates c WHERE c.status <> 'on_hold' AND NOT EXISTS
                    (SELECT 1 FROM audit a WHERE a.name = 'CertificateStatusChanged'
                    AND a.details LIKE '%\"serial\":\"' || c.serial || '\"%'
                    AND a.details LIKE '%\"to\":\"' || c.status || '\"%')")
  if [ -n "$url" ]; then integrity=ok; else integrity=$(sqlite3 "$D/tessera.db" 'PRAGMA integrity_check'); fi
  "$BIN" audit check --data "$D" "${db[@]}" >"$T/$name-audit.json" 2>>"$T/$name-audit.log" \
    || fail "$name: tessera audit check failed: $(cat "$T/$name-audit.json")"

  echo "$name: $N issuances ($headless headless, $portal portal), $kills kill -9"
  echo "$name: devices by state: $(sql "SELECT state || '=' || COUNT(*) FROM devices GROUP BY state ORDER BY state" | tr '\n' ' ')"
  echo "$name: jobs by step: $(sql "SELECT step || '=' || COUNT(*) FROM jobs GROUP BY step ORDER BY step" | tr '\n' ' ')"
  echo "$name: certificates by status: $(sql "SELECT status || '=' || COUNT(*) FROM certificates GROUP BY status ORDER BY status" | tr '\n' ' ')"
  echo "$name: Active cards with a certificate not valid: $active_bad"
  echo "$name: certificates valid or on hold on Failed/Terminated cards: $failed_bad"
  echo "$name: cards without DeviceRegistered: $no_registered; without the event of their state: $no_state_event"
  echo "$name: certificates without CertificateIssued: $no_issued; status without its event: $no_status_event"
  echo "$name: jobs still personalising or printing: $running; integrity_check: $integrity; audit check: ok"
  [ "$active_bad$failed_bad$no_registered$no_state_event$no_issued$no_status_event$running" = 0000000 ] \
    || fail "$name: the database is inconsistent after the crashes"
  [ "$integrity" = ok ] || fail "$name: integrity_check: $integrity"

  # --- a live issuance beside `audit check` and a second replica ----------------------------------
  local before after job replica port2 failed_events device state certs
  cancel_open "$base" "$T/$name.jar" 2>>"$T/$name-portal.log" || fail "$name: cancelling the issuances left in progress"
  [ "$(sql "SELECT COUNT(*) FROM jobs WHERE step IN ('started','printed','print_failed')")" = 0 ] \
    || fail "$name: issuances still in progress after Cancel it: $(sql "SELECT id || ' ' || step FROM jobs WHERE step IN ('started','printed','print_failed')")"
  before=$(sql "SELECT COUNT(*) FROM audit WHERE name = 'IssuanceFailed'")
  rm -f "$T/$name.jar.job"
  portal_issue "$base" "$T/$name.jar" piv-rsa3072 continue >/dev/null 2>>"$T/$name-portal.log" &
  local client=$!
  for _ in $(seq 1 200); do [ -s "$T/$name.jar.job" ] && break; sleep 0.02; done
  job=$(cat "$T/$name.jar.job")
  for _ in $(seq 1 200); do
    [ "$(sql "SELECT step FROM jobs WHERE id = '$job'")" = issuing ] && break; sleep 0.02
  done
  "$BIN" audit check --data "$D" "${db[@]}" >/dev/null 2>>"$T/$name-audit.log" || fail "$name: audit check during an issuance"
  port2=$(free_port)
  "$BIN" serve --data "$D" "${db[@]}" --listen "127.0.0.1:$port2" >>"$T/$name-replica.log" 2>&1 &
  replica=$!
  PIDS+=("$replica")
  local up=no
  for _ in $(seq 1 200); do
    curl -sf -o /dev/null "http://127.0.0.1:$port2/healthz" && { up=yes; break; }
    sleep 0.05
  done
  [ "$up" = yes ] || fail "$name: the second replica did not start"
  local during
  during=$(sql "SELECT step FROM jobs WHERE id = '$job'")
  sleep $((LEASE + 1))
  kill "$replica"; wait "$replica" 2>/dev/null || true
  wait "$client" || fail "$name: the live issuance failed beside audit check and a second replica"
  device=$(sql "SELECT data FROM jobs WHERE id = '$job'" | jq -r .device)
  state=$(sql "SELECT state FROM devices WHERE id = '$device'")
  certs=$(sql "SELECT COUNT(*) FROM certificates WHERE device = '$device' AND status = 'valid'")
  after=$(sql "SELECT COUNT(*) FROM audit WHERE name = 'IssuanceFailed'")
  echo "$name: live issuance (RSA 3072) at step '$during' while audit check and a replica ran: card $state, $certs valid certificates, new IssuanceFailed events: $((after - before))"
  [ "$state" = active ] && [ "$certs" = 4 ] && [ "$after" = "$before" ] \
    || fail "$name: audit check or the second replica changed a live issuance"
  kill -9 "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
}

crash_backend sqlite
if [ -n "${TESSERA_TEST_DATABASE_URL:-}" ]; then
  PGURL=$(python3 - "$TESSERA_TEST_DATABASE_URL" <<'PY'
import sys, subprocess, time
base = sys.argv[1]
name = f"tessera_crash_{int(time.time())}"
subprocess.run(["psql", "-q", base, "-c", f"CREATE DATABASE {name}"], check=True)
prefix, _, rest = base.rpartition("/")
query = ("?" + rest.split("?", 1)[1]) if "?" in rest else ""
print(f"{prefix}/{name}{query}")
PY
)
  crash_backend postgres "$PGURL"
  psql -q "$TESSERA_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS ${PGURL##*/}" >/dev/null 2>&1 || true
else
  echo "postgres: TESSERA_TEST_DATABASE_URL not set, PostgreSQL not tested"
fi
echo "crash test passed"
