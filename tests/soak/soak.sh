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
#   2 x telemetry sctpm-client send, one message each, through its queue to the hub
#   1 x stream    one long-running `sctpm-client run --stdin` (tokens renewed every 48 s,
#                 cloud-to-device polls every 5 s) fed a line every 50 ms; a daemon like the
#                 other two, so its RSS and descriptors are sampled and must stay flat too
# Every end check is made and reported even when an earlier one failed; the exit status is 1 if
# any failed. --inject makes, on purpose, the faults the checks exist to find, so that a test can
# show they are found (tests/integration/soak.sh): error (an operation fails), nv (an NV index
# is left defined), handle (a saved session is left in the TPM), fd (a connection to sctpmd is
# held open past the end), rss (sctpmd's sampled RSS grows 256 KiB a sample).
# Usage, from a build tree: tests/soak/soak.sh [--duration SECONDS] [--keep DIR]
# [--inject FAULT[,FAULT...]] (`make soak`, `make soak SOAK_SECONDS=60`). Like the crash loops
# it runs through tests/run-test, which gives it a fresh directory and reaps everything it
# started; --keep DIR copies the logs and samples there at the end.
. "$(dirname "${BASH_SOURCE[0]}")/../by-hand.sh"

DURATION=${SCTPM_SOAK_SECONDS:-600}
KEEP=${SCTPM_SOAK_KEEP:-}
INJECT=,
usage() { echo "usage: $0 [--duration SECONDS] [--keep DIR] [--inject error,nv,handle,fd,rss]" >&2; exit 99; }
while [ $# -gt 0 ]; do
    case $1 in
    --duration) DURATION=${2:-}; shift 2 || usage ;;
    --keep) KEEP=${2:-}; shift 2 || usage ;;
    --inject) INJECT=,${2:-},; shift 2 || usage ;;
    *) usage ;;
    esac
done
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 8 ]] || { echo "--duration: at least 8 seconds, not '$DURATION'" >&2; exit 99; }
# Samples every 2 s, or every second in runs under a minute, so that there are enough.
INTERVAL=2
[ "$DURATION" -lt 60 ] && INTERVAL=1
for f in ${INJECT//,/ }; do
    [[ $f =~ ^(error|nv|handle|fd|rss)$ ]] || { echo "--inject: unknown fault '$f'" >&2; exit 99; }
done
injected() { [[ $INJECT == *",$1,"* ]]; }

. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"
. "$top_srcdir/tests/integration/client-lib.sh"
# How long the daemons get, once the clients are gone, to close what they held.
SETTLE=10
[ "${SCTPM_VALGRIND:-}" = 1 ] && SETTLE=$WAIT_DEFAULT
RSS_TOOL=
[ "${SCTPM_VALGRIND:-}" = 1 ] && RSS_TOOL=memcheck
grep -qa __asan_init "$top_builddir/emulator/sctpmd" && RSS_TOOL=ASan

# The space of a swtpm-dialect client outlives its connection (tcti-swtpm connects for every
# command); two seconds keeps the end-of-soak handle check short.
sctpmd_start tpm --swtpm-space-idle 2
start_hub hub "$T/hub"
SPID=$(daemon_pid tpm) HPID=$(daemon_pid hub)
TCTIS=("$(tcti tpm mssim-unix)" "$(tcti tpm mssim-tcp)" "$(tcti tpm swtpm-unix)" "$(tcti tpm swtpm-tcp)")
for s in 0 1 2; do
    provision "${TCTIS[0]}" "$s" "dev-$s"
done

# The idle baseline is taken once every transport has been used: sctpmd opens one netlink socket
# the first time it must learn a TCP peer's user (swtpm-dialect spaces are per user) and keeps it.
for tc in "${TCTIS[@]}"; do
    check "getrandom over $tc" bash -c "TPM2TOOLS_TCTI='$tc' tpm2_getrandom -Q 8"
done
IDLE_FDS_S=$(ls "/proc/$SPID/fd" | wc -l) IDLE_FDS_H=$(ls "/proc/$HPID/fd" | wc -l)
ls -l "/proc/$SPID/fd" >"$T/sctpmd-fds-idle"
ls -l "/proc/$HPID/fd" >"$T/hub-fds-idle"
END=$(($(date +%s) + DURATION))
mkdir -p "$T/w"
if injected handle; then
    check "a session saved and left (--inject handle)" \
        bash -c "TPM2TOOLS_TCTI='${TCTIS[0]}' tpm2_startauthsession -Q -S '$T/leak.ctx'"
fi
if injected fd; then
    exec 8<>"/dev/tcp/127.0.0.1/${SCTPMD_PORT[tpm]}"
fi

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
op_hmac() {
    # --inject error: the first operation of the first client asks for a TPM that is not there.
    if injected error && [ "$2$3" = 00 ]; then
        tpm-client "mssim:path=$T/no-such.sock" 40 3 0 >/dev/null
        return
    fi
    tpm-client "$1" 40 3 "$(leaky "$1" "$3")" >/dev/null
}
op_session() { tpm-client "$1" 40 2 --session "$(leaky "$1" "$3")" >/dev/null; }
op_nv() {
    local idx; idx=$(printf '0x%08x' $((0x01500200 + $2)))
    head -c 32 /dev/urandom >"$T/w/nv$2.in"
    TPM2TOOLS_TCTI=$1 tpm2_nvdefine -Q "$idx" -C o -s 32 -a "ownerread|ownerwrite|authread|authwrite" &&
        TPM2TOOLS_TCTI=$1 tpm2_nvwrite -Q "$idx" -C o -i "$T/w/nv$2.in" &&
        TPM2TOOLS_TCTI=$1 tpm2_nvread -Q "$idx" -C o -s 32 -o "$T/w/nv$2.out" &&
        cmp -s "$T/w/nv$2.in" "$T/w/nv$2.out" || return 1
    # --inject nv: the first NV client's first index is defined again elsewhere and left.
    if injected nv && [ "$2$3" = 70 ]; then
        TPM2TOOLS_TCTI=$1 tpm2_nvdefine -Q 0x015002ff -C o -s 8 -a "ownerread|ownerwrite" || return 1
    fi
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

# The stream client reads its lines from a FIFO that the stream worker holds open for writing;
# when the worker closes it, the client delivers what is left and exits (--exit-on-eof).
mkfifo "$T/stream"
TC=${TCTIS[0]} SLOT=0 QUEUE=$T/w/queue-stream sc_exec run --stdin --exit-on-eof \
    --token-ttl 60 --poll 5 -q <"$T/stream" >"$T/w/stream.out" 2>"$T/w/stream.err" &
CPID=$!
exec 7>"$T/stream"
worker_stream() {
    local ok=0 i=0
    while [ "$(date +%s)" -lt "$END" ]; do
        echo "soak stream $i" >&7 || break
        echo "stream $i" >>"$T/w/sent-0"
        ok=$((ok + 1)) i=$((i + 1))
        sleep 0.05
    done
    exec 7>&-
    echo "stream $ok 0" >"$T/w/c15-stream.count"
}

sample() { # sample PID: "RSS_KIB FDS"
    echo "$(awk '/^VmRSS/{print $2}' "/proc/$1/status") $(ls "/proc/$1/fd" | wc -l)"
}
(
    while [ "$(date +%s)" -lt "$END" ]; do
        echo "$(date +%s) $(sample "$SPID") $(sample "$HPID") $(sample "$CPID")" >>"$T/samples"
        sleep "$INTERVAL"
    done
) &
sampler=$!

n=0
workers=()
for kind in hmac hmac hmac hmac session session session nv nv nv token token token \
    telemetry telemetry stream; do
    if [ "$kind" = stream ]; then
        worker_stream &
    else
        worker "c$n-$kind" "$kind" "$n" &
    fi
    workers+=($!)
    n=$((n + 1))
done
note "16 clients for $DURATION s"
# Only the workers: a bare `wait` would wait for the daemons too.
wait "${workers[@]}"
exec 7>&-
kill "$sampler" 2>/dev/null
# The end checks are verdicts (tests/integration/lib.sh): each is made and reported, failed or
# not, and finish fails the soak if any failed.

# The stream's lines count once the client has delivered them all and exited cleanly.
crc=0
wait "$CPID" || crc=$?
verdict "the stream client exits 0 at the end of its input" test "$crc" = 0 ||
    { echo "# exit status $crc:"; sed 's/^/# /' "$T/w/stream.err"; }

errors=0
printf '# %-10s %10s %8s\n' kind ok errors
for kind in hmac session nv token telemetry stream; do
    ok=$(cat "$T"/w/*-"$kind".count | awk '{s += $2} END {print s + 0}')
    bad=$(cat "$T"/w/*-"$kind".count | awk '{s += $3} END {print s + 0}')
    printf '# %-10s %10s %8s\n' "$kind" "$ok" "$bad"
    errors=$((errors + bad))
done
verdict "16 clients ran to the end" test "$(cat "$T"/w/*.count | wc -l)" = 16
verdict "zero errors ($errors)" test "$errors" = 0 ||
    grep -h -B3 'failed$' "$T"/w/*.log | head -40 | sed 's/^/# /'
for s in 0 1 2; do
    sent=$(cat "$T/w/sent-$s" 2>/dev/null | wc -l)
    verdict "dev-$s: the $sent messages sent arrived, once each" poll "$WAIT_DEFAULT" hub_has "dev-$s" "$sent"
done

# flat COLUMN NAME KIND: samples are "TIME sctpmd-RSS sctpmd-FDS hub-RSS hub-FDS client-RSS
# client-FDS". After a warm-up (a quarter of the samples, at least two), the maximum of the last
# half may exceed the maximum of the half before it by max(512 KiB, 5%) for RSS, and not at all
# for descriptors. Fewer than six samples cannot show it either way, and fail.
flat() {
    local grow=0
    # Under memcheck or ASan a process's RSS is mostly the tool's (shadow memory, a quarantine
    # of freed blocks that grows to 256 MiB), so only descriptors are judged there.
    if [ -n "$RSS_TOOL" ] && [ "$3" = rss ]; then
        echo "# $2 $3: not judged under $RSS_TOOL"
        return 0
    fi
    # Under memcheck everything runs some 30 times slower: the clients of a short run are still
    # opening their connections when it ends, so there is no steady state to compare with. The
    # descriptors every daemon holds once the clients are gone are still checked below.
    if [ "${SCTPM_VALGRIND:-}" = 1 ] && [ "$DURATION" -lt 120 ]; then
        echo "# $2 $3: not judged under memcheck in a run shorter than 120 s"
        return 0
    fi
    # --inject rss: read sctpmd's RSS as growing 256 KiB a sample.
    injected rss && [ "$1" = 2 ] && grow=256
    awk -v c="$1" -v name="$2" -v kind="$3" -v grow="$grow" '
        { v[NR] = $c + grow * NR }
        END {
            w = int(NR / 4); if (w < 2) w = 2
            h = w + int((NR - w) / 2)
            if (NR < 6) { printf "# %s %s: %d samples are too few to judge\n", name, kind, NR; exit 1 }
            for (i = w + 1; i <= NR; i++) { if (i <= h) { if (v[i] > a) a = v[i] } else if (v[i] > b) b = v[i] }
            slack = kind == "rss" ? (a * 0.05 > 512 ? a * 0.05 : 512) : 0
            printf "# %s %s: first %s, max %s after warm-up, max %s in the last half (%d samples)\n", name, kind, v[1], a, b, NR
            exit !(b <= a + slack)
        }' "$T/samples"
}
verdict "sctpmd RSS flat" flat 2 sctpmd rss
verdict "hub RSS flat" flat 4 sctpm-hub rss
verdict "sctpm-client run RSS flat" flat 6 sctpm-client rss
verdict "sctpm-client run descriptors flat" flat 7 sctpm-client fds

# A daemon's descriptors during the run count its clients' connections; the check is that each
# goes back to what it had idle once they are gone.
# fds_back PID NAME [POOL]: with POOL, beyond the idle descriptors only files matching POOL may
# stay open (the hub keeps a pool of at most 16 database connections, each with the database
# and its WAL open).
extra_fds() {
    ls -l "/proc/$1/fd" | awk '{print $NF}' | sort >"$T/$2-fds-now"
    awk '{print $NF}' "$T/$2-fds-idle" | sort | comm -13 - "$T/$2-fds-now"
}
only_pool() {
    local x
    x=$(extra_fds "$1" "$2")
    [ -z "$x" ] && return 0
    [ -n "${3:-}" ] && ! grep -vqE "$3" <<<"$x" && [ "$(grep -c . <<<"$x")" -le 32 ]
}
fds_back() {
    poll "$SETTLE" only_pool "$@" && return 0
    echo "# $2 has open beyond its idle descriptors:"
    extra_fds "$1" "$2" | sed 's/^/#   /'
    return 1
}
injected fd && note "holding a connection to sctpmd open (--inject fd)"
verdict "sctpmd is back to its $IDLE_FDS_S idle descriptors" fds_back "$SPID" sctpmd
exec 8>&-
verdict "the hub is back to its $IDLE_FDS_H idle descriptors and its database pool" \
    fds_back "$HPID" hub '/hub\.db(-wal|-shm)?$'

# No leaked handles: sctpmd's resource manager holds nothing once the swtpm-dialect spaces
# have expired (2 s), asked through its SIGUSR1 status line.
rm_clean() {
    local before
    before=$(grep -c 'resource manager:' "$T/tpm.log")
    kill -USR1 "$SPID"
    poll 10 bash -c "[ \$(grep -c 'resource manager:' '$T/tpm.log') -gt $before ]" || return 1
    grep 'resource manager:' "$T/tpm.log" | tail -n 1 |
        grep -qE ': 0 object\(s\) held, 0/[0-9]+ object slots and 0/[0-9]+ session slots in use, 0 abandoned'
}
verdict "no object or session left in sctpmd's resource manager" poll "$SETTLE" rm_clean
grep 'resource manager:' "$T/tpm.log" | tail -n 1 | sed 's/^/# /'
no_soak_nv() {
    local l
    l=$(TPM2TOOLS_TCTI=${TCTIS[0]} tpm2_getcap handles-nv-index) || return 1
    l=$(grep -i '0x15002' <<<"$l") || return 0
    sed 's/^/# left: /' <<<"$l"
    return 1
}
verdict "no NV index of the soak left" no_soak_nv
verdict "sctpmd stops cleanly" stop_daemon tpm
verdict "hub stops cleanly" stop_hub hub
if [ -n "$KEEP" ]; then
    mkdir -p "$KEEP" && cp -r "$T"/*.log "$T/samples" "$T/w" "$KEEP/" && note "logs and samples in $KEEP"
fi
finish
