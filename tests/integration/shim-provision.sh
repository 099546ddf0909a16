#!/usr/bin/env bash
# sctpm provision / token / deprovision over sctpmd (mssim over TCP and Unix) and over swtpm
# through tcti-swtpm, under our RSA SRK and under ECC SRKs made by tpm2-tools. Every token is
# verified by tests/integration/sas-verify.py with Python's own HMAC from the same key; the
# Limpet layout, the imported key's attributes and its refusal of TPM2_Duplicate are checked
# with tpm2-tools.
. "$top_srcdir/tests/integration/lib.sh"

verify() { python3 "$top_srcdir/tests/integration/sas-verify.py" "$@"; }
# Provisioning (the key's wrapping and import) runs under memcheck in `make check-valgrind`.
provision() { # provision TCTI SLOT CONNECTION-STRING
    # shellcheck disable=SC2046 # wrap prints a command line to split, or nothing
    printf '%s' "$3" | $(wrap sctpm) sctpm --tcti "$1" provision --slot "$2" >"$T/prov.out" 2>"$T/prov.err"
}
HOST=hub-$RANDOM.azure-devices.net

sctpmd_start s
swtpm_start w

run_flow() { # run_flow LABEL TCTI
    local tr=$1 tc=$2 k0 k3 k3b tok tok2 module_tok cs
    k0=$(openssl rand -base64 32)
    k3=$(openssl rand -base64 32)
    check "$tr: provision slot 0" provision "$tc" 0 "HostName=$HOST;DeviceId=dev-0;SharedAccessKey=$k0"
    check "$tr: provision reports the slot" grep -q "slot 0: $HOST/dev-0 (key 0x81000100, identity in NV 0x01400100)" "$T/prov.out"
    check "$tr: provision slot 3 (a module)" provision "$tc" 3 "HostName=$HOST;DeviceId=dev-3;ModuleId=mod.a;SharedAccessKey=$k3"
    tok=$(sctpm --tcti "$tc" token --slot 0 --ttl 600 2>/dev/null)
    check "$tr: slot 0 token verifies with its key" verify "$tok" "$k0" "$HOST/devices/dev-0" 600
    expect_fail "$tr: slot 0 token does not verify with slot 3's key" verify "$tok" "$k3" "$HOST/devices/dev-0" 600
    module_tok=$(sctpm --tcti "$tc" token --slot 3 2>/dev/null)
    check "$tr: slot 3 module token (default TTL 3600)" verify "$module_tok" "$k3" "$HOST/devices/dev-3/modules/mod.a" 3600
    cs=$(sctpm --tcti "$tc" connection-string --slot 3 --ttl 60 2>/dev/null)
    check "$tr: connection-string has the identity" test "${cs%%;SharedAccessSignature=*}" = "HostName=$HOST;DeviceId=dev-3;ModuleId=mod.a"
    check "$tr: connection-string token verifies" verify "${cs#*;SharedAccessSignature=}" "$k3" "$HOST/devices/dev-3/modules/mod.a" 60
    # A string to sign longer than the TPM's input buffer goes through an HMAC sequence.
    long="$HOST/devices/$(head -c 1500 /dev/zero | tr '\0' x)"
    tok=$(sctpm --tcti "$tc" token --slot 0 --scope "$long" --expiry 2000000000 --skn registration 2>/dev/null)
    check "$tr: a 1.5 KB scope is signed through an HMAC sequence" verify "$tok" "$k0" "$long" 0 registration
    check "$tr: list shows both slots" bash -c "sctpm --tcti '$tc' list 2>/dev/null | tr -s ' ' | grep -qx '0 $HOST/dev-0 key present' && sctpm --tcti '$tc' list 2>/dev/null | tr -s ' ' | grep -qx '3 $HOST/dev-3/mod.a key present'"
    check "$tr: tpm2_nvread 0x01400100 shows host/device" bash -c "TPM2TOOLS_TCTI='$tc' tpm2_nvread 0x01400100 2>/dev/null | grep -qx '$HOST/dev-0'"
    check "$tr: tpm2_nvread 0x01400103 shows host/device/module" bash -c "TPM2TOOLS_TCTI='$tc' tpm2_nvread 0x01400103 2>/dev/null | grep -qx '$HOST/dev-3/mod.a'"
    check "$tr: persistent handles 0x81000100 and 0x81000103" bash -c "TPM2TOOLS_TCTI='$tc' tpm2_getcap handles-persistent | grep -q 0x81000100 && TPM2TOOLS_TCTI='$tc' tpm2_getcap handles-persistent | grep -q 0x81000103"
    check "$tr: the imported key is userwithauth|noda|sign (tpm2_readpublic 0x81000100)" bash -c "TPM2TOOLS_TCTI='$tc' tpm2_readpublic -c 0x81000100 >'$T/rp.out' && grep -A1 '^attributes:' '$T/rp.out' | grep -qx '  value: userwithauth|noda|sign'"
    # Re-provisioning replaces the key and re-sizes the NV index; slot 0 is untouched.
    k3b=$(openssl rand -base64 16)
    check "$tr: re-provision slot 3 with a shorter identity and a 16-byte key" provision "$tc" 3 "hostname=h.example;deviceid=d3;sharedaccesskey=$k3b"
    tok=$(sctpm --tcti "$tc" token --slot 3 2>/dev/null)
    check "$tr: slot 3 now signs with the new key" verify "$tok" "$k3b" "h.example/devices/d3"
    tok=$(sctpm --tcti "$tc" token --slot 0 2>/dev/null)
    check "$tr: slot 0 unchanged" verify "$tok" "$k0" "$HOST/devices/dev-0"
    # A failed provision leaves the slot as it was.
    expect_fail "$tr: a bad key is refused" provision "$tc" 3 "HostName=x.example;DeviceId=y;SharedAccessKey=!!!!"
    tok=$(sctpm --tcti "$tc" token --slot 3 2>/dev/null)
    check "$tr: slot 3 still has its identity and key" verify "$tok" "$k3b" "h.example/devices/d3"
    # An owner password we do not know makes the TPM refuse; nothing changes.
    check "$tr: set an owner password" env TPM2TOOLS_TCTI="$tc" tpm2_changeauth -c o secret
    expect_fail "$tr: provision without the owner password fails" provision "$tc" 3 "HostName=x.example;DeviceId=y;SharedAccessKey=$k0"
    check "$tr: the failure names the TPM command and the TSS2 code" grep -Eq 'TPM2_.*TSS2_RC 0x[0-9a-f]{8}' "$T/prov.err"
    check "$tr: clear the owner password" env TPM2TOOLS_TCTI="$tc" tpm2_changeauth -c o -p secret
    tok=$(sctpm --tcti "$tc" token --slot 3 2>/dev/null)
    check "$tr: slot 3 survived the refused provision" verify "$tok" "$k3b" "h.example/devices/d3"
    check "$tr: deprovision slot 3" sctpm --tcti "$tc" deprovision --slot 3
    expect_fail "$tr: slot 3 gives no token" sctpm --tcti "$tc" token --slot 3
    check "$tr: NV 0x01400103 is gone" bash -c "! TPM2TOOLS_TCTI='$tc' tpm2_getcap handles-nv-index | grep -q 0x1400103"
    expect_fail "$tr: deprovisioning an empty slot fails" sctpm --tcti "$tc" deprovision --slot 3
    tok=$(sctpm --tcti "$tc" token --slot 0 2>/dev/null)
    check "$tr: slot 0 still signs" verify "$tok" "$k0" "$HOST/devices/dev-0"
    echo "$k0" >"$T/$tr.k0"
}

run_flow mssim-tcp "$(tcti s mssim-tcp)"
run_flow swtpm "$(swtpm_tcti w)"

# Over Unix, and across a restart of sctpmd: the key and identity are in its state.
tc=$(tcti s mssim-unix)
k0=$(cat "$T/mssim-tcp.k0")
tok=$(sctpm --tcti "$tc" token --slot 0 2>/dev/null)
check "mssim-unix: the slot provisioned over TCP signs over Unix" verify "$tok" "$k0" "$HOST/devices/dev-0"
check "restart sctpmd" stop_daemon s
sctpmd_start s
tok=$(sctpm --tcti "$tc" token --slot 0 2>/dev/null)
check "after a restart the slot still signs" verify "$tok" "$k0" "$HOST/devices/dev-0"
k5=$(openssl rand -base64 64 | tr -d "\n")
check "mssim-unix: provision slot 9 with a 64-byte key from a file" bash -c "printf 'HostName=$HOST;DeviceId=dev-9;SharedAccessKey=%s\n' '$k5' >'$T/cs' && sctpm --tcti '$tc' provision --slot 9 --from-file '$T/cs' >/dev/null 2>&1"
tok=$(sctpm --tcti "$tc" token --slot 9 2>/dev/null)
check "mssim-unix: slot 9 signs" verify "$tok" "$k5" "$HOST/devices/dev-9"
# The key never reaches the daemon's log, even at trace level.
check "restart sctpmd at trace level" stop_daemon s
sctpmd_start s --log trace
k6=$(openssl rand -base64 32)
k6hex=$(printf '%s' "$k6" | base64 -d | od -An -tx1 | tr -d ' \n')
check "provision under a trace-level daemon" provision "$tc" 1 "HostName=$HOST;DeviceId=dev-1;SharedAccessKey=$k6"
SCTPM_LOG=trace sctpm --tcti "$tc" --log trace token --slot 1 >/dev/null 2>"$T/cli-trace.log"
check "neither the key nor its hex is in any log" bash -c "! grep -qF -e '$k6' -e '$k6hex' -e '${k6hex:0:32}' '$T/s.log' '$T/cli-trace.log' '$T/prov.err' '$T/prov.out'"

# ---- an SRK another tool made ----
# On a real machine the SRK at 0x81000001 may come from another tool, often ECC, with its own
# nameAlg and symmetric definition; provision wraps the key for whatever TPM2_ReadPublic
# reports. Fresh TPMs, so that nothing above depends on these.
# tools TCTI COMMAND...: runs a tpm2-tools command on TCTI, quietly.
tools() { local tc=$1; shift; TPM2TOOLS_TCTI=$tc "$@" >>"$T/tools.out" 2>>"$T/tools.err"; }
# replace_srk TCTI CREATEPRIMARY-ARGS...: evicts the SRK (if any) and persists a primary made with
# tpm2_createprimary ARGS in its place.
replace_srk() {
    local tc=$1 handles
    shift
    # The list is read whole first: with pipefail, grep -q closing the pipe early could make
    # tpm2_getcap die of SIGPIPE and the SRK look absent.
    handles=$(TPM2TOOLS_TCTI=$tc tpm2_getcap handles-persistent) || return 1
    if grep -q 0x81000001 <<<"$handles"; then
        tools "$tc" tpm2_evictcontrol -Q -C o -c 0x81000001 || return 1
    fi
    tools "$tc" tpm2_createprimary -Q -C o "$@" -c "$T/srk.ctx" &&
        tools "$tc" tpm2_evictcontrol -Q -C o -c "$T/srk.ctx" 0x81000001 &&
        tools "$tc" tpm2_flushcontext -t
}
# readpublic TCTI HANDLE FIELD: the value of FIELD in tpm2_readpublic's output.
readpublic() {
    local out
    out=$(TPM2TOOLS_TCTI=$1 tpm2_readpublic -c "$2") || return 1
    sed -n "/^$3:/{n;s/^ *value: //p;q}" <<<"$out"
}
# no_policy TCTI HANDLE: the object's authPolicy is empty (tpm2_readpublic prints none).
no_policy() {
    local out
    out=$(TPM2TOOLS_TCTI=$1 tpm2_readpublic -c "$2") || return 1
    ! grep -q '^authorization policy: *[0-9a-f]' <<<"$out"
}
# try_duplicate TCTI OBJECT: TPM2_Duplicate of OBJECT to the null parent without an inner
# wrapper (the sensitive area in the clear), in a policy session for TPM2_CC_Duplicate, the
# only authorization the DUP role accepts. Leaves tpm2_duplicate's stderr in $T/dup.err.
try_duplicate() {
    local tc=$1 rc
    tools "$tc" tpm2_startauthsession -S "$T/dup-s.ctx" --policy-session &&
        tools "$tc" tpm2_policycommandcode -S "$T/dup-s.ctx" TPM2_CC_Duplicate || return 99
    TPM2TOOLS_TCTI=$tc tpm2_duplicate -C null -c "$2" -G null -p session:"$T/dup-s.ctx" \
        -r "$T/dup.priv" -s "$T/dup.seed" >/dev/null 2>"$T/dup.err"
    rc=$?
    tools "$tc" tpm2_flushcontext "$T/dup-s.ctx"
    return $rc
}

# make_duplicable TCTI CONTEXT: loads, as CONTEXT, an HMAC key under the SRK that a policy
# session for TPM2_CC_Duplicate may duplicate.
make_duplicable() {
    local tc=$1
    tools "$tc" tpm2_startauthsession -S "$T/trial.ctx" &&
        tools "$tc" tpm2_policycommandcode -S "$T/trial.ctx" -L "$T/dup.policy" \
            TPM2_CC_Duplicate &&
        tools "$tc" tpm2_flushcontext "$T/trial.ctx" &&
        tools "$tc" tpm2_create -Q -C 0x81000001 -G hmac \
            -a 'sign|userwithauth|sensitivedataorigin' -L "$T/dup.policy" -u "$T/c.pub" \
            -r "$T/c.priv" &&
        tools "$tc" tpm2_load -Q -C 0x81000001 -u "$T/c.pub" -r "$T/c.priv" -c "$2"
}

# ecc_flow LABEL TCTI SLOT CURVE NAME-ALG CREATEPRIMARY-ARGS...
ecc_flow() {
    local tr=$1 tc=$2 slot=$3 curve=$4 halg=$5 k tok
    shift 5
    check "$tr: an ECC $curve SRK with $halg made by tpm2_createprimary $*" replace_srk "$tc" "$@"
    check "$tr: tpm2_readpublic shows it" test "$(readpublic "$tc" 0x81000001 type)/$(readpublic "$tc" 0x81000001 curve-id)/$(readpublic "$tc" 0x81000001 name-alg)" = "ecc/NIST $curve/$halg"
    k=$(openssl rand -base64 32)
    check "$tr: provision slot $slot under the ECC SRK, tpm2-tss at trace level" \
        env TSS2_LOG=all+trace bash -c "printf '%s' 'HostName=$HOST;DeviceId=dev-$slot;SharedAccessKey=$k' | $(wrap sctpm) sctpm --tcti '$tc' provision --slot $slot >'$T/prov.out' 2>'$T/prov.err'"
    check "$tr: ... and tpm2-tss logged the import" grep -q 'Esys_Import' "$T/prov.err"
    check "$tr: ... without a byte of the key" \
        python3 "$top_srcdir/tests/integration/secret-scan.py" "$k" "$T/prov.err" "$T/prov.out"
    tok=$(sctpm --tcti "$tc" token --slot "$slot" --ttl 600 2>/dev/null)
    check "$tr: slot $slot token verifies with its key" verify "$tok" "$k" "$HOST/devices/dev-$slot" 600
    # The imported key cannot be fixedTPM (TPM2_Import refuses it); its empty authPolicy is what
    # keeps it in the TPM.
    check "$tr: tpm2_readpublic 0x8100010$slot: userwithauth|noda|sign, no fixedtpm, no fixedparent" \
        test "$(readpublic "$tc" 0x8100010"$slot" attributes)" = "userwithauth|noda|sign"
    check "$tr: ... and no authorization policy" no_policy "$tc" 0x8100010"$slot"
    expect_fail "$tr: TPM2_Duplicate of the slot key is refused" try_duplicate "$tc" 0x8100010"$slot"
    check "$tr: ... by the TPM's policy check (TPM_RC_POLICY_FAIL)" grep -q '0x99D' "$T/dup.err"
    echo "$k" >"$T/$tr.k$slot"
}

sctpmd_start e
E=$(tcti e mssim-tcp)
ecc_flow ecc-sctpmd "$E" 4 p256 sha256 -G ecc256:aes128cfb
# A control for the refusal above: the same TPM2_Duplicate of a key whose authPolicy is that
# policy succeeds, so the refusal is the empty policy's doing and not the command's.
check "control: a duplicable HMAC key (authPolicy = PolicyCommandCode(TPM2_CC_Duplicate))" \
    make_duplicable "$E" "$T/c.ctx"
check "control: its TPM2_Duplicate succeeds" try_duplicate "$E" "$T/c.ctx"
# Another curve and name algorithm: P-384 with SHA-384 and AES-256. The slot made under the
# P-256 SRK keeps signing: a persisted key does not need its parent.
ecc_flow ecc384-sctpmd "$E" 5 p384 sha384 -g sha384 -G ecc384:aes256cfb
tok=$(sctpm --tcti "$E" token --slot 4 2>/dev/null)
check "ecc-sctpmd: slot 4 still signs after its SRK was replaced" verify "$tok" "$(cat "$T/ecc-sctpmd.k4")" "$HOST/devices/dev-4"
swtpm_start we
W=$(swtpm_tcti we)
ecc_flow ecc-swtpm "$W" 4 p256 sha256 -G ecc256:aes128cfb
# An SRK handle holding a key the blob cannot be made for (a signing key) is refused before
# anything is imported, saying why; the slots are as they were.
check "an ECDSA signing key persisted at 0x81000001" replace_srk "$W" -G ecc256:ecdsa \
    -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign'
expect_fail "provision under a signing key at 0x81000001 fails" provision "$W" 6 "HostName=$HOST;DeviceId=dev-6;SharedAccessKey=$(openssl rand -base64 32)"
check "... saying the SRK is not a storage key" grep -q 'the SRK at 0x81000001 (attributes 0x[0-9a-f]*) is not a storage key that stays in the TPM' "$T/prov.err"
expect_fail "... and slot 6 is not provisioned" sctpm --tcti "$W" token --slot 6
tok=$(sctpm --tcti "$W" token --slot 4 2>/dev/null)
check "... and slot 4 still signs" verify "$tok" "$(cat "$T/ecc-swtpm.k4")" "$HOST/devices/dev-4"
finish
