#!/usr/bin/env bash
# Benchmark: sctpmd's resource manager (run by hand on a quiet machine, after make).
#   bench/rm.sh [N] [ROUNDS]    N HMACs per client (default 2000), ROUNDS (default 3)
# Aggregate TPM2_HMAC rate with 1, 4 and 16 concurrent ESAPI clients (each with its own key),
# over sctpmd's Unix socket with the resource manager, against sctpmd --no-rm (single client: the
# RM's own overhead), and against swtpm behind tpm2-abrmd (over D-Bus, via dbus-run-session) when
# tpm2-abrmd is installed. Aggregate = all HMACs / wall time of the slowest client; medians of
# ROUNDS runs, taken alternately.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-2000}
ROUNDS=${2:-3}
B=$top/bench/tpmbench
D=$top/emulator/sctpmd
. "$top/bench/lib.sh"
[ -x "$B" ] && [ -x "$D" ] || { echo "build first: make" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/sctpm-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
waitsock() { for _ in $(seq 1000); do [ -S "$1" ] && return 0; sleep 0.01; done; return 1; }
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
[ -x "$top/tests/freeport" ] || make -s -C "$top" tests/freeport

"$D" --state "$W/rm" --no-tcp --unix "$W/rm.sock" --fsync never --log warning &
pids+=($!)
"$D" --state "$W/raw" --no-tcp --unix "$W/raw.sock" --fsync never --log warning --no-rm &
pids+=($!)
waitsock "$W/rm.sock.ctrl"; waitsock "$W/raw.sock.ctrl"

abrmd=
if command -v tpm2-abrmd >/dev/null && command -v dbus-run-session >/dev/null && command -v swtpm >/dev/null; then
    abrmd=1
    # Not `ldconfig -p | grep -q`: grep's early exit would fail the pipe under pipefail.
    if ! grep -q 'libtss2-tcti-tabrmd\.so\.0' <<<"$(ldconfig -p)"; then
        echo "rm.sh: no swtpm + tpm2-abrmd comparison: its client TCTI, libtss2-tcti-tabrmd.so.0, is missing (package libtss2-tcti-tabrmd0; scripts/install-deps)" >&2
        abrmd=
    fi
fi

# aggregate TCTI K: HMACs per second over K concurrent clients.
aggregate() {
    local tcti=$1 k=$2 t0 t1 i cpids=()
    t0=$(date +%s%N)
    for i in $(seq "$k"); do "$B" "$tcti" "$N" >"$W/agg.$i" & cpids+=($!); done
    for i in "${cpids[@]}"; do wait "$i"; done
    t1=$(date +%s%N)
    python3 -c "print(int($k * $N * 2 / (($t1 - $t0) / 1e9)))" # HMACs and GetRandoms
}

for r in $(seq "$ROUNDS"); do
    aggregate "mssim:path=$W/raw.sock" 1 >>"$W/raw.1"
    for k in 1 4 16; do aggregate "mssim:path=$W/rm.sock" "$k" >>"$W/rm.$k"; done
done

if [ -n "$abrmd" ]; then
    # swtpm + tpm2-abrmd on a private D-Bus session bus, measured inside that session.
    p=$("$top/tests/freeport" 2)
    mkdir -p "$W/sw"
    swtpm socket --tpm2 --tpmstate dir="$W/sw" --server type=tcp,port="$p" --ctrl type=tcp,port=$((p + 1)) \
        --flags not-need-init,startup-clear 2>/dev/null &
    pids+=($!)
    cat >"$W/abrmd.sh" <<INNER
set -e
tpm2-abrmd --session --tcti=swtpm:host=127.0.0.1,port=$p --allow-root >/dev/null 2>&1 &
a=\$!
for _ in \$(seq 500); do "$B" tabrmd:bus_type=session 10 >/dev/null 2>&1 && break; sleep 0.02; done
$(declare -f aggregate)
B=$B N=$N W=$W
for r in \$(seq $ROUNDS); do for k in 1 4 16; do aggregate tabrmd:bus_type=session \$k >>$W/abrmd.\$k; done; done
kill \$a
INNER
    dbus-run-session -- bash "$W/abrmd.sh" || { echo "rm.sh: the swtpm + tpm2-abrmd runs failed; no comparison" >&2; abrmd=; }
fi

one=$(median <"$W/rm.1")
raw=$(median <"$W/raw.1")
printf '\n%-34s %10s %10s %10s\n' "aggregate ops/s (HMAC+GetRandom)" "1 client" "4 clients" "16 clients"
printf '%-34s %10s %10s %10s\n' "sctpmd (built-in RM, Unix)" "$one" "$(median <"$W/rm.4")" "$(median <"$W/rm.16")"
printf '%-34s %10s\n' "sctpmd --no-rm (Unix)" "$raw"
if [ -n "$abrmd" ] && [ -s "$W/abrmd.1" ]; then
    printf '%-34s %10s %10s %10s\n' "swtpm + tpm2-abrmd (D-Bus)" "$(median <"$W/abrmd.1")" \
        "$(median <"$W/abrmd.4")" "$(median <"$W/abrmd.16")"
fi
echo
python3 - "$one" "$raw" "$(median <"$W/rm.16")" <<'PY'
import sys
one, raw, sixteen = map(float, sys.argv[1:])
print(f"RM overhead, one client: {100 * (1 - one / raw):.0f}% (goal <= 30%)")
print(f"16 clients / 1 client:   {sixteen / one:.2f} (goal >= 0.8)")
PY
if [ -n "$abrmd" ] && [ -s "$W/abrmd.1" ]; then
    python3 -c "print(f'sctpmd vs swtpm+abrmd, 16 clients: {$(median <"$W/rm.16") / $(median <"$W/abrmd.16"):.1f}x')"
fi

# Rows for bench/run. The overhead goal (at most 30%) is a ratio of at least 0.7 against --no-rm.
bench_row 5 "RM, 1 client" "$one" "sctpmd --no-rm" "$raw" higher 0.7 ops/s
bench_row 5 "RM, 16 clients (aggregate)" "$(median <"$W/rm.16")" "sctpmd, 1 client" "$one" higher 0.8 ops/s
bench_row 5 "RM, 4 clients (aggregate)" "$(median <"$W/rm.4")" "sctpmd, 1 client" "$one" higher - ops/s
if [ -n "$abrmd" ] && [ -s "$W/abrmd.1" ]; then
    for k in 1 4 16; do
        bench_row 5 "RM, $k client(s) (aggregate)" "$(median <"$W/rm.$k")" "swtpm + tpm2-abrmd" \
            "$(median <"$W/abrmd.$k")" higher - ops/s
    done
fi
