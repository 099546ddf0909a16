# tpm2-tools reach sctpmd over every transport (mssim and swtpm, TCP and Unix): random numbers, an
# imported HMAC key persisted at 0x81000100 that agrees with OpenSSL before and after a restart,
# and an NV index that survives a restart.
. "$top_srcdir/tests/integration/lib.sh"

command -v tpm2_getrandom >/dev/null || hard_error "tpm2-tools missing: run scripts/install-deps"

key=$(openssl rand -hex 32)
printf '%s' "$key" | xxd -r -p >"$T/key.bin"
msg="sctpm emulator test message"
want=$(printf '%s' "$msg" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" | awk '{print $NF}')

# Flushing between steps keeps this test independent of the resource manager (emulator-rm.sh
# covers tools that leave transients behind).
flush() { tpm2_flushcontext -t && tpm2_flushcontext -s; }

import_key() {
    tpm2_createprimary -Q -C o -c "$T/p.ctx" && flush &&
        tpm2_import -Q -C "$T/p.ctx" -G hmac -i "$T/key.bin" -u "$T/k.pub" -r "$T/k.priv" && flush &&
        tpm2_load -Q -C "$T/p.ctx" -u "$T/k.pub" -r "$T/k.priv" -c "$T/k.ctx" && flush &&
        tpm2_evictcontrol -Q -C o -c "$T/k.ctx" 0x81000100 && flush
}

hmac_matches() {
    local got
    got=$(printf '%s' "$msg" | tpm2_hmac -c 0x81000100 --hex) || return 1
    [ "$got" = "$want" ] || { echo "tpm2_hmac gave $got, OpenSSL $want" >&2; return 1; }
}

nv_define_write() {
    tpm2_nvdefine -Q 0x01500010 -C o -s 16 -a "ownerread|ownerwrite" &&
        printf 'sixteen byte val' >"$T/nv.in" &&
        tpm2_nvwrite -Q 0x01500010 -C o -i "$T/nv.in"
}

nv_reads_back() {
    tpm2_nvread -Q 0x01500010 -C o -s 16 -o "$T/nv.out" && cmp -s "$T/nv.in" "$T/nv.out"
}

for tr in $TRANSPORTS; do
    name=tpm-$tr
    sctpmd_start "$name"
    export TPM2TOOLS_TCTI=$(tcti "$name" "$tr")
    check "$tr: tpm2_getrandom" bash -c 'tpm2_getrandom --hex 16 | grep -Eq "^[0-9a-f]{32}$"'
    check "$tr: import an HMAC key and persist it at 0x81000100" import_key
    check "$tr: tpm2_hmac equals openssl dgst -mac HMAC" hmac_matches
    if [ "$tr" = mssim-tcp ]; then
        # The Azure IoT C SDK's simulator build: its own handshake, platform calls and write
        # pattern, HMACs on the key just persisted (tests/integration/utpm-client.py).
        check "$tr: the Azure IoT C SDK's simulator client signs with 0x81000100" \
            python3 "$top_srcdir/tests/integration/utpm-client.py" "${SCTPMD_PORT[$name]}" "$key" 200
        check "$tr: ... and sctpmd serves the next client" \
            bash -c 'tpm2_getrandom --hex 16 | grep -Eq "^[0-9a-f]{32}$"'
    fi
    check "$tr: NV define and write" nv_define_write
    check "$tr: daemon stops cleanly" stop_daemon "$name"
    sctpmd_start "$name"
    check "$tr: after a restart the key is still at 0x81000100" \
        bash -c 'tpm2_getcap handles-persistent | grep -qi 0x81000100'
    check "$tr: after a restart the key gives the same HMAC" hmac_matches
    check "$tr: after a restart the NV index reads back" nv_reads_back
    check "$tr: daemon stops cleanly again" stop_daemon "$name"
done

# in_netns NAME BODY: runs the shell text BODY in a network namespace of its own (lo up), where
# sctpmd NAME listens on the default ports 2321/2322, which only there are certain to be free.
in_netns() {
    cat >"$T/$1.sh" <<INNER
set -e
ip link set lo up
sctpmd --state "$T/$1.state" --foreground --fsync never >"$T/$1.log" 2>&1 &
pid=\$!
for i in \$(seq 500); do (exec 3<>/dev/tcp/127.0.0.1/2322) 2>/dev/null && break; sleep 0.02; done
$2
kill \$pid
wait \$pid
INNER
    unshare -n bash "$T/$1.sh"
}

# Clients that configure nothing: tctildr tries /dev/tpmrm0, /dev/tpm0, then swtpm and mssim on
# localhost:2321.
check "no TCTI configured: tpm2-tools find sctpmd on the default port (own netns)" \
    in_netns default '
unset TPM2TOOLS_TCTI
tpm2_getrandom --hex 16 2>/dev/null | grep -Eq "^[0-9a-f]{32}$"
tpm2_pcrread sha256:0 2>/dev/null | grep -q "0 :"'

# tcti-mssim writes a command's header and body separately, so its Nagle holds the body until
# the header is acknowledged: sctpmd must send that ACK at once (else every command waits ~40 ms
# for a delayed ACK) and no other (the response carries the ACK of the body). Counted, not
# timed: in a network namespace of our own the TCP counters are this test's alone, and a command
# must cost 4 segments (header, its ACK, body, response) with no delayed ACK at all.
check "TCP: tcti-mssim's split commands run in its own netns" in_netns seg "
counters() { nstat -asz TcpOutSegs TcpExtDelayedACKs | awk '{printf \"%s=%s \", \$1, \$2}'; }
counters >'$T/seg.before'
tpm-client mssim:host=127.0.0.1,port=2321 400 >/dev/null
counters >'$T/seg.after'"
seg() { sed -n "s/.*$2=\([0-9]*\).*/\1/p" "$T/seg.$1"; }
segs=$(($(seg after TcpOutSegs) - $(seg before TcpOutSegs)))
delacks=$(($(seg after TcpExtDelayedACKs) - $(seg before TcpExtDelayedACKs)))
note "400 HMACs over tcti-mssim TCP: $segs segments, $delacks delayed ACKs"
# Without the ACK every command waits (400); a loaded machine that leaves sctpmd unscheduled
# for 40 ms now and then makes a few, each adding one segment.
check "TCP: no command waits for a delayed ACK" test "$delacks" -le 40
# 400 HMACs plus the client's setup (about ten commands) at 4 segments each, and a few for the
# connection itself; a fifth segment per command (an ACK of the body) would make it 2000 or more.
check "TCP: 4 segments per command, no pure ACK of the body" test "$segs" -le $((1700 + delacks))

# The Azure IoT C SDK writes each command in four pieces with Nagle on: a piece that finds the one
# before unacknowledged waits for its ACK (or is coalesced with the next ones), so sctpmd must
# acknowledge whatever partial message it holds at once. Counted the same way, on the SDK's own
# fixed ports 2321/2322.
check "TCP: the SDK's four-piece commands run in its own netns" in_netns sdk "
export TPM2TOOLS_TCTI=mssim:host=127.0.0.1,port=2321
tpm2_createprimary -Q -C o -c '$T/sp.ctx'
tpm2_import -Q -C '$T/sp.ctx' -G hmac -i '$T/key.bin' -u '$T/sk.pub' -r '$T/sk.priv'
tpm2_load -Q -C '$T/sp.ctx' -u '$T/sk.pub' -r '$T/sk.priv' -c '$T/sk.ctx'
tpm2_evictcontrol -Q -C o -c '$T/sk.ctx' 0x81000100
tpm2_flushcontext -t
counters() { nstat -asz TcpOutSegs TcpExtDelayedACKs | awk '{printf \"%s=%s \", \$1, \$2}'; }
counters >'$T/seg.sdk-before'
python3 '$top_srcdir/tests/integration/utpm-client.py' 2321 '$key' 200 >'$T/utpm.log'
counters >'$T/seg.sdk-after'"
segs=$(($(seg sdk-after TcpOutSegs) - $(seg sdk-before TcpOutSegs)))
delacks=$(($(seg sdk-after TcpExtDelayedACKs) - $(seg sdk-before TcpExtDelayedACKs)))
note "the SDK's client, 200 HMACs in four pieces each: $segs segments, $delacks delayed ACKs"
check "TCP: no piece of the SDK's commands waits for a delayed ACK" test "$delacks" -le 20

finish
