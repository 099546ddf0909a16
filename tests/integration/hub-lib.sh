# Helpers for the hub's integration tests; sourced after lib.sh.
#
# Every test runs its own hub in $T on a free loopback port, under the name $HUB_HOST, which no
# resolver knows: curl reaches it with --resolve, as a device on a bench would with /etc/hosts.
# Tokens are signed here with the openssl CLI, independently of the hub's own code.

HUB_HOST=hub.sctpm.test
HUB_API="api-version=2020-03-13"

HUBS=()

# start_hub NAME DIR [ARGS...]: starts a hub on a free port (HUB_PORT) and waits for it.
start_hub() {
    local name=$1 dir=$2
    shift 2
    HUB_DIR=$dir
    HUB_PORT=$(free_port 1)
    start_daemon "$name" sctpm-hub --data "$dir" --port "$HUB_PORT" --hostname "$HUB_HOST" "$@"
    HUBS+=("$name")
    wait_port "$HUB_PORT" "$WAIT_DAEMON" || { show_log "$name"; hard_error "hub $name did not start"; }
}

# stop_hub NAME: stops a hub with TERM; it must exit 0 and its log must hold no sanitizer
# report (under valgrind a memcheck error makes the exit status 97).
stop_hub() {
    local st=0
    stop_daemon "$1" || st=$?
    if [ "$st" != 0 ] || grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/$1.log"; then
        show_log "$1"
        cat "$T"/valgrind.*.log 2>/dev/null
        return 1
    fi
}

# finish_hubs: stops every hub still running (checking each stops cleanly), then finishes.
finish_hubs() {
    local name
    for name in "${HUBS[@]}"; do
        [ -n "${DAEMON_PID[$name]:-}" ] && check "hub $name stops cleanly" stop_hub "$name"
    done
    finish
}

# hub ARGS...: the CLI on the current hub's directory (under memcheck in check-valgrind).
# shellcheck disable=SC2046
hub() { $(wrap sctpm-hub) sctpm-hub --data "$HUB_DIR" "$@"; }

# add_device ID: registers a device and sets KEY_<id with - as _> to its base64 key.
add_device() {
    local cs var
    cs=$(hub device add "$1") || fail "device add $1"
    var=KEY_${1//[^A-Za-z0-9]/_}
    printf -v "$var" '%s' "${cs##*SharedAccessKey=}"
}

# key_of ID: the key add_device stored for ID.
key_of() { local var=KEY_${1//[^A-Za-z0-9]/_}; echo "${!var}"; }

# urlenc STRING: Azure-style URL encoding (lowercase hex); only what tokens and paths need.
urlenc() {
    local s=$1 out= c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
        [A-Za-z0-9._!*\(\)-]) out+=$c ;;
        *) out+=$(printf '%%%02x' "'$c") ;;
        esac
    done
    echo "$out"
}

# sign SR SE KEY: base64 HMAC-SHA256 of "SR\nSE" with the base64 KEY.
sign() {
    printf '%s\n%s' "$1" "$2" |
        openssl dgst -sha256 -mac HMAC -macopt "hexkey:$(printf '%s' "$3" | base64 -d | xxd -p -c 256)" -binary |
        base64
}

# token DEVICE KEY TTL [SR]: a SAS token as the C SDK makes it (sr as given, sig URL-encoded).
token() {
    local dev=$1 key=$2 ttl=$3 sr=${4:-$HUB_HOST/devices/$1} se
    se=$(($(date +%s) + ttl))
    echo "SharedAccessSignature sr=$sr&sig=$(urlenc "$(sign "$sr" "$se" "$key")")&se=$se"
}

# hcurl ARGS...: curl against the hub, trusting its CA.
hcurl() { curl -sS --cacert "$HUB_DIR/ca.pem" --resolve "$HUB_HOST:$HUB_PORT:127.0.0.1" "$@"; }

# url PATH [QUERY]: the hub URL for PATH with the api-version (and QUERY) appended.
url() { echo "https://$HUB_HOST:$HUB_PORT$1?$HUB_API${2:+&$2}"; }

# status ARGS...: the HTTP status of a curl request; the body goes to $T/body, headers to
# $T/headers.
status() { hcurl -o "$T/body" -D "$T/headers" -w '%{http_code}' "$@"; }

# send DEVICE TOKEN BODY [CURL ARGS...]: posts one telemetry message; prints the status.
send() {
    local dev=$1 tok=$2 body=$3
    shift 3
    status -H "Authorization: $tok" --data-binary "$body" "$@" \
        "$(url "/devices/$(urlenc "$dev")/messages/events")"
}

# header NAME: the value of a header in the last response ($T/headers), without CR.
header() { grep -i "^$1:" "$T/headers" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }

# count [--device ID]: how many messages the hub stored.
count() { hub messages "$@" | wc -l; }

# is STATUS EXPECTED: for check, with the body shown on mismatch.
is() {
    [ "$1" = "$2" ] && return 0
    echo "got $1, want $2; body: $(cat "$T/body" 2>/dev/null)" >&2
    return 1
}

# matches STRING REGEX: for check.
matches() { [[ $1 =~ $2 ]]; }
