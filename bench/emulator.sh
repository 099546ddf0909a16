#!/usr/bin/env bash
# Benchmark: sctpmd against swtpm, measured in the same run (run by hand on a quiet machine).
#   bench/emulator.sh [N] [ROUNDS]     N operations per measurement (default 5000), ROUNDS (3)
#   SCTPMD_FLAGS="--busy-poll-us 20" bench/emulator.sh    to measure sctpmd with other options
# Prints, for one ESAPI client: TPM2_HMAC and GetRandom rate, HMAC p50/p99, for sctpmd over
# mssim (TCP, Unix), over tcti-swtpm, and over one persistent raw connection, against swtpm over
# tcti-swtpm and one persistent raw connection; first-start manufacture time against
# `swtpm_setup --create-ek-cert`; idle and loaded RSS. Each figure is the median of ROUNDS runs
# taken alternately. Both TPMs run without fsync (swtpm 0.7 has none).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-5000}
ROUNDS=${2:-3}
B=$top/bench/tpmbench
D=$top/emulator/sctpmd
. "$top/bench/lib.sh"
[ -x "$B" ] && [ -x "$D" ] || { echo "build first: make (bench/tpmbench, emulator/sctpmd)" >&2; exit 1; }
command -v swtpm >/dev/null || { echo "swtpm missing: scripts/install-deps" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/sctpm-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
freeport() { "$top/tests/freeport" 2 2>/dev/null || python3 -c 'import random; print(random.randrange(20000, 30000, 2))'; }
waitport() { for _ in $(seq 1000); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.01; done; return 1; }
rss() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
# The private part of RSS: anonymous memory (heap, stacks, data). The rest of RSS is pages of
# shared libraries, counted in full for every process that maps them.
anon() { awk '/^RssAnon/{print $2}' "/proc/$1/status"; }
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

[ -x "$top/tests/freeport" ] || make -s -C "$top" tests/freeport
SP=$(freeport); WP=$(freeport)
# shellcheck disable=SC2086 # SCTPMD_FLAGS: extra sctpmd options to compare, e.g. --busy-poll-us 20
"$D" --state "$W/s" --port "$SP" --unix "$W/s.sock" --fsync never --log warning ${SCTPMD_FLAGS:-} &
pids+=($!); spid=$!
# swtpm refuses a state directory that does not exist yet.
mkdir -p "$W/w"
swtpm socket --tpm2 --tpmstate dir="$W/w" --server type=tcp,port="$WP" --ctrl type=tcp,port=$((WP + 1)) \
    --flags not-need-init,startup-clear 2>"$W/swtpm.err" &
pids+=($!); wpid=$!
waitport $((SP + 1)) || { echo "sctpmd did not start on port $SP" >&2; exit 1; }
waitport "$WP" || { echo "swtpm did not start on port $WP: $(cat "$W/swtpm.err")" >&2; exit 1; }
idle_s=$(rss "$spid"); idle_w=$(rss "$wpid")
# The ceiling: a relay in front of sctpmd that answers repeated HMACs from a cache, so no TPM
# work at all is done for them (bench/replaytpm.c). Started after the RSS reading above.
"$top/bench/replaytpm" "$W/s.sock" "$W/r.sock" >"$W/replay.out" 2>"$W/replay.err" &
pids+=($!)
for _ in $(seq 500); do grep -q ready "$W/replay.out" 2>/dev/null && break; sleep 0.01; done
grep -q ready "$W/replay.out" || { echo "replaytpm did not start: $(cat "$W/replay.err")" >&2; exit 1; }
idle_as=$(anon "$spid"); idle_aw=$(anon "$wpid")

declare -A T=(
    [sctpmd-mssim-unix]="mssim:path=$W/s.sock"
    [sctpmd-mssim-tcp]="mssim:host=127.0.0.1,port=$SP"
    [sctpmd-tcti-swtpm]="swtpm:host=127.0.0.1,port=$SP"
    [sctpmd-raw-persistent]="raw:$SP"
    [swtpm-tcti-swtpm]="swtpm:host=127.0.0.1,port=$WP"
    [swtpm-raw-persistent]="raw:$WP"
    [no-tpm-work-mssim-unix]="mssim:path=$W/r.sock"
)
order="sctpmd-mssim-unix sctpmd-mssim-tcp sctpmd-tcti-swtpm sctpmd-raw-persistent swtpm-tcti-swtpm swtpm-raw-persistent no-tpm-work-mssim-unix"
for r in $(seq "$ROUNDS"); do
    for k in $order; do
        # tcti-swtpm opens a TCP connection per command: many rounds can run out of ephemeral
        # ports (TIME_WAIT), so say which run failed instead of ending silently.
        "$B" "${T[$k]}" "$N" >>"$W/$k.out" || { echo "tpmbench failed on $k (${T[$k]})" >&2; exit 1; }
    done
done
loaded_s=$(rss "$spid"); loaded_w=$(rss "$wpid")
loaded_as=$(anon "$spid"); loaded_aw=$(anon "$wpid")

get() { field "$2" <"$W/$1.out" | median; }
printf '\n%-26s %12s %10s %10s %12s\n' "one ESAPI client" "HMAC/s" "p50 us" "p99 us" "GetRandom/s"
for k in $order; do
    printf '%-26s %12s %10s %10s %12s\n' "$k" "$(get "$k" hmac_ops_per_s)" "$(get "$k" hmac_p50_us)" \
        "$(get "$k" hmac_p99_us)" "$(get "$k" getrandom_ops_per_s)"
done
ratio() { python3 -c "print(f'{$1/$2:.2f}x')"; }
base=$(get swtpm-tcti-swtpm hmac_ops_per_s)
echo
echo "HMAC rate relative to swtpm via tcti-swtpm ($base/s):"
for k in sctpmd-mssim-unix sctpmd-mssim-tcp sctpmd-tcti-swtpm sctpmd-raw-persistent; do
    printf '  %-24s %s\n' "$k" "$(ratio "$(get "$k" hmac_ops_per_s)" "$base")"
done
printf '  %-24s %s  (both on one persistent raw connection)\n' "sctpmd vs swtpm raw" \
    "$(ratio "$(get sctpmd-raw-persistent hmac_ops_per_s)" "$(get swtpm-raw-persistent hmac_ops_per_s)")"
# The issue's goals: 5x over a Unix socket; TCP is held to 2x (a loopback TCP round trip costs
# more than the whole HMAC inside libtpms).
sw="swtpm, tcti-swtpm"
bench_row 4 "HMAC rate, sctpmd mssim Unix" "$(get sctpmd-mssim-unix hmac_ops_per_s)" "$sw" "$base" higher 5 ops/s
bench_row 4 "HMAC rate, sctpmd mssim TCP" "$(get sctpmd-mssim-tcp hmac_ops_per_s)" "$sw" "$base" higher 2 ops/s
bench_row 4 "HMAC rate, sctpmd tcti-swtpm TCP" "$(get sctpmd-tcti-swtpm hmac_ops_per_s)" "$sw" "$base" higher - ops/s
bench_row 4 "HMAC rate, one raw persistent connection" "$(get sctpmd-raw-persistent hmac_ops_per_s)" \
    "swtpm, raw persistent" "$(get swtpm-raw-persistent hmac_ops_per_s)" higher - ops/s
bench_row 4 "HMAC p50, sctpmd mssim Unix" "$(get sctpmd-mssim-unix hmac_p50_us)" "$sw" \
    "$(get swtpm-tcti-swtpm hmac_p50_us)" lower - us
bench_row 4 "HMAC p99, sctpmd mssim Unix" "$(get sctpmd-mssim-unix hmac_p99_us)" "$sw" \
    "$(get swtpm-tcti-swtpm hmac_p99_us)" lower - us
bench_row 4 "GetRandom rate, sctpmd mssim Unix" "$(get sctpmd-mssim-unix getrandom_ops_per_s)" "$sw" \
    "$(get swtpm-tcti-swtpm getrandom_ops_per_s)" higher - ops/s
# What the client itself allows: its own CPU time per HMAC (ESAPI, tcti-mssim's eight socket
# calls a command, and the kernel's side of them) bounds the rate any TPM could reach with it.
cpu=$(get sctpmd-mssim-unix hmac_client_cpu_us)
ceiling=$(python3 -c "print(f'{1e6/$cpu:.0f}')")
echo
echo "the ESAPI client's own CPU time per HMAC over tcti-mssim Unix: $cpu us, so no TPM can serve it"
echo "more than $ceiling HMAC/s: $(ratio "$ceiling" "$base") swtpm's tcti-swtpm rate (the goal is 5x)"
bench_row 4 "HMAC ceiling set by the client's CPU, mssim Unix" "$ceiling" "$sw" "$base" higher - ops/s
# What the client and the kernel allow together: the same client through a server that does no TPM
# work (cached answers). Its own CPU time plus waking it for every response bound any server.
none=$(get no-tpm-work-mssim-unix hmac_ops_per_s)
echo "through a server that does no TPM work at all (bench/replaytpm, answers from a cache) the same"
echo "client reaches $none HMAC/s: $(ratio "$none" "$base") swtpm's tcti-swtpm rate; sctpmd reaches" \
    "$(ratio "$(get sctpmd-mssim-unix hmac_ops_per_s)" "$none") of it"
bench_row 4 "HMAC rate, a server doing no TPM work, mssim Unix" "$none" "$sw" "$base" higher - ops/s

# First-start manufacture: sctpmd from exec to listening on a fresh state, against swtpm_setup.
for i in $(seq "$ROUNDS"); do
    p=$(freeport)
    t0=$(date +%s%N)
    "$D" --state "$W/m$i" --port "$p" --fsync never --log warning &
    m=$!
    waitport $((p + 1)) || { echo "sctpmd did not start on a fresh state ($W/m$i)" >&2; exit 1; }
    echo $(( ($(date +%s%N) - t0) / 1000000 )) >>"$W/mfg_s"
    kill "$m"; wait "$m" 2>/dev/null || true
done
export XDG_CONFIG_HOME=$W/xdg
mkdir -p "$XDG_CONFIG_HOME"
swtpm_setup --create-config-files overwrite,root >/dev/null 2>&1 || swtpm_setup --create-config-files overwrite >/dev/null 2>&1 || true
for i in $(seq "$ROUNDS"); do
    mkdir -p "$W/ws$i"
    t0=$(date +%s%N)
    if swtpm_setup --tpm2 --tpmstate "$W/ws$i" --create-ek-cert --overwrite >"$W/setup.log" 2>&1; then
        echo $(( ($(date +%s%N) - t0) / 1000000 )) >>"$W/mfg_w"
    fi
done
echo
ms=$(median <"$W/mfg_s")
if [ -s "$W/mfg_w" ]; then
    mw=$(median <"$W/mfg_w")
    echo "first start with EK certificates: sctpmd ${ms} ms, swtpm_setup --create-ek-cert ${mw} ms: $(ratio "$mw" "$ms") faster"
    bench_row 4 "first start with EK certificates" "$ms" "swtpm_setup --create-ek-cert" "$mw" lower 5 ms
else
    echo "first start: sctpmd ${ms} ms; swtpm_setup --create-ek-cert failed here (see below)"
    tail -3 "$W/setup.log"
fi

# Idle RSS on a restart, the steady state of a device: sctpmd on a state it made above, swtpm on
# one swtpm_setup made, both with EK certificates (a TPM's first start costs each of them more).
rs=""
if [ -s "$W/mfg_w" ]; then
    p=$(freeport); q=$(freeport)
    "$D" --state "$W/m1" --port "$p" --fsync never --log warning &
    r1=$!
    swtpm socket --tpm2 --tpmstate dir="$W/ws1" --server type=tcp,port="$q" \
        --ctrl type=tcp,port=$((q + 1)) --flags not-need-init,startup-clear 2>/dev/null &
    r2=$!
    pids+=("$r1" "$r2")
    waitport $((p + 1)) || { echo "sctpmd did not restart on $W/m1" >&2; exit 1; }
    waitport "$q" || { echo "swtpm did not start on $W/ws1" >&2; exit 1; }
    rs=$(rss "$r1"); rw=$(rss "$r2"); ras=$(anon "$r1"); raw=$(anon "$r2")
    kill "$r1" "$r2"; wait "$r1" "$r2" 2>/dev/null || true
fi
echo
echo "RSS (KiB)      sctpmd    swtpm   ratio"
printf 'idle        %8s %8s   %s\n' "$idle_s" "$idle_w" "$(ratio "$idle_s" "$idle_w")"
printf 'after load  %8s %8s   %s\n' "$loaded_s" "$loaded_w" "$(ratio "$loaded_s" "$loaded_w")"
printf 'of which anonymous (private):\n'
printf 'idle        %8s %8s   %s\n' "$idle_as" "$idle_aw" "$(ratio "$idle_as" "$idle_aw")"
printf 'after load  %8s %8s   %s\n' "$loaded_as" "$loaded_aw" "$(ratio "$loaded_as" "$loaded_aw")"
if [ -n "$rs" ]; then
    printf 'restart on a state with EK certificates, idle:\n'
    printf 'RSS         %8s %8s   %s\n' "$rs" "$rw" "$(ratio "$rs" "$rw")"
    printf 'anonymous   %8s %8s   %s\n' "$ras" "$raw" "$(ratio "$ras" "$raw")"
fi
bench_row 4 "RSS idle (first start)" "$idle_s" swtpm "$idle_w" lower 1 KiB
bench_row 4 "RSS after the load above" "$loaded_s" swtpm "$loaded_w" lower 1 KiB
bench_row 4 "RSS anonymous (private) idle" "$idle_as" swtpm "$idle_aw" lower - KiB
bench_row 4 "RSS anonymous (private) after the load" "$loaded_as" swtpm "$loaded_aw" lower - KiB
if [ -n "$rs" ]; then
    bench_row 4 "RSS idle, restart with EK certs" "$rs" "swtpm, state of swtpm_setup" "$rw" lower 1 KiB
    bench_row 4 "RSS anonymous, restart with EK certs" "$ras" "swtpm, state of swtpm_setup" "$raw" \
        lower - KiB
fi
