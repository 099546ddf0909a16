# sctpm-hub's command line: the registry commands, messages, c2d send/list and token, with and
# without a running server, and their errors.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"

HUB_DIR=$T/hub

# Usage errors exit 2 and say what is wrong.
st=0; sctpm-hub device list 2>"$T/err" || st=$?
check "no --data is a usage error" test "$st" = 2
check "... and says so" grep -q -- "--data" "$T/err"
st=0; hub frobnicate 2>/dev/null || st=$?
check "an unknown command is a usage error" test "$st" = 2
st=0; hub --hostname 'bad,name' device list 2>/dev/null || st=$?
check "an invalid --hostname is a usage error" test "$st" = 2
st=0; hub messages --bogus 2>/dev/null || st=$?
check "an unknown command option is a usage error" test "$st" = 2
check "--help works" bash -c "sctpm-hub --help | grep -q 'device add'"

# Reading commands do not create a hub where there is none.
expect_fail "device list without a hub fails" hub device list
expect_fail "messages without a hub fails" hub messages
check "... and creates nothing" test ! -e "$HUB_DIR"

# device add creates the hub and prints a connection string with a 32-byte key.
cs=$(hub device add dev-01)
check "device add prints a connection string" \
    matches "$cs" '^HostName=sctpm-hub\.local;DeviceId=dev-01;SharedAccessKey=[A-Za-z0-9+/]{43}=$'
check "the key is 32 bytes" test "$(printf '%s' "${cs##*SharedAccessKey=}" | base64 -d | wc -c)" = 32
check "the data directory is private" test "$(stat -c %a "$HUB_DIR")" = 700
check "the database is private" test "$(stat -c %a "$HUB_DIR/hub.db")" = 600
cs2=$(hub device add dev-02)
check "each device gets its own key" test "${cs##*SharedAccessKey=}" != "${cs2##*SharedAccessKey=}"
expect_fail "adding an existing device fails" hub device add dev-01
expect_fail "an invalid device id is refused" hub device add 'bad id'
expect_fail "an over-long device id is refused" hub device add "$(printf 'x%.0s' {1..129})"
check "every Azure id character is accepted" hub device add "A-z_0.9:+%#*?!(),=@;\$'"

# Imported keys.
key=$(head -c 32 /dev/urandom | base64)
check "device add takes a key" hub device add dev-03 --primary-key "$key"
check "show prints it" bash -c "sctpm-hub --data '$HUB_DIR' device show dev-03 | grep -qx 'primary-key: $key'"
expect_fail "a short key is refused" hub device add dev-04 --primary-key "$(head -c 8 /dev/urandom | base64)"
expect_fail "a non-base64 key is refused" hub device add dev-04 --primary-key 'not base64!'

# list, show, enable, disable, remove.
hub device list >"$T/list"
check "list shows every device" test "$(wc -l <"$T/list")" = 4
check "list shows state" grep -q '^dev-01 enabled created=' "$T/list"
hub device show dev-01 >"$T/show"
check "show has the connection string" grep -qx "connection-string: $cs" "$T/show"
check "show has a secondary key" grep -q '^secondary-key: [A-Za-z0-9+/]\{43\}=$' "$T/show"
check "disable" hub device disable dev-02
check "list shows it disabled" bash -c "sctpm-hub --data '$HUB_DIR' device list | grep -q '^dev-02 disabled'"
check "enable" hub device enable dev-02
check "list shows it enabled" bash -c "sctpm-hub --data '$HUB_DIR' device list | grep -q '^dev-02 enabled'"
check "remove" hub device remove dev-03
expect_fail "remove again fails" hub device remove dev-03
expect_fail "show a removed device fails" hub device show dev-03
expect_fail "enable an unknown device fails" hub device enable nobody

# messages on an empty hub prints nothing and succeeds.
check "messages with nothing stored" test "$(hub messages | wc -c)" = 0

# c2d send and list.
id=$(hub c2d send dev-01 'hello device' --property a=b --correlation-id c-1 --ack full --ttl 60)
check "c2d send prints a GUID" matches "$id" '^[0-9a-f-]{36}$'
check "c2d send keeps a given id" test "$(hub c2d send dev-01 second --message-id m-2)" = m-2
hub c2d list dev-01 >"$T/c2d"
check "c2d list shows both, queued" test "$(grep -c 'state=queued deliveries=0' "$T/c2d")" = 2
check "c2d list shows properties and body" \
    grep -q "id=$id sys={\"correlationId\":\"c-1\"} props={\"a\":\"b\"} body=hello device" "$T/c2d"
check "c2d list shows the ack" grep -q 'ack=full' "$T/c2d"
expect_fail "c2d send to an unknown device fails" hub c2d send nobody x
st=0; hub c2d send dev-01 x --ack sometimes 2>/dev/null || st=$?
check "a bad --ack is a usage error" test "$st" = 2
expect_fail "a property without = is refused" hub c2d send dev-01 x --property novalue
expect_fail "a bad message id is refused" hub c2d send dev-01 x --message-id 'a b'
for i in $(seq 3 50); do hub c2d send dev-02 "m$i" >/dev/null || fail "c2d send $i"; done
check "48 queued for dev-02" test "$(hub c2d list dev-02 | wc -l)" = 48
hub c2d send dev-02 m49 >/dev/null && hub c2d send dev-02 m50 >/dev/null
expect_fail "the 51st outstanding message is refused (Azure's limit is 50)" hub c2d send dev-02 m51
check "removing a device drops its queue" hub device remove dev-02
check "... the queue is gone" test "$(hub c2d list dev-02 | wc -l)" = 0

# token prints a usable SAS token for the device.
tok=$(hub token dev-01 --ttl 120)
check "token is a SharedAccessSignature for the hub and device" \
    matches "$tok" '^SharedAccessSignature sr=sctpm-hub\.local/devices/dev-01&sig=[^&]+&se=[0-9]+$'
expect_fail "token for an unknown device fails" hub token nobody

# The host name: --hostname for one command, and the server remembers its own.
check "--hostname changes the connection string" \
    bash -c "sctpm-hub --data '$HUB_DIR' --hostname other.example device show dev-01 | grep -q '^connection-string: HostName=other.example;'"
start_hub hub "$HUB_DIR"
cs5=$(hub device add dev-05)
check "device add uses the name the server runs under" test "${cs5%%;*}" = "HostName=$HUB_HOST"
check "so does token" bash -c "sctpm-hub --data '$HUB_DIR' token dev-05 | grep -q 'sr=$HUB_HOST/devices/dev-05&'"
# An id with characters a token reads otherwise ('+' is a space, '%41' is 'A', '=' ends a name):
# the CLI's token still names it (found by fuzz_sas).
odd='dev+1=2%41'
hub device add "$odd" >/dev/null
check "token for an id with + = % is accepted by the server" \
    is "$(send "$odd" "$(hub token "$odd")" 'odd')" 204
# The CLI works beside the running server (SQLite WAL, separate processes).
check "device list while the server runs" hub device list

# messages --follow prints what arrives until it is told to stop.
# (Started directly, not through the hub function, so that $! is the process itself.)
# shellcheck disable=SC2046
$(wrap sctpm-hub) sctpm-hub --data "$HUB_DIR" messages --follow >"$T/follow" 2>&1 &
follower=$!
tok5=$(token dev-05 "${cs5##*SharedAccessKey=}" 600)
check "a message for the follower" is "$(send dev-05 "$tok5" 'followed 1')" 204
check "--follow prints it" poll 20 grep -q 'body=followed 1$' "$T/follow"
check "and the next one" is "$(send dev-05 "$tok5" 'followed 2')" 204
check "--follow prints that too" poll 20 grep -q 'body=followed 2$' "$T/follow"
kill -TERM "$follower"
st=0; wait "$follower" || st=$?
check "--follow stops on TERM with status 0" test "$st" = 0
check "... having printed each message once" test "$(grep -c 'body=followed' "$T/follow")" = 2
check "the server stops cleanly on TERM" stop_hub hub

finish_hubs
