# shellcheck shell=bash
# Shared by the crash loops (tests/crashloop/*.sh); sourced first thing, before
# tests/integration/lib.sh, with the script's arguments.
#
# A crash loop runs through tests/run-test like any test (a fresh $SCTPM_TEST_DIR, every process
# reaped). Started by hand, it re-executes itself that way: from a build tree,
#   tests/crashloop/sctpmd.sh --rounds 50
# (top_builddir is the current directory when it holds a build, else the source tree).
#
# Options, each also an environment variable:
#   --rounds N        SCTPM_CRASHLOOP_ROUNDS     rounds (default 200)
#   --max-delay MS    SCTPM_CRASHLOOP_MAX_DELAY  a kill comes 0..MS ms into the work (default 1000)
#   --seed N          SCTPM_CRASHLOOP_SEED       seeds $RANDOM: the same kill delays again
#   --keep DIR        SCTPM_CRASHLOOP_KEEP       where a failure's evidence goes (default $TMPDIR)
#   --quiet                                      no line per round, only failures and the summary
#   --inject FAULT[,FAULT]                       for the test of the test: make a fault the loop
#                                                must report (see each script)
#
# On a failure the state, the logs and the records of what was acknowledged are copied to a new
# directory under the --keep directory, named in the output; the temporary directory itself is
# removed as usual.

. "$(dirname "${BASH_SOURCE[0]}")/../by-hand.sh"

ROUNDS=${SCTPM_CRASHLOOP_ROUNDS:-200}
MAX_DELAY=${SCTPM_CRASHLOOP_MAX_DELAY:-1000}
SEED=${SCTPM_CRASHLOOP_SEED:-$(($(date +%s%N) % 1000000))}
KEEP_BASE=${SCTPM_CRASHLOOP_KEEP:-${TMPDIR:-/tmp}}
QUIET=0
INJECT=,
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --max-delay) MAX_DELAY=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --keep) KEEP_BASE=$2; shift 2 ;;
    --quiet) QUIET=1; shift ;;
    --inject) INJECT=,$2,; shift 2 ;;
    *)
        echo "usage: $0 [--rounds N] [--max-delay MS] [--seed N] [--keep DIR] [--quiet] [--inject FAULT]" >&2
        exit 99
        ;;
    esac
done
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || { echo "--rounds: a positive number" >&2; exit 99; }
[[ $MAX_DELAY =~ ^[0-9]+$ ]] || { echo "--max-delay: milliseconds" >&2; exit 99; }
[[ $SEED =~ ^[0-9]+$ ]] || { echo "--seed: a number" >&2; exit 99; }
RANDOM=$SEED
FAILURES=0
KEPT=
LOOP=$(basename "$0" .sh)

# injected FAULT: --inject named FAULT.
injected() { [[ $INJECT == *,$1,* ]]; }

# delay_ms: a random kill delay, 0..MAX_DELAY ms.
delay_ms() { echo $(((RANDOM * 32768 + RANDOM) % (MAX_DELAY + 1))); }

# secs MS: MS milliseconds as seconds for sleep(1).
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

# say LINE: a progress line, unless --quiet.
say() { [ "$QUIET" = 1 ] || echo "$*"; }

# evidence LABEL PATH...: counts a failure and copies PATHs (state directories, logs, records)
# to KEPT/LABEL, creating KEPT on the first failure.
evidence() {
    local label=$1
    shift
    FAILURES=$((FAILURES + 1))
    if [ -z "$KEPT" ]; then
        if ! mkdir -p "$KEEP_BASE" || ! KEPT=$(mktemp -d "$KEEP_BASE/sctpm-crashloop-$LOOP.XXXXXX"); then
            echo "FAIL: cannot create a directory under $KEEP_BASE for the evidence" >&2
            KEPT=
            return
        fi
    fi
    mkdir -p "$KEPT/$label"
    # Sockets are not worth keeping (and cp reports them).
    cp -a "$@" "$KEPT/$label/" 2>/dev/null
    find "$KEPT/$label" -type s -delete 2>/dev/null
    echo "FAIL: evidence kept in $KEPT/$label" >&2
}

