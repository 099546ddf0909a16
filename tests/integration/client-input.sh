#!/usr/bin/env bash
# Every bad input or unusable environment gives one clear line on standard error and the exit
# status docs/sctpm-client.1 documents, and queues nothing: usage errors (2), bad messages (3),
# no TPM (4), an emulated TPM refused by --require-hardware (6), an empty slot (7).
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"
. "$top_srcdir/tests/integration/client-lib.sh"

sctpmd_start s
start_hub hub "$T/hub"
TC=$(tcti s mssim-unix)
provision "$TC" 0 dev-in

# refused STATUS REGEX ARGS...: sc ARGS exits STATUS with exactly one stderr line matching REGEX,
# and nothing is queued.
refused() {
    local want=$1 re=$2
    shift 2
    run_sc "$@" </dev/null
    exits "$want" || return 1
    said "$T/err" "^sctpm-client: .*$re" || return 1
    [ "$(wc -l <"$T/err")" = 1 ] || { echo "more than one line:" >&2; cat "$T/err" >&2; return 1; }
    queued 0
}

run_sc
check "no command (2)" exits 2
check "... prints the usage" said "$T/err" '^Usage: sctpm-client '
check "an unknown command (2)" refused 2 'unknown command "sned" \(send, flush, receive, run, queue\)$' sned x
run_sc --bogus send x
check "an unknown option (2)" exits 2
check "send without a body (2)" refused 2 'send needs a BODY' send
check "an option of another command (2)" refused 2 '--batch does not go with receive$' receive --batch
check "two settlements (2)" refused 2 'choose one of --complete, --reject, --abandon$' receive --complete --reject
check "a lock token without a settlement (2)" refused 2 '--lock-token needs' receive --lock-token abc
check "a slot out of range (2)" refused 2 '--slot: "10" is not a number from 0 to 9$' --slot 10 send x
check "a bad queue bound (2)" refused 2 '--queue-max-bytes: "12Q" is not a size' --queue-max-bytes 12Q send x
check "a bad token TTL (2)" refused 2 '--token-ttl: "0" is not a number from 1 to' --token-ttl 0 send x
check "flush takes no argument (2)" refused 2 'flush takes no arguments \("x"\)$' flush x
check "--message-id with two bodies (2)" refused 2 '--message-id names one message, and there are 2$' send --message-id m a b
check "two \"-\" (2)" refused 2 'may be given once$' send - -
check "--lines without \"-\" (2)" refused 2 '--lines reads standard input' send --lines x

check "a property without = (3)" refused 3 '--prop "k": a property is NAME=VALUE$' send --prop k x
check "a property name with a space (3)" refused 3 '--prop "a b=1": a property name may hold only' send --prop 'a b=1' x
check "a property value with a newline (3)" refused 3 'control characters$' send --prop $'k=a\nb' x
check "a bad message id (3)" refused 3 '--message-id "a b": 1 to 128' send --message-id 'a b' x
check "a bad content type (3)" refused 3 '--content-type "": a system property is 1 to 1024' send --content-type '' x
head -c 262144 /dev/zero | tr '\0' x >"$T/big"
run_sc send - <"$T/big"
check "a message over 256 KiB with its properties (3)" exits 3
check "... says so" said "$T/err" \
    '^sctpm-client: message 1 is 262196 bytes with its properties; IoT Hub takes at most 262144 \(256 KiB\)$'
head -c 300000 /dev/zero >"$T/huge"
run_sc send - <"$T/huge"
check "standard input over 256 KiB (3)" exits 3
check "... says so" said "$T/err" 'standard input is larger than 262144 bytes$'
run_sc send - </dev/null
check "an empty standard input is one empty message" exits 0
check "... delivered" hub_has dev-in 1

closed=$(free_port 1)
run_sc --tcti "mssim:host=127.0.0.1,port=$closed" send 'no TPM'
check "no TPM (4)" exits 4
check "... says it cannot open the TPM" said "$T/err" '^sctpm-client: cannot open the TPM: '
check "... nothing queued" queued 0

run_sc --require-hardware send 'emulated'
check "an emulated TPM with --require-hardware (6)" exits 6
check "... says why" said "$T/err" '^sctpm-client: refused: '

run_sc --slot 5 send 'empty slot'
check "an empty slot (7)" exits 7
check "... says how to provision it" said "$T/err" \
    '^sctpm-client: slot 5 holds no device identity \(provision it with: sctpm provision --slot 5\)$'

# A module identity: its own path; sctpm-hub serves devices only, and says so with a 404.
printf 'HostName=%s;DeviceId=dev-in;ModuleId=m1;SharedAccessKey=%s' "$HUB_HOST" "$(key_of dev-in)" |
    sctpm --tcti "$TC" provision --slot 3 >/dev/null 2>&1 || fail "provision a module"
QUEUE=$T/queue-module run_sc --slot 3 --verbose send 'from a module'
check "a module sends to its own path" said "$T/err" '^> POST /devices/dev-in/modules/m1/messages/events\?api-version='
check "... the local hub refuses it (404), the message stays queued" said "$T/err" \
    'not delivered yet: the endpoint does not serve this request \(404 IotHubNotFound'
QUEUE=$T/queue-module run_sc --slot 3 receive
check "a module receives no C2D (1)" exits 1
check "... says why" said "$T/err" 'cloud-to-device messages are sent to devices, and this slot holds a module$'

run_sc --help
check "--help exits 0 and documents the exit codes" said "$T/out" '12 refused by the hub'
run_sc --version
check "--version" said "$T/out" '^sctpm-client [0-9]+\.[0-9]+\.[0-9]+$'

finish_hubs
