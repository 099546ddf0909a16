# sctpmd's state handling and operations: corrupt or truncated state is refused and left byte for
# byte as it was; an encrypted state needs its key and refuses a wrong one; two daemons cannot
# share a state; --daemon returns once ready and writes its pidfile; bad flags, a port in use and
# an unusable directory each give a clear error.
. "$top_srcdir/tests/integration/lib.sh"

# A state with something in it.
sctpmd_start s
export TPM2TOOLS_TCTI=$(tcti s mssim-unix)
check "define an NV index" tpm2_nvdefine -Q 0x01500020 -C o -s 8 -a "ownerread|ownerwrite"
check "stop" stop_daemon s
perm=$T/s.state/tpm2-permall
check "the state file is private (0600)" test "$(stat -c %a "$perm")" = 600
check "the state directory is private (0700)" test "$(stat -c %a "$T/s.state")" = 700
cp "$perm" "$T/good"

# expect_refused DESCRIPTION PATTERN: sctpmd must exit non-zero naming PATTERN, state untouched.
expect_refused() {
    local st=0
    cp "$perm" "$T/before"
    timeout 60 sctpmd --state "$(dirname "$perm")" --port "${SCTPMD_PORT[s]}" --foreground \
        --fsync never "${extra[@]}" >"$T/refused.log" 2>&1 || st=$?
    check "$1: refused (exit $st)" test "$st" = 1
    check "$1: the error names the cause" grep -q "$2" "$T/refused.log"
    check "$1: the state file is byte-identical" cmp -s "$perm" "$T/before"
}
extra=()

# A flipped byte in the middle.
python3 - "$perm" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[len(b) // 2] ^= 0x40; open(p, 'wb').write(b)
PY
expect_refused "corrupt state" "fails its integrity check"
# Truncated.
cp "$T/good" "$perm"
truncate -s 1000 "$perm"
expect_refused "truncated state" "truncated"
# Not ours at all.
head -c 3000 /dev/urandom >"$perm"
expect_refused "garbage state" "not an sctpm state file"
cp "$T/good" "$perm"

# Encryption at rest.
head -c 32 /dev/urandom >"$T/key1"
openssl rand -hex 32 >"$T/key2"
sctpmd_start e --key-file "$T/key1"
export TPM2TOOLS_TCTI=$(tcti e mssim-tcp)
check "encrypted state: NV write" bash -c 'tpm2_nvdefine -Q 0x01500021 -C o -s 8 -a "ownerread|ownerwrite" && printf 12345678 | tpm2_nvwrite -Q 0x01500021 -C o -i -'
check "stop" stop_daemon e
check "encrypted state: the plaintext layout is not on disk" \
    bash -c "! grep -q 12345678 $T/e.state/tpm2-permall"
perm=$T/e.state/tpm2-permall
SCTPMD_PORT[s]=${SCTPMD_PORT[e]}
extra=(--key-file "$T/key2")
expect_refused "wrong key" "different key"
extra=()
expect_refused "no key for an encrypted state" "give its key with --key-file"
extra=(--key-file "$T/good")
expect_refused "a key file of the wrong size" "32 raw bytes or 64 hexadecimal digits"
sctpmd_start e --key-file "$T/key1"
check "the right key opens it and the data is there" \
    bash -c "tpm2_nvread 0x01500021 -C o -s 8 | grep -q 12345678"

# Two daemons, one state: the second is refused while the first keeps serving.
st=0
timeout 60 sctpmd --state "$T/e.state" --key-file "$T/key1" --port "$(free_port)" --foreground \
    >"$T/second.log" 2>&1 || st=$?
check "a second daemon on the same state is refused (exit $st)" test "$st" = 1
check "... with a clear message" grep -q "in use by another sctpmd" "$T/second.log"
check "the first daemon still serves" tpm2_getrandom -Q 8
check "stop" stop_daemon e

# --daemon: returns when ready, pidfile names the daemon, SIGTERM ends it and removes the pidfile.
p=$(free_port)
check "--daemon returns success once ready" \
    sctpmd --state "$T/d.state" --port "$p" --daemon --pidfile "$T/d.pid" --fsync never \
    --log-file "$T/d.log"
check "the pidfile names a live sctpmd" bash -c "kill -0 \$(cat $T/d.pid)"
check "it serves right away" env TPM2TOOLS_TCTI="mssim:host=127.0.0.1,port=$p" tpm2_getrandom -Q 8
check "it logged readiness" grep -q "ready in" "$T/d.log"
# Busy-polling after a command pays only when the client has a CPU of its own.
want=0
[ "$(nproc)" -ge 2 ] && want=50
check "with $(nproc) CPU(s) it polls $want us after a command" grep -q "busy-poll $want us" "$T/d.log"
p1=$(free_port)
check "on one CPU (taskset) it starts too" \
    taskset -c 0 sctpmd --state "$T/d1.state" --port "$p1" --daemon --pidfile "$T/d1.pid" \
    --fsync never --log-file "$T/d1.log"
check "... and sleeps at once after a command" grep -q "busy-poll 0 us" "$T/d1.log"
d1pid=$(cat "$T/d1.pid")
kill "$d1pid"
check "... and stops" poll 20 bash -c "! kill -0 $d1pid"
dpid=$(cat "$T/d.pid")
kill "$dpid"
check "SIGTERM ends it" poll 20 bash -c "! kill -0 $dpid"
check "the pidfile is removed" test ! -e "$T/d.pid"
check "an orderly shutdown was logged" grep -q "TPM shut down orderly" "$T/d.log"

# sd_notify: READY=1 once listening, STOPPING=1 on SIGTERM (systemd Type=notify).
cat >"$T/notify.py" <<'PY'
import os, socket, subprocess, sys
t, port = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(t + "/notify"); s.settimeout(60)
p = subprocess.Popen(["sctpmd", "--state", t + "/n.state", "--port", port, "--fsync", "never"],
                     env=dict(os.environ, NOTIFY_SOCKET=t + "/notify"), stderr=subprocess.DEVNULL)
first = s.recv(200).decode()
assert "READY=1" in first, first
with socket.create_connection(("127.0.0.1", int(port) + 1)):  # listening once READY was sent
    pass
p.terminate()
assert "STOPPING=1" in s.recv(200).decode()
assert p.wait() == 0
PY
check "sd_notify: READY=1 when listening, STOPPING=1 on SIGTERM" python3 "$T/notify.py" "$T" "$(free_port)"

# --daemon reports start-up errors to the terminal that started it.
st=0
sctpmd --state "$T/e.state" --port "$p" --daemon --pidfile "$T/d2.pid" >"$T/d2.out" 2>&1 || st=$?
check "--daemon with a bad state exits 1" test "$st" = 1
check "... and prints why" grep -q "give its key with --key-file" "$T/d2.out"

# Port in use.
sctpmd_start busy
st=0
timeout 60 sctpmd --state "$T/other.state" --port "${SCTPMD_PORT[busy]}" --foreground \
    >"$T/inuse.log" 2>&1 || st=$?
check "a port in use is refused (exit $st)" test "$st" = 1
check "... naming the port" grep -q "port ${SCTPMD_PORT[busy]}: Address already in use" "$T/inuse.log"
st=0
timeout 60 sctpmd --state "$T/other.state" --no-tcp --unix "$T/busy.sock" --foreground \
    >"$T/inuse2.log" 2>&1 || st=$?
check "a Unix socket in use is refused (exit $st)" test "$st" = 1
check "... naming the socket" grep -q "another process is listening on $T/busy.sock" "$T/inuse2.log"
check "the first daemon's socket still works" env TPM2TOOLS_TCTI="$(tcti busy mssim-unix)" \
    tpm2_getrandom -Q 8
check "the Unix sockets are 0600" test "$(stat -c %a "$T/busy.sock")$(stat -c %a "$T/busy.sock.ctrl")" = 600600

# An unusable state directory.
touch "$T/afile"
st=0
sctpmd --state "$T/afile/x" --port "$(free_port)" --foreground >"$T/dir.log" 2>&1 || st=$?
check "an unusable state directory is refused (exit $st)" test "$st" = 1
check "... with a clear message" grep -q "cannot create state directory $T/afile/x" "$T/dir.log"

# Bad flags: exit 2 and a message that names the flag.
bad_flag() {
    local st=0
    sctpmd "$@" >"$T/flag.log" 2>&1 || st=$?
    [ "$st" = 2 ] && grep -q "sctpmd: error:" "$T/flag.log"
}
check "missing --state" bad_flag --port 1234
check "--port 0" bad_flag --state "$T/x" --port 0
check "--port 65535 (no room for the control port)" bad_flag --state "$T/x" --port 65535
check "--port abc" bad_flag --state "$T/x" --port abc
check "--fsync sometimes" bad_flag --state "$T/x" --fsync sometimes
check "--ctrl-dialect tpm" bad_flag --state "$T/x" --ctrl-dialect tpm
check "--log loud" bad_flag --state "$T/x" --log loud
check "--no-tcp without --unix" bad_flag --state "$T/x" --no-tcp
check "--daemon with --foreground" bad_flag --state "$T/x" --daemon --foreground
check "an unknown flag" bad_flag --state "$T/x" --frobnicate
check "a stray argument" bad_flag --state "$T/x" extra
check "--help works" bash -c "sctpmd --help | grep -q -- --ctrl-dialect"

finish
