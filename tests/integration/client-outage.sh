#!/usr/bin/env bash
# A hub outage under a running client: messages read while the hub is down are queued on disk
# and delivered once it is back, each exactly once in the hub's store, also when the hub dies
# with SIGKILL in the middle of a burst (requests it committed but never acknowledged are sent
# again with the same ids, and the hub keeps one copy). A `send` during the outage only queues,
# and says which process delivers.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"
. "$top_srcdir/tests/integration/client-lib.sh"

sctpmd_start s
start_hub hub "$T/hub"

# exactly_once DEVICE N: the hub holds N messages for DEVICE with N different bodies.
exactly_once() {
    local all distinct
    all=$(hub messages --device "$1" | wc -l)
    distinct=$(hub messages --device "$1" | sed 's/.* body=//' | sort -u | wc -l)
    [ "$all" = "$2" ] && [ "$distinct" = "$2" ] && return 0
    echo "$all messages, $distinct different bodies; want $2 of each" >&2
    return 1
}

outage() { # outage LABEL TCTI SLOT
    local tr=$1 dev=dev-$1 pid
    TC=$2 SLOT=$3 QUEUE=$T/queue-$1
    provision "$TC" "$SLOT" "$dev"
    rm -f "$T/in"
    mkfifo "$T/in"
    sc_exec run --poll 1 <"$T/in" >"$T/$tr.out" 2>"$T/$tr.err" &
    pid=$!
    echo "$pid" >"$T/runner.pid"
    exec 7>"$T/in"

    for i in $(seq 1 20); do echo "$tr-$i" >&7; done
    check "$tr: twenty lines arrive while the hub is up" poll 30 hub_has "$dev" 20
    check "$tr: the hub stops" stop_hub "$HUB_NAME"

    run_sc send "$tr-from-send"
    check "$tr: send during the outage exits 0" exits 0
    check "$tr: ... it says queued" said "$T/out" '^queued '
    check "$tr: ... and who delivers" said "$T/err" "process $pid is delivering the queue"
    for i in $(seq 21 50); do echo "$tr-$i" >&7; done
    check "$tr: thirty-one messages wait on disk" poll 30 queued 31
    check "$tr: run reports the outage" poll 30 said "$T/$tr.err" 'not delivered: cannot reach https://127.0.0.1:[0-9]+: .* message\(s\) queued; retrying in'
    # The outage lasts a few seconds (the scenario, not synchronisation), so several retries fail.
    sleep 4
    HUB_NAME=hub-$tr-2
    restart_hub "$HUB_NAME"
    check "$tr: after the restart everything arrives" poll 90 hub_has "$dev" 51
    check "$tr: ... exactly once" exactly_once "$dev" 51
    check "$tr: the queue is empty" poll 10 queued 0
    check "$tr: run reports the recovery" said "$T/$tr.err" 'delivering again after [0-9]+ failed attempt'

    # A burst, and the hub killed in the middle of it.
    seq -f "$tr-burst-%g" 1 600 >&7
    check "$tr: the burst is being delivered" poll 60 bash -c "[ \$(sctpm-hub --data '$HUB_DIR' messages --device '$dev' | wc -l) -ge 150 ]"
    stop_daemon "$HUB_NAME" KILL || true
    HUB_NAME=hub-$tr-3
    restart_hub "$HUB_NAME"
    check "$tr: after SIGKILL of the hub the burst arrives" poll 120 hub_has "$dev" 651
    check "$tr: ... exactly once" exactly_once "$dev" 651

    exec 7>&-
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    check "$tr: run stops on SIGTERM with exit status 0" exits 0
    check "$tr: ... and sums up" said "$T/$tr.err" '^sctpm-client: stopped: read 650 message\(s\), sent 651 '
}

HUB_NAME=hub
outage mssim-tcp "$(tcti s mssim-tcp)" 0
outage mssim-unix "$(tcti s mssim-unix)" 1

finish_hubs
