# Helpers for sctpm-client's integration tests; sourced after lib.sh and hub-lib.sh.
#
# A test starts a TPM (sctpmd, or swtpm) and a hub with TLS on free loopback ports, registers
# a device at the hub, imprints its key into a TPM slot with `sctpm provision`, and drives
# sctpm-client against the hub through --endpoint https://127.0.0.1:PORT (the hub's certificate
# names 127.0.0.1; tokens name the hub's host name, hub.sctpm.test).

# provision TCTI SLOT DEVICE: registers DEVICE at the hub and imprints its key into SLOT;
# key_of DEVICE gives the key afterwards.
provision() {
    local cs var
    cs=$(hub device add "$3") || fail "hub device add $3"
    var=KEY_${3//[^A-Za-z0-9]/_}
    printf -v "$var" '%s' "${cs##*SharedAccessKey=}"
    printf '%s' "$cs" | sctpm --tcti "$1" provision --slot "$2" >"$T/provision.out" 2>&1 ||
        { cat "$T/provision.out"; fail "sctpm provision --slot $2 ($3)"; }
}

# client ARGS...: sctpm-client. In check-valgrind it runs under memcheck: the binary behind
# libtool's wrapper script, with the uninstalled libsctpm on LD_LIBRARY_PATH (libtool
# --mode=execute would do the same but loses arguments holding newlines). With CLIENT_EXEC=exec
# the shell is replaced, so a background client's $! is the client's pid.
# shellcheck disable=SC2046
client() {
    if [ "${SCTPM_VALGRIND:-}" = 1 ]; then
        LD_LIBRARY_PATH="$top_builddir/shim/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
            ${CLIENT_EXEC:-} $(wrap sctpm-client) "$top_builddir/client/.libs/sctpm-client" "$@"
    else
        ${CLIENT_EXEC:-} sctpm-client "$@"
    fi
}

# sc ARGS...: the client for TCTI $TC, slot ${SLOT:-0}, queue ${QUEUE:-$T/queue}, against the
# current hub, trusting its CA.
sc() {
    client --tcti "$TC" --slot "${SLOT:-0}" --queue "${QUEUE:-$T/queue}" \
        --endpoint "https://127.0.0.1:$HUB_PORT" --ca-file "$HUB_DIR/ca.pem" "$@"
}

# sc_exec ARGS...: sc replacing the shell; for `sc_exec ... &`.
sc_exec() { CLIENT_EXEC=exec sc "$@"; }

# out / err: what the last `run_sc` printed; rc: its exit status.
# run_sc ARGS...: sc with stdout in $T/out and stderr in $T/err; sets rc; never fails itself.
run_sc() {
    rc=0
    sc "$@" >"$T/out" 2>"$T/err" || rc=$?
}

# exits N: for check, after run_sc: the exit status was N (else shows stderr).
exits() {
    [ "$rc" = "$1" ] && return 0
    echo "exit status $rc, want $1; stderr: $(cat "$T/err")" >&2
    return 1
}

# said FILE REGEX: FILE has a line matching REGEX (else shows FILE).
said() {
    grep -Eq -- "$2" "$1" && return 0
    echo "no line matching /$2/ in $1:" >&2
    cat "$1" >&2
    return 1
}

# hub_count DEVICE: how many messages the hub stored for DEVICE.
hub_count() { hub messages --device "$1" | wc -l; }

# hub_has DEVICE N: the hub stored exactly N messages for DEVICE (for poll).
hub_has() { [ "$(hub_count "$1")" = "$2" ]; }

# queued N: the client's queue holds exactly N messages.
queued() { [ "$(sc queue 2>/dev/null | sed -n 's/.* messages=\([0-9]*\) .*/\1/p')" = "$1" ]; }

# restart_hub NAME [ARGS...]: starts the hub again on the same port and data directory.
restart_hub() {
    local name=$1
    shift
    start_daemon "$name" sctpm-hub --data "$HUB_DIR" --port "$HUB_PORT" --hostname "$HUB_HOST" "$@"
    HUBS+=("$name")
    wait_port "$HUB_PORT" "$WAIT_DAEMON" || { show_log "$name"; hard_error "hub $name did not restart"; }
}

# no_secrets FILE KEY: FILE holds neither the device key nor any SAS signature.
no_secrets() {
    if grep -qF -- "$2" "$1"; then
        echo "the device key appears in $1" >&2
        return 1
    fi
    if grep -Eq 'sig=[^[]' "$1"; then
        echo "a signature appears in $1:" >&2
        grep -E 'sig=[^[]' "$1" >&2
        return 1
    fi
}

# On a failure, show what the clients said: the stderr files the tests keep in $T.
eval "lib_fail() $(declare -f fail | tail -n +2)"
fail() {
    local f
    for f in "$T"/err "$T"/*.err; do
        [ -s "$f" ] && { echo "--- $f (last lines)"; tail -n 15 "$f"; }
    done >&2
    lib_fail "$@"
}
