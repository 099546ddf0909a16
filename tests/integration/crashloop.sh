#!/usr/bin/env bash
# The crash loops of tests/crashloop/ stay working: ten rounds of each (`make crashloop` runs 200),
# and each reports the faults it exists to find when they are made on purpose (--inject): a state
# rolled back to before acknowledged writes, a state that does not load, a message accepted and
# never delivered, a message delivered twice.
. "$top_srcdir/tests/integration/lib.sh"

# Under memcheck every process starts slowly: give the work more time before the kill.
delay=1000
[ "${SCTPM_VALGRIND:-}" = 1 ] && delay=8000

# loop NAME ARGS...: runs tests/crashloop/NAME.sh in a directory of its own under $T, output in
# $T/NAME.out; returns its status.
runs=0
loop() {
    local name=$1 st=0
    shift
    runs=$((runs + 1))
    mkdir -p "$T/run-$runs"
    SCTPM_TEST_DIR=$T/run-$runs bash "$top_srcdir/tests/crashloop/$name.sh" --max-delay "$delay" "$@" \
        >"$T/$name.out" 2>&1 || st=$?
    return "$st"
}

# passes NAME ARGS...: the loop passes (else shows its output).
passes() { loop "$@" && return 0; tail -n 40 "$T/$1.out"; return 1; }

# reports NAME REGEX ARGS...: the loop fails, saying REGEX.
reports() {
    local name=$1 re=$2 st=0
    shift 2
    loop "$name" "$@" || st=$?
    if [ "$st" = 1 ] && grep -Eq -- "$re" "$T/$name.out"; then
        return 0
    fi
    echo "exit status $st, want 1 and a line matching /$re/:" >&2
    tail -n 40 "$T/$name.out" >&2
    return 1
}

check "sctpmd: 10 rounds" passes sctpmd --rounds 10
note "$(tail -n 1 "$T/sctpmd.out")"
check "sctpm-client: 10 rounds" passes client --rounds 10
note "$(grep '^crashloop' "$T/client.out")"

check "sctpmd: a state rolled back is reported" \
    reports sctpmd '^nv-crash: 01500100 \(ordinary\) lost an acknowledged write' \
    --rounds 1 --inject rollback --keep "$T/kept"
check "... with the evidence kept" bash -c "ls -d '$T'/kept/sctpm-crashloop-sctpmd.*/round-1/plain.state >/dev/null"
check "sctpmd: a state that does not load is reported" \
    reports sctpmd '^FAIL: round 2 \(enc\): the state does not load after the kill' \
    --rounds 2 --inject corrupt --keep "$T/kept"
check "sctpm-client: a lost message and a duplicate are reported" \
    reports client '^FAIL: 1 accepted messages never arrived, first: never-sent' \
    --rounds 1 --inject lost,duplicate --keep "$T/kept"
check "... both" grep -q '^FAIL: 1 messages arrived more than once, first: sent-twice' "$T/client.out"
finish
