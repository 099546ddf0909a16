#!/usr/bin/env bash
# The device key is wrapped only for this TPM's SRK. A man in the middle of the TPM
# (tests/integration/tpm-mitm.py between sctpm and sctpmd) that makes TPM2_ReadPublic of
# 0x81000001 read another genuine TPM key (the EK), or that changes the SRK's public key in the
# answer, makes provisioning fail with the reason before TPM2_Import is sent; the slot keeps its
# key. Relaying unchanged, provisioning works, and the salted session and the EK it made are
# flushed in every case. Without a template EK (an endorsement password) the persistent EK
# salts the session; without any EK provisioning is refused.
. "$top_srcdir/tests/integration/lib.sh"

verify() { python3 "$top_srcdir/tests/integration/sas-verify.py" "$@"; }
HOST=hub-$RANDOM.example
CC_IMPORT=156 CC_FLUSH=165 CC_START_SESSION=176

sctpmd_start s

# mitm_start MODE: the relay on $T/mitm.sock in front of sctpmd s, logging to $T/MODE.cc.
mitm_start() {
    : >"$T/$1.cc"
    python3 "$top_srcdir/tests/integration/tpm-mitm.py" "$1" "$T/mitm.sock" "$T/s.sock" \
        "$T/$1.cc" >"$T/mitm.$1.out" 2>&1 &
    MITM_PID=$!
    poll 10 grep -qx ready "$T/mitm.$1.out" || fail "tpm-mitm.py $1 did not start: $(cat "$T/mitm.$1.out")"
}
mitm_stop() { kill "$MITM_PID" 2>/dev/null; wait "$MITM_PID" 2>/dev/null; }
M=swtpm:path=$T/mitm.sock

provision() { # provision SLOT KEY
    # shellcheck disable=SC2046 # wrap prints a command line to split, or nothing
    printf 'HostName=%s;DeviceId=dev-%s;SharedAccessKey=%s' "$HOST" "$1" "$2" |
        SCTPM_LOG=info $(wrap sctpm) sctpm --tcti "$M" provision --slot "$1" >"$T/prov.out" 2>"$T/prov.err"
}
sent() { grep -qx "$2" "$T/$1.cc"; }
# flushed MODE: after the last TPM2_StartAuthSession, two TPM2_FlushContext (session and EK).
flushed() { test "$(sed -n "/^$CC_START_SESSION\$/,\$p" "$T/$1.cc" | grep -cx "$CC_FLUSH")" -ge 2; }

k0=$(openssl rand -base64 32)
mitm_start pass
check "relayed unchanged: provision works" provision 0 "$k0"
check "... the SRK is confirmed in a session salted with the EK" grep -q "SRK 0x81000001 confirmed in an audit session salted with the TPM's own ECC P-256 EK" "$T/prov.err"
check "... TPM2_Import was sent" sent pass "$CC_IMPORT"
check "... the session and the EK are flushed" flushed pass
tok=$(sctpm --tcti "$M" token --slot 0 2>/dev/null)
check "... and the slot's token verifies with its key" verify "$tok" "$k0" "$HOST/devices/dev-0"
mitm_stop

mitm_start redirect
st=0; provision 0 "$(openssl rand -base64 32)" || st=$?
check "ReadPublic of the SRK reads the EK instead: provision fails (exit status $st)" test "$st" = 5
check "... saying the key read is not a primary key of the owner hierarchy" grep -q "the key the TPM read for the SRK at 0x81000001 is not a primary key of the owner hierarchy" "$T/prov.err"
expect_fail "... before TPM2_Import" sent redirect "$CC_IMPORT"
check "... the session and the EK are flushed" flushed redirect
mitm_stop

mitm_start tamper
st=0; provision 0 "$(openssl rand -base64 32)" || st=$?
check "the SRK's public key changed in the answer: provision fails (exit status $st)" test "$st" = 5
check "... saying the answer was changed on its way" grep -q "the TPM's answer for the SRK at 0x81000001 was changed on its way: its HMAC in the session salted with .* does not verify" "$T/prov.err"
expect_fail "... before TPM2_Import" sent tamper "$CC_IMPORT"
check "... the session and the EK are flushed (by a new ESYS context)" flushed tamper
mitm_stop

S=$(tcti s swtpm-unix)
tok=$(sctpm --tcti "$S" token --slot 0 2>/dev/null)
check "after both attacks slot 0 still signs with its key" verify "$tok" "$k0" "$HOST/devices/dev-0"

# With an endorsement password the EK cannot be re-created from its template: the persistent
# EK salts the session instead, and without one provisioning is refused, saying why.
M=$S
tpm() { env TPM2TOOLS_TCTI="$S" "$@" >/dev/null; }
check "set an endorsement password" tpm tpm2_changeauth -c e secret
k1=$(openssl rand -base64 32)
check "endorsement password: provision works with the persistent EK" provision 1 "$k1"
check "... which salted the session" grep -q "SRK 0x81000001 confirmed in an audit session salted with the TPM's own ECC P-256 EK" "$T/prov.err"
tok=$(sctpm --tcti "$S" token --slot 1 2>/dev/null)
check "... and slot 1 signs with its key" verify "$tok" "$k1" "$HOST/devices/dev-1"
check "evict the persistent EKs" bash -c "TPM2TOOLS_TCTI='$S' tpm2_evictcontrol -C o -c 0x81010001 >/dev/null && TPM2TOOLS_TCTI='$S' tpm2_evictcontrol -C o -c 0x81010002 >/dev/null"
st=0; provision 1 "$(openssl rand -base64 32)" || st=$?
check "no EK at all: provision fails (exit status $st)" test "$st" = 5
check "... saying there is no EK to confirm the SRK with, and why" grep -q "no EK to confirm the SRK with: the TPM has no ECC P-256 EK at 0x81010002; re-creating it from its template (TPM2_CreatePrimary) failed: .*authorization failure" "$T/prov.err"
tok=$(sctpm --tcti "$S" token --slot 1 2>/dev/null)
check "... and slot 1 keeps its key" verify "$tok" "$k1" "$HOST/devices/dev-1"
finish
