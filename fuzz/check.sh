# The fuzz targets in `make check`, through tests/run-test. Each target first replays its seed
# corpus (fuzz/corpus/NAME) and every input that once crashed it (fuzz/regress/NAME). In a build
# configured with --enable-fuzzing (SCTPM_FUZZ_MODE=libfuzzer) it then fuzzes for
# SCTPM_FUZZ_SECONDS (default 5) from those seeds, adding what it finds to a corpus in the test
# directory, never to the source tree. A crash, leak, timeout or broken invariant fails the test
# and leaves the input in the test directory (SCTPM_KEEP_TMP=1 keeps it).
#
#   make check TESTS=fuzz/check.sh [FUZZ_TARGETS="mssim rm"] [SCTPM_FUZZ_SECONDS=30]
#
# Under make check-valgrind the replay builds run under memcheck.
set -u

: "${SCTPM_TEST_DIR:?run through tests/run-test (make check)}"
: "${top_builddir:?top_builddir must be set (make check sets it)}"
: "${top_srcdir:?top_srcdir must be set (make check sets it)}"

targets=${FUZZ_TARGETS:-connstr hub_request mssim nvstore rm sas swtpm_ctrl}
mode=${SCTPM_FUZZ_MODE:-replay}
seconds=${SCTPM_FUZZ_SECONDS:-5}
failed=()

for name in $targets; do
    bin=$top_builddir/fuzz/fuzz_$name
    seeds=$top_srcdir/fuzz/corpus/$name
    regress=$top_srcdir/fuzz/regress/$name
    dirs=("$seeds")
    [ -d "$regress" ] && dirs+=("$regress")
    if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
        echo "ERROR: $name: $bin or $seeds is missing" >&2
        exit 99
    fi
    log=$SCTPM_TEST_DIR/$name.log
    if [ "$mode" = libfuzzer ]; then
        mkdir -p "$SCTPM_TEST_DIR/corpus-$name"
        # -timeout: one input takes milliseconds; 25 s is a hang, not a slow machine.
        "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 -print_final_stats=1 \
            -artifact_prefix="$SCTPM_TEST_DIR/$name-" "$SCTPM_TEST_DIR/corpus-$name" "${dirs[@]}" \
            >"$log" 2>&1
    elif [ "${SCTPM_VALGRIND:-}" = 1 ]; then
        "${VALGRIND:-valgrind}" --quiet --error-exitcode=97 --leak-check=full \
            --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
            "$bin" "${dirs[@]}" >"$log" 2>&1
    else
        "$bin" "${dirs[@]}" >"$log" 2>&1
    fi
    status=$?
    if [ $status -eq 0 ]; then
        if [ "$mode" = libfuzzer ]; then
            echo "ok - $name: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" |
                grep -o '[0-9]*$') runs in ${seconds} s"
        else
            echo "ok - $name: $(tail -n 1 "$log")"
        fi
    else
        echo "FAIL: $name (exit status $status); the end of its output:" >&2
        tail -n 40 "$log" >&2
        failed+=("$name")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "FAIL: fuzz targets: ${failed[*]}" >&2
    exit 1
fi
