# The device API through libcurl (tests/hub-client, an independent client implementation): the
# whole API over one keep-alive connection, TLS verification against DIR/ca.pem and its
# failure without it, token rejections, dedupe, and 32 concurrent keep-alive clients.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"

start_hub hub "$T/hub"
cs=$(hub device add dev-01)
add_device dev-02
for i in 1 2 3; do hub c2d send dev-01 "c2d-$i" --property "n=$i" >/dev/null || fail "c2d send"; done

client() { hub-client --port "$HUB_PORT" --cacert "$HUB_DIR/ca.pem" --connection-string "$cs" "$@"; }

check "the whole device API over one keep-alive connection" client scenario
check "the duplicate message id was stored once" \
    test "$(hub messages --device dev-01 | grep -c ' id=scenario-1 ')" = 1
check "the batch was stored" test "$(hub messages --device dev-01 | grep -c ' id=scenario-batch-')" = 3
check "a single message" bash -c "hub-client --port $HUB_PORT --cacert '$HUB_DIR/ca.pem' --connection-string '$cs' send hello --id one --prop k=v | grep -qx status=204"
check "... stored with its property" \
    bash -c "sctpm-hub --data '$HUB_DIR' messages --device dev-01 | grep -q 'id=one props={\"k\":\"v\"} body=hello$'"
check "a batch of 5" client batch 5 --id-prefix five
check "... all stored" test "$(hub messages --device dev-01 | grep -c ' id=five-')" = 5
check "the same batch again" client batch 5 --id-prefix five
check "... stored once" test "$(hub messages --device dev-01 | grep -c ' id=five-')" = 5

# TLS verification: without the hub's CA the client refuses the server.
st=0; hub-client --port "$HUB_PORT" --connection-string "$cs" send x >"$T/out" 2>&1 || st=$?
check "without ca.pem: a transport error" test "$st" = 3
check "... certificate verification failed (CURLE 60)" grep -q '^error=60 ' "$T/out"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=x \
    -keyout "$T/k.pem" -out "$T/other.pem" 2>/dev/null || hard_error "openssl req"
st=0; hub-client --port "$HUB_PORT" --cacert "$T/other.pem" --connection-string "$cs" send x >"$T/out" 2>&1 || st=$?
check "with another CA: refused" test "$st" = 3

# Tokens: expired and forged are 401.
check "expired token" bash -c "hub-client --port $HUB_PORT --cacert '$HUB_DIR/ca.pem' --connection-string '$cs' --ttl -120 send x | grep -q '^status=401 .*IotHubUnauthorized;'"
check "forged token (another device's key)" bash -c "hub-client --port $HUB_PORT --cacert '$HUB_DIR/ca.pem' --connection-string '$cs' --key '$(key_of dev-02)' send x | grep -q '^status=401 .*IotHubUnauthorizedAccess;'"

# IPv6 loopback through libcurl, where the host has it.
if grep -q 'and https://\[::1\]' "$T/hub.log"; then
    check "over [::1]" client --connect-to '[::1]' send v6
fi

# 32 concurrent clients over keep-alive: no errors, one connection each.
before=$(count)
client load 32 10 >"$T/load" || { cat "$T/load"; fail "load"; }
cat "$T/load"
check "32 clients x 10 requests: no errors" grep -q ' ok=320 errors=0 ' "$T/load"
check "... one TCP connection per client" grep -q ' tcp_connects=32 ' "$T/load"
check "... every message stored" test "$(count)" = $((before + 320))
client load 8 5 --batch 10 >"$T/load" || { cat "$T/load"; fail "batch load"; }
check "8 clients x 5 batches of 10: no errors" grep -q ' ok=40 errors=0 ' "$T/load"
check "... every message stored" test "$(count)" = $((before + 720))

finish_hubs
