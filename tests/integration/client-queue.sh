#!/usr/bin/env bash
# The queue's bounds and its users: a full queue refuses new messages with exit status 8 and a
# clear line (nothing partial, nothing already queued dropped); `run` facing a full queue stops
# reading its input until deliveries make room, and loses nothing; concurrent `send` processes
# on one queue; a queue holding another identity's messages is refused; `queue` reports.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"
. "$top_srcdir/tests/integration/client-lib.sh"

sctpmd_start s
start_hub hub "$T/hub"
TC=$(tcti s swtpm-tcp)
provision "$TC" 0 dev-q

exactly_once() { # exactly_once DEVICE N
    local all distinct
    all=$(hub messages --device "$1" | wc -l)
    distinct=$(hub messages --device "$1" | sed 's/.* body=//' | sort -u | wc -l)
    [ "$all" = "$2" ] && [ "$distinct" = "$2" ] && return 0
    echo "$all messages, $distinct different bodies; want $2 of each" >&2
    return 1
}

# Bound in messages.
for i in 1 2 3; do
    run_sc --queue-max-messages 3 send --no-flush "count-$i"
done
check "three messages fit a bound of three" queued 3
run_sc --queue-max-messages 3 send --no-flush count-4
check "the fourth is refused: exit 8" exits 8
check "... with one clear line" said "$T/err" \
    "^sctpm-client: queue $T/queue is full: 3 message\\(s\\), [0-9]+ bytes queued, bounds 3 messages and 64 MiB \\(--queue-max-messages, --queue-max-bytes\\); not accepted$"
check "... and nothing on stdout" test ! -s "$T/out"
check "... the queue still holds the three" queued 3
run_sc --queue-max-messages 4 send --no-flush --lines - < <(printf 'a\nb\n')
check "two messages with room for one: both refused (8)" exits 8
check "... none was taken" queued 3
run_sc --queue-max-messages 3 flush
check "delivery makes room" exits 0
check "... the three arrived" hub_has dev-q 3
run_sc --queue-max-messages 3 send count-4
check "then the next is accepted" exits 0

# Bound in bytes.
body=$(head -c 1500 /dev/zero | tr '\0' b)
run_sc --queue-max-bytes 2K send --no-flush "$body"
check "1.5 KB fits 2 KiB" exits 0
run_sc --queue-max-bytes 2K send --no-flush "$body"
check "a second 1.5 KB is refused (8)" exits 8
check "... naming the byte bound" said "$T/err" 'bounds 100000 messages and 2 KiB'
run_sc flush
check "flushed" exits 0

# run against a full queue while the hub is away: input waits, nothing is lost.
check "the hub stops" stop_hub hub
rm -f "$T/in"
mkfifo "$T/in"
sc_exec --queue-max-messages 10 run --no-c2d <"$T/in" >"$T/run.out" 2>"$T/run.err" &
pid=$!
exec 7>"$T/in"
seq -f "bp-%g" 1 25 >&7
check "run fills the queue to its bound" poll 30 queued 10
check "... and says it stops reading" poll 10 said "$T/run.err" 'is full: .* input paused until deliveries make room$'
restart_hub hub2
check "once the hub is back, all 25 arrive" poll 120 bash -c "[ \$(sctpm-hub --data '$HUB_DIR' messages --device dev-q | grep -c ' body=bp-') = 25 ]"
check "... input resumed" said "$T/run.err" 'input resumed'
exec 7>&-
kill -TERM "$pid"
wait "$pid"

# Eight processes send at once; those that do not get the delivery lock only enqueue.
before=$(hub_count dev-q)
pids=()
for p in $(seq 1 8); do
    seq -f "conc-$p-%g" 1 25 | sc send --lines - >"$T/conc-$p.out" 2>&1 &
    pids+=($!)
done
st=0
for p in "${pids[@]}"; do wait "$p" || st=1; done
check "eight concurrent sends all exit 0" test "$st" = 0
check "... each printed 25 lines" test "$(cat "$T"/conc-*.out | grep -cE '^(sent|queued) ')" = 200
run_sc flush
check "a flush delivers what was left queued" exits 0
check "... all 200 arrived, exactly once" exactly_once dev-q $((before + 200))

# Another identity in the same queue.
provision "$TC" 1 dev-other
run_sc send --no-flush 'for dev-q'
run_sc --slot 1 send 'for dev-other'
check "a queue holding another device's messages is refused (1)" exits 1
check "... naming both" said "$T/err" \
    "queue $T/queue holds 1 message\\(s\\) for hub.sctpm.test/dev-q, but the slot's identity is now hub.sctpm.test/dev-other"
run_sc flush
run_sc --slot 1 send 'for dev-other'
check "once empty, the queue follows the slot" exits 0
check "... delivered to dev-other" hub_has dev-other 1

run_sc queue
check "queue: one line with the counts and bounds" said "$T/out" \
    "^queue $T/queue messages=0 bytes=0 oldest=- rejected=0 max-messages=100000 max-bytes=67108864 delivering=no$"

finish_hubs
