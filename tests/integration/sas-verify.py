#!/usr/bin/env python3
# sas-verify.py TOKEN KEY_B64 EXPECTED_RESOURCE [MAX_TTL [SKN]]: checks a SAS token the way the
# service does, independently of our C code: the signature is HMAC-SHA256(key, sr + "\n" + se)
# over sr exactly as sent, base64, URL-encoded with lowercase escapes; sr names
# EXPECTED_RESOURCE once decoded; skn is absent (or SKN); se is in the future, at most MAX_TTL
# seconds away (MAX_TTL 0: any expiry).
import base64, hashlib, hmac, sys, time, urllib.parse


def azure_encode(s):
    return "".join(c if c.isascii() and (c.isalnum() or c in "-._!()*") else "%%%02x" % ord(c) for c in s)


tok, key, resource = sys.argv[1], sys.argv[2], sys.argv[3]
max_ttl = int(sys.argv[4]) if len(sys.argv) > 4 else 3600
skn = sys.argv[5] if len(sys.argv) > 5 else None
prefix = "SharedAccessSignature "
if not tok.startswith(prefix):
    sys.exit("no SharedAccessSignature prefix: %r" % tok[:40])
fields = dict(p.split("=", 1) for p in tok[len(prefix):].split("&"))
want_fields = {"sr", "sig", "se"} | ({"skn"} if skn else set())
if set(fields) != want_fields:
    sys.exit("fields %s, expected %s" % (sorted(fields), sorted(want_fields)))
sr, se, sig = fields["sr"], fields["se"], fields["sig"]
mac = hmac.new(base64.b64decode(key), (sr + "\n" + se).encode(), hashlib.sha256).digest()
if sig != azure_encode(base64.b64encode(mac).decode()):
    sys.exit("signature does not verify")
if urllib.parse.unquote(sr) != resource:
    sys.exit("sr names %r, expected %r" % (urllib.parse.unquote(sr), resource))
if skn and fields["skn"] != skn:
    sys.exit("skn %r, expected %r" % (fields["skn"], skn))
now = time.time()
if max_ttl and not (now < int(se) <= now + max_ttl + 5):
    sys.exit("se %s is not within %d s from now" % (se, max_ttl))
