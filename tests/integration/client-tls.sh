#!/usr/bin/env bash
# TLS and reachability: verification is always on. No CA for the hub, or the wrong one: a clear
# TLS error (exit 10 from flush), and the messages stay queued until a client trusts the right
# CA; --ca-file adds every certificate in the file; a file without a certificate is refused
# before anything is queued; a closed port is "unreachable" (exit 9) after the retries;
# https_proxy is honoured as libcurl reads it; --endpoint must be https.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"
. "$top_srcdir/tests/integration/client-lib.sh"

sctpmd_start s
start_hub hub "$T/hub"
TC=$(tcti s mssim-tcp)
provision "$TC" 0 dev-tls
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other-ca \
    -keyout "$T/other-key.pem" -out "$T/other-ca.pem" 2>/dev/null || hard_error "openssl req"

# nc ARGS...: the client with only the options given (no --ca-file).
nc() {
    rc=0
    client --tcti "$TC" --queue "$T/queue" --endpoint "https://127.0.0.1:$HUB_PORT" "$@" \
        >"$T/out" 2>"$T/err" || rc=$?
}

nc send 'no CA given'
check "without --ca-file: send accepts the message (exit 0)" exits 0
check "... says it is queued" said "$T/out" '^queued '
check "... and why it was not delivered: a TLS verification error" said "$T/err" \
    '^sctpm-client: not delivered yet: TLS: the server at https://127.0.0.1:[0-9]+ could not be verified: .*\(curl 60\); check --ca-file and --endpoint; 1 message\(s\) stay queued'
check "... without retrying (verification failures are final)" \
    test "$(grep -c 'retrying' "$T/err")" = 0
nc --ca-file "$T/other-ca.pem" flush
check "another CA: flush exits 10 (TLS)" exits 10
check "... with the TLS error" said "$T/err" 'could not be verified'
check "... and the message is still queued" queued 1
check "the hub has nothing" hub_has dev-tls 0

cat "$T/other-ca.pem" "$HUB_DIR/ca.pem" >"$T/both.pem"
nc --ca-file "$T/both.pem" flush
check "a CA file with both certificates: flush delivers (exit 0)" exits 0
check "... once" hub_has dev-tls 1
check "... the queue is empty" queued 0

printf 'not a certificate\n' >"$T/junk.pem"
nc --ca-file "$T/junk.pem" send 'never queued'
check "a CA file without a certificate: exit 10 before queueing" exits 10
check "... says so" said "$T/err" "^sctpm-client: --ca-file $T/junk.pem: no PEM certificate in it$"
check "... nothing was queued" queued 0
nc --ca-file "$T/missing.pem" send 'never queued'
check "a missing CA file: exit 10" exits 10
check "... says so" said "$T/err" 'cannot read it'

# A port where nothing listens: retried with backoff until --timeout, then exit 9.
closed=$(free_port 1)
client --tcti "$TC" --queue "$T/queue" --endpoint "https://127.0.0.1:$closed" \
    --ca-file "$HUB_DIR/ca.pem" send --no-flush 'for a closed port' >/dev/null 2>&1
rc=0
client --tcti "$TC" --queue "$T/queue" --endpoint "https://127.0.0.1:$closed" \
    --ca-file "$HUB_DIR/ca.pem" flush --timeout 3 >"$T/out" 2>"$T/err" || rc=$?
check "a closed port: flush exits 9 (unreachable) after its timeout" exits 9
check "... retrying with growing delays first" test "$(grep -c 'retrying in' "$T/err")" -ge 2
check "... naming the endpoint" said "$T/err" "cannot reach https://127.0.0.1:$closed: .*\(curl 7\)"
check "... the message is still queued" queued 1

# Proxies: libcurl's environment variables apply (here a proxy where nothing listens).
proxy=$(free_port 1)
rc=0
https_proxy="http://127.0.0.1:$proxy" sc flush --timeout 0 >"$T/out" 2>"$T/err" || rc=$?
check "https_proxy is honoured: the client tries the proxy" said "$T/err" "127.0.0.1 port $proxy"
check "... and fails as unreachable (9)" exits 9
rc=0
https_proxy="http://127.0.0.1:$proxy" no_proxy=127.0.0.1 sc flush >"$T/out" 2>"$T/err" || rc=$?
check "no_proxy too: delivered directly" exits 0
check "... once" hub_has dev-tls 2

nc --endpoint "http://127.0.0.1:$HUB_PORT" --ca-file "$HUB_DIR/ca.pem" send 'plain http'
check "an http:// endpoint is a usage error (2)" exits 2
check "... saying why" said "$T/err" 'must be https://HOST\[:PORT\]'
check "... nothing was queued" queued 0

finish_hubs
