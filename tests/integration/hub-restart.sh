# Restarts keep the registry, the messages, the queues and the TLS identity; a crash (SIGKILL)
# loses no acknowledged message; a new --hostname gets a new server certificate from the same CA.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"

dir=$T/hub
start_hub hub1 "$dir"
add_device dev-01
key=$(key_of dev-01)
tok=$(token dev-01 "$key" 600)
check "a message before the restart" is "$(send dev-01 "$tok" 'before restart' -H 'iothub-messageid: r-1')" 204
hub c2d send dev-01 'queued before restart' --message-id q-1 >/dev/null || fail "c2d send"
cp "$dir/ca.pem" "$T/ca.before"
cp "$dir/server.pem" "$T/server.before"
check "the hub stops cleanly" stop_hub hub1

start_hub hub2 "$dir"
check "the CA is the same" cmp -s "$dir/ca.pem" "$T/ca.before"
check "the server certificate is the same" cmp -s "$dir/server.pem" "$T/server.before"
check "the device and its key still work" is "$(send dev-01 "$tok" 'after restart')" 204
check "the message from before is there" \
    bash -c "sctpm-hub --data '$dir' messages --device dev-01 | grep -q 'id=r-1 .*body=before restart$'"
check "dedupe spans restarts" is "$(send dev-01 "$tok" 'before restart, again' -H 'iothub-messageid: r-1')" 204
check "... stored once" test "$(count --device dev-01)" = 2
check "the queued message is delivered" \
    is "$(status -H "Authorization: $tok" "$(url /devices/dev-01/messages/devicebound)")" 200
check "... it is the one from before" test "$(cat "$T/body")" = 'queued before restart'

# A crash right after the acknowledgements: every acknowledged message must be on disk.
before=$(count)
hub-client --url "https://$HUB_HOST:$HUB_PORT" --cacert "$dir/ca.pem" --device dev-01 --key "$key" \
    load 4 50 >"$T/load" || { cat "$T/load"; fail "load"; }
check "200 acknowledged" grep -q ' ok=200 errors=0 ' "$T/load"
stop_daemon hub2 KILL || true
start_hub hub3 "$dir"
check "after SIGKILL every acknowledged message is there" test "$(count)" = $((before + 200))
check "the hub stops cleanly" stop_hub hub3

# A new host name: new server certificate, same CA; tokens must name the new host.
HUB_HOST=renamed.sctpm.test
start_hub hub4 "$dir"
check "the CA is still the same" cmp -s "$dir/ca.pem" "$T/ca.before"
check "the server certificate was reissued" bash -c "! cmp -s '$dir/server.pem' '$T/server.before'"
check "it names the new host" bash -c "openssl x509 -in '$dir/server.pem' -noout -ext subjectAltName | grep -q 'DNS:$HUB_HOST'"
check "a token for the old host name is refused" is "$(send dev-01 "$tok" 'old name')" 401
check "a token for the new one is accepted" is "$(send dev-01 "$(token dev-01 "$key" 600)" 'new name')" 204
check "device add prints the new host name" bash -c "sctpm-hub --data '$dir' device add dev-02 | grep -q '^HostName=$HUB_HOST;'"

finish_hubs
