# Shared helpers for integration tests; sourced by each tests/integration/*.sh.
#
# tests/run-test gives every test a fresh directory ($SCTPM_TEST_DIR) and reaps every process the
# test starts, also when it fails or is interrupted. These helpers start daemons, wait for them
# by polling (never a fixed sleep) and report results in the automake way: exit 0 pass, 77 skip,
# 99 hard error, anything else failure.

set -u
set -o pipefail

: "${SCTPM_TEST_DIR:?run integration tests through tests/run-test (make check)}"
: "${top_builddir:?top_builddir must be set (make check sets it)}"
: "${top_srcdir:?top_srcdir must be set (make check sets it)}"

T=$SCTPM_TEST_DIR
export PATH="$top_builddir/emulator:$top_builddir/shim:$top_builddir/client:$top_builddir/hub:$top_builddir/tests:$PATH"
declare -A DAEMON_PID=()
CHECKS_RUN=0

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
hard_error() { echo "ERROR: $*" >&2; exit 99; }
note() { echo "# $*"; }

# check DESCRIPTION COMMAND...: runs the command; a non-zero status fails the test, naming it.
check() { run_check fail "$@"; }

# verdict DESCRIPTION COMMAND...: like check, but a failure is reported ("not ok") and counted,
# and the test goes on; finish then fails the test. For checks that are all worth seeing at the
# end of a long run (the soak). Returns the command's success.
VERDICTS_FAILED=0
verdict() { run_check count "$@"; }

# run_check fail|count DESCRIPTION COMMAND...: check and verdict.
run_check() {
    local mode=$1 desc=$2
    shift 2
    CHECKS_RUN=$((CHECKS_RUN + 1))
    if "$@"; then
        echo "ok $CHECKS_RUN - $desc"
        return 0
    fi
    [ "$mode" = fail ] && fail "$desc (command: $*)"
    echo "not ok $CHECKS_RUN - $desc"
    VERDICTS_FAILED=$((VERDICTS_FAILED + 1))
    return 1
}

# expect_fail DESCRIPTION COMMAND...: the command must exit non-zero.
expect_fail() {
    local desc=$1
    shift
    CHECKS_RUN=$((CHECKS_RUN + 1))
    if "$@"; then
        fail "$desc: expected a failure (command: $*)"
    else
        echo "ok $CHECKS_RUN - $desc"
    fi
}

# free_port [COUNT]: a port P with P..P+COUNT-1 free on 127.0.0.1 (default COUNT 2).
free_port() { "$top_builddir/tests/freeport" "${1:-2}" || hard_error "no free port"; }

# poll SECONDS COMMAND...: runs COMMAND every 20 ms until it succeeds or SECONDS pass.
poll() {
    local secs=$1 i
    shift
    for ((i = 0; i < secs * 50; i++)); do
        "$@" 2>/dev/null && return 0
        sleep 0.02
    done
    return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# The default readiness timeout: 20 s, or 120 s under memcheck, where a daemon's first start
# (manufacturing RSA keys) takes tens of seconds. A timeout only matters when something is broken.
# WAIT_DAEMON is for a daemon's start: 60 s, 180 s under memcheck.
WAIT_DEFAULT=20 WAIT_DAEMON=60
[ "${SCTPM_VALGRIND:-}" = 1 ] && WAIT_DEFAULT=120 WAIT_DAEMON=180
wait_port() { poll "${2:-$WAIT_DEFAULT}" port_open "$1"; }
wait_file() { poll "${2:-$WAIT_DEFAULT}" test -e "$1"; }
wait_socket() { poll "${2:-$WAIT_DEFAULT}" test -S "$1"; }

# Our own programs run under memcheck in `make check-valgrind`. Those we ship must also close
# every descriptor they opened before they exit (--track-fds=yes); the test fixtures in tests/
# (testd, ptybridge...) are killed by signals and are only checked for memory errors.
wrap() {
    local path fds=yes
    [ "${SCTPM_VALGRIND:-}" = 1 ] || return 0
    path=$(command -v "$1" 2>/dev/null)
    case "$path" in
    "$top_builddir"/tests/*) fds=no ;;
    "$top_builddir"/*) ;;
    *) return 0 ;;
    esac
    echo "${VALGRIND:-valgrind}" --quiet --error-exitcode=97 --leak-check=full \
        --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
        --track-fds=$fds --log-file="$T/valgrind.%p.log"
}

# start_daemon NAME COMMAND...: starts COMMAND in the background with its output in $T/NAME.log
# and its pid in $T/NAME.pid. The caller then waits for readiness (wait_port, wait_socket...).
start_daemon() {
    local name=$1
    shift
    # shellcheck disable=SC2046
    $(wrap "$1") "$@" >>"$T/$name.log" 2>&1 &
    DAEMON_PID[$name]=$!
    echo $! >"$T/$name.pid"
}

daemon_pid() { echo "${DAEMON_PID[$1]}"; }

# stop_daemon NAME [SIGNAL]: signals the daemon (TERM by default) and waits for it; returns its
# exit status.
stop_daemon() {
    local name=$1 sig=${2:-TERM} pid=${DAEMON_PID[$1]:-} st=0
    [ -n "$pid" ] || return 0
    kill -"$sig" "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || st=$?
    unset "DAEMON_PID[$name]"
    rm -f "$T/$name.pid"
    return $st
}

# show_log NAME: prints a daemon's log, for failure diagnosis.
show_log() { echo "--- $1.log"; cat "$T/$1.log" 2>/dev/null; echo "---"; }

finish() {
    [ "$VERDICTS_FAILED" = 0 ] || fail "$VERDICTS_FAILED of $CHECKS_RUN checks failed"
    echo "# $CHECKS_RUN checks passed"
    exit 0
}

# ---- sctpmd ----
# Every transport sctpmd serves; scenarios that involve a transport run over each.
TRANSPORTS="mssim-tcp mssim-unix swtpm-tcp swtpm-unix"
declare -A SCTPMD_PORT=()

# sctpmd_start NAME [ARGS...]: starts sctpmd with state $T/NAME.state on a free port pair and
# the Unix socket $T/NAME.sock; waits until both channels of both transports accept. A restart
# under the same NAME reuses the port.
sctpmd_start() {
    local name=$1 port
    shift
    port=${SCTPMD_PORT[$name]:-$(free_port)}
    SCTPMD_PORT[$name]=$port
    start_daemon "$name" sctpmd --state "$T/$name.state" --port "$port" --unix "$T/$name.sock" \
        --foreground --fsync never "$@"
    if ! wait_port $((port + 1)) "$WAIT_DAEMON" || ! wait_socket "$T/$name.sock.ctrl" 10; then
        show_log "$name"
        fail "sctpmd $name did not start"
    fi
}

# tcti NAME TRANSPORT: the tpm2-tss TCTI configuration reaching sctpmd NAME over TRANSPORT.
tcti() {
    case $2 in
    mssim-tcp) echo "mssim:host=127.0.0.1,port=${SCTPMD_PORT[$1]}" ;;
    swtpm-tcp) echo "swtpm:host=127.0.0.1,port=${SCTPMD_PORT[$1]}" ;;
    mssim-unix) echo "mssim:path=$T/$1.sock" ;;
    swtpm-unix) echo "swtpm:path=$T/$1.sock" ;;
    *) hard_error "unknown transport $2" ;;
    esac
}

# rawaddr NAME TRANSPORT CHANNEL: the rawsend address of a channel (data or ctrl).
rawaddr() {
    local suffix=
    [ "$3" = ctrl ] && suffix=.ctrl
    case $2 in
    *-tcp)
        if [ "$3" = ctrl ]; then echo "tcp:$((SCTPMD_PORT[$1] + 1))"; else echo "tcp:${SCTPMD_PORT[$1]}"; fi
        ;;
    *-unix) echo "unix:$T/$1.sock$suffix" ;;
    esac
}

# ---- swtpm, the peer ----
declare -A SWTPM_PORT=()

# swtpm_start NAME [ARGS...]: starts swtpm (TPM 2.0, started and ready for commands) with state
# $T/NAME.swtpm on a free TCP port pair; SWTPM_PORT[NAME] is the data port. Skips the test when
# swtpm is not installed.
swtpm_start() {
    local name=$1 port
    shift
    command -v swtpm >/dev/null || hard_error "swtpm missing: run scripts/install-deps"
    port=${SWTPM_PORT[$name]:-$(free_port)}
    SWTPM_PORT[$name]=$port
    mkdir -p "$T/$name.swtpm"
    start_daemon "$name" swtpm socket --tpm2 --tpmstate dir="$T/$name.swtpm" \
        --server type=tcp,port="$port",bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
        --flags not-need-init,startup-clear "$@"
    if ! wait_port $((port + 1)) 30; then
        show_log "$name"
        fail "swtpm $name did not start"
    fi
}

# swtpm_tcti NAME: the TCTI configuration reaching swtpm NAME through tcti-swtpm.
swtpm_tcti() { echo "swtpm:host=127.0.0.1,port=${SWTPM_PORT[$1]}"; }
