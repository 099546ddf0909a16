#!/usr/bin/env bash
# Soak (issue #9): 16 clients of mixed work against one sctpmd (resource manager on) and one
# sctpm-hub for --duration seconds (default 600; SCTPM_SOAK_SECONDS), then:
#   - zero errors: every operation's result is checked (HMACs against OpenSSL, tokens against the
#     provisioned keys, NV contents read back, every message sent arrives at the hub);
#   - every daemon's RSS flat: sampled every 2 s; after the first quarter (warm-up), the maximum
#     of the last half may exceed the maximum of the first half by at most max(512 KiB, 5%);
#   - every daemon back to the descriptors it had before the first client, once they are gone;
#   - no leaked TPM handles: once the clients are gone, sctpmd's resource manager holds no object
#     and no session (its SIGUSR1 status), and no NV index the soak defined is left.
# The clients, four transports in turn (mssim and swtpm, TCP and Unix):
#   4 x hmac      tests/tpm-client: 3 HMAC keys, 40 HMACs checked, a new connection each time,
#                 every other time disconnecting without flushing (the RM must clean up)
#   3 x session   the same under an HMAC authorization session
#   3 x nv        tpm2-tools: define an index, write random bytes, read them back, undefine
#   3 x token     tests/sctpm-lib: 20 SAS tokens from 2 threads on one libsctpm context, checked
#   3 x telemetry sctpm-client send, one message each, through its queue to the hub
# Usage, from a build tree: tests/soak/soak.sh [--duration SECONDS] [--keep DIR]
# (`make soak`, `make soak SOAK_SECONDS=60`). Like the crash loops it runs through
# tests/run-test, which gives it a fresh directory and reaps everything it started.
if [ -z "${SCTPM_TEST_DIR:-}" ]; then
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    : "${top_srcdir:=$here}"
    if [ -z "${top_builddir:-}" ]; then
        top_builddir=$here
        [ -x "$PWD/emulator/sctpmd" ] && top_builddir=$PWD
    fi
    export top_srcdir top_builddir
    exec "$top_srcdir/tests/run-test" "$0" "$@"
fi

DURATION=${SCTPM_SOAK_SECONDS:-600}
KEEP=
while [ $# -gt 0 ]; do
    case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    *) echo "usage: $0 [--duration SECONDS] [--keep DIR]" >&2; exit 99 ;;
    esac
done
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 4 ]] || { echo "--duration: at least 4 seconds" >&2; exit 99; }

. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"
. "$top_srcdir/tests/integration/client-lib.sh"

# The space of a swtpm-dialect client outlives its connection (tcti-swtpm connects for every
# command); two seconds keeps the end-of-soak handle check short.
sctpmd_start tpm --swtpm-space-idle 2
start_hub hub "$T/hub"
SPID=$(daemon_pid tpm) HPID=$(daemon_pid hub)
TCTIS=("$(tcti tpm mssim-unix)" "$(tcti tpm mssim-tcp)" "$(tcti tpm swtpm-unix)" "$(tcti tpm swtpm-tcp)")
for s in 0 1 2; do
    provision "${TCTIS[0]}" "$s" "dev-$s"
done

IDLE_FDS_S=$(ls "/proc/$SPID/fd" | wc -l) IDLE_FDS_H=$(ls "/proc/$HPID/fd" | wc -l)
END=$(($(date +%s) + DURATION))
mkdir -p "$T/w"

# worker NAME KIND INDEX: runs KIND until END; counts ok and failed operations in $T/w/NAME.
worker() {
    local name=$1 kind=$2 idx=$3 ok=0 bad=0 i=0 tc
    while [ "$(date +%s)" -lt "$END" ]; do
        tc=${TCTIS[$(((idx + i) % 4))]}
        if "op_$kind" "$tc" "$idx" "$i" >>"$T/w/$name.log" 2>&1; then
            ok=$((ok + 1))
        else
            bad=$((bad + 1))
            echo "$(date +%T) $name: operation $i on $tc failed" >>"$T/w/$name.log"
        fi
        i=$((i + 1))
    done
    echo "$kind $ok $bad" >"$T/w/$name.count"
}

# Disconnecting without flushing only over mssim: a connection there is the client's whole life,
# and the RM flushes what it owned. tcti-swtpm connects for every command, so its objects live
# in a space shared by the user's swtpm-dialect connections until it is idle (docs/sctpmd.md);
# clients that leak there fill that space's quota, by design.
leaky() { [[ $1 == mssim:* ]] && echo $(($2 % 2)) || echo 0; }
op_hmac() { tpm-client "$1" 40 3 "$(leaky "$1" "$3")" >/dev/null; }
op_session() { tpm-client "$1" 40 2 --session "$(leaky "$1" "$3")" >/dev/null; }
op_nv() {
    local idx; idx=$(printf '0x%08x' $((0x01500200 + $2)))
    head -c 32 /dev/urandom >"$T/w/nv$2.in"
    TPM2TOOLS_TCTI=$1 tpm2_nvdefine -Q "$idx" -C o -s 32 -a "ownerread|ownerwrite|authread|authwrite" &&
        TPM2TOOLS_TCTI=$1 tpm2_nvwrite -Q "$idx" -C o -i "$T/w/nv$2.in" &&
        TPM2TOOLS_TCTI=$1 tpm2_nvread -Q "$idx" -C o -s 32 -o "$T/w/nv$2.out" &&
        cmp -s "$T/w/nv$2.in" "$T/w/nv$2.out" &&
        TPM2TOOLS_TCTI=$1 tpm2_nvundefine -Q "$idx" -C o
}
op_token() { local s=$(($2 % 3)); sctpm-lib "$1" threads "$s" "$(key_of "dev-$s")" 2 20 >/dev/null; }
op_telemetry() {
    local s=$(($2 % 3))
    TC=$1 SLOT=$s QUEUE=$T/w/queue-$2 sc send "soak $2 $3" >/dev/null &&
        echo "$3" >>"$T/w/sent-$s"
}

# tpm-client's optional flags, built from "N", "--session" and a 0/1 no-flush switch.
tpm-client() {
    local args=("$1" "$2" "$3") rest=("${@:4}")
    for a in "${rest[@]}"; do
        case $a in
        1) args+=(--no-flush) ;;
        0) ;;
        *) args+=("$a") ;;
        esac
    done
    command tpm-client "${args[@]}"
}

sample() { # sample PID: "RSS_KIB FDS"
    echo "$(awk '/^VmRSS/{print $2}' "/proc/$1/status") $(ls "/proc/$1/fd" | wc -l)"
}
(
    while [ "$(date +%s)" -lt "$END" ]; do
        echo "$(date +%s) $(sample "$SPID") $(sample "$HPID")" >>"$T/samples"
        sleep 2
    done
) &
sampler=$!

n=0
workers=()
for kind in hmac hmac hmac hmac session session session nv nv nv token token token \
    telemetry telemetry telemetry; do
    worker "c$n-$kind" "$kind" "$n" &
    workers+=($!)
    n=$((n + 1))
done
note "16 clients for $DURATION s"
# Only the workers: a bare `wait` would wait for the daemons too.
wait "${workers[@]}"
kill "$sampler" 2>/dev/null

# Results.
errors=0
printf '%-10s %10s %8s\n' kind ok errors
for kind in hmac session nv token telemetry; do
    ok=$(cat "$T"/w/*-"$kind".count | awk '{s += $2} END {print s + 0}')
    bad=$(cat "$T"/w/*-"$kind".count | awk '{s += $3} END {print s + 0}')
    printf '%-10s %10s %8s\n' "$kind" "$ok" "$bad"
    errors=$((errors + bad))
done
check "16 clients ran ($(cat "$T"/w/*.count | wc -l) counts)" test "$(cat "$T"/w/*.count | wc -l)" = 16
if [ "$errors" != 0 ]; then
    grep -h 'failed' "$T"/w/*.log | head -20
    cat "$T"/w/*.log | grep -v '^ok' | head -40
fi
check "zero errors" test "$errors" = 0
for s in 0 1 2; do
    sent=$(cat "$T/w/sent-$s" 2>/dev/null | wc -l)
    check "dev-$s: the $sent messages sent arrived" poll 60 hub_has "dev-$s" "$sent"
done

# Flatness: columns 2-3 sctpmd RSS and fds, 4-5 the hub's.
flat() { # flat COLUMN NAME KIND
    awk -v c="$1" -v name="$2" -v kind="$3" '
        { v[NR] = $c }
        END {
            w = int(NR / 4); h = w + int((NR - w) / 2)
            for (i = w + 1; i <= NR; i++) { if (i <= h) { if (v[i] > a) a = v[i] } else if (v[i] > b) b = v[i] }
            slack = kind == "rss" ? (a * 0.05 > 512 ? a * 0.05 : 512) : 0
            printf "%s %s: first %s, max %s after warm-up, max %s in the last half (%d samples)\n", name, kind, v[1], a, b, NR
            exit !(NR >= 2 && b <= a + slack)
        }' "$T/samples"
}
check "sctpmd RSS flat" flat 2 sctpmd rss
check "hub RSS flat" flat 4 sctpm-hub rss
# Descriptors: a sample during the run counts the clients' open connections, so the check is
# that each daemon returns to the count it had before the first client, once they are gone.
check "sctpmd is back to its $IDLE_FDS_S descriptors" poll 30 bash -c "[ \$(ls /proc/$SPID/fd | wc -l) = $IDLE_FDS_S ]"
check "the hub is back to its $IDLE_FDS_H descriptors" poll 30 bash -c "[ \$(ls /proc/$HPID/fd | wc -l) = $IDLE_FDS_H ]"

# No leaked handles: ask sctpmd for its resource manager's state until the swtpm-dialect spaces
# have expired.
rm_clean() {
    local before
    before=$(grep -c 'resource manager:' "$T/tpm.log")
    kill -USR1 "$SPID"
    poll 10 bash -c "[ \$(grep -c 'resource manager:' '$T/tpm.log') -gt $before ]" || return 1
    grep 'resource manager:' "$T/tpm.log" | tail -n 1 |
        grep -qE ': 0 object\(s\) held, 0/[0-9]+ object slots and 0/[0-9]+ session slots in use, 0 abandoned'
}
check "no object or session left in sctpmd's resource manager" poll 60 rm_clean
grep 'resource manager:' "$T/tpm.log" | tail -n 1
check "no NV index of the soak left" \
    bash -c "! TPM2TOOLS_TCTI='${TCTIS[0]}' tpm2_getcap handles-nv-index | grep -qi '0x15002'"
check "sctpmd stops cleanly" stop_daemon tpm
check "hub stops cleanly" stop_hub hub
finish
