# sctpmd's resource manager with real clients: concurrent ESAPI clients holding more objects than
# the TPM has slots, over every transport, with zero errors and every HMAC checked; tpm2-tools
# processes that leave transients behind never exhaust the TPM; a session saved by one process is
# used by the next; a client killed mid-session leaks nothing; quotas answer with the TPM's own
# memory error and do not affect the next client.
. "$top_srcdir/tests/integration/lib.sh"

# held_objects NAME: how many objects the RM of sctpmd NAME holds (from its SIGUSR1 status).
held_objects() {
    local before
    before=$(grep -c "resource manager:" "$T/$1.log")
    kill -USR1 "$(daemon_pid "$1")"
    poll 20 bash -c "[ \$(grep -c 'resource manager:' $T/$1.log) -gt $before ]" || return 1
    grep "resource manager:" "$T/$1.log" | tail -1 | sed 's/.*manager: \([0-9]*\) object.*/\1/'
}

nothing_held() { [ "$(held_objects rm)" = 0 ]; }

sctpmd_start rm --swtpm-space-idle 1

# 1. Twelve clients at once, three per transport, each with five keys it never flushes and an
#    HMAC session, 150 verified HMACs each.
pids=()
i=0
for tr in $TRANSPORTS; do
    for n in 1 2 3; do
        i=$((i + 1))
        tpm-client "$(tcti rm "$tr")" 150 5 --no-flush --session >"$T/client$i.out" 2>&1 &
        pids+=($!)
    done
done
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
check "12 concurrent clients with 5 objects each: $bad failed" test "$bad" = 0
check "every client checked all its HMACs" bash -c "[ \$(cat $T/client*.out | grep -c '^ok 150 hmacs') = 12 ]"
export TPM2TOOLS_TCTI=$(tcti rm mssim-tcp)
check "a fresh client sees no transient handles" bash -c "[ -z \"\$(tpm2_getcap handles-transient)\" ]"
check "the service holds no object once they are gone" poll 20 nothing_held

# 2. Twenty tpm2-tools processes in a row, each leaving a transient object behind.
fails=0
for i in $(seq 20); do
    tpm2_createprimary -Q -C o -c "$T/p$i.ctx" 2>>"$T/tools.err" || fails=$((fails + 1))
done
check "20 tpm2_createprimary runs that leave transients: $fails failed" test "$fails" = 0
check "no TPM_RC_OBJECT_MEMORY (0x902)" bash -c "! grep -q 0x902 $T/tools.err"
check "a context a tool saved is usable by the next tool" \
    tpm2_create -Q -C "$T/p20.ctx" -G hmac -u "$T/k.pub" -r "$T/k.priv"

# 3. A session saved by one process and used by the next ones (tpm2-tools' -S s.ctx flow).
check "tpm2_startauthsession -S in one process" \
    tpm2_startauthsession --hmac-session -S "$T/s.ctx"
check "the next process authorises with -P session:s.ctx" \
    tpm2_create -Q -C "$T/p20.ctx" -P "session:$T/s.ctx" -u "$T/k2.pub" -r "$T/k2.priv"
check "and the one after that flushes it" tpm2_flushcontext "$T/s.ctx"

# 4. A client killed in the middle of its work leaks nothing.
for tr in mssim-unix swtpm-unix mssim-tcp; do
    rm -f "$T/ready"
    tpm-client "$(tcti rm "$tr")" 100000000 6 --session --ready "$T/ready" >/dev/null 2>&1 &
    victim=$!
    check "$tr: the victim has its keys and session" wait_file "$T/ready" 30
    kill -9 "$victim"
    wait "$victim" 2>/dev/null
    check "$tr: after kill -9 the service holds no object" poll 20 nothing_held
done
check "the status names the spaces" grep -q "space" "$T/rm.log"
stop_daemon rm

# 5. Quotas: the TPM's own memory error and a log line naming the client; others unaffected.
sctpmd_start quota --max-objects 4 --max-sessions 2
st=0
tpm-client "$(tcti quota mssim-tcp)" 10 5 >"$T/greedy.out" 2>&1 || st=$?
check "a fifth object is refused" test "$st" != 0
check "... with TPM_RC_OBJECT_MEMORY" grep -q "0x00000902" "$T/greedy.out"
check "... and a log line naming the client" grep -q "refused a new object" "$T/quota.log"
check "the next client with four objects works" tpm-client "$(tcti quota mssim-unix)" 20 4
stop_daemon quota
finish
