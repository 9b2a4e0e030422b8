#!/usr/bin/env bash
# Card printing on a real IPP printer: ippeveprinter (CUPS' IPP Everywhere printer) on a free
# loopback port with a private D-Bus, keeping every document it receives (-k), and a per-job hook
# (-c) that the test turns into a failing printer. Checks that a card issued headless reaches the
# printer as a two-page CR80 PDF with the holder's name, that ipptool sees the job completed, and
# that an out-of-cards printer, an unreachable one and an aborted job each leave the card Pending
# until `tessera print` prints it once the printer is fixed. Then the same printer over ipps://
# (ippeveprinter answers TLS on its port with a self-signed certificate): refused with the reason
# without a CA file, printed with the printer's certificate as CA file. Last, a spool folder.
# Usage: TESSERA_BIN=target/debug/tessera ./scripts/ipp.sh
#   (TESSERA_IPP_TEST_PAGE=path/to/ipp_test_page to skip building that example)
set -euo pipefail
BIN=${TESSERA_BIN:?set TESSERA_BIN to the tessera binary}
T=$(mktemp -d /tmp/tessera-ipp.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
say() { printf -- '--- %s\n' "$*"; }
fail() { echo "FAIL: $*"; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
    || echo $((20000 + RANDOM % 20000))
}

# --- the printer ---------------------------------------------------------------------------------
PORT=$(free_port)
URI=ipp://localhost:$PORT/ipp/print
mkdir -p "$T/spool" "$T/keys"
cat > "$T/on-job.sh" <<EOF
#!/bin/sh
# Runs once per job. With $T/abort present the printer reports a ribbon fault and fails the job.
if [ -f "$T/abort" ]; then echo "ERROR: Ribbon fault" >&2; exit 1; fi
# With $T/slow present a card takes a second, so that a second job finds the printer busy.
if [ -f "$T/slow" ]; then sleep 1; fi
exit 0
EOF
chmod +x "$T/on-job.sh"
dbus-daemon --session --nofork --address="unix:path=$T/bus.sock" >"$T/dbus.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$T/bus.sock" ] && break; sleep 0.1; done
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$T/bus.sock" ippeveprinter -p "$PORT" -n localhost -r off -k -K "$T/keys" \
  -f application/pdf,image/png,image/pwg-raster -d "$T/spool" -c "$T/on-job.sh" \
  TesseraCardPrinter >"$T/ippeveprinter.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  ipptool -q "$URI" get-printer-attributes.test >/dev/null 2>&1 && break
  sleep 0.1
done
ipptool -q "$URI" get-printer-attributes.test || fail "ippeveprinter did not start: $(cat "$T/ippeveprinter.log")"
say "ippeveprinter on $URI"

# The web form ippeveprinter offers for testing sets the sheets in each tray; zero means no cards.
cards() {
  curl -fsS -o /dev/null \
    "http://localhost:$PORT/media?size1=na_letter_8.5x11in&level1=$1&size3=na_number-10_4.125x9.5in&level3=$1"
}

D=$T/data
"$BIN" init --demo --data "$D" 2>>"$T/tessera.log"
issue() {
  # Exit status 2 = issued, not printed (card Pending); the JSON says why.
  local rc=0
  "$BIN" issue --data "$D" --user jdoe --policy "PIV Standard" --layout "Corporate Badge" \
    --pin 24681357 --printer "$1" >"$T/$2.json" 2>>"$T/tessera.log" || rc=$?
  echo "$rc"
}

# --- add the printer, test page ------------------------------------------------------------------
"$BIN" printer add --data "$D" --name "Desk IPP" --uri "$URI" \
  --encoder "Demo Card Printer Encoder" >"$T/add.json" 2>>"$T/tessera.log"
jq -e '.kind == "ipp" and .state == "Ready" and (.capabilities.document_formats | index("application/pdf"))' \
  "$T/add.json" >/dev/null || fail "printer add: $(cat "$T/add.json")"
"$BIN" printer test --data "$D" --name "Desk IPP" >"$T/test.json" 2>>"$T/tessera.log"
jq -e '.state == "completed"' "$T/test.json" >/dev/null || fail "test page: $(cat "$T/test.json")"
say "printer added; test page printed (job $(jq -r .printer_job "$T/test.json"))"

# --- a card reaches the printer ------------------------------------------------------------------
rc=$(issue "Desk IPP" ok)
[ "$rc" = 0 ] || fail "issue exited $rc: $(cat "$T/ok.json")"
jq -e '.state == "active" and .print_error == null and .printer == "Desk IPP"' "$T/ok.json" >/dev/null \
  || fail "card not active: $(cat "$T/ok.json")"
serial=$(jq -r .serial "$T/ok.json")
pdf=$(ls "$T"/spool/*"$serial"*.pdf 2>/dev/null | head -n1)
[ -n "$pdf" ] || fail "ippeveprinter kept no PDF for card $serial: $(ls "$T/spool")"
pdfinfo "$pdf" | grep -E 'Pages:|Page size:'
pdfinfo "$pdf" | grep -q 'Pages: *2' || fail "the card PDF does not have two pages"
[ "$(pdfinfo -f 1 -l 2 "$pdf" | grep -c 'size: *242.6[0-9]* x 153.0[0-9]* pts')" = 2 ] \
  || fail "the card pages are not CR80"
pdftotext "$pdf" - | grep -q "Jane Doe" || fail "the holder's name is not on the printed card"
ipptool -tv "$URI" get-completed-jobs.test >"$T/jobs.txt" 2>&1 || true
grep -q 'job-state (enum) = completed' "$T/jobs.txt" || fail "ipptool sees no completed job"
grep -qi "jane_doe_$serial\|Jane Doe $serial" "$T/jobs.txt" || fail "ipptool does not list the card's job"
say "card $serial printed: two CR80 pages with the holder's name, job completed per ipptool"

# --- out of cards: Pending, then printed once cards are loaded ------------------------------------
cards 0
rc=$(issue "Desk IPP" empty)
[ "$rc" = 2 ] || fail "out of cards: issue exited $rc"
jq -e '.state == "pending" and (.print_error | test("Out of cards: load blank cards"))' "$T/empty.json" \
  >/dev/null || fail "out of cards: $(cat "$T/empty.json")"
"$BIN" printer list --data "$D" 2>>"$T/tessera.log" | jq -e '.[] | select(.name == "Desk IPP") | .state == "Out of cards: load blank cards"' >/dev/null \
  || fail "printer list does not say the printer is out of cards"
cards 100
dev=$(jq -r .device_id "$T/empty.json")
"$BIN" print --data "$D" --device "$dev" >"$T/empty-retry.json" 2>>"$T/tessera.log" || fail "retry print failed: $(cat "$T/empty-retry.json")"
jq -e '.state == "active" and .print_error == null' "$T/empty-retry.json" >/dev/null || fail "retry: $(cat "$T/empty-retry.json")"
say "out of cards: card Pending ($(jq -r .print_error "$T/empty.json")); printed and active after loading cards"

# --- job aborted by the printer ---------------------------------------------------------------------
touch "$T/abort"
rc=$(issue "Desk IPP" abort)
[ "$rc" = 2 ] || fail "aborted job: issue exited $rc"
jq -e '.state == "pending" and (.print_error | test("aborted the job: Ribbon fault"))' "$T/abort.json" \
  >/dev/null || fail "aborted job: $(cat "$T/abort.json")"
rm "$T/abort"
dev=$(jq -r .device_id "$T/abort.json")
"$BIN" print --data "$D" --device "$dev" >"$T/abort-retry.json" 2>>"$T/tessera.log" || fail "retry: $(cat "$T/abort-retry.json")"
jq -e '.state == "active"' "$T/abort-retry.json" >/dev/null || fail "retry: $(cat "$T/abort-retry.json")"
say "aborted job: card Pending ($(jq -r .print_error "$T/abort.json")); printed after the fault was cleared"

# --- unreachable printer: Pending, then printed on the working printer ----------------------------
DEAD=$(free_port)
"$BIN" printer add --data "$D" --name "Unplugged" --uri "ipp://127.0.0.1:$DEAD/ipp/print" >/dev/null 2>>"$T/tessera.log"
rc=$(issue "Unplugged" dead)
[ "$rc" = 2 ] || fail "unreachable: issue exited $rc"
jq -e --arg u "ipp://127.0.0.1:$DEAD/ipp/print" \
  '.state == "pending" and (.print_error | contains("Not reachable at " + $u + ": check the cable and power"))' \
  "$T/dead.json" >/dev/null || fail "unreachable: $(cat "$T/dead.json")"
dev=$(jq -r .device_id "$T/dead.json")
"$BIN" print --data "$D" --device "$dev" --printer "Desk IPP" >"$T/dead-retry.json" 2>>"$T/tessera.log" \
  || fail "reprint elsewhere: $(cat "$T/dead-retry.json")"
jq -e '.state == "active" and .printer == "Desk IPP"' "$T/dead-retry.json" >/dev/null || fail "reprint: $(cat "$T/dead-retry.json")"
say "unreachable printer: card Pending ($(jq -r .print_error "$T/dead.json")); printed on Desk IPP"

# --- two jobs at once: the second waits while the printer answers server-error-busy --------------
touch "$T/slow"
: >"$T/busy.log"
"$BIN" printer test --data "$D" --name "Desk IPP" >"$T/busy1.json" 2>>"$T/busy.log" &
p1=$!
sleep 0.3
"$BIN" printer test --data "$D" --name "Desk IPP" >"$T/busy2.json" 2>>"$T/busy.log" &
p2=$!
wait $p1 && wait $p2 \
  || fail "concurrent test pages failed: $(cat "$T/busy1.json" "$T/busy2.json" "$T/busy.log")"
jq -e '.state == "completed"' "$T/busy1.json" "$T/busy2.json" >/dev/null || fail "concurrent: not completed"
grep -q "printer busy with another job, retrying" "$T/busy.log" || fail "the second job never met a busy printer"
rm "$T/slow"
say "two test pages at once: the second retried while the printer was busy; both completed"

# --- ipps://: the same printer over TLS ------------------------------------------------------------
SURI=ipps://localhost:$PORT/ipp/print
"$BIN" printer add --data "$D" --name "Desk IPPS" --uri "$SURI" >"$T/add-ipps.json" 2>>"$T/tessera.log"
jq -e '.kind == "ipp" and (.state | test("self-signed or signed by an unknown CA"))' "$T/add-ipps.json" \
  >/dev/null || fail "ipps without a CA file: $(cat "$T/add-ipps.json")"
PROBE=${TESSERA_IPP_TEST_PAGE:-}
if [ -z "$PROBE" ]; then
  cargo build --quiet --manifest-path "$(dirname "$0")/../Cargo.toml" -p tessera-print --example ipp_test_page
  PROBE=$(dirname "$0")/../target/debug/examples/ipp_test_page
fi
"$PROBE" "$SURI" >"$T/ipps-noca.txt" 2>&1 && fail "ipps without a CA file printed: $(cat "$T/ipps-noca.txt")"
grep -q "self-signed or signed by an unknown CA" "$T/ipps-noca.txt" || fail "ipps: $(cat "$T/ipps-noca.txt")"
# The printer's own certificate as the CA file: exactly this printer is trusted.
openssl s_client -connect "localhost:$PORT" -servername localhost -showcerts </dev/null 2>/dev/null \
  | awk '/BEGIN CERT/,/END CERT/' >"$T/printer-cert.pem"
grep -q "BEGIN CERTIFICATE" "$T/printer-cert.pem" || fail "ippeveprinter presented no certificate"
"$PROBE" "$SURI" "$T/printer-cert.pem" >"$T/ipps.txt" 2>&1 || fail "ipps with its CA file: $(cat "$T/ipps.txt")"
grep -q "^state: Ready" "$T/ipps.txt" && grep -q "^completed: Printed on" "$T/ipps.txt" \
  || fail "ipps with its CA file: $(cat "$T/ipps.txt")"
say "ipps: refused without a CA file ($(jq -r .state "$T/add-ipps.json" | cut -c1-70)...); test card printed over TLS with the printer's certificate as CA file"

# --- a spool folder ---------------------------------------------------------------------------------
mkdir "$T/hot"
"$BIN" printer add --data "$D" --name "Hot folder" --uri "spool:$T/hot" >"$T/add-spool.json" 2>>"$T/tessera.log" \
  || fail "spool add: $(cat "$T/add-spool.json")"
jq -e '.kind == "spool" and .state == "Ready"' "$T/add-spool.json" >/dev/null || fail "spool: $(cat "$T/add-spool.json")"
rc=$(issue "Hot folder" spool)
[ "$rc" = 0 ] || fail "spool: issue exited $rc: $(cat "$T/spool.json")"
serial=$(jq -r .serial "$T/spool.json")
pdf=$(ls "$T"/hot/jane-doe-"$serial"-*.pdf 2>/dev/null | head -n1)
[ -n "$pdf" ] || fail "no PDF for card $serial in the spool folder: $(ls -a "$T/hot")"
[ -f "${pdf%.pdf}-front.png" ] && [ -f "${pdf%.pdf}-back.png" ] || fail "the PNGs are missing: $(ls -a "$T/hot")"
[ -z "$(ls -A "$T/hot" | grep '^\.')" ] || fail "temporary files left: $(ls -a "$T/hot")"
pdfinfo "$pdf" | grep -q 'Pages: *2' || fail "the spooled PDF does not have two pages"
pdftotext "$pdf" - | grep -q "Jane Doe" || fail "the holder's name is not in the spooled PDF"
rm -rf "$T/hot"
rc=$(issue "Hot folder" spool-gone)
[ "$rc" = 2 ] || fail "spool folder gone: issue exited $rc"
jq -e '.state == "pending" and (.print_error | test("does not exist: create it"))' "$T/spool-gone.json" >/dev/null \
  || fail "spool folder gone: $(cat "$T/spool-gone.json")"
say "spool folder: $(basename "$pdf") and its PNGs written whole; folder removed: card Pending ($(jq -r .print_error "$T/spool-gone.json"))"

echo "IPP printing: 8 passed, 0 failed"
