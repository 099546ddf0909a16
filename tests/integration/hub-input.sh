# Bad input and load: unknown paths (404), wrong methods (405), missing api-version and
# malformed bodies (400), oversized messages and requests (413), slow and half-open
# connections (closed by the idle timeout and the request watchdog), 32 concurrent keep-alive
# curl clients; nothing is stored for a rejected request and the hub stays healthy throughout.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"

start_hub hub "$T/hub" --idle-timeout 1 --request-timeout 2
add_device dev-01
tok=$(token dev-01 "$(key_of dev-01)" 600)
A="Authorization: $tok"
EVENTS=/devices/dev-01/messages/events
stored=0

# error STATUS CODE CURL-ARGS...: the request gets STATUS with IoT Hub's error code CODE.
error() {
    local want=$1 code=$2
    shift 2
    check "$want $code: $*" is "$(status "$@")" "$want"
    check "... iothub-errorcode $code" is "$(header iothub-errorcode)" "$code"
    check "... a JSON error body" grep -q "\"Message\":\"ErrorCode:$code;" "$T/body"
}

# Paths and methods.
error 404 IotHubNotFound -H "$A" "$(url /)"
error 404 IotHubNotFound -H "$A" --data x "$(url /devices/dev-01/messages/nothing)"
error 404 IotHubNotFound -H "$A" --data x "$(url /devices//messages/events)"
error 404 IotHubNotFound -H "$A" --data x "$(url $EVENTS/extra)"
error 404 IotHubNotFound -H "$A" --data x "$(url $EVENTS/)"
error 404 IotHubNotFound -H "$A" "$(url /devices/dev-01/messages/devicebound/a/b/c)"
error 405 InvalidOperation -H "$A" "$(url $EVENTS)"
check "... Allow: POST" is "$(header Allow)" POST
error 405 InvalidOperation -H "$A" -X PUT --data x "$(url /devices/dev-01/messages/devicebound)"
check "... Allow: GET" is "$(header Allow)" GET
error 405 InvalidOperation -H "$A" -X POST --data x "$(url /devices/dev-01/messages/devicebound/t)"
check "... Allow: DELETE" is "$(header Allow)" DELETE
error 405 InvalidOperation -H "$A" -X GET "$(url /devices/dev-01/messages/devicebound/t/abandon)"
check "405 for HEAD (no body, by HTTP's rules)" is "$(status -H "$A" -I "$(url $EVENTS)")" 405

# api-version is required, as IoT Hub requires it.
error 400 InvalidProtocolVersion -H "$A" --data x "https://$HUB_HOST:$HUB_PORT$EVENTS"
error 400 InvalidProtocolVersion -H "$A" --data x "https://$HUB_HOST:$HUB_PORT$EVENTS?api-version=latest"

# Malformed messages.
error 400 ArgumentInvalid -H "$A" -H 'iothub-messageid: has space' --data x "$(url $EVENTS)"
error 400 ArgumentInvalid -H "$A" -H "iothub-messageid: $(printf 'm%.0s' {1..129})" --data x "$(url $EVENTS)"
error 400 ArgumentInvalid -H "$A" -H "iothub-contenttype: $(printf 'c%.0s' {1..1100})" --data x "$(url $EVENTS)"
J='Content-Type: application/vnd.microsoft.iothub.json'
for bad in '' 'not json' '{}' '[]' '[1]' '[{"nobody":1}]' '[{"body":"!!"}]' \
    '[{"body":"eA==","properties":{"iothub-app-k":1}}]' '[{"body":"eA=="}] trailing' \
    '[{"body":"eA=="},{"body":"YQ==","properties":{"iothub-messageid":"bad id"}}]'; do
    error 400 ArgumentInvalid -H "$A" -H "$J" --data-binary "$bad" "$(url $EVENTS)"
done
check "the reason is in the body" grep -q 'properties\|message id\|batch' "$T/body"

# Sizes: 256 KiB is the limit for a message (body and properties) and for a request.
head -c 262144 /dev/zero | tr '\0' 'a' >"$T/256k"
head -c 262145 /dev/zero | tr '\0' 'a' >"$T/256k+1"
head -c 3000000 /dev/zero | tr '\0' 'a' >"$T/3m"
check "exactly 256 KiB is accepted" is "$(status -H "$A" --data-binary @"$T/256k" "$(url $EVENTS)")" 204
stored=$((stored + 1))
error 413 MessageTooLarge -H "$A" --data-binary @"$T/256k+1" "$(url $EVENTS)"
error 413 MessageTooLarge -H "$A" -H 'iothub-app-k: v' --data-binary @"$T/256k" "$(url $EVENTS)"
error 413 MessageTooLarge -H "$A" -H 'Transfer-Encoding: chunked' --data-binary @"$T/256k+1" "$(url $EVENTS)"
error 413 MessageTooLarge -H "$A" -H "$J" --data-binary @"$T/256k+1" "$(url $EVENTS)"
code=$(status -H "$A" -H 'Expect:' --data-binary @"$T/3m" "$(url $EVENTS)" 2>/dev/null) || true
check "3 MB: 413, or the connection is cut (never a 2xx)" matches "$code" '^(413|000)$'
# A keep-alive connection survives a rejection with a small body.
tlsargs=(--cacert "$HUB_DIR/ca.pem" --resolve "$HUB_HOST:$HUB_PORT:127.0.0.1")
curl -sS "${tlsargs[@]}" -o /dev/null -w '%{http_code} %{num_connects}\n' -H "$A" \
    --data-binary @"$T/256k+1" "$(url $EVENTS)" --next "${tlsargs[@]}" -o /dev/null \
    -w '%{http_code} %{num_connects}\n' -H "$A" --data ok "$(url $EVENTS)" >"$T/ka"
stored=$((stored + 1))
check "a 413 keeps the connection for the next request" \
    is "$(tr '\n' ' ' <"$T/ka")" "413 1 204 0 "
big=$(printf 'x%.0s' {1..100000})
code=$(status -H "$A" -H "X-Big: $big" --data x "$(url $EVENTS)") || true
check "100 KB of headers is refused by the HTTP layer ($code)" matches "$code" '^4[0-9][0-9]$'

# slow MODE: a raw client that misbehaves; succeeds when the hub closes the connection (within
# a generous 30 s bound: the hub's own limits here are 1 s idle and 2 s per request).
slow() {
    python3 - "$1" "$HUB_PORT" "$HUB_HOST" "$HUB_DIR/ca.pem" "$tok" <<'PY'
import socket, ssl, sys, time
mode, port, host, ca, tok = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
s = socket.create_connection(("127.0.0.1", port))
if mode != "tcp":
    s = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname=host)
head = ("POST /devices/dev-01/messages/events?api-version=2020-03-13 HTTP/1.1\r\nHost: %s\r\n"
        "Authorization: %s\r\n" % (host, tok)).encode()
if mode == "headers":
    s.sendall(head)          # then one more header byte every 0.3 s, forever
elif mode in ("body", "stall"):
    s.sendall(head + b"Content-Length: 100000\r\n\r\n" + b"x" * 10)
s.settimeout(0.3)
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        if s.recv(4096) == b"":
            sys.exit(0)
    except (socket.timeout, TimeoutError):
        pass
    except (OSError, ssl.SSLError):
        sys.exit(0)
    try:
        if mode == "headers":
            s.send(b"a")
        elif mode == "body":
            s.send(b"x")
    except (OSError, ssl.SSLError):
        sys.exit(0)
print("still open after 30 s", file=sys.stderr)
sys.exit(1)
PY
}
check "a TCP connection that never starts TLS is closed" slow tcp
check "a TLS connection that never sends a request is closed" slow idle
check "a request whose body stops arriving is closed" slow stall
check "headers sent a byte at a time are cut off" slow headers
check "a body sent a byte at a time is cut off" slow body
check "the watchdog said why" grep -q 'request took longer than 2 s' "$T/hub.log"

# 32 concurrent curl clients, each sending 10 messages over one keep-alive connection.
pids=()
for i in $(seq 1 32); do
    args=()
    for j in $(seq 1 10); do
        [ "$j" -gt 1 ] && args+=(--next)
        args+=("${tlsargs[@]}" -sS -o /dev/null -w '%{http_code} %{num_connects}\n' -H "$A"
            -H "iothub-messageid: load-$i-$j" --data "{\"c\":$i,\"n\":$j}" "$(url $EVENTS)")
    done
    curl "${args[@]}" >"$T/load.$i" 2>&1 &
    pids+=($!)
done
# Only the clients: a bare `wait` would wait for the hub too.
wait "${pids[@]}"
cat "$T"/load.* >"$T/load"
stored=$((stored + 320))
check "320 requests from 32 concurrent clients, all 204" test "$(grep -c '^204 ' "$T/load")" = 320
check "... over 32 connections" test "$(awk '{s += $2} END {print s}' "$T/load")" = 32

# Nothing from a rejected request was stored, and the hub still works.
check "only accepted messages were stored" test "$(count)" = "$stored"
check "the hub still answers" is "$(send dev-01 "$tok" 'still fine')" 204
check "the hub is still running" kill -0 "$(daemon_pid hub)"

finish_hubs
