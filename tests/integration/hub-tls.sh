# TLS: the CA and server certificate created on first start, verification against DIR/ca.pem
# (and failure without it, with another CA, or for another name), TLS 1.2 and 1.3 only, and
# listening on loopback only.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"

dir=$T/hub
start_hub hub "$dir"
add_device dev-01
tok=$(token dev-01 "$(key_of dev-01)" 600)

check "ca.pem exists" test -s "$dir/ca.pem"
check "ca.pem is readable by clients (0644)" test "$(stat -c %a "$dir/ca.pem")" = 644
check "the CA key is private (0600)" test "$(stat -c %a "$dir/ca-key.pem")" = 600
check "the server key is private (0600)" test "$(stat -c %a "$dir/server-key.pem")" = 600
check "the CA is a CA" bash -c "openssl x509 -in '$dir/ca.pem' -noout -ext basicConstraints | grep -q 'CA:TRUE'"
check "the server certificate chains to it" openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem"
openssl x509 -in "$dir/server.pem" -noout -ext subjectAltName >"$T/san"
for name in "DNS:$HUB_HOST" DNS:localhost "IP Address:127.0.0.1" "IP Address:0:0:0:0:0:0:0:1"; do
    check "the server certificate names $name" grep -q "$name" "$T/san"
done
check "it is for TLS servers" bash -c "openssl x509 -in '$dir/server.pem' -noout -ext extendedKeyUsage | grep -q 'TLS Web Server Authentication'"

EVENTS=/devices/dev-01/messages/events
# curl_to HOSTPART ARGS...: a telemetry POST to https://HOSTPART:PORT; prints curl's exit status.
curl_to() {
    local host=$1 st=0
    shift
    curl -sS -o /dev/null "$@" -H "Authorization: $tok" --data tls \
        "https://$host:$HUB_PORT$EVENTS?$HUB_API" 2>>"$T/curl.err" || st=$?
    echo "$st"
}
check "verified against ca.pem for the hub's name" \
    is "$(curl_to "$HUB_HOST" --cacert "$dir/ca.pem" --resolve "$HUB_HOST:$HUB_PORT:127.0.0.1")" 0
check "... for localhost" is "$(curl_to localhost --cacert "$dir/ca.pem")" 0
check "... for 127.0.0.1" is "$(curl_to 127.0.0.1 --cacert "$dir/ca.pem")" 0
check "without ca.pem verification fails (curl 60)" \
    is "$(curl_to "$HUB_HOST" --resolve "$HUB_HOST:$HUB_PORT:127.0.0.1")" 60
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other-ca \
    -keyout "$T/other-key.pem" -out "$T/other-ca.pem" 2>/dev/null || hard_error "openssl req"
check "with another CA verification fails" \
    is "$(curl_to "$HUB_HOST" --cacert "$T/other-ca.pem" --resolve "$HUB_HOST:$HUB_PORT:127.0.0.1")" 60
check "for a name the certificate lacks verification fails" \
    is "$(curl_to other.example --cacert "$dir/ca.pem" --resolve "other.example:$HUB_PORT:127.0.0.1")" 60

# Protocol versions: 1.2 and 1.3 are served, 1.1 and 1.0 are refused by the server (the client
# is told to allow them, so the refusal is the server's).
tls() { openssl s_client -connect "127.0.0.1:$HUB_PORT" -servername "$HUB_HOST" \
    -CAfile "$dir/ca.pem" -verify_return_error "$@" </dev/null >"$T/s_client" 2>&1; }
check "TLS 1.3" tls -tls1_3
check "... verified" grep -q 'Verify return code: 0 (ok)' "$T/s_client"
check "TLS 1.2" tls -tls1_2
check "... negotiated 1.2" grep -q 'Protocol *: TLSv1.2' "$T/s_client"
expect_fail "TLS 1.1 is refused" tls -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
expect_fail "TLS 1.0 is refused" tls -tls1 -cipher 'DEFAULT:@SECLEVEL=0'
# A positive control, where GnuTLS's test server is installed: the same client does speak TLS 1.1
# to a server that allows it, so the refusal above is the hub's.
if command -v gnutls-serv >/dev/null; then
    cport=$(free_port 1)
    start_daemon control gnutls-serv -p "$cport" --x509certfile "$T/other-ca.pem" \
        --x509keyfile "$T/other-key.pem" --priority 'NORMAL:+VERS-TLS1.1'
    wait_port "$cport" 20 || hard_error "gnutls-serv did not start"
    check "control: the client negotiates TLS 1.1 where it is allowed" \
        bash -c "openssl s_client -connect 127.0.0.1:$cport -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' \
            </dev/null 2>&1 | grep -q 'Cipher is [A-Z]'"
    stop_daemon control || true
else
    note "gnutls-serv not installed: no positive control for the TLS 1.1 refusal"
fi
check "plain HTTP gets no answer" bash -c "! curl -s -m 10 -o /dev/null -w '%{http_code}' http://127.0.0.1:$HUB_PORT/ | grep -q '^[1-5]'"

# IPv6 loopback, where the host has it.
if grep -q 'and https://\[::1\]' "$T/hub.log"; then
    check "served on [::1], verified for ::1" \
        is "$(curl_to '[::1]' -g --cacert "$dir/ca.pem")" 0
else
    note "no IPv6 loopback here: [::1] not tested"
fi

# Loopback only: not reachable on any other local address.
other=$(ip -o -4 addr show scope global 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n1)
if [ -n "$other" ]; then
    check "not listening on $other" bash -c "! (exec 3<>/dev/tcp/$other/$HUB_PORT) 2>/dev/null"
else
    note "no non-loopback IPv4 address here: nothing more to test"
fi
check "listening on 127.0.0.1 only (ss)" bash -c \
    "! command -v ss >/dev/null || ! ss -Hltn \"sport = :$HUB_PORT\" | awk '{print \$4}' | grep -vqE '^(127\.0\.0\.1|\[::1\]):'"

finish_hubs
