#!/usr/bin/env bash
# sctpm-client run: files dropped into --watch DIR become messages (with ids derived from the
# file) and are removed once queued; files that cannot be messages are set aside, not lost;
# standard input and a directory together; cloud-to-device messages are printed once each and
# completed, and a redelivered id is completed without printing, also after a restart of run.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"
. "$top_srcdir/tests/integration/client-lib.sh"

sctpmd_start s
start_hub hub "$T/hub"
TC=$(tcti s swtpm-unix)
provision "$TC" 0 dev-run
D=$T/drop
mkdir -p "$D"

# start_run NAME ARGS...: run in the background with stdin from $T/NAME.in (a FIFO kept open on
# fd 7), output in $T/NAME.out and $T/NAME.err.
start_run() {
    local name=$1
    shift
    rm -f "$T/$name.in"
    mkfifo "$T/$name.in"
    sc_exec run "$@" <"$T/$name.in" >"$T/$name.out" 2>"$T/$name.err" &
    RUN_PID=$!
    echo "$RUN_PID" >"$T/$name.pid"
    exec 7>"$T/$name.in"
}
stop_run() {
    exec 7>&-
    kill -TERM "$RUN_PID"
    rc=0
    wait "$RUN_PID" || rc=$?
    rm -f "$T/$1.pid"
}
stored_body() { hub messages --device dev-run | grep -q " body=$1$"; }
printed() { [ "$(grep -c "^c2d id=$2 " "$T/$1.out")" = "${3:-1}" ]; }
completed() { [ "$(hub c2d list dev-run | grep -c "state=completed .* id=$1 ")" = "${2:-1}" ]; }

printf 'was here first' >"$D/f0"
start_run watch --watch "$D" --stdin --poll 0.2
check "a file present at start is sent" poll 30 stored_body 'was here first'
printf 'file one' >"$D/.f1.tmp" && mv "$D/.f1.tmp" "$D/f1"
printf 'file two' >"$D/f2"
printf 'file two' >"$D/f2-copy"
mkdir "$D/subdir"
head -c 300000 /dev/zero >"$D/huge"
echo 'from stdin' >&7
check "a file renamed into the directory is sent" poll 30 stored_body 'file one'
check "a file written in place is sent" poll 30 stored_body 'file two'
check "the same content under another name is another message" poll 30 \
    bash -c "[ \$(sctpm-hub --data '$HUB_DIR' messages --device dev-run | grep -c ' body=file two$') = 2 ]"
check "standard input is read too" poll 30 stored_body 'from stdin'
check "sent files are removed" poll 10 bash -c "! ls '$D' | grep -q '^f'"
check "a file over 256 KiB is set aside, not lost" poll 10 test -s "$D/.rejected.huge"
check "... and reported" said "$T/watch.err" "$D/huge is larger than 256 KiB: renamed to .rejected.huge"
check "a directory is left alone" test -d "$D/subdir"
# A file written in two steps while other files come and go: taken whole, when its writer closes
# it (the pause is the scenario: the writer is slow).
{
    printf 'first half, '
    printf 'x' >"$D/meanwhile"
    sleep 1
    printf 'second half'
} >"$D/slow"
check "a file written slowly is taken whole" poll 30 stored_body 'first half, second half'
check "... and only whole" bash -c "! sctpm-hub --data '$HUB_DIR' messages --device dev-run | grep -q ' body=first half, $'"
check "file messages have derived ids (version 8)" bash -c \
    "sctpm-hub --data '$HUB_DIR' messages --device dev-run | grep ' body=file one$' | grep -Eq ' id=[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-'"
check "run printed a 'sent' line per message" poll 10 bash -c "[ \$(grep -c '^sent ' '$T/watch.out') = 7 ]"

# Cloud to device: printed once each, completed.
for m in m1 m2 m3; do
    hub c2d send dev-run "body of $m" --message-id "$m" --property n="$m" >/dev/null || fail "c2d send"
done
check "three C2D messages printed" poll 30 bash -c "[ \$(grep -c '^c2d ' '$T/watch.out') = 3 ]"
check "... as lines with their properties" said "$T/watch.out" '^c2d id=m2 lock=[^ ]+ delivery=1 props=\{"n":"m2"\} body=body of m2$'
check "... and completed" poll 10 completed m3
# The same id again (a redelivery, as after a lost completion): completed, not printed.
hub c2d send dev-run 'm1 again' --message-id m1 >/dev/null || fail "c2d send"
hub c2d send dev-run 'fourth' --message-id m4 >/dev/null || fail "c2d send"
check "a new message after it is printed" poll 30 printed watch m4
check "the repeated id was not printed again" printed watch m1 1
check "... but completed" poll 10 completed m1 2
stop_run watch
check "run stops on SIGTERM with exit 0" exits 0

# After a restart the record of printed ids is still there.
start_run again --no-stdin --poll 0.2
hub c2d send dev-run 'm2 again' --message-id m2 >/dev/null || fail "c2d send"
hub c2d send dev-run 'fifth' --message-id m5 >/dev/null || fail "c2d send"
check "after a restart: a new message is printed" poll 30 printed again m5
check "... an id printed before the restart is not" printed again m2 0
check "... but completed" poll 10 completed m2 2
stop_run again

finish_hubs
