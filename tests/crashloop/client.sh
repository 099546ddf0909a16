#!/usr/bin/env bash
# Crash loop for sctpm-client (issue #9): N rounds (default 200) in which sctpm-client is killed
# with SIGKILL at random moments while it accepts messages and while it delivers a backlog to the
# hub (sctpm-hub). Rounds take turns:
#   send   `send` processes one after another (groups of 1 to 5 messages, as arguments or
#          --lines, half of them delivering too); the one running at the kill moment dies;
#   flush  a backlog is queued, then `flush` (--batch every other time) is killed, while `send
#          --no-flush` processes add to the queue and one of them is killed too;
#   run    `run --watch DIR --stdin` (--batch every other time) is killed while lines arrive on
#          its standard input, files are dropped into DIR, and `send` processes add to the queue.
# Every tenth round also kills the first `send` on a new queue (creating its database)
# 0..--max-delay/20 ms in; that queue must then open and flush. After every kill the queue must
# open (`sctpm-client queue` exits 0). After the last round a clean `run` takes the files left in
# DIR and a clean `flush` empties the queue; then, by the bodies the hub stored (each unique):
#   - every message of a `send` that exited 0 arrived, and every file dropped into DIR;
#   - nothing arrived twice, and nothing arrived that was never sent;
#   - a killed `send` was all or nothing (its messages are one transaction);
#   - what a killed `run` took from standard input is a prefix of what it was given;
#   - the queue is empty and the hub refused nothing.
# What a client accepts is recorded by the test as a file renamed into place once the client has
# exited. The TPM is sctpmd; each round's clients reach it over another transport.
# Options: see tests/crashloop/lib.sh; the faults --inject makes, to show that the loop reports
# them: lost (a message recorded as accepted that was never sent) and duplicate (one body sent
# twice, under two message ids).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"
. "$top_srcdir/tests/integration/client-lib.sh"

DEV=dev-crash
QUEUE=$T/queue
WATCH=$T/watch
REC=$T/rec
mkdir -p "$WATCH" "$REC"

sctpmd_start s
start_hub hub "$T/hub"
TC=$(tcti s mssim-unix)
provision "$TC" 0 "$DEV"

# now_ms: the wall clock in milliseconds.
now_ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((t / 1000)); }

# record NAME LINE...: writes $REC/NAME (one LINE a line) as a temporary file renamed into place.
record() {
    local name=$1
    shift
    printf '%s\n' "$@" >"$REC/.$name.tmp" && mv "$REC/.$name.tmp" "$REC/$name"
}

# CLIENT: the sctpm-client command line for this round's transport, for timeout(1) to run: the
# binary itself rather than libtool's wrapper script, so that a kill finds the client, not a shell
# about to start it (under memcheck in check-valgrind, as client-lib's client runs it).
set_client() {
    # shellcheck disable=SC2207
    CLIENT=(env "LD_LIBRARY_PATH=$top_builddir/shim/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            $(wrap sctpm-client) "$top_builddir/client/.libs/sctpm-client")
    CLIENT+=(--tcti "$1" --slot 0 --queue "$QUEUE" --endpoint "https://127.0.0.1:$HUB_PORT"
             --ca-file "$HUB_DIR/ca.pem" --quiet)
}

# until_ms DEADLINE COMMAND...: runs COMMAND, killed with SIGKILL at DEADLINE (epoch ms) if it is
# still running; returns its status (137 when killed). Returns 200 without running it when the
# deadline has passed.
until_ms() {
    local left=$(($1 - $(now_ms)))
    shift
    [ "$left" -gt 0 ] || return 200
    timeout --foreground -s KILL "$(secs "$left")" "$@"
}

# sender LABEL DEADLINE always|sometimes: `send` processes one after another until DEADLINE, when
# the one under way is killed; with --no-flush always, or every other time at random. Each group
# of messages is recorded as $REC/LABEL-gN: its exit status ("ok", or the status), then its bodies.
sender() {
    local label=$1 deadline=$2 mode=$3 g=0 k i st bodies opts
    while :; do
        g=$((g + 1))
        k=$((RANDOM % 5 + 1))
        bodies=()
        for ((i = 1; i <= k; i++)); do bodies+=("$label-g$g-m$i"); done
        opts=()
        [ "$mode" = always ] || ((RANDOM % 2)) && opts=(--no-flush)
        st=0
        if ((RANDOM % 2)); then
            until_ms "$deadline" "${CLIENT[@]}" send "${opts[@]}" "${bodies[@]}" \
                >/dev/null 2>>"$T/$label.err" || st=$?
        else
            printf '%s\n' "${bodies[@]}" | until_ms "$deadline" "${CLIENT[@]}" send "${opts[@]}" \
                --lines - >/dev/null 2>>"$T/$label.err" || st=$?
        fi
        [ "$st" = 200 ] && break
        [ "$st" = 0 ] && st=ok
        record "$label-g$g" "$st" "${bodies[@]}"
        [ "$st" = ok ] || break
    done
}

# stdin_feed LABEL: lines LABEL-lN, ten at a time every 50 ms, until the reader goes; then records
# how many were written as $REC/LABEL.stdin.
stdin_feed() {
    local label=$1 i=0 j
    trap '' PIPE
    while :; do
        for ((j = 0; j < 10; j++)); do
            i=$((i + 1))
            echo "$label-l$i" 2>/dev/null || break 2
        done
        sleep 0.05
    done
    record "$label.stdin" "$((i - 1))"
}

# dropper LABEL DEADLINE: drops files into $WATCH (written as dot-files, then renamed) until
# DEADLINE; records the bodies of those renamed in as $REC/LABEL.files.
dropper() {
    local label=$1 deadline=$2 i=0 dropped=()
    while [ "$(now_ms)" -lt "$deadline" ]; do
        i=$((i + 1))
        printf '%s' "$label-f$i" >"$WATCH/.$label-f$i" && mv "$WATCH/.$label-f$i" "$WATCH/$label-f$i" &&
            dropped+=("$label-f$i")
        sleep 0.02
    done
    record "$label.files" "${dropped[@]}"
}

# sends LABEL: how the sends of a round ended.
sends() {
    local ok=0 other=0 f
    for f in "$REC/$1"-g*; do
        [ -e "$f" ] || continue
        if [ "$(head -n 1 "$f")" = ok ]; then ok=$((ok + 1)); else other=$((other + 1)); fi
    done
    echo "sends: $ok ok, $other killed"
}

# new_queue_killed ROUND: `send` processes on a queue that does not exist yet, the one under way
# killed 0..--max-delay/20 ms in (the first creates the database); the queue must then open and
# a clean flush empty it. Sets $fresh; returns 1 on a failure (reported).
new_queue_killed() {
    local main=$QUEUE ms=$((RANDOM % (MAX_DELAY / 20 + 1))) st=0
    QUEUE=$T/queue-r$1
    set_client "$TC"
    sender "r$1-new" $(($(now_ms) + ms)) always
    fresh="sends on a new queue killed at $ms ms: $(sends "r$1-new")"
    queue_opens || st=1
    if [ "$st" = 0 ]; then
        "${CLIENT[@]}" flush --timeout 60 >/dev/null 2>"$T/new-queue.err" || st=2
    fi
    QUEUE=$main
    set_client "$TC"
    case $st in
    1) echo "FAIL: round $1: a new queue does not open after the kill: $(cat "$T/queue.err")" >&2 ;;
    2) echo "FAIL: round $1: a new queue cannot be flushed after the kill: $(cat "$T/new-queue.err")" >&2 ;;
    esac
    [ "$st" = 0 ]
}

# queue_opens: after a kill, the queue opens and answers.
queue_opens() { "${CLIENT[@]}" queue >"$T/queue.out" 2>"$T/queue.err"; }

# status_of LABEL: what a round's killed client ended with ("killed", "done" or its status).
status_of() {
    case $1 in
    137) echo killed ;;
    0) echo "done" ;;
    200) echo "not started" ;;
    *) echo "exit $1" ;;
    esac
}

# keep_all LABEL: the evidence: queue, watched directory, records, the hub's store, logs, and
# the lists the final check makes (arrived, lost, duplicates, unknown).
keep_all() {
    evidence "$1" "$QUEUE" "$WATCH" "$REC" "$HUB_DIR" "$T"/*.err "$T"/*.log "$T"/*.out \
        "$T"/arrived "$T"/expected.sorted "$T"/lost "$T"/duplicates "$T"/unknown
}

read -ra TRS <<<"$TRANSPORTS"
echo "# crashloop sctpm-client: $ROUNDS rounds, kills 0..$MAX_DELAY ms into the work, seed $SEED"
flush_kills=0 run_kills=0
for round in $(seq "$ROUNDS"); do
    set_client "$(tcti s "${TRS[$((round % 4))]}")"
    start=$(now_ms)
    d1=$(delay_ms) d2=$(delay_ms)
    batch=()
    ((round / 3 % 2)) && batch=(--batch)
    case $((round % 3)) in
    1)
        kind=send
        sender "r$round" $((start + d1)) sometimes
        what="send killed at $d1 ms"
        ;;
    2)
        kind=flush
        n=$((RANDOM % 250 + 50))
        mapfile -t bodies < <(seq -f "r$round-b%g" 1 "$n")
        st=0
        printf '%s\n' "${bodies[@]}" | "${CLIENT[@]}" send --no-flush --lines - >/dev/null 2>"$T/backlog.err" || st=$?
        [ "$st" = 0 ] || hard_error "round $round: queueing a backlog of $n failed ($st): $(cat "$T/backlog.err")"
        record "r$round-backlog" ok "${bodies[@]}"
        start=$(now_ms)
        sender "r$round" $((start + d2)) always &
        spid=$!
        st=0
        until_ms $((start + d1)) "${CLIENT[@]}" flush "${batch[@]}" --timeout 60 \
            >/dev/null 2>>"$T/flush.err" || st=$?
        wait "$spid"
        [ "$st" = 137 ] && flush_kills=$((flush_kills + 1))
        what="backlog $n, flush${batch:+ --batch} $(status_of "$st") at $d1 ms, sender killed at $d2 ms"
        ;;
    0)
        kind=run
        start=$(now_ms)
        sender "r$round" $((start + d2)) always &
        spid=$!
        dropper "r$round" $((start + d1)) &
        dpid=$!
        st=0
        stdin_feed "r$round" | until_ms $((start + d1)) "${CLIENT[@]}" run --watch "$WATCH" --stdin \
            --no-c2d "${batch[@]}" >/dev/null 2>>"$T/run.err" || st=$?
        wait "$spid" "$dpid"
        [ "$st" = 137 ] && run_kills=$((run_kills + 1))
        what="run${batch:+ --batch} $(status_of "$st") at $d1 ms, sender killed at $d2 ms"
        ;;
    esac
    if ! queue_opens; then
        echo "FAIL: round $round ($kind): the queue does not open after the kill: $(cat "$T/queue.err")" >&2
        keep_all "round-$round"
        break
    fi
    queued_now=$(sed -n 's/.* messages=\([0-9]*\) .*/\1/p' "$T/queue.out")
    fresh=
    if ((round % 10 == 0)) && ! new_queue_killed "$round"; then
        keep_all "round-$round"
        break
    fi
    say "round $round/$ROUNDS $kind: $what; $(sends "r$round"); $queued_now queued${fresh:+; $fresh}"
done

# The end: a clean run takes the files left in the watched directory, a clean flush the rest.
set_client "$TC"
watch_empty() { [ -z "$(ls -A "$WATCH")" ]; }
start_daemon final-run "${CLIENT[@]}" run --watch "$WATCH" --no-stdin --no-c2d
# Ready once it says so (a TERM before then would find it starting, not running).
poll "$WAIT_DAEMON" grep -q '^sctpm-client: running as ' "$T/final-run.log" ||
    { keep_all final; fail "the final run did not start: $(tail -n 5 "$T/final-run.log")"; }
poll $((2 * WAIT_DAEMON)) watch_empty || { keep_all final; fail "the files in $WATCH were not taken: $(ls "$WATCH" | head)"; }
st=0
stop_daemon final-run || st=$?
[ "$st" = 0 ] || { keep_all final; fail "the final run exited $st: $(tail -n 5 "$T/final-run.log")"; }
if injected lost; then
    record r0-g1 ok never-sent
fi
if injected duplicate; then
    for i in 2 3; do
        "${CLIENT[@]}" send --no-flush --message-id "injected-$i" sent-twice >/dev/null ||
            hard_error "cannot queue the injected duplicate"
        record "r0-g$i" ok sent-twice
    done
fi
st=0
"${CLIENT[@]}" flush --timeout 120 >/dev/null 2>"$T/final-flush.err" || st=$?
[ "$st" = 0 ] || fail "the final flush exited $st: $(cat "$T/final-flush.err")"

# What arrived, against what was accepted.
hub messages --device "$DEV" | sed 's/.* body=//' | sort >"$T/arrived"
accepted=0 killed=0 partial=0 lost=0
: >"$T/expected"
: >"$T/maybe"
for f in "$REC"/*-g* "$REC"/*-backlog; do
    [ -e "$f" ] || continue
    st=$(head -n 1 "$f")
    if [ "$st" = ok ]; then
        tail -n +2 "$f" >>"$T/expected"
        accepted=$((accepted + $(tail -n +2 "$f" | wc -l)))
    else
        killed=$((killed + 1))
        tail -n +2 "$f" >>"$T/maybe"
        n=$(tail -n +2 "$f" | wc -l)
        got=$(tail -n +2 "$f" | sort | comm -12 - "$T/arrived" | wc -l)
        if [ "$got" != 0 ] && [ "$got" != "$n" ]; then
            echo "FAIL: $(basename "$f") (killed, status $st) delivered $got of its $n messages" >&2
            partial=$((partial + 1))
        fi
    fi
done
for f in "$REC"/*.files; do
    [ -e "$f" ] && grep -v '^$' "$f" >>"$T/expected"
done
n_dropped=$(cat "$REC"/*.files 2>/dev/null | grep -vc '^$')
stdin_lines=0
for f in "$REC"/*.stdin; do
    [ -e "$f" ] || continue
    label=$(basename "$f" .stdin)
    got=$(grep -c "^$label-l[0-9]*\$" "$T/arrived")
    stdin_lines=$((stdin_lines + got))
    # A prefix: lines 1..got, each once (duplicates are counted below).
    if [ "$got" -gt 0 ] && ! seq -f "$label-l%g" 1 "$got" | sort | cmp -s - <(grep "^$label-l[0-9]*\$" "$T/arrived"); then
        echo "FAIL: $label: the $got lines that arrived from run's standard input are not lines 1..$got" >&2
        partial=$((partial + 1))
    fi
    if [ "$got" -gt "$(cat "$f")" ]; then
        echo "FAIL: $label: $got lines arrived from run's standard input, $(cat "$f") were written" >&2
        partial=$((partial + 1))
    fi
    seq -f "$label-l%g" 1 "$got" >>"$T/maybe"
done
sort "$T/expected" >"$T/expected.sorted"
sort "$T/maybe" "$T/expected" >"$T/known.sorted"
comm -23 "$T/expected.sorted" "$T/arrived" >"$T/lost"
uniq -d "$T/arrived" >"$T/duplicates"
sort -u "$T/arrived" | comm -23 - <(sort -u "$T/known.sorted") >"$T/unknown"
lost=$(wc -l <"$T/lost")
dups=$(wc -l <"$T/duplicates")
unknown=$(wc -l <"$T/unknown")
"${CLIENT[@]}" queue >"$T/queue.out" 2>&1 || true
rejected=$(sed -n 's/.* rejected=\([0-9]*\).*/\1/p' "$T/queue.out")
queued_left=$(sed -n 's/.* messages=\([0-9]*\) .*/\1/p' "$T/queue.out")
bad=0
[ "$lost" = 0 ] || { echo "FAIL: $lost accepted messages never arrived, first: $(head -n 3 "$T/lost" | tr '\n' ' ')" >&2; bad=1; }
[ "$dups" = 0 ] || { echo "FAIL: $dups messages arrived more than once, first: $(head -n 3 "$T/duplicates" | tr '\n' ' ')" >&2; bad=1; }
[ "$unknown" = 0 ] || { echo "FAIL: $unknown messages arrived that were never sent, first: $(head -n 3 "$T/unknown" | tr '\n' ' ')" >&2; bad=1; }
[ "$partial" = 0 ] || bad=1
[ "${rejected:-x}" = 0 ] || { echo "FAIL: the hub refused messages (or the queue could not be read): $(cat "$T/queue.out")" >&2; bad=1; }
[ "${queued_left:-x}" = 0 ] || { echo "FAIL: the queue is not empty: $(cat "$T/queue.out")" >&2; bad=1; }
[ "$bad" = 0 ] || keep_all final
echo "crashloop sctpm-client: $round rounds, $accepted messages accepted by send, $n_dropped files dropped," \
    "$stdin_lines lines taken by run; $killed sends, $flush_kills flushes, $run_kills runs killed;" \
    "$(wc -l <"$T/arrived") arrived, $lost lost, $dups duplicated; $FAILURES failures, $SECONDS s"
[ "$FAILURES" = 0 ] && [ "$round" = "$ROUNDS" ] || exit 1
finish_hubs
