#!/usr/bin/env bash
# Retries and refusals against a scripted endpoint (client-fakehub.py): 429 and 503 with
# Retry-After as seconds and as an HTTP-date are honoured, 5xx retried with backoff, every
# attempt with the same message id; a message refused with 400 or 413 is moved aside and the
# next ones go; a refused batch is retried one message at a time so only the culprit is
# rejected; 404 is final and leaves the message queued.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"
. "$top_srcdir/tests/integration/client-lib.sh"

command -v python3 >/dev/null || hard_error "python3 missing: run scripts/install-deps"
sctpmd_start s
TC=$(tcti s mssim-tcp)
printf 'HostName=fake.sctpm.test;DeviceId=dev-f;SharedAccessKey=%s' "$(openssl rand -base64 32)" |
    sctpm --tcti "$TC" provision --slot 0 >/dev/null 2>&1 || fail "provision"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=fakehub -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$T/fake-key.pem" -out "$T/fake.pem" 2>/dev/null || hard_error "openssl req"

FAKE=0
# fake SCRIPT-LINES...: (re)starts the scripted endpoint with these answers.
fake() {
    [ "$FAKE" != 0 ] && stop_daemon "fake$FAKE"
    FAKE=$((FAKE + 1))
    printf '%s\n' "$@" >"$T/script"
    : >"$T/requests"
    PORT=${PORT:-$(free_port 1)}
    start_daemon "fake$FAKE" python3 "$top_srcdir/tests/integration/client-fakehub.py" "$PORT" \
        "$T/fake.pem" "$T/fake-key.pem" "$T/script" "$T/requests"
    wait_port "$PORT" 20 || { show_log "fake$FAKE"; hard_error "the scripted endpoint did not start"; }
}
fsc() {
    rc=0
    client --tcti "$TC" --queue "$T/queue" --endpoint "https://127.0.0.1:$PORT" \
        --ca-file "$T/fake.pem" "$@" >"$T/out" 2>"$T/err" || rc=$?
}
requests() { wc -l <"$T/requests"; }

# Throttling and unavailability, with both forms of Retry-After.
fake "429 | Retry-After: 2" "503 | Retry-After: {date+3}" "500" "502"
fsc send --timeout 60 'patience'
check "send retries through 429, 503, 500, 502 and exits 0" exits 0
check "... the message was sent" said "$T/out" '^sent '
check "... after five attempts" test "$(requests)" = 5
check "... all with the same message id" \
    test "$(awk '{print $6}' "$T/requests" | sort -u | wc -l)" = 1
check "429: the hub is throttling, retry when it said" said "$T/err" \
    'the hub is throttling \(429 ThrottlingException: scripted 429\); retrying in 2\.[0-9] s \(Retry-After\)$'
check "503 with an HTTP-date: retry then" said "$T/err" \
    'unavailable \(503 ServiceUnavailable: scripted 503\); retrying in [23]\.[0-9] s \(Retry-After\)$'
check "500 without Retry-After: exponential backoff" said "$T/err" \
    'unavailable \(500 ServerError: scripted 500\); retrying in [0-9.]+ s$'
gap() { awk -v a="$1" -v b="$2" 'NR==a{t=$1} NR==b{printf "%d", ($1-t)*1000}' "$T/requests"; }
check "the wait after the 429 was at least 2 s ($(gap 1 2) ms)" test "$(gap 1 2)" -ge 1950
check "the wait after the 503 was at least until its date ($(gap 2 3) ms)" test "$(gap 2 3)" -ge 1000

# --timeout bounds the retrying: a Retry-After past it is not waited for.
fake "503 | Retry-After: 30"
fsc send --timeout 5 'later'
check "a Retry-After beyond --timeout: send still exits 0" exits 0
check "... one attempt only" test "$(requests)" = 1
check "... the message stays queued" said "$T/err" 'not delivered yet: the hub is unavailable \(503'
fsc flush --timeout 0
check "flush delivers it when the endpoint answers" exits 0

# A message refused for good is moved aside; the next ones go.
fake "400" "204" "204"
fsc send --no-flush bad good1 good2
fsc flush
check "flush with a refused message exits 0" exits 0
check "... the refused message is reported on stdout" test "$(grep -c '^rejected ' "$T/out")" = 1
check "... and explained" said "$T/err" 'was refused by the hub and moved aside .*400 ArgumentInvalid: scripted 400'
check "... the others were sent" test "$(grep -c '^sent ' "$T/out")" = 2
fsc queue
check "... queue counts it as rejected" said "$T/out" ' messages=0 .* rejected=1 '
fake "413"
fsc send 'too large for this hub'
check "413: send exits 0 (the message was accepted)" exits 0
check "... and the hub's refusal is reported" said "$T/out" '^rejected '
fsc queue
check "... rejected=2" said "$T/out" ' rejected=2 '

# A refused batch: retried one by one, only the culprit is rejected.
fake "400" "204" "400" "204"
fsc send --no-flush b1 b2 b3
fsc flush --batch
check "flush --batch exits 0" exits 0
check "... the first request was the batch of three" said "$T/requests" '^[0-9.]+ POST /devices/dev-f/messages/events 400 batch [^,]+,[^,]+,[^,]+$'
check "... then one request per message" test "$(grep -c ' single ' "$T/requests")" = 3
check "... only b2 was rejected" test "$(grep -c '^rejected ' "$T/out")" = 1 -a "$(grep -c '^sent ' "$T/out")" = 2

# 404: not an IoT hub; final, the message stays.
fake "404" "404"
fsc send --timeout 30 'nowhere'
check "404: send exits 0 (accepted)" exits 0
check "... no retry" test "$(requests)" = 1
check "... says the endpoint is not a hub" said "$T/err" 'does not serve this request \(404 IotHubNotFound'
fsc flush --timeout 0
check "404 on flush: exit 12 (refused)" exits 12
check "... still queued" said "$T/err" '1 message\(s\) stay queued'

stop_daemon "fake$FAKE"
finish
