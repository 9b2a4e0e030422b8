#!/usr/bin/env python3
"""Cuts PIV data objects, as OpenSC reads them off a card, into the parts that openssl checks.

It only slices bytes along the BER-TLV and CBEFF lengths (SP 800-73-4 part 1, SP 800-76-2); every
signature and hash is checked by openssl in scripts/interop.sh, not here, so that the judge of
Tessera's cards is someone else's code.

  piv_objects.py chuid FILE OUT_DIR      -> signed.bin (the TLVs before 3E), signature.der (3E)
  piv_objects.py cbeff FILE OUT_DIR      -> signed.bin (header + biometric data), signature.der,
                                            bdb.bin, and face.jpg when the BDB is an ISO/IEC
                                            19794-5 facial record
  piv_objects.py security FILE OUT_DIR   -> mapping.txt ("DG container" per line), lds.der (BB)
  piv_objects.py value FILE OUT          -> the object's value (the content of tag 53)
  piv_objects.py sha256 FILE             -> SHA-256 of the whole data object (53 LL value)
  piv_objects.py hashes LDS_DER          -> "DG sha256-hex" per line, from an LDS security object
"""
import hashlib
import os
import sys


def tlv(data, pos):
    """One BER-TLV at pos: (tag, value start, value end)."""
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        while True:
            tag = (tag << 8) | data[pos]
            pos += 1
            if data[pos - 1] & 0x80 == 0:
                break
    length = data[pos]
    pos += 1
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise SystemExit(f"TLV {tag:X} runs past the end ({pos + length} > {len(data)})")
    return tag, pos, pos + length


def fields(data):
    out, pos = [], 0
    while pos < len(data):
        tag, start, end = tlv(data, pos)
        out.append((tag, pos, start, end))
        pos = end
    return out


def value_of(raw):
    """The content of tag 53, whether OpenSC returned the template or its content."""
    if raw and raw[0] == 0x53:
        tag, start, end = tlv(raw, 0)
        return raw[start:end]
    return raw


def template_of(raw):
    """The whole data object, 53 LL value, whether OpenSC returned the template or its content."""
    if raw and raw[0] == 0x53:
        return raw
    n = len(raw)
    if n < 0x80:
        length = bytes([n])
    elif n < 0x100:
        length = bytes([0x81, n])
    else:
        length = bytes([0x82, n >> 8, n & 0xFF])
    return b"\x53" + length + raw


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def chuid(value, out):
    for tag, at, start, end in fields(value):
        if tag == 0x3E:
            write(os.path.join(out, "signed.bin"), value[:at])
            write(os.path.join(out, "signature.der"), value[start:end])
            return
    raise SystemExit("the CHUID has no issuer asymmetric signature (3E)")


def cbeff(value, out):
    tag, start, end = tlv(value, 0)
    if tag != 0xBC:
        raise SystemExit(f"the biometric object holds tag {tag:X}, not BC")
    record = value[start:end]
    bdb_len = int.from_bytes(record[2:6], "big")
    sb_len = int.from_bytes(record[6:8], "big")
    if 88 + bdb_len + sb_len != len(record):
        raise SystemExit(f"CBEFF lengths: 88 + {bdb_len} + {sb_len} != {len(record)}")
    bdb = record[88:88 + bdb_len]
    write(os.path.join(out, "signed.bin"), record[:88 + bdb_len])
    write(os.path.join(out, "signature.der"), record[88 + bdb_len:])
    write(os.path.join(out, "bdb.bin"), bdb)
    if bdb[:4] == b"FAC\0":
        # ISO/IEC 19794-5: 14-byte header, then the facial information block (20 bytes and
        # 8 per feature point), then the image information (12 bytes) and the image data.
        points = int.from_bytes(bdb[18:20], "big")
        image = 14 + 20 + 8 * points + 12
        write(os.path.join(out, "face.jpg"), bdb[image:])


def security(value, out):
    parts = {tag: value[start:end] for tag, _, start, end in fields(value)}
    if 0xBA not in parts or 0xBB not in parts:
        raise SystemExit("the Security Object lacks its mapping (BA) or its LDS object (BB)")
    mapping = parts[0xBA]
    with open(os.path.join(out, "mapping.txt"), "w") as f:
        for i in range(0, len(mapping) - 2, 3):
            f.write(f"{mapping[i]} {mapping[i + 1]:02X}{mapping[i + 2]:02X}\n")
    write(os.path.join(out, "lds.der"), parts[0xBB])


def hashes(lds):
    # LDSSecurityObject ::= SEQUENCE { version, hashAlgorithm, SEQUENCE OF DataGroupHash }
    _, start, end = tlv(lds, 0)
    items = fields(lds[start:end])
    body = lds[start:end]
    _, _, s, e = items[2]
    for _, _, ds, de in fields(body[s:e]):
        group = fields(body[s:e][ds:de])
        inner = body[s:e][ds:de]
        number = int.from_bytes(inner[group[0][2]:group[0][3]], "big")
        digest = inner[group[1][2]:group[1][3]]
        print(number, digest.hex())


def main():
    kind, path = sys.argv[1], sys.argv[2]
    raw = open(path, "rb").read()
    if kind == "hashes":
        hashes(raw)
        return
    if kind == "sha256":
        # The Security Object hashes the whole data object, tag 53 and length included.
        print(hashlib.sha256(template_of(raw)).hexdigest())
        return
    target = sys.argv[3]
    value = value_of(raw)
    if kind == "value":
        write(target, value)
        return
    os.makedirs(target, exist_ok=True)
    {"chuid": chuid, "cbeff": cbeff, "security": security}[kind](value, target)


if __name__ == "__main__":
    main()
