# Cloud-to-device lock expiry and redelivery: a message received and never settled comes back
# once its lock lapses, with its delivery count up and a new lock token, the old token dead; a
# message delivered --c2d-max-delivery times is dead-lettered; one past its TTL expires.
# A one-second lock keeps the test short; every wait is a poll, never a fixed sleep.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"

start_hub hub "$T/hub" --c2d-lock-timeout 1 --c2d-max-delivery 3
add_device dev-01
tok=$(token dev-01 "$(key_of dev-01)" 600)
RECV=/devices/dev-01/messages/devicebound

receive() { status -H "Authorization: $tok" "$(url $RECV)"; }
complete() { status -X DELETE -H "Authorization: $tok" "$(url "$RECV/$1")"; }
# receive_again ID: polls until the message with iothub-messageid ID is delivered again.
receive_again() { [ "$(receive)" = 200 ] && [ "$(header iothub-messageid)" = "$1" ]; }
state_is() { hub c2d list dev-01 | grep -q "state=$2 .* id=$1 "; }

hub c2d send dev-01 'lock me' --message-id lm >/dev/null || fail "c2d send"
check "first delivery" is "$(receive)" 200
first=$(header ETag | tr -d '"')
check "... count 1" is "$(header iothub-deliverycount)" 1
check "after the lock lapses it is delivered again" poll 20 receive_again lm
second=$(header ETag | tr -d '"')
check "... count 2" is "$(header iothub-deliverycount)" 2
check "... with a new lock token" test "$first" != "$second"
check "the first lock token is dead" is "$(complete "$first")" 412
check "... DeviceMessageLockLost" is "$(header iothub-errorcode)" DeviceMessageLockLost
# Completing races the short lock only on a very slow machine; if the lock lapsed first, the
# message comes back and the next delivery's token completes it.
complete_current() {
    [ "$(complete "$(header ETag | tr -d '"')")" = 204 ] || { receive_again lm && false; }
}
check "the current token completes it" poll 30 complete_current
check "completed" state_is lm completed

# Dead-lettering after max deliveries (3 here): deliver three times, never settle.
hub c2d send dev-01 'never settled' --message-id dl >/dev/null || fail "c2d send"
check "delivery 1" is "$(receive)" 200
check "delivery 2" poll 20 receive_again dl
check "delivery 3" poll 20 receive_again dl
check "... count 3" is "$(header iothub-deliverycount)" 3
dead() { [ "$(receive)" = 204 ] && state_is dl deadlettered; }
check "then dead-lettered instead of a fourth delivery" poll 20 dead

# A message past its time to live is not delivered.
hub c2d send dev-01 'short-lived' --message-id ttl --ttl 1 >/dev/null || fail "c2d send"
expiry=$(hub c2d list dev-01 --json | grep '"messageId":"ttl"' | sed 's/.*"expiryTime":"\([^"]*\)".*/\1/')
check "the listing has its expiry" test -n "$expiry"
past_expiry() { [ "$(date -u +%s%3N)" -gt "$(date -u -d "$expiry" +%s%3N)" ]; }
check "its expiry passes" poll 20 past_expiry
check "an expired message is not delivered" is "$(receive)" 204
check "... it is marked expired" state_is ttl expired

finish_hubs
