# Bad input on every channel of every transport: size fields over the limit, truncated frames,
# unknown codes, garbage, a client vanishing mid-command. That connection gets an error or is
# closed; a well-behaved client working at the same time sees no error; the daemon keeps serving.
. "$top_srcdir/tests/integration/lib.sh"
HANGUP=

sctpmd_start g
# A client doing verified HMACs all along, over the Unix socket.
tpm-client "$(tcti g mssim-unix)" 1000000 2 >"$T/client.out" 2>&1 &
client=$!

# closed_or_error ADDR HEX [EXPECTED_REPLY_HEX]: the peer must close the connection, after the
# expected reply if one is given (rawsend exits 3 when the peer closed first).
closed_or_error() {
    local out st=0
    out=$(rawsend $HANGUP "$1" "$2" 64 10000) || st=$?
    [ "$st" = 3 ] || { echo "rawsend exit $st (want 3: closed), read '$out'" >&2; return 1; }
    [ -z "${3:-}" ] || [ "$out" = "$3" ] || { echo "read '$out', want '$3'" >&2; return 1; }
}

for tr in mssim-tcp mssim-unix; do
    data=$(rawaddr g "$tr" data)
    ctrl=$(rawaddr g "$tr" ctrl)
    check "$tr: SEND_COMMAND with size 0xffffffff is refused" \
        closed_or_error "$data" 0000000800ffffffff
    check "$tr: SEND_COMMAND one byte over the limit is refused" \
        closed_or_error "$data" 000000080000001001
    check "$tr: SEND_COMMAND smaller than a TPM header is refused" \
        closed_or_error "$data" 000000080000000004
    check "$tr: a raw command claiming 2 GiB is refused" \
        closed_or_error "$data" 80017fffffff00000144
    check "$tr: an unknown command-channel code is refused" closed_or_error "$data" 000000ee
    check "$tr: random garbage is refused" closed_or_error "$data" "$(openssl rand -hex 200 | sed 's/^/00/')"
    check "$tr: REMOTE_HANDSHAKE version 0 is refused" closed_or_error "$data" 0000000f00000000
    HANGUP=--hangup
    check "$tr: a truncated SEND_COMMAND then hang-up is dropped" \
        closed_or_error "$data" 00000008000000000c8001000000
    check "$tr: half a raw command then hang-up is dropped" closed_or_error "$data" 8001000000
    HANGUP=
    check "$tr: an unknown platform code gets 1 and is closed" closed_or_error "$ctrl" 00000063 00000001
    check "$tr: POWER_OFF from an untrusted client is refused" \
        bash -c "[ \"\$(rawsend $ctrl 00000002 4)\" = 00000001 ]"
    check "$tr: SIGNAL_RESET from an untrusted client is refused" \
        bash -c "[ \"\$(rawsend $ctrl 00000011 4)\" = 00000001 ]"
    check "$tr: POWER_ON of a running TPM is a no-op that succeeds" \
        bash -c "[ \"\$(rawsend $ctrl 00000001 4)\" = 00000000 ]"
    check "$tr: swtpm INIT from an untrusted client is refused (TPM_FAIL)" \
        bash -c "[ \"\$(rawsend $ctrl 0000000200000000 4)\" = 00000009 ]"
    check "$tr: swtpm SET_LOCALITY 4 from an untrusted client is refused" \
        bash -c "[ \"\$(rawsend $ctrl 0000000504 4)\" = 0000003d ]"
    # A command at locality 4 over the data channel gets TPM_RC_LOCALITY (0x907) from us.
    check "$tr: a command at locality 4 from an untrusted client gets TPM_RC_LOCALITY" \
        bash -c "[ \"\$(rawsend $data 00000008040000000c80010000000c0000017b0008 18)\" = 0000000a80010000000a0000090700000000 ]"
    # A good command still works on a fresh connection, and mssim framing is exact.
    check "$tr: a valid GetRandom(8) still answers" \
        bash -c "rawsend $data 00000008000000000c80010000000c0000017b0008 30 | grep -q '^00000014800100000014000000000008'"
    check "$tr: STOP from an untrusted client does not stop the service" \
        closed_or_error "$data" 00000015
done
check "raw swtpm-dialect GetRandom on the Unix data socket" \
    bash -c "rawsend $(rawaddr g mssim-unix data) 80010000000c0000017b0008 20 | grep -q '^800100000014000000000008'"

check "the well-behaved client is still running" kill -0 "$client"
kill "$client"
wait "$client" 2>/dev/null
check "the well-behaved client saw no error" bash -c "! grep -q 'failed\|match' $T/client.out"
check "the daemon still serves" env TPM2TOOLS_TCTI="$(tcti g swtpm-tcp)" tpm2_getrandom -Q 8
check "the refusals were logged with the reason" grep -q "refused POWER_OFF from connection" "$T/g.log"
check "the daemon stops cleanly" stop_daemon g
finish
