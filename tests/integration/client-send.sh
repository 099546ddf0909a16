#!/usr/bin/env bash
# sctpm-client end to end, over every transport sctpmd serves (mssim and swtpm protocols, TCP and
# Unix) and over swtpm: send with properties, batches, lines from standard input, the cloud-to-
# device round trip (receive, complete, reject, abandon, settle by lock token), keep-alive, and
# --verbose showing the exchange without the key or any signature.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"
. "$top_srcdir/tests/integration/client-lib.sh"

sctpmd_start s
swtpm_start w
start_hub hub "$T/hub"

# stored DEVICE REGEX: the hub stored a message for DEVICE whose line matches REGEX.
stored() { hub messages --device "$1" | grep -Eq -- "$2"; }
c2d_state() { hub c2d list "$1" | grep -q "state=$2 .* id=$3 "; }

flow() { # flow LABEL TCTI SLOT
    local tr=$1 id got want lock dev=dev-$1
    TC=$2 SLOT=$3 QUEUE=$T/queue-$1
    provision "$TC" "$SLOT" "$dev"

    run_sc send --prop unit=celsius --prop site=lab --content-type application/json '{"t":21.5}'
    check "$tr: send exits 0" exits 0
    id=$(sed -n 's/^sent //p' "$T/out")
    check "$tr: send prints 'sent <uuid>'" matches "$id" '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
    check "$tr: the hub has it under the client's id, with its properties" stored "$dev" \
        "id=$id sys=\\{\"contentType\":\"application/json\"\\} props=\\{\"unit\":\"celsius\",\"site\":\"lab\"\\} body=\\{\"t\":21.5\\}$"
    check "$tr: the queue is empty afterwards" queued 0

    run_sc send --batch one two three
    check "$tr: send --batch exits 0" exits 0
    check "$tr: three 'sent' lines" test "$(grep -c '^sent ' "$T/out")" = 3
    got=$(hub messages --device "$dev" | tail -n 3 | sed 's/.* id=\([^ ]*\) .*body=\(.*\)/\1=\2/' | tr '\n' ' ')
    want=$(sed -n 's/^sent //p' "$T/out" | paste -d= - <(printf 'one\ntwo\nthree\n') | tr '\n' ' ')
    check "$tr: the batch arrived in order with the client's ids" test "$got" = "$want"

    run_sc send --lines --correlation-id corr-1 - < <(printf 'line-a\n\nline-b\r\nline-c')
    check "$tr: send --lines: one message per non-empty line" test "$(grep -c '^sent ' "$T/out")" = 3
    got=$(hub messages --device "$dev" | tail -n 3 |
        grep -c 'sys={"correlationId":"corr-1"} props={} body=line-[abc]$')
    check "$tr: ... the last line needs no newline, CR LF ends a line" test "$got" = 3

    run_sc send - < <(head -c 1000 /dev/urandom)
    check "$tr: a binary body from standard input" exits 0
    check "$tr: ... stored as it was sent" stored "$dev" "id=$(sed -n 's/^sent //p' "$T/out") props=\\{\\} body64="

    # An idempotent retry: the same --message-id twice is stored once.
    run_sc send --message-id "retry-$tr" 'first try'
    run_sc send --message-id "retry-$tr" 'second try'
    check "$tr: a repeated --message-id is accepted" exits 0
    check "$tr: ... and stored once" test "$(hub messages --device "$dev" | grep -c "id=retry-$tr ")" = 1

    # Cloud to device.
    hub c2d send "$dev" "hello $tr" --message-id "c-$tr" --property color=red --correlation-id k1 \
        --content-type text/plain >/dev/null || fail "c2d send"
    run_sc receive --complete
    check "$tr: receive --complete exits 0" exits 0
    check "$tr: ... prints the message" said "$T/out" \
        "^c2d id=c-$tr lock=[^ ]+ delivery=1 cid=k1 ct=text/plain props=\\{\"color\":\"red\"\\} body=hello $tr$"
    check "$tr: ... and says it completed it" said "$T/out" '^completed '
    check "$tr: the hub marked it completed" c2d_state "$dev" completed "c-$tr"
    run_sc receive
    check "$tr: nothing more: exit 0, nothing on stdout" test "$rc" = 0 -a ! -s "$T/out"
    check "$tr: ... and a note on stderr" said "$T/err" 'no cloud-to-device message'

    hub c2d send "$dev" "reject me" --message-id "r-$tr" >/dev/null || fail "c2d send"
    run_sc receive --reject --wait 10
    check "$tr: receive --reject" exits 0
    check "$tr: the hub marked it rejected" c2d_state "$dev" rejected "r-$tr"

    hub c2d send "$dev" "abandon me" --message-id "a-$tr" >/dev/null || fail "c2d send"
    run_sc receive --abandon
    check "$tr: receive --abandon" said "$T/out" '^abandoned '
    run_sc receive
    check "$tr: an abandoned message comes back, delivery 2" said "$T/out" "^c2d id=a-$tr .*delivery=2 "
    lock=$(sed -n 's/^c2d .* lock=\([^ ]*\) .*/\1/p' "$T/out")
    check "$tr: receive alone leaves it locked" c2d_state "$dev" locked "a-$tr"
    run_sc receive --complete --lock-token "$lock"
    check "$tr: ... settled later by its lock token" said "$T/out" "^completed $lock$"
    check "$tr: ... completed" c2d_state "$dev" completed "a-$tr"
    run_sc receive --complete --lock-token "$lock"
    check "$tr: a used lock token: refused by the hub (12)" exits 12
    check "$tr: ... saying the lock is lost" said "$T/err" 'DeviceMessageLockLost'
}

i=0
for tr in $TRANSPORTS; do
    flow "$tr" "$(tcti s "$tr")" "$i"
    i=$((i + 1))
done
flow swtpm "$(swtpm_tcti w)" 0

# Verbose: the exchange is shown, with keep-alive, and without secrets.
TC=$(tcti s mssim-unix) SLOT=0 QUEUE=$T/queue-verbose
provision "$TC" 0 dev-verbose
run_sc --verbose send --batch --prop k=v v1 v2
check "verbose: send works" exits 0
check "verbose: the request line" said "$T/err" '^> POST /devices/dev-verbose/messages/events\?api-version=2020-03-13 HTTP/1.1$'
check "verbose: the Authorization header with its signature redacted" said "$T/err" \
    '^> Authorization: SharedAccessSignature sr=hub\.sctpm\.test%2fdevices%2fdev-verbose&sig=\[redacted\]&se=[0-9]+$'
check "verbose: the batch content type" said "$T/err" '^> Content-Type: application/vnd.microsoft.iothub.json'
check "verbose: the status line" said "$T/err" '^< HTTP/1.1 204'
check "verbose: no key, no signature anywhere" no_secrets "$T/err" "$(key_of dev-verbose)"
check "verbose: ... nor on stdout" no_secrets "$T/out" "$(key_of dev-verbose)"
sc send --no-flush q1 q2 q3 >/dev/null 2>&1 || fail "send --no-flush"
run_sc --verbose flush
check "verbose: flush delivers three, one connection for all (keep-alive)" \
    test "$(grep -c '^< HTTP/1.1 204' "$T/err")" = 3 -a "$(grep -c '^\* Connected to' "$T/err")" = 1
check "verbose: ... and says it re-used it" said "$T/err" 'Re-using existing connection'

finish_hubs
