# The test harness itself: readiness polling, exit codes, and that no process outlives a test that
# fails or is interrupted.
. "$top_srcdir/tests/integration/lib.sh"

RUN="$top_srcdir/tests/run-test"

# 1. A daemon that takes a while to listen is found by polling, not by sleeping.
p=$(free_port 1)
start_daemon slow testd "$p" 300
check "polling finds a daemon that listens after 300 ms" wait_port "$p" 10
pid=$(daemon_pid slow)
stop_daemon slow || true
check "stop_daemon ends it" bash -c "! kill -0 $pid 2>/dev/null"

# An inner test that starts a foreground daemon, a detached daemon (own session, pidfile) and a
# plain background process, then does what $1 says: fail, skip, or block until killed.
inner() {
    cat >"$T/inner-$1.sh" <<INNER
. "\$top_srcdir/tests/integration/lib.sh"
start_daemon fg testd $2 0
testd $3 0 --detach "\$T/detached.pid"
bash -c 'exec -a sctpm-harness-marker-$2 sleep 1000' &
wait_port $2 10 && wait_port $3 10 || hard_error "inner daemons did not start"
touch "$T/inner-$1.ready"
case $1 in
fail) fail "deliberately failing" ;;
skip) skip "deliberately skipped" ;;
block) sleep 1000 ;;
esac
INNER
}

leftovers() { # prints the processes of the inner run whose daemons use ports $1 and $2
    pgrep -af "sctpm-harness-marker-$1|testd $1 |testd $2 " || true
}

# 2. A failing test: status 1, nothing left running.
a=$(free_port 1); b=$(free_port 1)
inner fail "$a" "$b"
st=0; TMPDIR=$T "$RUN" "$T/inner-fail.sh" >"$T/inner-fail.out" 2>&1 || st=$?
check "a failing test reports status 1" test "$st" = 1
check "the failure message is shown" grep -q "deliberately failing" "$T/inner-fail.out"
check "no process outlives a failing test" test -z "$(leftovers "$a" "$b")"
check "ports are released" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$a) && ! (exec 3<>/dev/tcp/127.0.0.1/$b)" 2>/dev/null

# 3. A skipped test keeps status 77 and is cleaned up the same way.
a=$(free_port 1); b=$(free_port 1)
inner skip "$a" "$b"
st=0; TMPDIR=$T "$RUN" "$T/inner-skip.sh" >"$T/inner-skip.out" 2>&1 || st=$?
check "a skipped test reports status 77" test "$st" = 77
check "no process outlives a skipped test" test -z "$(leftovers "$a" "$b")"

# 4. An interrupted test (the user presses ^C, or make is killed): everything is reaped.
for sig in INT TERM; do
    a=$(free_port 1); b=$(free_port 1)
    inner block "$a" "$b"
    rm -f "$T/inner-block.ready"
    # Background jobs of a non-interactive shell start with SIGINT ignored; restore it, as a
    # terminal's ^C would find it.
    TMPDIR=$T env --default-signal=INT "$RUN" "$T/inner-block.sh" >"$T/inner-block.out" 2>&1 &
    runner=$!
    check "blocked inner test is running ($sig)" wait_file "$T/inner-block.ready" 20
    # A positive control: the leftover detector does see the three inner processes now.
    check "the inner processes are visible while it runs ($sig)" \
        test "$(leftovers "$a" "$b" | wc -l)" -ge 3
    kill -"$sig" "$runner"
    st=0; wait "$runner" || st=$?
    check "an interrupted test does not pass ($sig: status $st)" test "$st" != 0
    check "no process outlives an interrupted test ($sig)" test -z "$(leftovers "$a" "$b")"
done

# 5. A daemon's valgrind report fails an otherwise passing test.
cat >"$T/inner-vg.sh" <<'INNER'
echo "==1== Invalid read of size 4" >"$SCTPM_TEST_DIR/valgrind.1.log"
exit 0
INNER
st=0; TMPDIR=$T "$RUN" "$T/inner-vg.sh" >"$T/inner-vg.out" 2>&1 || st=$?
check "a valgrind report from a daemon fails the test (status $st)" test "$st" = 1
check "... and is shown" grep -q "Invalid read of size 4" "$T/inner-vg.out"

# 5b. With --track-fds=yes memcheck lists the descriptors open at exit: those the process
# inherited are fine, one it opened and never closed fails the test, as does a sanitizer report
# written to the test directory (sanitizer builds send reports there).
cat >"$T/inner-fds.sh" <<'INNER'
cat >"$SCTPM_TEST_DIR/valgrind.2.log" <<'LOG'
==2== FILE DESCRIPTORS: 4 open (3 std) at exit.
==2== Open file descriptor 9: /dev/null
==2==    <inherited from parent>
==2==
LOG
exit 0
INNER
st=0; TMPDIR=$T "$RUN" "$T/inner-fds.sh" >"$T/inner-fds.out" 2>&1 || st=$?
check "inherited descriptors open at exit are not a finding (status $st)" test "$st" = 0
cat >"$T/inner-fdleak.sh" <<'INNER'
cat >"$SCTPM_TEST_DIR/valgrind.3.log" <<'LOG'
==3== FILE DESCRIPTORS: 5 open (3 std) at exit.
==3== Open AF_UNIX socket 7: <unknown>
==3==    at 0x4955011: socket (syscall-template.S:120)
==3==    by 0x109155: main (leak.c:2)
==3==
LOG
exit 0
INNER
st=0; TMPDIR=$T "$RUN" "$T/inner-fdleak.sh" >"$T/inner-fdleak.out" 2>&1 || st=$?
check "a descriptor opened and never closed fails the test (status $st)" test "$st" = 1
cat >"$T/inner-asan.sh" <<'INNER'
case $ASAN_OPTIONS in *log_path=$SCTPM_TEST_DIR/sanitizer.asan) ;; *) exit 3 ;; esac
echo "ERROR: AddressSanitizer: heap-use-after-free" >"$SCTPM_TEST_DIR/sanitizer.asan.42"
exit 0
INNER
st=0; TMPDIR=$T "$RUN" "$T/inner-asan.sh" >"$T/inner-asan.out" 2>&1 || st=$?
check "a sanitizer report in the test directory fails the test (status $st)" test "$st" = 1
check "... and is shown" grep -q "heap-use-after-free" "$T/inner-asan.out"
# A process killed while LeakSanitizer checks it at exit leaves an empty report or one that only
# says the dying threads' registers could not be read: not a finding. Anything more still is.
cat >"$T/inner-lsan-killed.sh" <<'INNER'
: >"$SCTPM_TEST_DIR/sanitizer.asan.43"
echo "==45==Unable to get registers from thread 44." >"$SCTPM_TEST_DIR/sanitizer.asan.44"
exit 0
INNER
st=0; TMPDIR=$T "$RUN" "$T/inner-lsan-killed.sh" >"$T/inner-lsan-killed.out" 2>&1 || st=$?
check "a leak check cut short by a kill is not a finding (status $st)" test "$st" = 0
check "... and is shown as such" grep -q "cut short by a kill" "$T/inner-lsan-killed.out"
cat >"$T/inner-lsan-more.sh" <<'INNER'
printf '%s\n' "==47==Unable to get registers from thread 46." \
    "==46==ERROR: LeakSanitizer: detected memory leaks" >"$SCTPM_TEST_DIR/sanitizer.asan.46"
exit 0
INNER
st=0; TMPDIR=$T "$RUN" "$T/inner-lsan-more.sh" >"$T/inner-lsan-more.out" 2>&1 || st=$?
check "a leak report after such a line still fails the test (status $st)" test "$st" = 1

# 6. Each test gets its own fresh directory, removed afterwards.
check "the test directory exists and is private to this test" test -d "$T" -a -w "$T"
check "inner test directories were removed" bash -c "! ls -d $T/sctpm-test.inner-* 2>/dev/null"

finish
