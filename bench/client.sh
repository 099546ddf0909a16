#!/usr/bin/env bash
# Benchmark: sctpm-client end to end against the local hub (sctpm-hub, TLS 1.3, keep-alive).
#
#   bench/client.sh [N] [ROUNDS]    N messages per measurement (default 3000), ROUNDS (default 3)
#
# Prints the median of ROUNDS for:
#   - delivery of a queued backlog (`flush`), single requests and --batch: messages/s;
#   - end to end from standard input (`run --exit-on-eof`): every line fsync'd into the queue,
#     delivered, removed: messages/s, single and --batch;
#   - the yardstick measured in the same run: tests/hub-client, a plain libcurl device on one
#     keep-alive connection with a key in memory (no queue, no TPM), single and batches of 500
#     (the client's batches hold up to 500 small messages);
#   - the cost of a token renewal: `flush --token-ttl 1` renews the token before every request
#     (a one-second token is due at once), against the same flush with the default hour; the
#     client's own figure (time spent in sctpm_sas_token) and the difference per request, with
#     sctpmd over mssim Unix and TCP, and swtpm over tcti-swtpm as the peer.
# The hub commits every request to disk (synchronous=FULL), so the figures depend on the disk
# under TMPDIR, which the script names.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-3000}
ROUNDS=${2:-3}
CLIENT=$top/client/sctpm-client
HUB=$top/hub/sctpm-hub
D=$top/emulator/sctpmd
C=$top/shim/sctpm
HC=$top/tests/hub-client
. "$top/bench/lib.sh"
for f in "$CLIENT" "$HUB" "$D" "$C" "$HC" "$top/tests/freeport"; do
    [ -x "$f" ] || { echo "build first: make && make check TESTS= ($f)" >&2; exit 1; }
done
command -v swtpm >/dev/null || { echo "swtpm missing: scripts/install-deps" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/sctpm-client-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
freeport() { "$top/tests/freeport" "${1:-2}"; }
waitport() { for _ in $(seq 1000); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.01; done; return 1; }
median() { sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
now_ns() { date +%s%N; }

SP=$(freeport); WP=$(freeport); HP=$(freeport 1)
"$D" --state "$W/s" --port "$SP" --unix "$W/s.sock" --fsync never --log warning &
pids+=($!)
mkdir -p "$W/w"
swtpm socket --tpm2 --tpmstate dir="$W/w" --server type=tcp,port="$WP" --ctrl type=tcp,port=$((WP + 1)) \
    --flags not-need-init,startup-clear 2>/dev/null &
pids+=($!)
"$HUB" --data "$W/hub" --port "$HP" --hostname bench.sctpm.test >"$W/hub.log" 2>&1 &
pids+=($!)
waitport $((SP + 1)); waitport "$WP"; waitport "$HP"
cs=$("$HUB" --data "$W/hub" device add bench)

declare -A T=(
    [sctpmd-mssim-unix]="mssim:path=$W/s.sock"
    [sctpmd-mssim-tcp]="mssim:host=127.0.0.1,port=$SP"
    [swtpm-tcti-swtpm]="swtpm:host=127.0.0.1,port=$WP"
)
for k in sctpmd-mssim-unix swtpm-tcti-swtpm; do
    printf '%s' "$cs" | "$C" --tcti "${T[$k]}" provision >/dev/null 2>&1
done
sc() { # sc TCTI ARGS...: the client on a fresh queue directory per call site ($Q)
    local tc=$1
    shift
    "$CLIENT" --tcti "$tc" --queue "$Q" --endpoint "https://127.0.0.1:$HP" \
        --ca-file "$W/hub/ca.pem" "$@"
}
fresh_queue() { Q=$(mktemp -d "$W/queue.XXXXXX"); }

# flush_rate TCTI [ARGS...]: "<messages/s> <ms per token signed>" delivering a backlog of N.
flush_rate() {
    local tc=$1 line secs sign
    shift
    fresh_queue
    seq -f 'bench-%g' 1 "$N" | sc "$tc" send --no-flush --lines - >/dev/null
    line=$(sc "$tc" -q flush "$@" 2>&1 | tail -n 1)
    secs=$(sed -n 's/.* in \([0-9.]*\) s, .*/\1/p' <<<"$line")
    sign=$(sed -n 's/.* signed (\([0-9.]*\) ms each).*/\1/p' <<<"$line")
    [ -n "$secs" ] || { echo "flush failed: $line" >&2; exit 1; }
    awk -v n="$N" -v s="$secs" -v g="$sign" 'BEGIN{printf "%.0f %s\n", n/s, g}'
}
rate() { cut -d' ' -f1; }
# run_rate TCTI [ARGS...]: messages/s from standard input to the hub, enqueue included.
run_rate() {
    local tc=$1 t0 t1
    shift
    fresh_queue
    seq -f 'run-%g' 1 "$N" >"$W/lines"
    t0=$(now_ns)
    sc "$tc" -q run --no-c2d --exit-on-eof "$@" <"$W/lines" >/dev/null 2>"$W/run.err" ||
        { cat "$W/run.err" >&2; exit 1; }
    t1=$(now_ns)
    awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", n/((b-a)/1e9)}'
}
# yardstick [ARGS...]: tests/hub-client, one connection, messages/s.
yardstick() {
    local per=$N out
    [ "${1:-}" = --batch ] && per=$(( (N + $2 - 1) / $2 ))
    out=$("$HC" --url "https://bench.sctpm.test:$HP" --cacert "$W/hub/ca.pem" \
        --connection-string "$cs" load 1 "$per" "$@")
    sed 's/.*messages_per_s=\([0-9.]*\).*/\1/' <<<"$out" | awk '{printf "%.0f", $1}'
}

tc=${T[sctpmd-mssim-unix]}
echo "sctpm-client benchmark: $N messages per measurement, median of $ROUNDS rounds"
echo "hub database on $(stat -f -c %T "$W") ($W), $(nproc) CPUs"
echo
printf '%-46s %12s\n' "telemetry to the local hub" "messages/s"
declare -A R=()
for _ in $(seq "$ROUNDS"); do
    R[flush]+="$(flush_rate "$tc" | rate) "
    R[flush-batch]+="$(flush_rate "$tc" --batch | rate) "
    R[run]+="$(run_rate "$tc") "
    R[run-batch]+="$(run_rate "$tc" --batch) "
    R[hc]+="$(yardstick) "
    R[hc-batch]+="$(yardstick --batch 500) "
done
declare -A M=()
for k in flush flush-batch run run-batch hc hc-batch; do
    M[$k]=$(tr ' ' '\n' <<<"${R[$k]}" | grep . | median)
done
printf '%-46s %12s\n' "sctpm-client flush, single requests" "${M[flush]}"
printf '%-46s %12s\n' "sctpm-client flush --batch" "${M[flush-batch]}"
printf '%-46s %12s\n' "sctpm-client run (stdin -> fsync'd queue -> hub)" "${M[run]}"
printf '%-46s %12s\n' "sctpm-client run --batch" "${M[run-batch]}"
printf '%-46s %12s\n' "yardstick: tests/hub-client, single" "${M[hc]}"
printf '%-46s %12s\n' "yardstick: tests/hub-client, batches of 500" "${M[hc-batch]}"
awk -v a="${M[flush]}" -v b="${M[hc]}" -v c="${M[run]}" \
    'BEGIN{printf "\nsingle: flush at %.2fx the yardstick, run at %.2fx (the queue and the TPM-signed token cost the rest)\n", a/b, c/b}'
yard="hub-client, key in memory"
bench_row 8 "telemetry, sctpm-client flush" "${M[flush]}" "$yard" "${M[hc]}" higher - msg/s
bench_row 8 "telemetry, sctpm-client run (fsync'd queue)" "${M[run]}" "$yard" "${M[hc]}" higher - msg/s
bench_row 8 "telemetry, sctpm-client flush --batch" "${M[flush-batch]}" "hub-client, batches of 500" "${M[hc-batch]}" higher - msg/s

echo
printf '%-20s %16s %18s\n' "token renewal" "client ms/token" "extra us/request"
declare -A S=()
for k in sctpmd-mssim-unix sctpmd-mssim-tcp swtpm-tcti-swtpm; do
    sign=() extra=()
    for _ in $(seq "$ROUNDS"); do
        base=$(flush_rate "${T[$k]}" | rate)
        read -r renew g < <(flush_rate "${T[$k]}" --token-ttl 1)
        sign+=("$g")
        extra+=("$(awk -v a="$base" -v b="$renew" 'BEGIN{printf "%.0f", (1/b - 1/a) * 1e6}')")
    done
    S[$k]=$(printf '%s\n' "${sign[@]}" | median)
    E=$(printf '%s\n' "${extra[@]}" | median)
    printf '%-20s %16s %18s\n' "$k" "${S[$k]}" "$E"
done
echo
for k in sctpmd-mssim-unix sctpmd-mssim-tcp; do
    awk -v k="$k" -v a="${S[$k]}" -v b="${S[swtpm-tcti-swtpm]}" \
        'BEGIN{printf "%-20s a renewal costs %.2fx what it costs with swtpm\n", k, a/b}'
    bench_row 8 "token renewal in sctpm-client, $k" "${S[$k]}" "swtpm, tcti-swtpm" "${S[swtpm-tcti-swtpm]}" lower - ms
done
