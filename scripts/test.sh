#!/usr/bin/env bash
# Tessera's whole test suite, as CI runs it: installs the system packages it needs (Debian), starts
# the real components in a temporary folder on loopback, runs every test tier, and stops what it
# started. Usage: ./scripts/test.sh   (TESSERA_TEST_DATABASE_URL=postgres://... to use a running
# PostgreSQL; otherwise one is started on port 55432 or 127.0.0.1:5432 is used when it answers).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
T=$(mktemp -d /tmp/tessera-test.XXXXXX)
chmod 755 "$T"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  if [ -f "$T/pg/data/postmaster.pid" ]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$T/pg/data" -m fast stop >/dev/null 2>&1 || true
  fi
  rm -rf "$T"
}
trap cleanup EXIT
step() { printf '\n=== %s  [%s, %ss]\n' "$*" "$(date +%T)" "$SECONDS"; }

# --- system packages ---------------------------------------------------------------------------
need=()
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
command -v openssl >/dev/null || need+=(openssl)
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v jq >/dev/null || need+=(jq)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v python3 >/dev/null || need+=(python3)
command -v pdfinfo >/dev/null || need+=(poppler-utils)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# Smart cards: the pcsc build feature, pcscd with vsmartcard's virtual readers, and the tools of
# other people that scripts/interop.sh checks Tessera's cards with.
command -v pkg-config >/dev/null || need+=(pkg-config)
installed libpcsclite-dev || need+=(libpcsclite-dev)
command -v pcscd >/dev/null || [ -x /usr/sbin/pcscd ] || need+=(pcscd)
installed vsmartcard-vpcd || need+=(vsmartcard-vpcd)
command -v pcsc_scan >/dev/null || need+=(pcsc-tools)
command -v pkcs11-tool >/dev/null || need+=(opensc)
command -v yubico-piv-tool >/dev/null || need+=(yubico-piv-tool)
# The facial image Tessera writes to a card is decoded by libjpeg-turbo's djpeg (scripts/interop.sh).
command -v djpeg >/dev/null || need+=(libjpeg-turbo-progs)
# Smart-card sign-in (scripts/card-sign-in.sh): curl presents a card's key through libp11's engine.
installed libengine-pkcs11-openssl || need+=(libengine-pkcs11-openssl)
# SoftHSM: the PKCS#11 key provider's conformance suite and the CA-on-a-token tests.
command -v softhsm2-util >/dev/null || need+=(softhsm2)
# Card printing on a real IPP printer (scripts/ipp.sh): ippeveprinter on a private D-Bus.
command -v ippeveprinter >/dev/null || need+=(cups-ipp-utils)
command -v ipptool >/dev/null || need+=(cups-ipp-utils)
command -v dbus-daemon >/dev/null || need+=(dbus)
command -v pdftotext >/dev/null || need+=(poppler-utils)
command -v curl >/dev/null || need+=(curl)
# TOTP codes from an independent implementation (crates/server/tests/operators.rs).
command -v oathtool >/dev/null || need+=(oathtool)
# The rendering benchmark's reference (scripts/bench-render.sh).
command -v rsvg-convert >/dev/null || need+=(librsvg2-bin)
# The directory sync against a real OpenLDAP (scripts/slapd.sh, crates/server/tests/directory_sync.rs);
# debconf is told to make no database of its own.
[ -x /usr/sbin/slapd ] || need+=(slapd)
command -v ldapadd >/dev/null || need+=(ldap-utils)
if [ ${#need[@]} -gt 0 ]; then
  step "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest

# vsmartcard's vpcd listens on 35963 and 35964, which lie in Linux's ephemeral port range: a
# client socket that happened to get one of them (lingering in TIME_WAIT after an earlier step)
# makes pcscd fail with "Address already in use". Keep the kernel from handing them out.
if [ -w /proc/sys/net/ipv4/ip_local_reserved_ports ]; then
  echo 35963-35964 > /proc/sys/net/ipv4/ip_local_reserved_ports || true
fi

# --- PostgreSQL ---------------------------------------------------------------------------------
PG_BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")
if [ -z "${TESSERA_TEST_DATABASE_URL:-}" ]; then
  if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p 5432 -U postgres 2>/dev/null; then
    export TESSERA_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
  else
    step "starting PostgreSQL on 127.0.0.1:55432"
    install -d -o postgres "$T/pg"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$T/pg/data" -U postgres --auth=trust >/dev/null
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$T/pg/data" -l "$T/pg/log" \
      -o "-c listen_addresses=127.0.0.1 -p 55432 -k $T/pg" -w start >/dev/null
    export TESSERA_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres
  fi
fi
export TESSERA_REQUIRE_POSTGRES=1
# The SoftHSM tests skip without SoftHSM on a developer's machine; here they must run.
export TESSERA_REQUIRE_SOFTHSM=1
# The TOTP test takes its codes from oathtool, not from Tessera's own RFC 6238 code.
export TESSERA_REQUIRE_OATHTOOL=1
# The directory sync tests run against slapd (scripts/slapd.sh), not skip.
export TESSERA_REQUIRE_SLAPD=1

# --- static checks ------------------------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy --all-targets --features tessera/pcsc -D warnings"
cargo clippy --workspace --all-targets --features tessera/pcsc --quiet -- -D warnings

# --- unit, conformance and HTTP tests -----------------------------------------------------------
# This includes the authorisation matrix (crates/server/tests/authorization.rs): every route of
# the router x every role, no session and an operator out of scope.
step "cargo nextest (unit, store conformance on SQLite and PostgreSQL, HTTP issuance flow, authorisation matrix)"
cargo nextest run --workspace --features tessera/pcsc --no-fail-fast

# --- the binary, with PC/SC: built once, used by every step below -------------------------------
step "cargo build -p tessera --features pcsc"
cargo build --quiet -p tessera --features pcsc
BIN=$ROOT/target/debug/tessera

# --- the binary: headless issuance checked by openssl --------------------------------------------
step "tessera issue --json, certificates checked with openssl"
"$BIN" init --demo --data "$T/cli" 2>"$T/init.log"
"$BIN" issue --data "$T/cli" --user jdoe --policy "PIV Standard" --layout "Corporate Badge" \
  --pin 135790 --json > "$T/issue.json" 2>"$T/issue.log"
jq -e '.state == "active" and (.certificates | length) == 4' "$T/issue.json" >/dev/null
jq -r '.ca_chain_pem' "$T/issue.json" > "$T/chain.pem"
awk '/BEGIN/{n++} n==2' "$T/chain.pem" > "$T/root.pem"
awk '/BEGIN/{n++} n==1' "$T/chain.pem" > "$T/issuing.pem"
for i in 0 1 2 3; do
  jq -r ".certificates[$i].pem" "$T/issue.json" > "$T/leaf$i.pem"
  openssl verify -x509_strict -CAfile "$T/root.pem" -untrusted "$T/issuing.pem" "$T/leaf$i.pem"
done
for f in $(jq -r '.printed[] | select(endswith(".pdf"))' "$T/issue.json"); do
  pdfinfo "$f" | grep -E 'Pages:|Page size:'
  pdfinfo "$f" | grep -q 'Page size: *242.6[0-9]* x 153.0[0-9]* pts' || { echo "PDF is not CR80: $f"; exit 1; }
done
"$BIN" issue --data "$T/cli" --user jdoe --policy piv-standard --layout corporate-badge \
  --pin 135790 --cancel --json > "$T/cancel.json" 2>>"$T/issue.log"
jq -e '.state == "pending"' "$T/cancel.json" >/dev/null
if grep -q 135790 "$T/issue.log"; then echo "the PIN reached the log"; exit 1; fi
echo "headless issuance: active and pending cards verified"

# --- the system of record under kill -9 ----------------------------------------------------------
step "crash: kill -9 during issuances on SQLite and PostgreSQL; audit check and a second replica beside a live one"
TESSERA_BIN=$BIN ./scripts/crash.sh

# --- smart cards through pcscd, checked with OpenSC, yubico-piv-tool and openssl -----------------
# The browser tests' playwright-core: interop.sh drives the help desk's PIN unlock in Chromium.
(cd tests/e2e && npm install --silent --no-audit --no-fund >/dev/null)
step "interop: a card issued through pcscd, checked with OpenSC, yubico-piv-tool and openssl; the help desk unlocks it in Chromium"
TESSERA_BIN=$BIN ./scripts/interop.sh

# --- smart-card sign-in with a real TLS client --------------------------------------------------
step "card sign-in: curl presents a Tessera card's 9A key through OpenSC; a terminated card is refused"
TESSERA_BIN=$BIN ./scripts/card-sign-in.sh

# --- certificates linted by pkilint ---------------------------------------------------------------
step "pkilint on every slot profile and algorithm"
TESSERA_BIN=$BIN ./scripts/pki-lint.sh

# --- card printing on a real IPP printer -----------------------------------------------------------
step "IPP printing: ippeveprinter receives the card; out of cards, unreachable, aborted end Pending"
TESSERA_BIN=$BIN ./scripts/ipp.sh
step "barcodes: PDF417, Code 128 and QR of a 300 dpi card read by ZXing-C++"; ./scripts/barcode-check.sh

# --- the station as its own process ---------------------------------------------------------------
step "station: server and station processes, a card in pcscd printed on ippeveprinter; pulled cards fail cleanly"
./scripts/station.sh

# --- the browser ----------------------------------------------------------------------------------
step "headless Chromium drives the Device Issuance wizard (playwright-core)"
TESSERA_BIN=$BIN TESSERA_E2E_DIR=$T/e2e node tests/e2e/issuance.mjs
step "headless Chromium: wrong initial PINs refused next to the field, as typed and by the server (playwright-core)"
TESSERA_BIN=$BIN TESSERA_E2E_DIR=$T/e2e-pin node tests/e2e/wizard_pin.mjs
step "headless Chromium: two tabs, Back then Start, Back after Continue: one issuance at a time (playwright-core)"
TESSERA_BIN=$BIN TESSERA_E2E_DIR=$T/e2e-overlap node tests/e2e/wizard_overlap.mjs
step "headless Chromium imports people with their photos and prints one's card (playwright-core)"
TESSERA_BIN=$BIN TESSERA_E2E_DIR=$T/e2e-people node tests/e2e/people.mjs
step "axe-core on every portal page at 1280 and 390 px; none wider than 390 px (playwright-core)"
TESSERA_BIN=$BIN TESSERA_E2E_DIR=$T/e2e-a11y node tests/e2e/a11y.mjs

# --- scale-out under load -------------------------------------------------------------------------
step "scale: bench-load on PostgreSQL (2 replicas behind HAProxy, one killed -9) and SQLite; the database checked after"
TESSERA_BIN=$BIN ./scripts/scale.sh

# --- fuzzing: a short run of every target ---------------------------------------------------------
# cargo fuzz needs a nightly toolchain, which only rustup can install: where there is none, say so.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  step "cargo fuzz: ${TESSERA_FUZZ_SECONDS:-10} s per target (APDU, TLV, data objects, card, client)"
  ./scripts/fuzz.sh "${TESSERA_FUZZ_SECONDS:-10}"
else
  step "cargo fuzz skipped: no nightly toolchain on this machine (rustup toolchain install nightly)"
fi

step "all tests passed"
