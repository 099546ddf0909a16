#!/usr/bin/env bash
# The sctpm CLI and libsctpm with nothing configured: no --tcti, no SCTPM_TCTI, no TPM device,
# nothing running. The first command starts the per-user sctpmd, says so, and every later
# command and library context uses that one daemon; the identity survives its idle exit.
. "$top_srcdir/tests/integration/lib.sh"

mkdir -p -m 700 "$T/run"
export XDG_RUNTIME_DIR=$T/run XDG_STATE_HOME=$T/state
export SCTPM_TPM_DEVICES="$T/no-tpmrm0:$T/no-tpm0" SCTPM_SYSTEM_SOCKET="$T/no-system.sock"
export SCTPM_MSSIM_PORT; SCTPM_MSSIM_PORT=$(free_port)
export SCTPM_SCTPMD="$top_builddir/emulator/sctpmd" SCTPM_IDLE_EXIT=600
unset SCTPM_TCTI TPM2TOOLS_TCTI
SOCK=$T/run/sctpm/sctpmd.sock
daemons() { pgrep -f -- "--unix $SOCK" | wc -l; }

check "status with nothing configured" bash -c "sctpm status >'$T/status' 2>&1"
check "it is EMULATED" grep -q '^TPM: *EMULATED$' "$T/status"
check "the TCTI is the per-user socket" grep -qx "TCTI: *mssim:path=$SOCK" "$T/status"
check "and says it started the per-user sctpmd" grep -q "^TCTI chosen: *started a per-user sctpmd (state $T/state/sctpm" "$T/status"
check "one daemon runs" test "$(daemons)" = 1
key=$(openssl rand -base64 32)
check "provision with nothing configured" bash -c "printf 'HostName=h.example;DeviceId=auto;SharedAccessKey=%s' '$key' | sctpm provision >/dev/null 2>&1"
check "the next command finds the running daemon" bash -c "sctpm status | grep -q '^TCTI chosen: .*running'"
verify() { python3 "$top_srcdir/tests/integration/sas-verify.py" "$@"; }
tok=$(sctpm token 2>/dev/null)
check "the token verifies" verify "$tok" "$key" h.example/devices/auto
check "eight library contexts at once share the daemon" bash -c "for i in 1 2 3 4 5 6 7 8; do sctpm-lib '' threads 0 '$key' 2 20 >/dev/null & done; wait"
check "still one daemon" test "$(daemons)" = 1
check "--require-hardware refuses the auto-started emulator" bash -c "sctpm --require-hardware token 2>&1 >/dev/null | grep -q 'hardware TPM required, but the TPM at mssim:path=$SOCK is EMULATED'"
# The daemon leaves when idle; the next command starts it again on the same state.
pid=$(tr -dc 0-9 <"$T/run/sctpm/sctpmd.pid")
check "stop the daemon as its idle exit would" kill -TERM "$pid"
check "it is gone" poll 20 bash -c "! kill -0 $pid"
tok=$(sctpm token 2>/dev/null)
check "the next token restarts it and the identity is still there" verify "$tok" "$key" h.example/devices/auto
check "one daemon again" test "$(daemons)" = 1
finish
