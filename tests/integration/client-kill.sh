#!/usr/bin/env bash
# kill -9 of the client: a backlog queued while the hub was away, a client killed with SIGKILL in
# the middle of delivering it (single requests, then batches), and a restarted client delivers
# everything, each message exactly once in the hub's store. Also a `run` killed while reading its
# input: every line it had taken is delivered by the next run.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"
. "$top_srcdir/tests/integration/client-lib.sh"

sctpmd_start s
start_hub hub "$T/hub"

exactly_once() { # exactly_once DEVICE N
    local all distinct
    all=$(hub messages --device "$1" | wc -l)
    distinct=$(hub messages --device "$1" | sed 's/.* body=//' | sort -u | wc -l)
    [ "$all" = "$2" ] && [ "$distinct" = "$2" ] && return 0
    echo "$all messages, $distinct different bodies; want $2 of each" >&2
    return 1
}
at_least() { [ "$(hub_count "$1")" -ge "$2" ]; }
not_empty() { ! queued 0; }

killed() { # killed LABEL TCTI SLOT N [--batch]
    local tr=$1 n=$4 dev=dev-$1 pid st
    TC=$2 SLOT=$3 QUEUE=$T/queue-$1
    shift 4
    provision "$TC" "$SLOT" "$dev"
    seq -f "$tr-%g" 1 "$n" | sc send --no-flush --lines - >/dev/null 2>"$T/err" ||
        { cat "$T/err"; fail "$tr: send --no-flush"; }
    check "$tr: a backlog of $n on disk" queued "$n"

    sc_exec flush "$@" >"$T/flush.out" 2>"$T/flush.err" &
    pid=$!
    check "$tr: delivery is under way" poll 60 at_least "$dev" $((n / 10))
    kill -KILL "$pid"
    st=0
    wait "$pid" || st=$?
    check "$tr: the client died of SIGKILL" test "$st" = 137
    note "$tr: killed with $(hub_count "$dev") of $n delivered"
    check "$tr: some are still queued" not_empty

    run_sc flush "$@"
    check "$tr: the next flush exits 0" exits 0
    check "$tr: every message arrived" hub_has "$dev" "$n"
    check "$tr: ... exactly once" exactly_once "$dev" "$n"
    check "$tr: the queue is empty" queued 0
}

killed mssim-tcp "$(tcti s mssim-tcp)" 0 3000
killed swtpm-unix "$(tcti s swtpm-unix)" 1 20000 --batch

# run killed while reading: what it took from standard input is on disk, and goes next time.
TC=$(tcti s mssim-unix) SLOT=2 QUEUE=$T/queue-run
provision "$TC" 2 dev-run
check "the hub stops" stop_hub hub
rm -f "$T/in"
mkfifo "$T/in"
sc_exec run --no-c2d <"$T/in" >"$T/run.out" 2>"$T/run.err" &
pid=$!
exec 7>"$T/in"
seq -f "run-%g" 1 100 >&7
check "run took all hundred lines" poll 30 queued 100
kill -KILL "$pid"
wait "$pid"
exec 7>&-
restart_hub hub2
run_sc flush
check "the next client delivers them" exits 0
check "... all of them, once" exactly_once dev-run 100

finish_hubs
