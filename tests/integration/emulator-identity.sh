# The identity sctpmd manufactures on first start, seen by tpm2-tools and OpenSSL: EK certificates
# in the TCG NV indices verify against DIR/ek-ca.pem and carry the EK's public key; the SRK and
# both EKs are persisted; two fresh states give different EKs; the vendor strings say this is a
# software TPM; an interrupted first start is redone rather than left half made.
. "$top_srcdir/tests/integration/lib.sh"

sctpmd_start one
export TPM2TOOLS_TCTI=$(tcti one mssim-unix)
check "persistent handles: SRK and both EKs" \
    bash -c "tpm2_getcap handles-persistent | tr -d ' -' | sort | tr '\n' ' ' | grep -q '0x81000001 0x81010001 0x81010002'"
check "the CA key is private" test "$(stat -c %a "$T/one.state/ek-ca.key")" = 600
for kind in rsa:0x01c00002:0x81010001 ecc:0x01c0000a:0x81010002; do
    IFS=: read -r alg nv handle <<<"$kind"
    check "$alg: read the EK certificate from NV $nv" tpm2_nvread "$nv" -o "$T/$alg.der"
    check "$alg: it is a DER X.509 certificate" \
        openssl x509 -inform der -in "$T/$alg.der" -out "$T/$alg.pem"
    check "$alg: it verifies against DIR/ek-ca.pem" \
        openssl verify -CAfile "$T/one.state/ek-ca.pem" "$T/$alg.pem"
    check "$alg: read the EK public key" tpm2_readpublic -c "$handle" -f pem -o "$T/$alg.ek.pem"
    check "$alg: the certificate carries the EK's public key" \
        bash -c "[ \"\$(openssl x509 -in $T/$alg.pem -pubkey -noout)\" = \"\$(cat $T/$alg.ek.pem)\" ]"
done
check "the EK certificate is for EK use (tcg-kp-EKCertificate)" \
    bash -c "openssl x509 -in $T/rsa.pem -noout -text | grep -q 2.23.133.8.1"
check "the RSA EK is the TCG default EK (tpm2_createek re-creates the same key)" \
    bash -c "tpm2_createek -c $T/ek2.ctx -G rsa -u $T/ek2.pub >/dev/null && tpm2_readpublic -c $T/ek2.ctx -f pem -o $T/ek2.pem >/dev/null && cmp -s $T/ek2.pem $T/rsa.ek.pem"
check "the vendor strings say it is a software TPM" \
    bash -c "tpm2_getcap properties-fixed | grep -A2 VENDOR_STRING_1 | grep -q 'SW T'"
stop_daemon one

sctpmd_start two
# differs NAME: sctpmd NAME's RSA EK can be read and is not the first state's.
differs() {
    TPM2TOOLS_TCTI=$(tcti "$1" mssim-tcp) tpm2_readpublic -Q -c 0x81010001 -f pem -o "$T/$1.ek.pem" &&
        test -s "$T/$1.ek.pem" && ! cmp -s "$T/$1.ek.pem" "$T/rsa.ek.pem"
}
check "a second fresh state has a different EK" differs two
stop_daemon two

# An interrupted first start: the marker is there and a partial state exists.
mkdir -p "$T/three.state"
cp "$T/one.state/tpm2-permall" "$T/three.state/"
touch "$T/three.state/.manufacturing"
sctpmd_start three
check "an interrupted first start is noticed" grep -q "first start of .* was interrupted" "$T/three.log"
check "the marker is gone" test ! -e "$T/three.state/.manufacturing"
check "the TPM was made again: a new EK" differs three
check "with a certificate from its new CA" \
    bash -c "TPM2TOOLS_TCTI='$(tcti three mssim-tcp)' tpm2_nvread 0x01c00002 -o $T/three.der && openssl x509 -inform der -in $T/three.der | openssl verify -CAfile $T/three.state/ek-ca.pem"
stop_daemon three

# A first start killed while its child process makes the TPM. The child is stopped first, so
# that the kill lands mid-manufacture; it must die with the daemon (PR_SET_PDEATHSIG) rather than
# go on writing the state, and the next start must make the TPM again.
# A first start takes ~100 ms, so the child may be done before it is stopped: then the daemon
# is killed and the first start tried again on a new state directory.
stopped=
for attempt in 1 2 3 4 5 6 7 8; do
    rm -rf "$T/four.state"
    start_daemon four sctpmd --state "$T/four.state" --no-tcp --unix "$T/four.sock" --foreground --fsync never
    pid=$(daemon_pid four)
    poll "$WAIT_DAEMON" bash -c "pgrep -P $pid >/dev/null" || break
    child=$(pgrep -P "$pid")
    if kill -STOP "$child" 2>/dev/null && grep -q '^State:.*stopped' "/proc/$child/status" 2>/dev/null; then
        stopped=1
        break
    fi
    stop_daemon four KILL || true
done
check "the TPM is made in a child process, stopped mid-manufacture (attempt $attempt)" test -n "$stopped"
check "the manufacturing child holds the state lock too" \
    bash -c "ls -l /proc/$child/fd | grep -q 'four.state/.lock\$'"
stop_daemon four KILL || true
check "the child died with the daemon" poll 10 bash -c "! kill -0 $child 2>/dev/null"
check "the marker of an unfinished first start is left" test -e "$T/four.state/.manufacturing"
sctpmd_start four
check "the interrupted first start is noticed" grep -q "first start of .* was interrupted" "$T/four.log"
check "the marker is gone" test ! -e "$T/four.state/.manufacturing"
check "the new TPM has its EK certificate" \
    bash -c "TPM2TOOLS_TCTI='$(tcti four mssim-unix)' tpm2_nvread 0x01c00002 -o $T/four.der && openssl x509 -inform der -in $T/four.der | openssl verify -CAfile $T/four.state/ek-ca.pem"
check "and its SRK" bash -c "TPM2TOOLS_TCTI='$(tcti four mssim-unix)' tpm2_readpublic -Q -c 0x81000001"
stop_daemon four
finish
