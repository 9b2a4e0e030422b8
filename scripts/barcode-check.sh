#!/usr/bin/env bash
# The barcodes of a card, read by someone else's decoder: ZXing-C++ (PyPI wheel `zxing-cpp`, in a
# throw-away virtualenv) reads the PNG that Tessera renders at 300 dpi for a layout with a Code 128,
# a QR code and a PDF417 slot bound to user fields, and every decoded value must equal the field,
# UTF-8 included. A second pass draws PDF417 symbols whose codewords are chosen (through numeric
# compaction, which can carry any value from 0 to 899) so that every one of those values appears
# 14 times in rows of all three clusters at the lowest error correction level: a wrong bar
# pattern in Tessera's tables would then be more errors than the reader can correct.
# Usage: ./scripts/barcode-check.sh   (TESSERA_RENDER_LAYOUT=path/to/render_layout to skip building)
set -euo pipefail
cd "$(dirname "$0")/.."
T=$(mktemp -d /tmp/tessera-barcodes.XXXXXX)
trap 'rm -rf "$T"' EXIT
say() { printf -- '--- %s\n' "$*"; }

RENDER=${TESSERA_RENDER_LAYOUT:-}
if [ -z "$RENDER" ]; then
  cargo build --quiet -p tessera-print --example render_layout
  RENDER=$PWD/target/debug/examples/render_layout
fi

# --- the decoder ----------------------------------------------------------------------------------
if ! python3 -m venv "$T/venv" >/dev/null 2>&1; then
  # Debian keeps venv in its own package.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  python3 -m venv "$T/venv"
fi
"$T/venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: zxing-cpp pillow
say "decoder: zxing-cpp $("$T/venv/bin/pip" show zxing-cpp | awk '/^Version/{print $2}') from PyPI"

cat >"$T/card.svg" <<'EOF'
<svg xmlns="http://www.w3.org/2000/svg" width="85.6mm" height="53.98mm" viewBox="0 0 856 539.8">
  <rect width="856" height="539.8" fill="#ffffff"/>
  <rect width="856" height="24" fill="#1d4ed8"/>
  <text x="40" y="70" font-size="34" font-weight="bold">{{user.display_name}}</text>
  <rect data-barcode="code128" data-bind="user.employee_id" x="40" y="100" width="440" height="110"/>
  <rect data-qr="user.upn" x="620" y="40" width="200" height="200"/>
  <rect data-barcode="pdf417" data-bind="user.attributes.badge" x="40" y="260" width="776" height="250"/>
</svg>
EOF
cat >"$T/sweep.svg" <<'EOF'
<svg xmlns="http://www.w3.org/2000/svg" width="85.6mm" height="53.98mm" viewBox="0 0 856 539.8">
  <rect width="856" height="539.8" fill="#ffffff"/>
  <rect data-barcode="pdf417" data-ec-level="0" data-bind="user.attributes.a" x="20" y="10" width="400" height="520"/>
  <rect data-barcode="pdf417" data-ec-level="0" data-bind="user.attributes.b" x="436" y="10" width="400" height="520"/>
</svg>
EOF

cat >"$T/check.py" <<'EOF'
import subprocess, sys
import zxingcpp
from PIL import Image

render, tmp = sys.argv[1], sys.argv[2]

def read(svg, fields, name):
    png = f"{tmp}/{name}.png"
    args = [render, svg, png] + [f"{k}={v}" for k, v in fields.items()]
    subprocess.run(args, check=True)
    image = Image.open(png)
    assert image.size == (1011, 638), f"{name}: {image.size} is not a CR80 side at 300 dpi"
    return [(r.format.name, r.text) for r in zxingcpp.read_barcodes(image)]

failures = 0
cards = [
    ("jane", "E-10042", "jane.doe@example.com", "Jane Doe", "Jane Doe, Information Security"),
    ("utf8", "EMP-2024-000123", "zoë.ångström@example.com", "Zoë Ångström",
     "Zoë Ångström-Łukasiewicz · 山田太郎 · מנהלת אבטחת מידע · Ελένη"),
    ("ascii", "A1b2-C3d4 ~x", "o'brien@example.com", "Seán O'Brien",
     'O\'Brien <ob@example.com>; tel. +1 (555) 010-9999 #4 {x|y} [a\\b] 50% *=^ `_?!"'),
    ("digits", "0000123", "12345678901234", "Numbers",
     "card 00012345678901234567890 issued 2027-11-24 serial 9876543210123"),
    ("long", "X" * 20, "a" * 60 + "@example.com", "Long",
     "Maximiliane Theodora von Wolkenstein-Rodenegg, Office of the Chief Information "
     "Security Officer, EMEA Region, Zürich"),
]
for name, employee_id, upn, display, badge in cards:
    fields = {"user.employee_id": employee_id, "user.upn": upn, "user.display_name": display,
              "user.attributes.badge": badge}
    got = dict(read(f"{tmp}/card.svg", fields, name))
    want = {"Code128": employee_id, "QRCode": upn, "PDF417": badge}
    for kind, value in want.items():
        if got.get(kind) != value:
            failures += 1
            print(f"FAIL {name}: {kind} read {got.get(kind)!r}, expected {value!r}")
    if all(got.get(k) == v for k, v in want.items()):
        print(f"card {name}: Code 128, QR and PDF417 read back exactly")

# Numeric compaction turns 44 digits (after a leading 1) into 15 base-900 codewords; with the
# first codeword 438 the other 14 can be anything from 0 to 899.
def digits_for(values):
    n = 438
    for v in values:
        n = n * 900 + v
    s = str(n)
    assert len(s) == 45 and s[0] == "1", s
    return s[1:]

values = list(range(900))
swept = 0
for i in range(0, len(values), 6):
    group = values[i:i + 6] + values[:max(0, i + 6 - len(values))]
    a = "".join(digits_for([v] * 14) for v in group[:3])
    b = "".join(digits_for([v] * 14) for v in group[3:])
    found = {text for kind, text in
             read(f"{tmp}/sweep.svg", {"user.attributes.a": a, "user.attributes.b": b}, "sweep")
             if kind == "PDF417"}
    for label, want in (("a", a), ("b", b)):
        if want not in found:
            failures += 1
            print(f"FAIL codewords {group}: symbol {label} not read back ({sorted(found)})")
    swept += 6
print(f"PDF417 codewords 0-899: {swept // 6} cards, each value 14 times, in rows of all three clusters")
if failures:
    print(f"barcodes: {failures} failed")
    sys.exit(1)
print("barcodes: all read back by ZXing-C++")
EOF
"$T/venv/bin/python" "$T/check.py" "$RENDER" "$T"
