#!/usr/bin/env bash
# Bad input to sctpm: each is one line on stderr naming the field or the cause (with the raw
# TSS2 code where the TPM stack failed), a documented exit code, and no change to the TPM.
. "$top_srcdir/tests/integration/lib.sh"

sctpmd_start s
TC=$(tcti s mssim-unix)
KEY=$(openssl rand -base64 32)
check "provision a good slot 0" bash -c "printf 'HostName=h.example;DeviceId=good;SharedAccessKey=%s' '$KEY' | sctpm --tcti '$TC' provision >/dev/null 2>&1"

# expect CODE WORDS COMMAND...: the command exits CODE and its last stderr line contains WORDS.
expect() {
    local code=$1 words=$2 st=0
    shift 2
    "$@" >"$T/out" 2>"$T/err" || st=$?
    if [ "$st" != "$code" ]; then
        echo "exit $st, expected $code; stderr:"
        cat "$T/err"
        return 1
    fi
    tail -n 1 "$T/err" | grep -qF -- "$words" || { echo "stderr lacks \"$words\":"; cat "$T/err"; return 1; }
}
prov() { printf '%s' "$1" | sctpm --tcti "$TC" provision "${@:2}"; }

check "missing DeviceId" expect 3 "DeviceId is missing" prov "HostName=h.example;SharedAccessKey=$KEY"
check "duplicate HostName" expect 3 "HostName appears twice" prov "HostName=h.example;HostName=h.example;DeviceId=d;SharedAccessKey=$KEY"
check "key not base64" expect 3 "SharedAccessKey is not valid base64" prov "HostName=h.example;DeviceId=d;SharedAccessKey=%%%%"
check "key of the wrong size" expect 3 "decodes to 8 bytes" prov "HostName=h.example;DeviceId=d;SharedAccessKey=$(openssl rand -base64 8)"
long=$(printf 'a%.0s' {1..61}).$(printf 'b%.0s' {1..61}).$(printf 'c%.0s' {1..61}).$(printf 'd%.0s' {1..61})
id=$(printf 'e%.0s' {1..128})
check "host too long for the NV index" expect 3 "HostName is too long" prov "HostName=$long.example;DeviceId=$id;ModuleId=$id;SharedAccessKey=$KEY"
check "slot out of range" expect 3 "\"10\" is not a number from 0 to 9" prov "HostName=h.example;DeviceId=d;SharedAccessKey=$KEY" --slot 10
check "slot not a number" expect 3 "\"x\" is not a number" sctpm --tcti "$TC" token --slot x
check "a connection string as an argument is refused" expect 2 "read from standard input, never from the command line" sctpm --tcti "$TC" provision "HostName=h.example;DeviceId=d;SharedAccessKey=$KEY"
check "empty input" expect 3 "the connection string is empty" prov ""
check "oversized input" expect 3 "longer than 4096 bytes" bash -c "head -c 5000 /dev/zero | tr '\\0' a | sctpm --tcti '$TC' provision"
check "NUL byte in input" expect 3 "contains a NUL byte" bash -c "printf 'HostName=h.example\\0;DeviceId=d' | sctpm --tcti '$TC' provision"
check "missing --from-file" expect 3 "cannot open $T/nope" sctpm --tcti "$TC" provision --from-file "$T/nope"
check "unknown command" expect 2 "unknown command \"frobnicate\"" sctpm --tcti "$TC" frobnicate
check "unknown option" expect 2 "unknown or misplaced option --bogus" sctpm --tcti "$TC" token --bogus
check "--ttl 0" expect 3 "a token must live at least one second" sctpm --tcti "$TC" token --ttl 0
check "--skn without --scope" expect 2 "--skn and --expiry go with --scope" sctpm --tcti "$TC" token --skn x
check "a scope a token cannot carry" expect 3 "character a token cannot carry" sctpm --tcti "$TC" token --scope "a&b"
check "token from an empty slot" expect 7 "slot 4 is not provisioned (no NV index 0x01400104)" sctpm --tcti "$TC" token --slot 4
port=$(free_port)
check "no TPM reachable over TCP" expect 4 "no TPM reachable through mssim:host=127.0.0.1,port=$port: " sctpm --tcti "mssim:host=127.0.0.1,port=$port" status
check "no TPM reachable names the TSS2 code" grep -Eq 'TSS2_RC 0x[0-9a-f]{8}' "$T/err"
check "no TPM reachable over Unix" expect 4 "no TPM reachable through mssim:path=$T/none.sock" sctpm --tcti "mssim:path=$T/none.sock" list
check "an unknown TCTI" expect 4 "no TPM reachable through nosuch:x" sctpm --tcti nosuch:x list
check "SCTPM_TCTI is used when --tcti is absent" bash -c "SCTPM_TCTI='$TC' sctpm list 2>/dev/null | grep -q good"
# A TPM error: the NV index is made unreadable behind our back.
check "undefine slot 0's NV index and define one without AUTHREAD" bash -c "TPM2TOOLS_TCTI='$TC' tpm2_nvundefine 0x01400100 && TPM2TOOLS_TCTI='$TC' tpm2_nvdefine -C o -s 4 -a 'ownerwrite|authwrite|ownerread' 0x01400100 >/dev/null"
check "an unreadable identity is reported as such" expect 5 "NV index 0x01400100 (slot 0) is not a readable identity" sctpm --tcti "$TC" token
check "re-provisioning over it repairs the slot" bash -c "printf 'HostName=h.example;DeviceId=good;SharedAccessKey=%s' '$KEY' | sctpm --tcti '$TC' provision >/dev/null 2>&1"
check "and the slot signs again" bash -c "python3 '$top_srcdir/tests/integration/sas-verify.py' \"\$(sctpm --tcti '$TC' token 2>/dev/null)\" '$KEY' h.example/devices/good"
# Nothing above touched the good slot's key or identity.
check "the good slot is intact" bash -c "TPM2TOOLS_TCTI='$TC' tpm2_nvread 0x01400100 2>/dev/null | grep -qx h.example/good"
finish
