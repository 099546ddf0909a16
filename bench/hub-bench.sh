#!/usr/bin/env bash
# Benchmark for sctpm-hub, run by hand from a built tree (make && make tests/hub-client):
#
#   bench/hub-bench.sh [REQUESTS]
#
# Telemetry requests per second and latency (p50, p99) from 1 and 16 keep-alive connections,
# single messages and batches of BATCH (default 10), through libcurl (tests/hub-client) with
# TLS and a fresh SAS token check per request. Every telemetry request is committed to disk
# (SQLite WAL, synchronous=FULL) before it is acknowledged, so the figures depend on the disk
# under TMPDIR; the script prints which filesystem that is.
#
# The yardstick measured in the same run is the cloud-to-device receive on an empty queue: the
# same TLS, HTTP and token verification with a read and no commit. The ratio telemetry/receive
# shows what durability costs; 16/1 shows how well group commit shares fsyncs between clients.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${BUILDDIR:-$top}
hub=$builddir/hub/sctpm-hub
client=$builddir/tests/hub-client
freeport=$builddir/tests/freeport
requests=${1:-${REQUESTS:-3000}}
batch=${BATCH:-10}

. "$top/bench/lib.sh"
for p in "$hub" "$client" "$freeport"; do
    [ -x "$p" ] || { echo "hub-bench: $p is missing: run make && make check TESTS= first" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/hub-bench.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

port=$("$freeport" 1)
"$hub" --data "$work/hub" --port "$port" --hostname bench.sctpm.test >"$work/hub.log" 2>&1 &
pid=$!
for _ in $(seq 1 500); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.02
done
cs=$("$hub" --data "$work/hub" device add bench)

run() { # run LABEL CONNECTIONS ARGS... -> prints a row, sets RPS and MPS
    local label=$1 conns=$2 per out
    shift 2
    per=$(( (requests + conns - 1) / conns ))
    out=$("$client" --port "$port" --cacert "$work/hub/ca.pem" --connection-string "$cs" \
        load "$conns" "$per" "$@") || { echo "hub-bench: $label failed: $out" >&2; exit 1; }
    RPS=$(sed 's/.*requests_per_s=\([0-9.]*\).*/\1/' <<<"$out")
    MPS=$(sed 's/.*messages_per_s=\([0-9.]*\).*/\1/' <<<"$out")
    printf '%-26s %5s %8s %10s %10s %8s %8s\n' "$label" "$conns" "$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$out")" \
        "$RPS" "$MPS" "$(sed 's/.*p50_ms=\([0-9.]*\).*/\1/' <<<"$out")" \
        "$(sed 's/.*p99_ms=\([0-9.]*\).*/\1/' <<<"$out")"
}

echo "sctpm-hub benchmark: $requests requests per row, batches of $batch, TLS 1.3, keep-alive"
echo "database on $(stat -f -c %T "$work") ($work), $(nproc) CPUs"
printf '%-26s %5s %8s %10s %10s %8s %8s\n' scenario conns requests req/s msg/s p50_ms p99_ms
run "receive (yardstick)" 1 --receive; r1=$RPS
run "receive (yardstick)" 16 --receive; r16=$RPS
run "telemetry single" 1; s1=$RPS
run "telemetry single" 16; s16=$RPS
run "telemetry batch of $batch" 1 --batch "$batch"; b1=$MPS
run "telemetry batch of $batch" 16 --batch "$batch"; b16=$MPS

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
echo
echo "ratios measured in this run:"
echo "  telemetry/receive, 1 connection:    $(ratio "$s1" "$r1")  (the cost of a durable commit)"
echo "  telemetry/receive, 16 connections:  $(ratio "$s16" "$r16")"
echo "  single 16/1 connections:            $(ratio "$s16" "$s1")  (group commit at work)"
echo "  batch/single messages, 1 conn:      $(ratio "$b1" "$s1")"
echo "  batch/single messages, 16 conns:    $(ratio "$b16" "$s16")"
bench_row 7 "hub telemetry, 1 connection (durable commit)" "$s1" "receive, 1 connection" "$r1" higher - req/s
bench_row 7 "hub telemetry, 16 connections" "$s16" "receive, 16 connections" "$r16" higher - req/s
bench_row 7 "hub telemetry, 16 connections (group commit)" "$s16" "telemetry, 1 connection" "$s1" higher - req/s
bench_row 7 "hub telemetry, batches of $batch, 16 conns" "$b16" "single messages, 16 conns" "$s16" higher - msg/s
stored=$("$hub" --data "$work/hub" messages | wc -l)
echo "messages stored: $stored"
