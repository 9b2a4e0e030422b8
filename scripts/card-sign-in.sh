#!/usr/bin/env bash
# Smart-card sign-in with a real TLS client: a virtual card in pcscd's vsmartcard reader is issued
# by Tessera through PC/SC, an operator is linked to its holder, `tessera serve` runs HTTPS, and
# curl presents the card's 9A certificate with its key on the card, through OpenSC's PKCS#11
# module and libp11's OpenSSL engine (the key never leaves the card; the PIN is the one given at
# issuance). Checked: the login page offers the card; without a certificate /login/card says what
# to do; with the card it opens a session, the operator's owed password change comes first, then
# /users answers; after the card is terminated (on the User page, by that operator) its
# certificates are revoked and the same card is refused.
#
# Usage: TESSERA_BIN=target/debug/tessera ./scripts/card-sign-in.sh   (built with
# `cargo build -p tessera --features pcsc`). Needs pcscd, vsmartcard-vpcd, opensc,
# libengine-pkcs11-openssl, curl, openssl and jq (scripts/test.sh installs them). Reuses a running
# pcscd, else starts its own. CARD_SIGN_IN_KEEP=1 keeps the temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${TESSERA_BIN:-$ROOT/target/debug/tessera}
P11=${OPENSC_PKCS11:-/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so}
READER="Virtual PCD 00 00" # vpcd port 35963
VPCD_PORT=35963
PIN=36925814
PORT=${CARD_SIGN_IN_PORT:-38643}
URL=https://127.0.0.1:$PORT
WAIT=20

T=$(mktemp -d /tmp/tessera-card-sign-in.XXXXXX)
PIDS=()
CHECKS=0
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] || continue
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "${CARD_SIGN_IN_KEEP:-}" = 1 ]; then echo "card-sign-in: kept $T"; else rm -rf "$T"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() {
  CHECKS=$((CHECKS + 1))
  printf '  ok %2d  %s\n' "$CHECKS" "$*"
}
fail() {
  local msg=$1 f
  shift
  for f in "$@"; do
    [ -s "$f" ] || continue
    printf '\n----- %s (last 30 lines)\n' "${f#"$T"/}" >&2
    sed 's/\x1b\[[0-9;]*m//g' "$f" | grep -v 'sqlx::query' | tail -n 30 | cut -c1-300 >&2
  done
  printf '\ncard-sign-in: FAILED: %s (%d checks passed before)\n' "$msg" "$CHECKS" >&2
  exit 1
}
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
readers_listed() { readers | grep -q "$READER"; }
card_present() { readers | grep -Eq "^[0-9]+ +Yes +.*$READER\$"; }
serving() { curl -sk -o /dev/null "$URL/login"; }

for tool in pcscd opensc-tool pkcs11-tool curl openssl jq; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (see the package list in scripts/test.sh)"
done
[ -x "$BIN" ] || fail "TESSERA_BIN=$BIN is not an executable (cargo build -p tessera --features pcsc)"
[ -f "$P11" ] || fail "OpenSC's PKCS#11 module is not at $P11 (set OPENSC_PKCS11)"
ls /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so >/dev/null 2>&1 ||
  fail "libp11's OpenSSL engine is missing (apt-get install libengine-pkcs11-openssl)"

# --- pcscd and a blank virtual card -----------------------------------------------------------------
if ! readers_listed; then
  if ps -C pcscd -o stat= 2>/dev/null | grep -qv '^Z'; then
    fail "a pcscd runs but does not list \"$READER\" (is vsmartcard-vpcd installed?): $(readers)"
  fi
  rm -f /run/pcscd/pcscd.comm # left behind by a pcscd that was killed
  mkdir -p /run/pcscd
  pcscd -f >"$T/pcscd.log" 2>&1 &
  PIDS+=($!)
  wait_until "$WAIT" "pcscd to list the vpcd readers" readers_listed
fi
card_present && fail "\"$READER\" already holds a card: is another card-sim running on port $VPCD_PORT?"
"$BIN" card-sim --state "$T/card.state" --vpcd "127.0.0.1:$VPCD_PORT" </dev/null >"$T/card-sim.log" 2>&1 &
PIDS+=($!)
wait_until "$WAIT" "the virtual card in \"$READER\"" card_present
ok "a blank virtual card in \"$READER\" (pcscd, vpcd)"

# --- Tessera issues it to jdoe and links an operator to jdoe ---------------------------------------
"$BIN" init --demo --data "$T/data" 2>"$T/init.log" || fail "tessera init failed" "$T/init.log"
timeout 120 "$BIN" issue --data "$T/data" --readers pcsc --reader "$READER" --user jdoe \
  --policy "PIV Standard" --layout "Corporate Badge" --pin "$PIN" --json >"$T/issue.json" 2>"$T/issue.log" ||
  fail "tessera issue through PC/SC failed" "$T/issue.log"
jq -e '.state == "active"' "$T/issue.json" >/dev/null || fail "the card is not active" "$T/issue.json"
DEVICE=$(jq -r .device_id "$T/issue.json")
SERIAL=$(jq -r '.certificates[] | select(.slot == "9a") | .serial' "$T/issue.json")
sleep 1 # the PC/SC disconnect of `tessera issue` resets the card: let it land
ok "tessera issue: card $DEVICE active for jdoe, 9A certificate serial $SERIAL"
"$BIN" operators add --data "$T/data" jdoe-desk --role security_officer --user jdoe \
  >"$T/one-time.txt" 2>"$T/operators.log" || fail "tessera operators add failed" "$T/operators.log"
ONE_TIME=$(head -n1 "$T/one-time.txt")
ok "tessera operators add jdoe-desk --role security_officer --user jdoe"

# The card's 9A objects as OpenSC's PKCS#11 module shows them (ID 01), on this reader's token.
timeout 60 pkcs11-tool --module "$P11" -L >"$T/slots.txt" 2>&1 || fail "pkcs11-tool -L" "$T/slots.txt"
TOKEN=$(awk -v r="$READER" 'index($0, r) {found=1} found && /token label/ {sub(/.*: */, ""); print; exit}' "$T/slots.txt")
[ -n "$TOKEN" ] || fail "no token in \"$READER\" for OpenSC" "$T/slots.txt"
TOKEN_URI=$(printf '%s' "$TOKEN" | jq -sRr @uri)
CERT_URI="pkcs11:token=$TOKEN_URI;id=%01;type=cert"
KEY_URI="pkcs11:token=$TOKEN_URI;id=%01;type=private?pin-value=$PIN"
timeout 60 pkcs11-tool --module "$P11" --token-label "$TOKEN" --read-object --type cert --id 01 \
  -o "$T/card-9a.der" >"$T/read.txt" 2>&1 || fail "pkcs11-tool cannot read the 9A certificate" "$T/read.txt"
openssl x509 -inform DER -in "$T/card-9a.der" -noout -serial | grep -qi "=0*$SERIAL\$" ||
  fail "the card's 9A certificate (ID 01) is not the one Tessera issued" "$T/read.txt"
ok "OpenSC's PKCS#11 module shows token \"$TOKEN\" with Tessera's 9A certificate (ID 01)"

# --- tessera serve over HTTPS ----------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$T/server.key" -out "$T/server.pem" 2>"$T/openssl.log" ||
  fail "openssl req (server certificate)" "$T/openssl.log"
"$BIN" serve --data "$T/data" --listen "127.0.0.1:$PORT" --tls-cert "$T/server.pem" \
  --tls-key "$T/server.key" >"$T/serve.log" 2>&1 &
PIDS+=($!)
wait_until "$WAIT" "tessera serve on $URL (see serve.log)" serving

# curl ARGS...: a request to the server, headers in $T/h.txt, body in $T/b.html.
req() {
  : >"$T/h.txt"
  : >"$T/b.html"
  PKCS11_MODULE_PATH=$P11 timeout 60 curl -sS --cacert "$T/server.pem" -D "$T/h.txt" -o "$T/b.html" "$@" \
    2>"$T/curl.log" || fail "curl $* failed" "$T/curl.log"
}
status() { sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' "$T/h.txt"; }
location() { sed -n 's/^[Ll]ocation: *//p' "$T/h.txt" | tr -d '\r'; }
csrf() { sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$T/b.html" | head -n1; }

req "$URL/login"
grep -q "Sign in with your card" "$T/b.html" || fail "the login page does not offer the card" "$T/b.html"
req "$URL/login/card"
[ "$(status)" = 401 ] && grep -q "Your browser sent no certificate" "$T/b.html" ||
  fail "without a certificate, /login/card answered $(status)" "$T/h.txt" "$T/b.html"
ok "HTTPS: the login page offers the card; without a certificate /login/card says what to do (401)"

# --- curl with the card ----------------------------------------------------------------------------
# A wrong PIN: the card refuses to sign, so no handshake completes (the key is on the card).
if PKCS11_MODULE_PATH=$P11 timeout 60 curl -sS --cacert "$T/server.pem" --cert "$CERT_URI" \
  --key "pkcs11:token=$TOKEN_URI;id=%01;type=private?pin-value=00000000" -o /dev/null "$URL/login/card" 2>"$T/wrong-pin.log"; then
  fail "curl signed in with a wrong PIN" "$T/wrong-pin.log"
fi
ok "with a wrong PIN the card does not sign and curl gets no connection"
JAR=$T/cookies.txt
req -c "$JAR" --cert "$CERT_URI" --key "$KEY_URI" "$URL/login/card"
[ "$(status)" = 303 ] && [ "$(location)" = /users ] && grep -qi '^set-cookie: tessera_session=.*Secure' "$T/h.txt" ||
  fail "the card did not sign in (HTTP $(status))" "$T/h.txt" "$T/b.html" "$T/curl.log" "$T/serve.log"
ok "curl with the card's 9A key through OpenSC (libp11 engine): /login/card opens a session (303 /users, Secure cookie)"
req -b "$JAR" "$URL/users"
[ "$(status)" = 303 ] && [ "$(location)" = /account/password ] ||
  fail "the one-time password was not asked for first (HTTP $(status) to $(location))" "$T/h.txt"
req -b "$JAR" "$URL/account/password"
NEW_PASSWORD="card-and-passphrase-$RANDOM-$RANDOM"
req -b "$JAR" --data-urlencode "csrf=$(csrf)" --data-urlencode "current=$ONE_TIME" \
  --data-urlencode "new=$NEW_PASSWORD" --data-urlencode "confirm=$NEW_PASSWORD" "$URL/account/password"
[ "$(status)" = 303 ] || fail "changing the one-time password answered $(status)" "$T/h.txt" "$T/b.html"
req -b "$JAR" "$URL/users"
[ "$(status)" = 200 ] && grep -q jdoe "$T/b.html" || fail "GET /users with the card's session answered $(status)" "$T/h.txt" "$T/b.html"
ok "the session is jdoe-desk's: the owed password change first, then GET /users answers 200"

# --- the card terminated: refused ------------------------------------------------------------------
req -b "$JAR" "$URL/users/jdoe"
req -b "$JAR" --data-urlencode "csrf=$(csrf)" --data-urlencode "reason=lost" "$URL/devices/$DEVICE/terminate"
[ "$(status)" = 303 ] || fail "terminating the card answered $(status)" "$T/h.txt" "$T/b.html"
req --cert "$CERT_URI" --key "$KEY_URI" "$URL/login/card"
[ "$(status)" = 403 ] && grep -q "This card is revoked" "$T/b.html" && ! grep -qi '^set-cookie: tessera_session' "$T/h.txt" ||
  fail "the terminated card was not refused (HTTP $(status))" "$T/h.txt" "$T/b.html" "$T/serve.log"
ok "card terminated on the User page: the same card through curl is refused, 403 \"This card is revoked\""
"$BIN" audit list --data "$T/data" >"$T/audit.jsonl" 2>"$T/audit.log" || fail "tessera audit list" "$T/audit.log"
jq -se '[.[] | select(.name == "OperatorSignedIn" and .operator == "jdoe-desk" and .details.method == "card")] | length == 1' \
  "$T/audit.jsonl" >/dev/null || fail "the audit log lacks jdoe-desk's card sign-in" "$T/audit.jsonl"
jq -se --arg s "$SERIAL" '[.[] | select(.name == "CardSignInRefused" and .details.reason == "revoked" and .details.serial == $s)] | length == 1' \
  "$T/audit.jsonl" >/dev/null || fail "the audit log lacks the revoked card's refusal" "$T/audit.jsonl"
ok "tessera audit list: OperatorSignedIn (method card) and CardSignInRefused (revoked, serial $SERIAL)"

printf 'card-sign-in: %d checks passed\n' "$CHECKS"
