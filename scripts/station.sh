#!/usr/bin/env bash
# The station as its own process with real hardware stand-ins: a virtual PIV card in pcscd's
# vsmartcard reader (`tessera card-sim`) and ippeveprinter as the card printer. The server and the
# station run as separate `tessera` processes (crates/cli/tests/station_process.rs drives the
# portal's wizard over HTTP). Then the card is pulled at several APDU positions
# (`card-sim --remove-after-apdus`): each issuance must end Failed with its certificates revoked.
# Usage: ./scripts/station.sh   (needs pcscd, vsmartcard-vpcd, opensc, cups-ipp-utils, dbus,
# poppler-utils; scripts/test.sh installs them). Reuses a running pcscd, else starts its own.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
R0="Virtual PCD 00 00" # vpcd port 35963
T=$(mktemp -d /tmp/tessera-station.XXXXXX)
PIDS=()
SIM=""
cleanup() {
  local rc=$?
  [ -n "$SIM" ] && kill "$SIM" 2>/dev/null || true
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$rc" != 0 ]; then
    for f in "$T"/*.log; do echo "----- $f"; tail -n 20 "$f" | cut -c1-300; done
  fi
  rm -rf "$T"
  exit "$rc"
}
trap cleanup EXIT
say() { printf -- '--- %s\n' "$*"; }
fail() { echo "FAIL: $*"; exit 1; }
wait_until() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$(($(date +%s) + limit))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${limit}s waiting for $what"
    sleep 0.2
  done
}
readers() { opensc-tool -l 2>&1 || true; }
readers_listed() { readers | grep -q "$R0"; }
card_present() { readers | grep -Eq "^[0-9]+ +Yes +.*$R0\$"; }
card_absent() { readers | grep -Eq "^[0-9]+ +No +.*$R0\$"; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cargo build --quiet -p tessera --features pcsc
BIN=$ROOT/target/debug/tessera

# --- pcscd ---------------------------------------------------------------------------------------
if ! readers_listed; then
  [ -S /run/pcscd/pcscd.comm ] && rm -f /run/pcscd/pcscd.comm
  mkdir -p /run/pcscd
  pcscd -f >"$T/pcscd.log" 2>&1 &
  PIDS+=($!)
  wait_until 20 "pcscd to list the vpcd readers" readers_listed
fi

# start_card [REMOVE_AFTER]: a blank virtual card in R0, pulled at that APDU if given.
start_card() {
  if [ -n "$SIM" ]; then
    kill "$SIM" 2>/dev/null || true
    wait "$SIM" 2>/dev/null || true
    wait_until 20 "\"$R0\" to be empty" card_absent
  fi
  rm -f "$T/card.state"
  # vpcd sometimes misses a card-sim that connects right after a card was pulled: start it again.
  local try
  for try in 1 2 3; do
    "$BIN" card-sim --state "$T/card.state" ${1:+--remove-after-apdus "$1"} </dev/null >>"$T/card-sim.log" 2>&1 &
    SIM=$!
    for _ in $(seq 75); do card_present && return 0; sleep 0.2; done
    kill "$SIM" 2>/dev/null || true
    wait "$SIM" 2>/dev/null || true
    sleep 1
  done
  fail "no card in \"$R0\" after three starts of card-sim"
}

# --- ippeveprinter -------------------------------------------------------------------------------
PORT=$(free_port)
URI=ipp://localhost:$PORT/ipp/print
mkdir -p "$T/spool" "$T/keys"
dbus-daemon --session --nofork --address="unix:path=$T/bus.sock" >"$T/dbus.log" 2>&1 &
PIDS+=($!)
wait_until 10 "a private D-Bus" test -S "$T/bus.sock"
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$T/bus.sock" ippeveprinter -p "$PORT" -n localhost -r off -k \
  -K "$T/keys" -f application/pdf,image/png,image/pwg-raster -d "$T/spool" \
  TesseraStationPrinter >"$T/ippeveprinter.log" 2>&1 &
PIDS+=($!)
wait_until 20 "ippeveprinter" ipptool -q "$URI" get-printer-attributes.test

run_test() {
  TESSERA_STATION_PCSC_READER="$R0" TESSERA_STATION_IPP_URI="$URI" TESSERA_REQUIRE_STATION_PCSC=1 \
    cargo nextest run --features pcsc -p tessera --test station_process --no-capture \
    a_pcsc_card_and_an_ipp_printer >"$T/test-$1.log" 2>&1 || { grep -A6 "panicked" "$T/test-$1.log"; tail -n 5 "$T/card-sim.log"; fail "$1"; }
}

say "a card issued through the station process, in pcscd, printed on ippeveprinter"
start_card
run_test issued
pdf=$(ls "$T"/spool/*.pdf 2>/dev/null | head -n 1)
[ -n "$pdf" ] || fail "ippeveprinter kept no PDF: $(ls "$T/spool")"
pdftotext "$pdf" - | grep -qi "doe" || fail "the printed card does not carry the holder's name"
say "ok: issued in \"$R0\" and printed ($(basename "$pdf"))"

# Start reads the fed card (APDUs 1-3: SELECT, GET SERIAL, GET VERSION); the pulls fall in
# personalisation: its SELECT script, authentication, key generation.
for at in 6 9 15; do
  say "the card pulled at APDU $at through the station"
  start_card "$at"
  TESSERA_STATION_EXPECT=failed run_test "pulled-$at"
  grep -q "card pulled at command $at" "$T/card-sim.log" || fail "card-sim did not pull the card at $at"
  say "ok: pulled at APDU $at, issuance Failed, certificates revoked"
done
