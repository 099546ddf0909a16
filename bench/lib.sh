# Sourced by the bench scripts: the rows they hand to bench/run.
#
# bench_row ISSUE MEASURE OURS PEER_NAME PEER BETTER GOAL UNIT
#   A figure of ours (OURS) against a peer's measured in the same run (PEER, named PEER_NAME).
#   BETTER says which way is better: "higher" (a rate) or "lower" (a time, a size); the ratio is
#   then OURS/PEER or PEER/OURS, so that it always reads "how many times better than the peer"
#   and a ratio above 1 is a win. GOAL is the least ratio the issue asks for, or "-". UNIT names
#   what OURS and PEER count (ops/s, ms, KiB...).
# When bench/run runs a script it sets BENCH_ROWS to a file; each call appends one tab-separated
# line: ISSUE MEASURE OURS UNIT PEER_NAME PEER RATIO GOAL. Run alone, a script prints its own
# report and bench_row does nothing.
bench_row() {
    [ -n "${BENCH_ROWS:-}" ] || return 0
    local ratio
    ratio=$(awk -v a="$3" -v b="$5" -v better="$6" 'BEGIN {
        if (a + 0 <= 0 || b + 0 <= 0) { print "-"; exit }
        printf "%.2f", better == "lower" ? b / a : a / b }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$8" "$4" "$5" "$ratio" "$7" >>"$BENCH_ROWS"
}
