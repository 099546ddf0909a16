#!/usr/bin/env bash
# Security properties, checked on real daemons under a permissive umask (000), so that every
# private file and socket is private because our code made it so:
#   - Unix sockets are 0600, or 0660 and owned by the group asked for;
#   - TCP listeners are on loopback only unless an address was asked for (sctpmd --listen), and
#     the hub never listens beyond loopback;
#   - state directories, state files, the EK CA key, the hub's CA and server keys and database,
#     the client's queue and the auto-started emulator's directories are not readable by others;
#   - a full run (provision, tokens, telemetry, cloud-to-device) with every component logging at
#     trace level, tpm2-tss included, leaves no byte of the device key in any log, in any form,
#     and no SAS signature.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"
. "$top_srcdir/tests/integration/client-lib.sh"

umask 000

# listening PID: the addresses PID's TCP sockets listen on, one "ADDR PORT" per line.
listening() {
    python3 - "$1" <<'PY'
import os, socket, sys
pid = sys.argv[1]
inodes = set()
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        link = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        continue
    if link.startswith("socket:["):
        inodes.add(link[8:-1])
for fam, path in ((socket.AF_INET, "/proc/net/tcp"), (socket.AF_INET6, "/proc/net/tcp6")):
    try:
        lines = open(path).read().splitlines()[1:]
    except OSError:
        continue
    for line in lines:
        f = line.split()
        if f[3] != "0A" or f[9] not in inodes:  # 0A: LISTEN
            continue
        addr, port = f[1].split(":")
        raw = bytes.fromhex(addr)
        # /proc prints each 32-bit word in host order.
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
        print(socket.inet_ntop(fam, raw), int(port, 16))
PY
}

# only_loopback PID: PID listens on TCP, and on 127.0.0.1 or ::1 only.
only_loopback() {
    local l
    l=$(listening "$1")
    [ -n "$l" ] || { echo "pid $1 listens on no TCP port" >&2; return 1; }
    if echo "$l" | grep -qvE '^(127\.0\.0\.1|::1) '; then
        echo "pid $1 listens beyond loopback:" >&2
        echo "$l" >&2
        return 1
    fi
}

# private PATH...: no PATH (files, or directories and everything below them) is readable,
# writable or searchable by group or others, certificates (*.pem not named *key*) aside, which
# are public; prints the offenders.
private() {
    local bad
    bad=$(find "$@" -perm /077 ! \( -type f -name '*.pem' ! -name '*key*' \) -printf '%m %p\n')
    [ -z "$bad" ] || { echo "not private: $bad" >&2; return 1; }
}

mode() { stat -c %a "$1"; }

# ---- sctpmd: sockets, listeners, state ----
sctpmd_start tpm --log trace
pid=$(daemon_pid tpm)
check "sctpmd: the command socket is 0600 under umask 000" test "$(mode "$T/tpm.sock")" = 600
check "sctpmd: the control socket is 0600" test "$(mode "$T/tpm.sock.ctrl")" = 600
check "sctpmd: listens on loopback only by default" only_loopback "$pid"
check "sctpmd: both TCP ports, 127.0.0.1 only" \
    test "$(listening "$pid" | sort | tr '\n' ' ')" = \
    "127.0.0.1 ${SCTPMD_PORT[tpm]} 127.0.0.1 $((SCTPMD_PORT[tpm] + 1)) "
check "sctpmd: the state directory and everything in it are private" private "$T/tpm.state"
check "sctpmd: the EK CA key is 0600" test "$(mode "$T/tpm.state/ek-ca.key")" = 600
check "sctpmd: the EK CA certificate stays readable (it is public)" test -r "$T/tpm.state/ek-ca.pem"

# --unix-group: the group may use the sockets, others may not. The group must be one this user
# may give files to: the primary group always is.
grp=$(id -gn)
start_daemon grp sctpmd --state "$T/grp.state" --unix "$T/grp.sock" --no-tcp --unix-group "$grp" \
    --fsync never
check "--no-tcp: up" wait_socket "$T/grp.sock.ctrl" "$WAIT_DAEMON"
check "--unix-group: the sockets are 0660" test "$(mode "$T/grp.sock")$(mode "$T/grp.sock.ctrl")" = 660660
check "--unix-group: owned by $grp" test "$(stat -c %G "$T/grp.sock")" = "$grp"
check "--no-tcp: no TCP listener at all" test -z "$(listening "$(daemon_pid grp)")"
stop_daemon grp
expect_fail "--unix-group with an unknown group is refused" \
    "$top_builddir/emulator/sctpmd" --state "$T/g2.state" --no-tcp --unix "$T/g2.sock" \
    --unix-group no-such-group-sctpm
check "... saying which group" bash -c "'$top_builddir/emulator/sctpmd' --state '$T/g3.state' \
    --no-tcp --unix '$T/g3.sock' --unix-group no-such-group-sctpm 2>&1 | grep -q no-such-group-sctpm"

# --listen localhost: loopback in both families (::1 only where this host has IPv6).
p=$(free_port)
start_daemon lh sctpmd --state "$T/lh.state" --port "$p" --listen localhost --no-rm --fsync never
check "--listen localhost: up" wait_port $((p + 1)) "$WAIT_DAEMON"
check "--listen localhost: loopback only" only_loopback "$(daemon_pid lh)"
# listens_on PID ADDR PORT: PID listens on exactly ADDR PORT (among others).
listens_on() { listening "$1" | grep -xF "$2 $3" >/dev/null; }
if grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null; then
    check "--listen localhost: on ::1 too" listens_on "$(daemon_pid lh)" ::1 "$p"
fi
stop_daemon lh
# Asked for: an address beyond loopback is bound, with a warning. Only the listener is looked at;
# no traffic is sent to it.
p=$(free_port)
start_daemon any sctpmd --state "$T/any.state" --port "$p" --listen 0.0.0.0 --no-rm --fsync never
check "--listen 0.0.0.0: up" wait_port $((p + 1)) "$WAIT_DAEMON"
check "--listen 0.0.0.0: bound to every address, as asked" listens_on "$(daemon_pid any)" 0.0.0.0 $((p + 1))
check "--listen 0.0.0.0: warns that it is beyond loopback" grep -q 'beyond loopback' "$T/any.log"
stop_daemon any

# Numeric addresses are taken as they are, without the resolver; clients are logged by their
# numeric address and port.
# numeric_listener NAME ADDR SHOWN [FLAGS...]: sctpmd started with FLAGS listens on ADDR (logged as
# SHOWN) and nothing else, and names a client of ADDR by its address and port.
numeric_listener() {
    local name=$1 addr=$2 shown=$3 p re
    shift 3
    p=$(free_port)
    re=$(printf '%s' "$addr" | sed 's/\./\\./g')
    start_daemon "$name" sctpmd --state "$T/$name.state" --port "$p" --no-rm --fsync never \
        --log debug "$@"
    check "$addr: up" poll "$WAIT_DAEMON" grep -qF "listening on $shown:$((p + 1))" "$T/$name.log"
    check "$addr: listens there and nowhere else" test "$(listening "$(daemon_pid "$name")" | sort)" = \
        "$(printf '%s %s\n%s %s' "$addr" "$p" "$addr" $((p + 1)))"
    tpm2_getrandom -T "mssim:host=$addr,port=$p" 8 >/dev/null
    check "$addr: a client is named by address and port" \
        grep -qE "connection [0-9]+: tcp $re:[0-9]+ on the command channel" "$T/$name.log"
    stop_daemon "$name"
}
numeric_listener v4 127.0.0.1 127.0.0.1
if grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null; then
    numeric_listener v6 ::1 '[::1]' --listen ::1
fi
# An address this host does not have: bind() refuses it, and the error names it.
expect_fail "--listen 192.0.2.1: refused" "$top_builddir/emulator/sctpmd" --state "$T/tn.state" \
    --port "$(free_port)" --listen 192.0.2.1 --fsync never --foreground >"$T/tn.log" 2>&1
check "... naming the address" grep -q "cannot listen on 192.0.2.1 port" "$T/tn.log"
# A host name goes through the resolver. In a network and mount namespace of our own, with an
# /etc/hosts of our own, a name it lists is bound and one nobody knows is a clear error; no query
# leaves the namespace, which has only a loopback interface.
if unshare -n -m true 2>/dev/null; then
    echo "127.0.0.1 sctpm-test-name" >"$T/hosts"
    cat >"$T/names.sh" <<INNER
mount --bind "$T/hosts" /etc/hosts || exit 3
ip link set lo up
"$top_builddir/emulator/sctpmd" --state "$T/nm.state" --listen sctpm-test-name --fsync never \
    --foreground >"$T/nm.log" 2>&1 &
for i in \$(seq 500); do (exec 3<>/dev/tcp/127.0.0.1/2322) 2>/dev/null && break; sleep 0.02; done
kill \$! && wait \$!
"$top_builddir/emulator/sctpmd" --state "$T/nx.state" --listen no-such-name.invalid \
    --fsync never --foreground >"$T/nx.log" 2>&1 && exit 4
exit 0
INNER
    check "names: run in a namespace of their own" unshare -n -m bash "$T/names.sh"
    check "--listen NAME: bound where /etc/hosts says" \
        grep -q "listening on 127.0.0.1:2321 (command channel)" "$T/nm.log"
    check "--listen NAME nobody knows: a clear error" \
        grep -q "cannot resolve listen address 'no-such-name.invalid'" "$T/nx.log"
else
    note "no namespaces here (not root?): host-name listeners not checked"
fi

# ---- the hub ----
start_hub hub "$T/hub" --log trace
check "hub: listens on loopback only" only_loopback "$(daemon_pid hub)"
check "hub: the data directory is 0700" test "$(mode "$T/hub")" = 700
check "hub: the CA key, server key and database are private" \
    private "$T/hub/ca-key.pem" "$T/hub/server-key.pem" "$T/hub/hub.db"
check "hub: the CA certificate stays readable" test "$(mode "$T/hub/ca.pem")" = 644

# ---- a full run at trace level ----
export TSS2_LOG=all+trace
TC=$(tcti tpm mssim-unix)
cs=$(hub device add dev) || fail "hub device add"
key=${cs##*SharedAccessKey=}
check "provision at trace level" bash -c "printf '%s' '$cs' | sctpm --log trace --tcti '$TC' provision --slot 0 >'$T/provision.out' 2>'$T/provision.err'"
check "a token at trace level" bash -c "sctpm --log trace --tcti '$TC' token >'$T/token.out' 2>'$T/token.err'"
check "a DPS-style token at trace level" bash -c "sctpm --log trace --tcti '$TC' token --scope 'scope/registrations/dev' --expiry 4102444800 --skn registration >'$T/dps.out' 2>'$T/dps.err'"
check "connection-string at trace level" bash -c "sctpm --log trace --tcti '$TC' connection-string >'$T/cs.out' 2>'$T/cs.err'"
QUEUE=$T/queue
run_sc --log trace -v send hello
check "telemetry at trace level" exits 0
cp "$T/out" "$T/send.out"; cp "$T/err" "$T/send.err"
check "the message arrived" poll 30 hub_has dev 1
hub c2d send dev "to-device" >/dev/null || fail "c2d send"
run_sc --log trace -v receive --complete
check "cloud-to-device at trace level" exits 0
cp "$T/out" "$T/receive.out"; cp "$T/err" "$T/receive.err"
check "the client's queue files are private" private "$QUEUE"*
check "... and it went through tpm2-tss at trace level" grep -q '^trace:' "$T/token.err"
check "... and sctpmd logged at trace level" grep -q ' TRACE ' "$T/tpm.log"

# The auto-started per-user emulator: its run and state directories.
mkdir -p -m 700 "$T/run"
auto_env=(XDG_RUNTIME_DIR="$T/run" XDG_STATE_HOME="$T/state" SCTPM_TPM_DEVICES="$T/none"
    SCTPM_SYSTEM_SOCKET="$T/none.sock" SCTPM_MSSIM_PORT="$(free_port)"
    SCTPM_SCTPMD="$top_builddir/emulator/sctpmd" SCTPM_IDLE_EXIT=600 SCTPM_TCTI= TPM2TOOLS_TCTI=)
check "auto-start at trace level" env "${auto_env[@]}" bash -c "sctpm --log trace status >'$T/auto.out' 2>'$T/auto.err'"
check "auto-start: it started a per-user sctpmd" grep -q 'started a per-user sctpmd' "$T/auto.out"
check "auto-start: the run directory and its sockets are private" private "$T/run/sctpm"
check "auto-start: the state directory is private" private "$T/state/sctpm"
if [ -f "$T/run/sctpm/sctpmd.pid" ]; then
    kill -TERM "$(tr -dc 0-9 <"$T/run/sctpm/sctpmd.pid")" 2>/dev/null
fi

stop_daemon tpm
check "hub stops cleanly" stop_hub hub
logs=("$T"/*.log "$T"/*.err "$T"/*.out)
check "the scan covers the daemons' and the commands' logs (${#logs[@]} files)" test "${#logs[@]}" -ge 12
check "no byte of the device key in any log, in any form" \
    python3 "$top_srcdir/tests/integration/secret-scan.py" "$key" "${logs[@]}"
# Positive controls: the scanner finds the key split over a tpm2-tss hex dump, and in base64.
hex=$(printf '%s' "$key" | base64 -d | od -An -tx1 -v | tr -d ' \n')
printf 'debug:tcti:x() Writing 48 bytes: (size=48):\n0000: 80010000%s  ................\n0010: %s  ................\n' \
    "${hex:0:24}" "${hex:24}" >"$T/control.dump"
printf 'SharedAccessKey=%s\n' "$key" >"$T/control.b64"
for f in "$T"/control.*; do
    expect_fail "the scanner finds the key in ${f##*/} (positive control)" \
        python3 "$top_srcdir/tests/integration/secret-scan.py" "$key" "$f"
done
# Tokens are what `sctpm token` and `connection-string` print; nothing else may show one.
check "no SAS signature in any log" bash -c "! grep -l -E 'sig=[A-Za-z0-9%]{20}' $T/*.log $T/*.err"
finish
