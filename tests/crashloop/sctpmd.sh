#!/usr/bin/env bash
# Crash loop for sctpmd (issue #9): N rounds (default 200) of an NV-write-heavy workload killed
# with SIGKILL at a random moment. After each kill the daemon is started again on the same state,
# and a round passes when
#   - the state loads: the daemon starts and answers;
#   - every NV write a client saw acknowledged is there: each index holds the last acknowledged
#     value, or the value of the one write that was in flight (an orderly counter, kept in RAM,
#     holds at least the last acknowledged value).
#
# The workload is tests/nv-crash: five writers at once, one per NV index (an ordinary index
# rewritten whole, one rewritten in 256-byte chunks, a counter, an orderly counter, a SHA-256
# extend index), each through tpm2-tss ESAPI over a different transport (mssim and swtpm
# protocols over TCP and Unix sockets, rotating each round). Before every command a writer
# records, as a file renamed into place, what the TPM last acknowledged and what the command will
# leave. The kill comes 0..--max-delay ms after every writer is under way; in every fifth round
# a SIGTERM comes first and the SIGKILL 0..10 ms later (cutting the orderly shutdown short, or
# not), and now and then (rounds 3, 10, 17...) the restart is killed as well, 0..40 ms in.
# Every tenth round (9, 19...) also kills the first start of a new state (which manufactures the
# TPM) 0..--max-delay/2 ms in: the next start must bring up a whole TPM (SRK, EKs, certificates).
#
# Two states take turns, one plain and one encrypted with --key-file, and each state's daemon
# alternates --fsync always and never every other round. After the last round both daemons are
# stopped with SIGTERM and must exit cleanly. Options: see tests/crashloop/lib.sh; the faults
# --inject makes, to show that the loop reports them: rollback (round 1's kill is followed by
# putting back the state from before the round, once a write was acknowledged) and corrupt (a
# byte of the state changed after round 2's kill).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$top_srcdir/tests/integration/lib.sh"

STATES="plain enc"
NINDEX=5
head -c 32 /dev/urandom >"$T/enc.key"

# fsync_for ROUND: the --fsync mode a state's daemon runs with in ROUND (rounds of one state are
# two apart, so every state sees both modes).
fsync_for() { if (((($1 - 1) / 2) % 2 == 0)); then echo always; else echo never; fi; }

# state_for ROUND: plain in odd rounds, enc in even ones.
state_for() { if (($1 % 2 == 1)); then echo plain; else echo enc; fi; }

# up STATE FSYNC: starts STATE's daemon and waits until it listens; returns 1 when it exits or
# does not listen within $WAIT_DAEMON s (the state did not load).
up() {
    local s=$1 port=${SCTPMD_PORT[$1]:-$(free_port 2)} key=()
    SCTPMD_PORT[$s]=$port
    [ "$s" = enc ] && key=(--key-file "$T/enc.key")
    start_daemon "$s" sctpmd --state "$T/$s.state" --port "$port" --unix "$T/$s.sock" \
        --foreground --fsync "$2" "${key[@]}"
    # The TCP control port opens last; the Unix sockets of a killed daemon are still on disk.
    poll "$WAIT_DAEMON" listening_or_gone "$s" && port_open $((port + 1))
}
# up_and_killed STATE FSYNC MS: starts STATE's daemon and kills it MS ms later, ready or not.
up_and_killed() {
    local key=()
    [ "$1" = enc ] && key=(--key-file "$T/enc.key")
    start_daemon "$1" sctpmd --state "$T/$1.state" --port "${SCTPMD_PORT[$1]}" --unix "$T/$1.sock" \
        --foreground --fsync "$2" "${key[@]}"
    sleep "$(secs "$3")"
    stop_daemon "$1" KILL || true
}
listening_or_gone() { port_open $((SCTPMD_PORT[$1] + 1)) || ! kill -0 "$(daemon_pid "$1")" 2>/dev/null; }

# manufactured: the new TPM is whole: the SRK and both EKs are persistent, with both EK
# certificates in NV.
manufactured() {
    local tc h persistent nv
    tc=$(tcti fresh mssim-tcp)
    # Whole outputs first: grep -q stops reading early, and pipefail would count that.
    persistent=$(TPM2TOOLS_TCTI=$tc tpm2_getcap handles-persistent) || return 1
    nv=$(TPM2TOOLS_TCTI=$tc tpm2_getcap handles-nv-index) || return 1
    for h in 0x81000001 0x81010001 0x81010002; do
        grep -qix -- "- $h" <<<"$persistent" || { echo "no persistent handle $h" >&2; return 1; }
    done
    for h in 0x1c00002 0x1c0000a; do
        grep -qix -- "- $h" <<<"$nv" || { echo "no NV index $h" >&2; return 1; }
    done
}

# first_start_killed ROUND: a new state's first start (the TPM is manufactured: seeds, EKs,
# certificates, SRK) killed 0..--max-delay/2 ms in; the next start must bring up a whole TPM.
# Sets $how_fresh; returns 1 on a failure (reported, evidence kept).
first_start_killed() {
    local ms=$((RANDOM % (MAX_DELAY / 2 + 1))) fs port=${SCTPMD_PORT[fresh]:-$(free_port 2)}
    fs=$(fsync_for "$1")
    SCTPMD_PORT[fresh]=$port
    rm -rf "$T/fresh.state" "$T/fresh.log"
    start_daemon fresh sctpmd --state "$T/fresh.state" --port "$port" --unix "$T/fresh.sock" \
        --foreground --fsync "$fs"
    sleep "$(secs "$ms")"
    stop_daemon fresh KILL || true
    how_fresh="a new state's first start killed at $ms ms"
    [ -e "$T/fresh.state/.manufacturing" ] && how_fresh="$how_fresh, mid-manufacture"
    if ! up fresh "$fs" || ! manufactured; then
        echo "FAIL: round $1: after its first start was killed at $ms ms, a new state does not start whole" >&2
        show_log fresh >&2
        evidence "round-$1-fresh" "$T/fresh.state" "$T/fresh.log"
        stop_daemon fresh KILL || true
        return 1
    fi
    if ! stop_daemon fresh; then
        echo "FAIL: round $1: the new state's daemon did not stop cleanly" >&2
        show_log fresh >&2
        evidence "round-$1-fresh" "$T/fresh.state" "$T/fresh.log"
        return 1
    fi
    fresh_kills=$((fresh_kills + 1))
}

# transport ROUND I: the transport of writer I (or, with I=check, the checker) in ROUND.
transport() {
    local t i=$2
    read -ra t <<<"$TRANSPORTS"
    [ "$i" = check ] && i=$NINDEX
    echo "${t[$((($1 + i) % 4))]}"
}

# keep_round LABEL STATE: the evidence of a failed round of STATE.
keep_round() {
    evidence "$1" "$T/$2.state" "$T/$2.ack" "$T/$2.ack.before-check" "$T/$2.log" "$T"/w[0-9].* "$T/check.out" "$T/check.err"
}

# Both states: a first start, the indices defined and written once (acknowledged, recorded).
for s in $STATES; do
    first_round=1
    [ "$s" = enc ] && first_round=2
    up "$s" "$(fsync_for "$first_round")" || { show_log "$s"; hard_error "sctpmd $s did not start"; }
    mkdir -p "$T/$s.ack"
    $(wrap nv-crash) nv-crash define "$(tcti "$s" mssim-tcp)" "$T/$s.ack" >"$T/define.out" 2>&1 ||
        { cat "$T/define.out"; show_log "$s"; hard_error "cannot define the NV indices on $s"; }
done

echo "# crashloop sctpmd: $ROUNDS rounds, kills 0..$MAX_DELAY ms into the work, seed $SEED"
total=0 inflight=0 fresh_kills=0
for round in $(seq "$ROUNDS"); do
    s=$(state_for "$round")
    rm -f "$T"/w[0-9].*
    if injected rollback && [ "$round" = 1 ]; then
        rm -rf "$T/rollback.state"
        cp -a "$T/$s.state" "$T/rollback.state"
        first=$(cut -d' ' -f1 "$T/$s.ack/01500100")
    fi
    pids=()
    for ((i = 0; i < NINDEX; i++)); do
        $(wrap nv-crash) nv-crash write "$(tcti "$s" "$(transport "$round" "$i")")" "$T/$s.ack" \
            "$(printf '%08x' $((0x01500100 + i)))" "$T/w$i.ready" >"$T/w$i.out" 2>"$T/w$i.err" &
        pids+=($!)
    done
    all_ready() { local i; for ((i = 0; i < NINDEX; i++)); do [ -e "$T/w$i.ready" ] || return 1; done; }
    if ! poll "$WAIT_DAEMON" all_ready; then
        echo "FAIL: round $round ($s): the writers did not get under way" >&2
        tail -n 3 "$T"/w[0-9].err >&2
        keep_round "round-$round" "$s"
        break
    fi
    if injected rollback && [ "$round" = 1 ]; then
        acked_one() { [ "$(cut -d' ' -f1 "$T/$s.ack/01500100")" != "$first" ]; }
        poll "$WAIT_DAEMON" acked_one
    fi
    d=$(delay_ms)
    sleep "$(secs "$d")"
    how="killed at $d ms"
    if ((round % 5 == 0)); then
        # Every fifth round: SIGTERM first, so the kill may cut the orderly shutdown short.
        pause=$((RANDOM % 11))
        kill -TERM "$(daemon_pid "$s")"
        sleep "$(secs "$pause")"
        how="TERM at $d ms, KILL $pause ms later"
    fi
    st=0
    stop_daemon "$s" KILL || st=$?
    [ "$st" = 0 ] && how="TERM at $d ms, stopped"
    # A writer stops at its first failed command; the kill closed every connection.
    all_gone() { local p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
    if ! poll "$WAIT_DAEMON" all_gone; then
        echo "FAIL: round $round ($s): a writer is still running $WAIT_DAEMON s after the kill" >&2
        keep_round "round-$round" "$s"
        break
    fi
    acked=0 bad=0
    for ((i = 0; i < NINDEX; i++)); do
        st=0
        wait "${pids[$i]}" || st=$?
        n=$(sed -n 's/^acked \([0-9]*\)$/\1/p' "$T/w$i.out")
        acked=$((acked + ${n:-0}))
        if [ "$st" = 3 ]; then
            # Not a crash: the TPM answered a command with an error.
            echo "FAIL: round $round ($s): writer $i: $(tail -n 1 "$T/w$i.err")" >&2
            bad=1
        elif [ "$st" != 0 ]; then
            echo "FAIL: round $round ($s): writer $i exited $st: $(tail -n 1 "$T/w$i.err")" >&2
            bad=1
        fi
    done
    total=$((total + acked))
    if injected rollback && [ "$round" = 1 ]; then
        cp "$T/rollback.state/tpm2-permall" "$T/$s.state/tpm2-permall"
    fi
    if injected corrupt && [ "$round" = 2 ]; then
        printf '\377' | dd of="$T/$s.state/tpm2-permall" bs=1 seek=100 conv=notrunc status=none
    fi
    next=$(fsync_for $((round + 2)))
    if ((round % 7 == 3)); then
        # Now and then the restart is killed too, while it starts (TPM2_Startup writes NV).
        pause=$((RANDOM % 41))
        up_and_killed "$s" "$next" "$pause"
        how="$how, restart killed at $pause ms"
    fi
    if ! up "$s" "$next"; then
        echo "FAIL: round $round ($s): the state does not load after the kill" >&2
        show_log "$s" >&2
        keep_round "round-$round" "$s"
        stop_daemon "$s" KILL || true
        break
    fi
    # The check rewrites the ack files with what it finds; the evidence keeps them as they were.
    rm -rf "$T/$s.ack.before-check"
    cp -a "$T/$s.ack" "$T/$s.ack.before-check"
    if ! $(wrap nv-crash) nv-crash check "$(tcti "$s" "$(transport "$round" check)")" "$T/$s.ack" \
        >"$T/check.out" 2>"$T/check.err"; then
        echo "FAIL: round $round ($s): an acknowledged write is missing" >&2
        cat "$T/check.err" >&2
        bad=1
    fi
    landed=$(grep -c 'in flight$' "$T/check.out")
    inflight=$((inflight + landed))
    if [ "$bad" = 1 ]; then
        keep_round "round-$round" "$s"
    fi
    how_fresh=
    if ((round % 10 == 9)); then
        first_start_killed "$round" || bad=1
    fi
    say "round $round/$ROUNDS $s fsync=$(fsync_for "$round"): $how, $acked writes acknowledged, $landed in flight landed${how_fresh:+; $how_fresh}: $([ "$bad" = 1 ] && echo FAILED || echo ok)"
done

# Both daemons are running (restarted after their last kill): an orderly stop saves and exits 0.
for s in $STATES; do
    [ -n "${DAEMON_PID[$s]:-}" ] || continue
    if ! stop_daemon "$s"; then
        echo "FAIL: sctpmd $s did not stop cleanly" >&2
        show_log "$s" >&2
        keep_round "stop-$s" "$s"
    fi
done
echo "crashloop sctpmd: $round rounds, $total writes acknowledged, $inflight in-flight writes landed," \
    "$fresh_kills first starts killed; $FAILURES failures, $SECONDS s"
[ "$FAILURES" = 0 ] && [ "$round" = "$ROUNDS" ]
