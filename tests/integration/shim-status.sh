#!/usr/bin/env bash
# sctpm status and --require-hardware: the verdict rests on the EK certificate chain, not on the
# strings a TPM reports. A test "manufacturer" CA certifies swtpm's EK to stand in for a chip;
# sctpmd's own CA is refused as emulated even when a user puts it in the bundle.
. "$top_srcdir/tests/integration/lib.sh"

sctpmd_start s
swtpm_start w
S=$(tcti s mssim-unix)
W=$(swtpm_tcti w)
mkdir -p "$T/ca.d" "$T/empty.d"
# No installed bundle in the build tree: only what each check names counts.
export SCTPM_TPM_CA_FILE=$T/no-bundle.pem SCTPM_TPM_CA_DIR=$T/empty.d

status() { sctpm --tcti "$1" status >"$T/status.out" 2>"$T/status.err"; }
says() { grep -q "$1" "$T/status.out" || { cat "$T/status.out" "$T/status.err"; return 1; }; }

check "sctpmd: status runs" status "$S"
check "sctpmd: EMULATED" says '^TPM: *EMULATED$'
check "sctpmd: because of the emulator's CA" says "issued by the sctpm emulator's EK CA"
check "sctpmd: names the TCTI" says "^TCTI: *$S$"
check "sctpmd: names the EK certificate's issuer" says '^EK issuer: *CN=sctpmd EK CA'
check "sctpmd: manufacturer and vendor strings" bash -c "grep -q '^Manufacturer: *IBM' '$T/status.out' && grep -q '^Vendor: *SW' '$T/status.out'"
check "sctpmd: status writes no warning (it is the report)" test ! -s "$T/status.err"
cp "$T/s.state/ek-ca.pem" "$T/ca.d/sctpmd.pem"
SCTPM_TPM_CA_DIR=$T/ca.d sctpm --tcti "$S" status >"$T/status.out" 2>&1
check "sctpmd with its CA in the bundle: still EMULATED" says '^TPM: *EMULATED$'
rm "$T/ca.d/sctpmd.pem"

check "swtpm without an EK certificate: status runs" status "$W"
check "swtpm without an EK certificate: EMULATED" says '^TPM: *EMULATED$'
check "swtpm without an EK certificate: says there is none" says 'holds no EK certificate'

# A manufacturer CA and an EK certificate for swtpm's RSA EK (not persisted: the shim must
# re-create it from the TCG template to match the certificate).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/root.key" \
    -out "$T/ca.d/root.pem" -subj "/O=Test TPM Vendor/CN=Test TPM Root CA" -days 30 2>/dev/null
check "create the RSA EK with tpm2_createek" env TPM2TOOLS_TCTI="$W" tpm2_createek -c "$T/ek.ctx" -G rsa -f pem -u "$T/ek.pem"
check "flush transient objects" env TPM2TOOLS_TCTI="$W" tpm2_flushcontext -t
openssl req -new -newkey rsa:2048 -nodes -keyout "$T/dummy.key" -subj "/CN=unused" -out "$T/dummy.csr" 2>/dev/null
make_cert() { # make_cert PUBKEY OUT.der
    openssl x509 -req -in "$T/dummy.csr" -CA "$T/ca.d/root.pem" -CAkey "$T/root.key" \
        -force_pubkey "$1" -subj "/CN=Test TPM EK" -days 30 -set_serial 7 -outform DER -out "$2" 2>/dev/null
}
write_cert() { # write_cert DER
    local size
    size=$(stat -c %s "$1")
    TPM2TOOLS_TCTI="$W" tpm2_nvundefine -C o 0x01c00002 >/dev/null 2>&1
    TPM2TOOLS_TCTI="$W" tpm2_nvdefine -C o -s "$size" -a "ownerread|ownerwrite|authread|no_da" 0x01c00002 >/dev/null &&
        TPM2TOOLS_TCTI="$W" tpm2_nvwrite -C o -i "$1" 0x01c00002
}
check "issue an EK certificate from the test manufacturer CA" make_cert "$T/ek.pem" "$T/ek.der"
check "write it to NV 0x01c00002" write_cert "$T/ek.der"
check "swtpm, CA not in the bundle: status runs" status "$W"
check "swtpm, CA not in the bundle: EMULATED" says '^TPM: *EMULATED$'
check "swtpm, CA not in the bundle: no chain" says 'does not chain to a TPM manufacturer'
check "swtpm, CA not in the bundle: the issuer is named" says '^EK issuer: *CN=Test TPM Vendor CA\|^EK issuer: *CN=Test TPM Root CA'
export SCTPM_TPM_CA_DIR=$T/ca.d
check "swtpm, CA in the user's tpm-ca.d: status runs" status "$W"
check "swtpm, CA in the user's tpm-ca.d: HARDWARE" says '^TPM: *HARDWARE$'
check "swtpm, CA in the user's tpm-ca.d: names the root" says "certifies this TPM's EK and chains to CN=Test TPM Root CA"
check "--require-hardware accepts it" sctpm --tcti "$W" --require-hardware status
check "SCTPM_TPM_CA_FILE works as the bundle too" env SCTPM_TPM_CA_DIR="$T/empty.d" SCTPM_TPM_CA_FILE="$T/ca.d/root.pem" sctpm --tcti "$W" --require-hardware status
key=$(openssl rand -base64 32)
check "provision on hardware: no warning" bash -c "printf 'HostName=h.example;DeviceId=d;SharedAccessKey=%s' '$key' | sctpm --tcti '$W' --require-hardware provision 2>'$T/prov.err' >/dev/null && test ! -s '$T/prov.err'"
check "provision on hardware confirms the SRK with the certified EK" bash -c "printf 'HostName=h.example;DeviceId=d;SharedAccessKey=%s' '$key' | SCTPM_LOG=info sctpm --tcti '$W' provision 2>&1 >/dev/null | grep -q 'SRK 0x81000001 confirmed in an audit session salted with the RSA 2048 EK certified by CN=Test TPM Root CA'"
check "token on hardware with SCTPM_REQUIRE_HARDWARE=1" env SCTPM_REQUIRE_HARDWARE=1 sctpm --tcti "$W" token

# The same certificate with the EK persisted: the persistent key is what it must match.
check "persist the EK at 0x81010001" bash -c "TPM2TOOLS_TCTI='$W' tpm2_createek -c 0x81010001 -G rsa >/dev/null"
check "persisted EK: HARDWARE" bash -c "sctpm --tcti '$W' status | grep -q '^TPM: *HARDWARE$'"

# A certificate for some other key proves nothing about this TPM.
check "extract another key" openssl pkey -in "$T/dummy.key" -pubout -out "$T/other.pem"
check "issue a certificate for it" make_cert "$T/other.pem" "$T/other.der"
check "write it" write_cert "$T/other.der"
check "another key's certificate: status runs" status "$W"
check "another key's certificate: EMULATED" says '^TPM: *EMULATED$'
check "another key's certificate: says so" says "for another key than this TPM's EK"

# --require-hardware refuses every command on an emulated TPM, with one clear line.
for cmd in status list token connection-string "deprovision --slot 0"; do
    # shellcheck disable=SC2086
    sctpm --tcti "$S" --require-hardware $cmd >"$T/out" 2>"$T/err"
    st=$?
    check "--require-hardware $cmd on sctpmd: exit 6" test "$st" = 6
    check "--require-hardware $cmd on sctpmd: the reason" grep -q "hardware TPM required, but the TPM at $S is EMULATED: the EK certificate is issued by the sctpm emulator's EK CA" "$T/err"
done
check "--require-hardware provision refuses before reading the TPM slot" bash -c "printf 'HostName=h.example;DeviceId=d;SharedAccessKey=%s' '$key' | SCTPM_REQUIRE_HARDWARE=1 sctpm --tcti '$S' provision; test \$? = 6"
check "the emulated TPM warns once on stderr" bash -c "sctpm --tcti '$S' list 2>&1 >/dev/null | grep -c 'warning: the TPM is EMULATED' | grep -qx 1"
finish
