#!/usr/bin/env bash
# The public library: one context shared by 8 threads (every token verified with OpenSSL), and
# a long-lived context that keeps working while another process re-provisions and removes its
# slot underneath it.
. "$top_srcdir/tests/integration/lib.sh"

sctpmd_start s
TC=$(tcti s mssim-unix)
k1=$(openssl rand -base64 32)
k2=$(openssl rand -base64 32)
prov() { printf 'HostName=h.example;DeviceId=%s;SharedAccessKey=%s' "$2" "$3" | sctpm --tcti "$TC" provision --slot "$1" >/dev/null 2>&1; }
check "provision slot 2" prov 2 dev-a "$k1"
check "8 threads on one context: 800 tokens, all verify" bash -c "sctpm-lib '$TC' threads 2 '$k1' 8 800 | grep -qx '800 tokens from 8 threads, 0 failures'"

sctpm-lib "$TC" threads 5 "$k1" 8 400 >"$T/threads.out" 2>"$T/threads.err"
check "8 threads on an empty slot: every call fails" grep -qx '400 tokens from 8 threads, 400 failures' "$T/threads.out"
check "and each thread reads its own error, never another's or an empty one" \
    test "$(grep -c ': slot 5 is not provisioned (no NV index 0x01400105).$' "$T/threads.err")" = 400

coproc LIB { sctpm-lib "$TC" repl 2>&1; }
ask() { echo "$1" >&"${LIB[1]}"; read -r -t 20 reply <&"${LIB[0]}"; echo "$reply"; }
check "long-lived context: token with the first key" test "$(ask "2 $k1")" = ok
check "another process re-provisions the slot with a new key" prov 2 dev-bbbbbbbb "$k2"
check "long-lived context: the token now verifies with the new key" test "$(ask "2 $k2")" = ok
check "long-lived context: and not with the old one" test "$(ask "2 $k1")" = "bad signature"
check "another process deprovisions the slot" sctpm --tcti "$TC" deprovision --slot 2
r=$(ask "2 $k2")
check "long-lived context: the slot is reported as not provisioned ($r)" test "${r#error 18 }" != "$r"
check "another process provisions it again" prov 2 dev-c "$k1"
check "long-lived context: works again" test "$(ask "2 $k1")" = ok
# The coprocess's stderr is its stdout: anything the library printed would have been read as a
# reply above and failed the exact comparisons.
pid=$LIB_PID
exec {LIB[1]}>&-
check "the long-lived client exits cleanly" wait "$pid"
finish
