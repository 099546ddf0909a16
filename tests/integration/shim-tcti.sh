# The sctpm TCTI module (libtss2-tcti-sctpm.so.0) and its order: a TPM device node first (a
# simulated one: a pty bridged to sctpmd), then a running sctpmd (per-user socket, system socket),
# then a simulator on the localhost port (mssim, or swtpm), else a per-user sctpmd it starts
# itself: one daemon however many clients race, gone after its idle period, state kept.
#
# Each case gets its own XDG_RUNTIME_DIR and XDG_STATE_HOME under $T, device paths that do not
# exist, no system socket and a localhost port with nothing on it, so nothing on this machine
# (a real TPM, a system sctpmd, something on 2321) can answer in its place.
. "$top_srcdir/tests/integration/lib.sh"

command -v tpm2_getrandom >/dev/null || hard_error "tpm2-tools missing: run scripts/install-deps"
MOD="$top_builddir/shim/.libs/libtss2-tcti-sctpm.so.0"
[ -e "$MOD" ] || hard_error "$MOD is not built"
# tctildr resolves `-T sctpm` with dlopen("libtss2-tcti-sctpm.so.0"): the build tree's copy.
export LD_LIBRARY_PATH="$top_builddir/shim/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
unset TPM2TOOLS_TCTI

# In an ASan build the module is built with ASan, and only programs built with ASan can load it:
# tpm2-tools are not, and preloading the ASan runtime into them hangs them at exit (in libp11-kit's
# destructor). There the module is exercised through tests/tpm-client (ESAPI over tctildr, like
# tpm2-tools, but built here), and tpm2-tools reach the daemon the module started over plain
# mssim for the stateful steps.
ASAN=0
grep -q '^#define SCTPM_SANITIZERS 1' "$top_builddir/config.h" && ASAN=1

# mod_random TCTI: an ESAPI program gets random bytes through the sctpm module configured as TCTI.
mod_random() {
    if [ $ASAN = 1 ]; then
        tpm-client "$1" 2 >/dev/null
    else
        tpm2_getrandom -T "$1" --hex 8 | grep -Eq '^[0-9a-f]{16}$'
    fi
}
# tools_tcti: what tpm2-tools are given for stateful steps: the module itself, or in an ASan build
# the per-user daemon that the module finds or starts (tcti-which runs the same selection).
tools_tcti() {
    if [ $ASAN = 1 ]; then
        tcti-which >/dev/null && echo "mssim:path=$SOCK"
    else
        echo sctpm
    fi
}

SCTPMD="$top_builddir/emulator/sctpmd"

# fresh NAME: a clean per-user world for one case.
fresh() {
    CASE=$T/$1
    mkdir -p -m 700 "$CASE/run"
    export XDG_RUNTIME_DIR=$CASE/run XDG_STATE_HOME=$CASE/state
    export SCTPM_TPM_DEVICES="$CASE/no-tpmrm0:$CASE/no-tpm0"
    export SCTPM_SYSTEM_SOCKET="$CASE/no-system.sock"
    export SCTPM_MSSIM_PORT; SCTPM_MSSIM_PORT=$(free_port)
    export SCTPM_SCTPMD=$SCTPMD SCTPM_IDLE_EXIT=600
    RUN=$XDG_RUNTIME_DIR/sctpm
    SOCK=$RUN/sctpmd.sock
}

autopid() { head -c 32 "$RUN/sctpmd.pid" 2>/dev/null | tr -dc 0-9; }
# The auto-started daemons of this case, by their command line.
ndaemons() { pgrep -fc -- "sctpmd --state $XDG_STATE_HOME/sctpm --unix" || true; }
# same_daemon PID: the one auto-started daemon is still PID.
same_daemon() { [ "$(autopid)" = "$1" ] && [ "$(ndaemons)" = 1 ]; }
one_daemon() {
    local pid n
    pid=$(autopid)
    n=$(ndaemons)
    [ -n "$pid" ] && kill -0 "$pid" && [ "$n" = 1 ] ||
        { echo "pidfile pid '$pid', $n sctpmd processes" >&2; return 1; }
}
no_daemon() { [ ! -e "$RUN/sctpmd.pid" ] && [ "$(ndaemons)" = 0 ]; }
# gone PID: the process has exited. A detached daemon's zombie waits for whoever adopted it (init,
# or a subreaper) to reap it, which may take a while: a zombie counts as gone.
gone() {
    local st
    kill -0 "$1" 2>/dev/null || return 0
    st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)
    [ -z "$st" ] || [ "$st" = Z ]
}
stop_auto() {
    local pid
    pid=$(autopid)
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" && poll 30 gone "$pid"
}

quiet() { "$@" >/dev/null; }

# chose CONF REASON: tcti-which (select_tcti with the sctpm order) chose exactly CONF, gave a
# reason starting with REASON, and a command went through.
chose() {
    local out
    out=$(tcti-which) || { echo "$out" >&2; return 1; }
    grep -qxF "conf: $1" <<<"$out" && grep -qF "reason: $2" <<<"$out" ||
        { echo "$out" >&2; return 1; }
}

nv_write() {
    local tcti
    tcti=$(tools_tcti) &&
        tpm2_nvdefine -T "$tcti" -Q 0x01500020 -C o -s 16 -a "ownerread|ownerwrite" &&
        printf 'persist me, TPM!' >"$T/nv.in" &&
        tpm2_nvwrite -T "$(tools_tcti)" -Q 0x01500020 -C o -i "$T/nv.in"
}
nv_reads_back() {
    tpm2_nvread -T "$(tools_tcti)" -Q 0x01500020 -C o -s 16 -o "$T/nv.out" &&
        cmp -s "$T/nv.in" "$T/nv.out"
}

# ---- 1. Nothing running, nothing configured: the embedded default --------------------------------
fresh auto
check "nothing running: tpm2_getrandom -T sctpm starts sctpmd and works" mod_random sctpm
check "exactly one sctpmd runs, the one in $RUN/sctpmd.pid" one_daemon
first=$(autopid)
check "the runtime and state directories are private (0700)" \
    bash -c "[ \$(stat -c %a '$RUN') = 700 ] && [ \$(stat -c %a '$XDG_STATE_HOME/sctpm') = 700 ]"
check "select reports the running per-user sctpmd" \
    chose "mssim:path=$SOCK" "a running sctpmd answers on $SOCK (per-user socket)"
if [ $ASAN = 0 ]; then
    check "TPM2TOOLS_TCTI=sctpm works" quiet env TPM2TOOLS_TCTI=sctpm tpm2_getrandom --hex 8
fi
check "the module by its full path works" mod_random "$MOD"
check "module options: -T sctpm:devices=,port=0,autostart=no" mod_random sctpm:devices=,port=0,autostart=no
check "a tpm2-tools command with state: NV define and write through -T sctpm" nv_write
check "still the same daemon" same_daemon "$first"
expect_fail "an unknown module option is refused" mod_random sctpm:colour=blue
check "the daemon stops on SIGTERM" stop_auto
check "after it, the NV index reads back from a newly started daemon" nv_reads_back
check "that is a new daemon" bash -c "[ -n '$(autopid)' ] && [ '$(autopid)' != '$first' ]"
stop_auto

# ---- 2. Eight processes at once share one daemon ----------------------------------------------
fresh race
# A FIFO we hold open read-write (so nobody blocks opening it) is the starting gate: each client
# waits for one line, and the eight lines are written at once.
mkfifo "$T/go"
exec 3<>"$T/go"
pids=()
for i in 1 2 3 4 5 6 7 8; do
    bash -c 'read -r _ <"$1"; exec tpm-client sctpm 20' _ "$T/go" >"$T/race.$i.out" 2>&1 &
    pids+=($!)
done
printf '\n\n\n\n\n\n\n\n' >&3
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
exec 3>&-
[ $failed = 0 ] || cat "$T"/race.*.out >&2
check "eight clients started at once all succeed (20 HMACs each)" [ $failed = 0 ]
check "they share one daemon" one_daemon
check "it was started once" bash -c "[ \$(grep -c 'ready in' '$RUN/sctpmd.log') = 1 ]"
stop_auto

# ---- 3. Idle exit, and the state survives into the next start --------------------------------
fresh idle
export SCTPM_IDLE_EXIT=2
check "NV define and write (daemon with --idle-exit 2)" nv_write
pid=$(autopid)
check "a connected client keeps the idle daemon alive (rawsend holds one for 3 s)" \
    bash -c "rawsend 'unix:$SOCK' '' 1 3000 >/dev/null; kill -0 $pid"
check "the daemon exits by itself once idle" poll 30 gone "$pid"
check "it said why and saved the state" \
    bash -c "grep -q 'no client for 2 s: shutting down (--idle-exit)' '$RUN/sctpmd.log' && grep -q 'state saved' '$RUN/sctpmd.log'"
check "it removed its pidfile and socket" bash -c "[ ! -e '$RUN/sctpmd.pid' ] && [ ! -e '$SOCK' ]"
export SCTPM_IDLE_EXIT=600
check "the next use starts a daemon again and the NV index reads back" nv_reads_back
check "one daemon again" one_daemon
stop_auto

# ---- 4. A running sctpmd is preferred over starting one -------------------------------------
fresh running
mkdir -m 700 "$RUN"
start_daemon own "$SCTPMD" --state "$T/own.state" --unix "$SOCK" --no-tcp --foreground --fsync never
wait_socket "$SOCK.ctrl" || { show_log own; fail "sctpmd on $SOCK did not start"; }
check "an sctpmd on the per-user socket is used" \
    chose "mssim:path=$SOCK" "a running sctpmd answers on $SOCK (per-user socket)"
check "tpm2_getrandom -T sctpm uses it" mod_random sctpm
check "nothing was started" no_daemon
stop_daemon own
export SCTPM_SYSTEM_SOCKET=$T/system.sock
start_daemon system "$SCTPMD" --state "$T/system.state" --unix "$SCTPM_SYSTEM_SOCKET" --no-tcp \
    --foreground --fsync never
wait_socket "$SCTPM_SYSTEM_SOCKET.ctrl" || { show_log system; fail "system sctpmd did not start"; }
check "without a per-user one, the system socket is used" \
    chose "mssim:path=$SCTPM_SYSTEM_SOCKET" "a running sctpmd answers on $SCTPM_SYSTEM_SOCKET (system socket)"
check "nothing was started" no_daemon
stop_daemon system

# ---- 5. A simulator on the localhost port, when no socket answers ----------------------------
fresh port
port=$SCTPM_MSSIM_PORT
start_daemon tcp "$SCTPMD" --state "$T/tcp.state" --port "$port" --foreground --fsync never
wait_port $((port + 1)) || { show_log tcp; fail "sctpmd on port $port did not start"; }
check "sctpmd on localhost:$port is used over mssim" \
    chose "mssim:host=127.0.0.1,port=$port" "a TPM simulator answers on localhost:$port (mssim protocol)"
check "tpm2_getrandom -T sctpm uses it" mod_random sctpm
check "nothing was started" no_daemon
stop_daemon tcp
if command -v swtpm >/dev/null; then
    mkdir -p "$T/swtpm"
    start_daemon swtpm swtpm socket --tpm2 --tpmstate dir="$T/swtpm" --flags not-need-init,startup-clear \
        --server type=tcp,port="$port" --ctrl type=tcp,port=$((port + 1))
    wait_port $((port + 1)) || { show_log swtpm; fail "swtpm did not start"; }
    check "a swtpm on the port is recognised and used through tcti-swtpm" \
        chose "swtpm:host=127.0.0.1,port=$port" "a swtpm answers on localhost:$port"
    check "nothing was started" no_daemon
    stop_daemon swtpm
else
    note "swtpm not installed: the swtpm-on-the-port case is not run"
fi
# Something on the port that is no TPM simulator (accepts and closes): passed over, not hung on.
start_daemon notpm testd "$port" 0
start_daemon notpm-ctrl testd $((port + 1)) 0
wait_port "$port" && wait_port $((port + 1)) || fail "testd did not start"
tcti-which >"$T/notpm.out" 2>&1
check "a non-TPM service on the port is passed over and sctpmd started instead" \
    grep -qF "reason: started a per-user sctpmd" "$T/notpm.out"
check "select says why it passed the port over" \
    grep -qF "localhost:$port: control port $((port + 1)) does not acknowledge POWER_ON" "$T/notpm.out"
stop_daemon notpm
stop_daemon notpm-ctrl
stop_auto

# ---- 6. A TPM device node comes first: a pty bridged to an sctpmd ----------------------------
fresh dev
start_daemon devtpm "$SCTPMD" --state "$T/devtpm.state" --unix "$T/devtpm.sock" --no-tcp \
    --foreground --fsync never
wait_socket "$T/devtpm.sock.ctrl" || { show_log devtpm; fail "sctpmd for the device did not start"; }
start_daemon ptybridge ptybridge "$T/devtpm.sock" "$T/pty.path"
wait_file "$T/pty.path" || { show_log ptybridge; fail "ptybridge did not start"; }
pts=$(cat "$T/pty.path")
check "the simulated device $pts is a character device" test -c "$pts"
export SCTPM_TPM_DEVICES="$CASE/no-tpmrm0:$pts"
check "the device is chosen, the missing one named as skipped" \
    bash -c "tcti-which | grep -qxF 'conf: device:$pts' && tcti-which | grep -qF 'skipped: $CASE/no-tpmrm0: does not exist'"
before=$(grep -c 'ptybridge: command 0x0000017b' "$T/ptybridge.log")
check "tpm2_getrandom -T sctpm works through the device" mod_random sctpm
check "the command went through the device (ptybridge relayed it)" bash -c "[ \$(grep -c 'ptybridge: command 0x0000017b' '$T/ptybridge.log') -gt $before ]"
pcr_tcti=sctpm
[ $ASAN = 1 ] && pcr_tcti=device:$pts
check "a tpm2-tools command with more output works too (pcrread)" \
    bash -c "tpm2_pcrread -T '$pcr_tcti' sha256:0 | grep -q '0 : 0x'"
check "no sctpmd was started" no_daemon
touch "$CASE/regular-file"
export SCTPM_TPM_DEVICES="$CASE/regular-file:$pts"
check "a node that is not a character device is skipped, with the reason" \
    bash -c "tcti-which | grep -qF 'skipped: $CASE/regular-file: not a character device'"
# A device that exists but cannot be opened: run select as nobody against the root-only pty.
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null &&
    nobody test -x "$top_builddir/tests/tcti-which" 2>/dev/null; then
    check "a device that cannot be opened is skipped with the reason (as nobody: EACCES)" \
        bash -c "setpriv --reuid=65534 --regid=65534 --clear-groups env SCTPM_TPM_DEVICES='$pts' \
            SCTPM_AUTOSTART=no SCTPM_MSSIM_PORT=0 SCTPM_SYSTEM_SOCKET= HOME=/nonexistent \
            XDG_RUNTIME_DIR= XDG_STATE_HOME= '$top_builddir/tests/tcti-which' |
            grep -qF 'skipped: $pts: cannot open it: Permission denied'"
else
    note "not root, or the build tree is closed to nobody: the cannot-open case is not run"
fi
# The real default path: /dev/tpmrm0, in a private mount namespace where the pty is bound there.
mkdir -p "$T/mnt-probe"
if [ "$(id -u)" = 0 ] &&
    unshare -m sh -c "mount --make-rprivate / && mount -t tmpfs probe '$T/mnt-probe'" 2>/dev/null; then
    cat >"$T/mountns.sh" <<INNER
set -e
mount --make-rprivate /
mkdir -p "$T/olddev"
mount --rbind /dev "$T/olddev"
mount -t tmpfs -o mode=755 sctpm-test-dev /dev
for n in null zero full random urandom; do touch /dev/\$n; mount --bind "$T/olddev/\$n" /dev/\$n; done
touch /dev/tpmrm0
mount --bind "$T/olddev/${pts#/dev/}" /dev/tpmrm0
unset SCTPM_TPM_DEVICES
tcti-which | tee "$T/mountns.out"
grep -qxF 'conf: device:/dev/tpmrm0' "$T/mountns.out"
grep -qF 'reason: /dev/tpmrm0 exists and opened (kernel resource manager)' "$T/mountns.out"
if [ $ASAN = 1 ]; then tpm-client sctpm 2; else tpm2_getrandom -T sctpm --hex 8 | grep -Eq '^[0-9a-f]{16}\$'; fi
INNER
    check "with the default device list, a node at /dev/tpmrm0 is used (private mount namespace)" \
        unshare -m bash "$T/mountns.sh"
else
    note "no private mount namespace here: the /dev/tpmrm0 case is not run"
fi
check "still no sctpmd was started" no_daemon
stop_daemon ptybridge
stop_daemon devtpm

# ---- 7. Installed as libtss2-tcti-default.so: programs that configure nothing -----------------
fresh default
mkdir -p "$T/lib"
ln -s "$MOD" "$T/lib/libtss2-tcti-default.so"
if [ $ASAN = 1 ]; then
    check "as libtss2-tcti-default.so, an ESAPI program with no TCTI gets the sctpm order" \
        quiet env LD_LIBRARY_PATH="$T/lib:$LD_LIBRARY_PATH" tpm-client "" 2
else
    check "as libtss2-tcti-default.so, tpm2_getrandom without -T gets the sctpm order" \
        quiet env LD_LIBRARY_PATH="$T/lib:$LD_LIBRARY_PATH" tpm2_getrandom --hex 8
fi
check "and that started the per-user sctpmd" one_daemon
stop_auto

# ---- 8. A runtime directory others can write to is refused ----------------------------------
fresh unsafe
mkdir -p "$RUN"
chmod 777 "$RUN"
check "a group/world-writable runtime directory is refused, with the reason" \
    bash -c "! tcti-which >'$T/unsafe.out'; grep -qF 'reason: cannot start sctpmd: $RUN is writable by others (mode 0777)' '$T/unsafe.out'"
check "and nothing was started" no_daemon

finish
