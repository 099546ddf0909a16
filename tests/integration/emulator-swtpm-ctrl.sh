# The swtpm control channel, driven by swtpm's own swtpm_ioctl over TCP and Unix: capabilities,
# established bit, locality, hashing, volatile state, buffer size, info, state blobs (save, stop,
# load, init keeps the TPM's contents), shutdown. Platform operations are refused without
# --allow-platform.
. "$top_srcdir/tests/integration/lib.sh"

command -v swtpm_ioctl >/dev/null || hard_error "swtpm_ioctl missing: run scripts/install-deps"

for tr in tcp unix; do
    name=ctl-$tr
    sctpmd_start "$name" --ctrl-dialect swtpm --allow-platform
    if [ "$tr" = tcp ]; then
        C=(--tcp "127.0.0.1:$((SCTPMD_PORT[$name] + 1))")
        export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=${SCTPMD_PORT[$name]}"
    else
        C=(--unix "$T/$name.sock.ctrl")
        export TPM2TOOLS_TCTI="swtpm:path=$T/$name.sock"
    fi
    check "$tr: capabilities" bash -c "swtpm_ioctl ${C[*]} -c | grep -Eq 'ptm capability is 0x(efff|ffff)'"
    check "$tr: established bit" bash -c "swtpm_ioctl ${C[*]} -e | grep -q 'tpmEstablished is'"
    check "$tr: set locality 0" swtpm_ioctl "${C[@]}" -l 0
    check "$tr: configuration flags" bash -c "swtpm_ioctl ${C[*]} -g | grep -q 'flags: 0x0'"
    check "$tr: buffer size" bash -c "swtpm_ioctl ${C[*]} -b 0 | grep -q 'buffersize: 4096'"
    check "$tr: info" bash -c "swtpm_ioctl ${C[*]} --info 1 | grep -q TPMSpecification"
    check "$tr: H-CRTM hash sequence" swtpm_ioctl "${C[@]}" -h "sctpm measured boot"
    check "$tr: PCR 0 moved after the hash sequence" \
        bash -c "tpm2_pcrread sha256:0 | grep -qv 0x0000000000000000000000000000000000000000000000000000000000000000"
    check "$tr: reset the established bit at locality 3" swtpm_ioctl "${C[@]}" -r 3
    check "$tr: store volatile state" swtpm_ioctl "${C[@]}" -v
    check "$tr: define an NV index" tpm2_nvdefine -Q 0x01500030 -C o -s 4 -a "ownerread|ownerwrite"
    check "$tr: write it" bash -c "printf abcd | tpm2_nvwrite -Q 0x01500030 -C o -i -"
    check "$tr: save the permanent state blob" swtpm_ioctl "${C[@]}" --save permanent "$T/$tr.perm"
    check "$tr: the blob is not empty" test -s "$T/$tr.perm"
    check "$tr: stop the TPM" swtpm_ioctl "${C[@]}" --stop
    expect_fail "$tr: a stopped TPM answers no command" tpm2_getrandom -Q 8
    check "$tr: load the state blob" swtpm_ioctl "${C[@]}" --load permanent "$T/$tr.perm"
    check "$tr: init" swtpm_ioctl "${C[@]}" -i
    check "$tr: the TPM works again" tpm2_getrandom -Q 8
    check "$tr: and kept its NV contents" bash -c "tpm2_nvread 0x01500030 -C o -s 4 | grep -q abcd"
    check "$tr: shutdown ends the daemon" swtpm_ioctl "${C[@]}" -s
    check "$tr: the daemon exited" poll 20 bash -c "! kill -0 $(daemon_pid "$name")"
    stop_daemon "$name" || true
done

# A permanent state blob from another TPM: after INIT the TPM is that TPM, and stays it after a
# restart (found by fuzz_swtpm_ctrl: libtpms reads the state twice, and only its first read got
# the blob).
sctpmd_start donor --ctrl-dialect swtpm --allow-platform
sctpmd_start taker --ctrl-dialect swtpm --allow-platform
D=(--unix "$T/donor.sock.ctrl")
C=(--unix "$T/taker.sock.ctrl")
ek() { TPM2TOOLS_TCTI="swtpm:path=$T/$1.sock" tpm2_readpublic -c 0x81010001 -o "$T/$2" >/dev/null; }
same_ek() { ek "$1" ek-now && cmp -s "$T/ek-now" "$T/$2"; }
check "the donor's EK" ek donor ek-donor
expect_fail "the taker's EK is another" same_ek taker ek-donor
check "the donor's permanent state" swtpm_ioctl "${D[@]}" --save permanent "$T/donor.perm"
check "stop the taker" swtpm_ioctl "${C[@]}" --stop
# A blob libtpms refuses fails INIT and changes nothing; a good one then still brings the TPM up.
printf '\000\000\000\000P' >"$T/garbage.perm"
check "load a blob that is no TPM state" swtpm_ioctl "${C[@]}" --load permanent "$T/garbage.perm"
expect_fail "init with it fails" swtpm_ioctl "${C[@]}" -i
check "load the donor's state" swtpm_ioctl "${C[@]}" --load permanent "$T/donor.perm"
check "init with it works" swtpm_ioctl "${C[@]}" -i
check "the taker now has the donor's EK" same_ek taker ek-donor
stop_daemon taker
sctpmd_start taker --ctrl-dialect swtpm --allow-platform
check "... and keeps it after a restart" same_ek taker ek-donor
stop_daemon taker
stop_daemon donor

# Without --allow-platform, platform operations from a TCP client are refused and logged.
sctpmd_start locked --ctrl-dialect swtpm
C=(--tcp "127.0.0.1:$((SCTPMD_PORT[locked] + 1))")
expect_fail "untrusted: init is refused" swtpm_ioctl "${C[@]}" -i
expect_fail "untrusted: stop is refused" swtpm_ioctl "${C[@]}" --stop
expect_fail "untrusted: reading the state blob is refused" \
    swtpm_ioctl "${C[@]}" --save permanent "$T/stolen"
expect_fail "untrusted: shutdown is refused" swtpm_ioctl "${C[@]}" -s
check "untrusted: harmless queries still work" swtpm_ioctl "${C[@]}" -c
check "the daemon still serves" env TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=${SCTPMD_PORT[locked]}" \
    tpm2_getrandom -Q 8
check "the refusals name the way to allow them" grep -q "allow it with --allow-platform" "$T/locked.log"
stop_daemon locked
finish
