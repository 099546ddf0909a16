#!/usr/bin/env python3
"""secret-scan.py KEY_BASE64 FILE...: exits 1, naming the file and the form, when any FILE holds
the key in any form a log could carry it: the raw bytes, base64 (standard, URL-safe, unpadded,
percent-encoded as in a URL), hex in either case, or hex split over the lines of a hex dump such
as tpm2-tss's LOGBLOB output ("0000: 8001000000160000  ........"). A form is only searched when it is long
enough (at least 12 bytes of key) to be the key rather than a coincidence; the test's keys are
32 bytes."""
import base64
import re
import sys
import urllib.parse

# One hex-dump line: an offset, a colon, then the bytes as hex digits, in pairs with or without
# spaces between them ("0010: 01000000007f    ......" in tpm2-tss, "0010: 01 00 00 ..." in others),
# up to the two spaces before an ASCII column.
DUMP_LINE = re.compile(rb"^\s*[0-9a-fA-F]{4,8}: ((?:[0-9a-fA-F]{2} ?)+)", re.M)


def forms(key: bytes):
    b64 = base64.b64encode(key)
    url = base64.urlsafe_b64encode(key)
    out = {
        "raw bytes": key,
        "base64": b64,
        "unpadded base64": b64.rstrip(b"="),
        "URL-safe base64": url.rstrip(b"="),
        "percent-encoded base64": urllib.parse.quote(b64, safe="").encode(),
        "percent-encoded base64 (lowercase hex)": re.sub(
            rb"%[0-9A-F]{2}", lambda m: m.group(0).lower(), urllib.parse.quote(b64, safe="").encode()
        ),
        "hex": key.hex().encode(),
        "HEX": key.hex().upper().encode(),
    }
    return {name: f for name, f in out.items() if len(f) >= 12}


def dump_stream(data: bytes) -> bytes:
    """The bytes of every hex-dump line of a file, joined in order, as lowercase hex."""
    return b"".join(re.sub(rb"\s", b"", m.group(1)) for m in DUMP_LINE.finditer(data)).lower()


def main(argv):
    if len(argv) < 3:
        print("usage: secret-scan.py KEY_BASE64 FILE...", file=sys.stderr)
        return 2
    key = base64.b64decode(argv[1], validate=True)
    found = 0
    for path in argv[2:]:
        with open(path, "rb") as f:
            data = f.read()
        for name, form in forms(key).items():
            if form in data:
                print(f"{path}: the key appears as {name}", file=sys.stderr)
                found += 1
        if key.hex().encode() in dump_stream(data):
            print(f"{path}: the key appears in a hex dump", file=sys.stderr)
            found += 1
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
