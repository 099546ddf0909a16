#!/usr/bin/env bash
# Benchmark: SAS token generation through libsctpm, on sctpmd and on swtpm in the same run.
#   bench/token.sh [N] [PROCS]   N library calls per measurement (default 2000), PROCS whole
#                                `sctpm token` processes (default 100)
# Prints tokens/s and p50/p99 of sctpm_sas_token() on one open context (what a device client
# does), and the wall time of one whole `sctpm token` process (open, classify the TPM, sign),
# for sctpmd over mssim (Unix and TCP) and swtpm over tcti-swtpm, with ratios against swtpm.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-2000}
PROCS=${2:-100}
B=$top/bench/tokenbench
D=$top/emulator/sctpmd
C=$top/shim/sctpm
. "$top/bench/lib.sh"
for f in "$B" "$D" "$C"; do [ -x "$f" ] || { echo "build first: make ($f)" >&2; exit 1; }; done
command -v swtpm >/dev/null || { echo "swtpm missing: scripts/install-deps" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/sctpm-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
freeport() { "$top/tests/freeport" 2; }
waitport() { for _ in $(seq 1000); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.01; done; return 1; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

SP=$(freeport); WP=$(freeport)
"$D" --state "$W/s" --port "$SP" --unix "$W/s.sock" --fsync never --log warning &
pids+=($!)
mkdir -p "$W/w"
# Like sctpmd's, swtpm's TPM gets EK certificates: the CLI classifies the TPM by its EK
# certificate on every run, and a TPM without one is answered with less work.
export XDG_CONFIG_HOME=$W/xdg
mkdir -p "$XDG_CONFIG_HOME"
swtpm_setup --create-config-files overwrite,root >/dev/null 2>&1 ||
    swtpm_setup --create-config-files overwrite >/dev/null 2>&1 || true
swtpm_setup --tpm2 --tpmstate "$W/w" --create-ek-cert --overwrite >"$W/setup.log" 2>&1 ||
    echo "note: swtpm_setup --create-ek-cert failed; swtpm runs without EK certificates" >&2
swtpm socket --tpm2 --tpmstate dir="$W/w" --server type=tcp,port="$WP" --ctrl type=tcp,port=$((WP + 1)) \
    --flags not-need-init,startup-clear 2>/dev/null &
pids+=($!)
waitport $((SP + 1)) || { echo "sctpmd did not start on port $SP" >&2; exit 1; }
waitport "$WP" || { echo "swtpm did not start on port $WP" >&2; exit 1; }

declare -A T=(
    [sctpmd-mssim-unix]="mssim:path=$W/s.sock"
    [sctpmd-mssim-tcp]="mssim:host=127.0.0.1,port=$SP"
    [swtpm-tcti-swtpm]="swtpm:host=127.0.0.1,port=$WP"
)
order="sctpmd-mssim-unix sctpmd-mssim-tcp swtpm-tcti-swtpm"
key=$(openssl rand -base64 32)
for k in sctpmd-mssim-unix swtpm-tcti-swtpm; do
    printf 'HostName=bench.azure-devices.net;DeviceId=bench;SharedAccessKey=%s' "$key" |
        "$C" --tcti "${T[$k]}" provision >/dev/null 2>&1
done
printf '\n%-20s %10s %8s %8s %14s\n' "token" "tokens/s" "p50 us" "p99 us" "CLI process ms"
for k in $order; do
    lib=$("$B" "${T[$k]}" 0 "$N")
    start=$(date +%s%N)
    for _ in $(seq "$PROCS"); do "$C" --tcti "${T[$k]}" token >/dev/null 2>&1; done
    cli_ms=$(awk -v a="$start" -v b="$(date +%s%N)" -v n="$PROCS" 'BEGIN{printf "%.2f", (b-a)/1e6/n}')
    printf '%-20s %10s %8s %8s %14s\n' "$k" "$(field tokens_per_s <<<"$lib")" "$(field p50_us <<<"$lib")" \
        "$(field p99_us <<<"$lib")" "$cli_ms"
    echo "$(field tokens_per_s <<<"$lib") $cli_ms" >"$W/$k.res"
done
read -r w_rate w_cli <"$W/swtpm-tcti-swtpm.res"
echo
for k in sctpmd-mssim-unix sctpmd-mssim-tcp; do
    read -r rate cli <"$W/$k.res"
    awk -v k="$k" -v r="$rate" -v wr="$w_rate" -v c="$cli" -v wc="$w_cli" \
        'BEGIN{printf "%-20s library %.2fx the swtpm rate, CLI process %.2fx faster\n", k, r/wr, wc/c}'
    bench_row 6 "SAS tokens, libsctpm, $k" "$rate" "swtpm, tcti-swtpm" "$w_rate" higher - tokens/s
    bench_row 6 "one sctpm token process, $k" "$cli" "swtpm, tcti-swtpm" "$w_cli" lower - ms
done
