#!/usr/bin/env bash
# Tokens: a short --token-ttl forces renewals in the middle of a stream, against a hub that allows
# one second of clock skew, and every message arrives; a slot whose key the hub does not know
# gets one renewal and one retry after the 401, then a clear error with exit status 11, and its
# message stays queued until the slot holds the right key.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"
. "$top_srcdir/tests/integration/client-lib.sh"

sctpmd_start s
start_hub hub "$T/hub" --clock-skew 1

stream() { # stream LABEL TCTI SLOT
    local tr=$1 signed after401 distinct dev=dev-$1
    TC=$2 SLOT=$3 QUEUE=$T/queue-$1
    provision "$TC" "$SLOT" "$dev"
    # Fifteen lines, each written once the one before has arrived and half a second has passed,
    # with three-second tokens renewed after two: the stream lasts at least seven seconds of the
    # client's own time however slow the machine (memcheck) is, so tokens are renewed within it.
    # A token is used at most two seconds and stays valid for two more (one of them the hub's
    # skew), which is room for a slow request.
    for i in $(seq 1 15); do
        echo "tick-$i"
        poll 60 hub_has "$dev" "$i" || break
        sleep 0.5
    done | sc --token-ttl 3 --verbose run --no-c2d --exit-on-eof >"$T/out" 2>"$T/err"
    rc=$?
    check "$tr: run --exit-on-eof exits 0" exits 0
    check "$tr: all fifteen arrived" hub_has "$dev" 15
    signed=$(sed -n 's/.* \([0-9]*\) token(s) signed (\([0-9]*\) after a 401, .*/\1/p' "$T/err")
    after401=$(sed -n 's/.* \([0-9]*\) token(s) signed (\([0-9]*\) after a 401, .*/\2/p' "$T/err")
    check "$tr: tokens were renewed before expiry mid-stream (${signed:-?} signed, ${after401:-?} after a 401)" \
        test $((${signed:-0} - ${after401:-0})) -ge 3
    [ "${after401:-0}" = 0 ] || note "$tr: $after401 token(s) expired in flight (a slow machine): renewed and retried"
    distinct=$(grep -o '&se=[0-9]*' "$T/err" | sort -u | wc -l)
    check "$tr: requests carried $distinct different expiries" test "$distinct" -ge 3
    check "$tr: no signature in the verbose output" no_secrets "$T/err" "$(key_of "$dev")"
}
stream mssim-tcp "$(tcti s mssim-tcp)" 0
stream swtpm-unix "$(tcti s swtpm-unix)" 1

# The wrong key: the slot says dev-bad, but holds a key the hub does not have.
TC=$(tcti s mssim-unix) SLOT=2 QUEUE=$T/queue-bad
cs=$(hub device add dev-bad) || fail "device add"
printf 'HostName=%s;DeviceId=dev-bad;SharedAccessKey=%s' "$HUB_HOST" "$(openssl rand -base64 32)" |
    sctpm --tcti "$TC" provision --slot 2 >/dev/null 2>&1 || fail "provision a wrong key"
run_sc --verbose send 'signed with the wrong key'
check "wrong key: send still accepts the message (exit 0)" exits 0
check "wrong key: ... and says it is queued" said "$T/out" '^queued [0-9a-f-]{36}$'
check "wrong key: the error names the refusal and the renewal" said "$T/err" \
    '^sctpm-client: not delivered yet: the hub refused the token \(401 IotHubUnauthorizedAccess: Unauthorized: .*\), also a freshly signed one; check that the slot was provisioned with this device.s key; 1 message\(s\) stay queued'
check "wrong key: exactly one retry after the 401 (two requests, two 401s)" \
    test "$(grep -c '^< HTTP/1.1 401' "$T/err")" = 2
check "wrong key: two tokens signed (the first, and one renewal)" \
    test "$(grep -c '^> Authorization: ' "$T/err")" = 2
run_sc flush --timeout 5
check "wrong key: flush fails with exit status 11 (unauthorized), no retrying for 5 s" exits 11
check "wrong key: the message is still queued" queued 1
check "wrong key: nothing reached the hub" hub_has dev-bad 0
printf '%s' "$cs" | sctpm --tcti "$TC" provision --slot 2 >/dev/null 2>&1 || fail "provision"
run_sc flush
check "right key: flush delivers the queued message" exits 0
check "right key: the hub has it, once" hub_has dev-bad 1
check "right key: the queue is empty" queued 0

finish_hubs
