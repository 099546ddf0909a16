# kill -9 while a client writes a counter into NV: after every restart the state loads and the NV
# index holds the last acknowledged write (or the one in flight). Over each transport, with the
# default --fsync always on TCP and --fsync never on Unix (the rename alone must be enough).
. "$top_srcdir/tests/integration/lib.sh"

ROUNDS=${SCTPM_CRASH_ROUNDS:-3}

for tr in $TRANSPORTS; do
    name=crash-$tr
    fs=never
    case $tr in *-tcp) fs=always ;; esac
    sctpmd_start "$name" --fsync "$fs"
    export TPM2TOOLS_TCTI=$(tcti "$name" "$tr")
    check "$tr: define the counter index" \
        tpm2_nvdefine -Q 0x01500017 -C o -s 8 -a "ownerread|ownerwrite|authread|authwrite"
    for round in $(seq "$ROUNDS"); do
        rm -f "$T/acked"
        # The writer records each value only after tpm2_nvwrite returned success.
        (
            i=0
            while :; do
                i=$((i + 1))
                printf '%08d' "$i" >"$T/v"
                tpm2_nvwrite -Q 0x01500017 -C o -i "$T/v" 2>/dev/null || exit 0
                echo "$i" >"$T/acked.tmp" && mv "$T/acked.tmp" "$T/acked"
            done
        ) &
        writer=$!
        target=$((RANDOM % 8 + 2))
        check "$tr round $round: $target writes acknowledged" \
            poll 60 bash -c "[ \"\$(cat $T/acked 2>/dev/null || echo 0)\" -ge $target ]"
        stop_daemon "$name" KILL || true
        wait "$writer" 2>/dev/null
        a=$(cat "$T/acked")
        sctpmd_start "$name" --fsync "$fs"
        got=$(tpm2_nvread 0x01500017 -C o -s 8 2>/dev/null | sed 's/^0*//')
        check "$tr round $round: NV holds $got, acknowledged $a (or one more)" \
            test -n "$got" -a "$got" -ge "$a" -a "$got" -le $((a + 1))
    done
    stop_daemon "$name"
done
finish
