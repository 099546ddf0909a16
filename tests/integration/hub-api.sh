# The device REST API with the curl CLI, request by request as IoT Hub documents it: telemetry
# with system and application properties, generated message ids, dedupe, batches, and
# cloud-to-device receive, complete, reject and abandon with ETag lock tokens.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"

start_hub hub "$T/hub"
add_device dev-01
add_device dev-02
tok=$(token dev-01 "$(key_of dev-01)" 600)
tok2=$(token dev-02 "$(key_of dev-02)" 600)
EVENTS=/devices/dev-01/messages/events

# One message with every system property, application properties and the SDK's headers.
check "telemetry with properties" is "$(send dev-01 "$tok" '{"t":21.5}' \
    -H 'Content-Type: application/octet-stream' -H 'Accept: application/json' \
    -H "iothub-to: /devices/dev-01/messages/events" -H 'iothub-messageid: m-1' \
    -H 'iothub-correlationid: c-1' -H 'iothub-contenttype: application/json' \
    -H 'iothub-contentencoding: utf-8' -H 'iothub-userid: u-1' \
    -H 'iothub-creation-time-utc: 2024-01-01T00:00:00.000Z' \
    -H 'iothub-app-temperature: 21.5' -H 'IoTHub-App-Unit: celsius')" 204
check "... with no body in the 204" test ! -s "$T/body"
hub messages --device dev-01 --json >"$T/m"
check "stored once" test "$(wc -l <"$T/m")" = 1
for field in '"messageId":"m-1"' '"correlationId":"c-1"' '"contentType":"application/json"' \
    '"contentEncoding":"utf-8"' '"userId":"u-1"' '"creationTimeUtc":"2024-01-01T00:00:00.000Z"' \
    '"properties":{"temperature":"21.5","Unit":"celsius"}' '"body":"{\"t\":21.5}"' \
    '"deviceId":"dev-01"' '"enqueuedTime":"20'; do
    check "stored $field" grep -qF "$field" "$T/m"
done
check "the text listing has it on one line with its body" \
    bash -c "sctpm-hub --data '$HUB_DIR' messages --device dev-01 | grep -q '^seq=[0-9]* time=.* device=dev-01 id=m-1 sys={.*} props={\"temperature\":\"21.5\",\"Unit\":\"celsius\"} body={\"t\":21.5}\$'"

# Without an id the hub makes one (a GUID).
check "telemetry without a message id" is "$(send dev-01 "$tok" 'no id')" 204
check "gets a generated GUID" bash -c "sctpm-hub --data '$HUB_DIR' messages --device dev-01 | grep 'body=no id' | grep -Eq 'id=[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12} '"

# Dedupe: the same id from the same device is stored once, from another device again.
check "a duplicate id is acknowledged" is "$(send dev-01 "$tok" 'dup body' -H 'iothub-messageid: m-1')" 204
check "... and not stored" test "$(count --device dev-01)" = 2
check "the same id from another device" is "$(send dev-02 "$tok2" 'other' -H 'iothub-messageid: m-1')" 204
check "... is stored" test "$(count --device dev-02)" = 1

# Both api-versions the SDKs use; the path's fixed words in any case.
HUB_API=api-version=2016-11-14
check "api-version 2016-11-14" is "$(send dev-01 "$tok" 'old api' -H 'iothub-messageid: m-2')" 204
HUB_API=api-version=2020-03-13
check "path words are case-insensitive" \
    is "$(status -H "Authorization: $tok" --data 'case' "$(url /Devices/dev-01/Messages/Events)")" 204

# A batch as the C SDK sends it: base64 bodies and a JSON-string body, properties per message.
b1=$(printf '{"n":1}' | base64 -w0)
batch='[{"body":"'$b1'","properties":{"iothub-app-n":"1","iothub-messageid":"b-1"}},
 {"body":"{\"n\":2}","base64Encoded":false,"properties":{"iothub-app-n":"2","iothub-messageid":"b-2","iothub-contenttype":"application/json"}},
 {"body":"'$b1'","properties":{"iothub-messageid":"b-1"}}]'
check "a batch" is "$(send dev-01 "$tok" "$batch" -H 'Content-Type: application/vnd.microsoft.iothub.json')" 204
check "... stored each message once" test "$(hub messages --device dev-01 | grep -c ' id=b-[12] ')" = 2
check "... with its properties" \
    bash -c "sctpm-hub --data '$HUB_DIR' messages --device dev-01 | grep -q 'id=b-2 sys={\"contentType\":\"application/json\"} props={\"n\":\"2\"} body={\"n\":2}$'"
check "... and the decoded base64 body" \
    bash -c "sctpm-hub --data '$HUB_DIR' messages --device dev-01 | grep -q 'id=b-1 props={\"n\":\"1\"} body={\"n\":1}$'"
check "the batch media type with parameters" is "$(send dev-01 "$tok" '[{"body":"eA=="}]' \
    -H 'Content-Type: application/vnd.microsoft.iothub.json; charset=utf-8')" 204

# A device id that needs URL encoding in the path.
odd="dev:01#a?b"
add_device "$odd"
check "an id with : # ? in the path, URL-encoded" \
    is "$(send "$odd" "$(token "$odd" "$(key_of "$odd")" 600)" 'odd')" 204
check "... stored under the right id" test "$(count --device "$odd")" = 1

# Cloud-to-device.
RECV=/devices/dev-01/messages/devicebound
check "receive on an empty queue is 204" is "$(status -H "Authorization: $tok" "$(url $RECV)")" 204
for i in 1 2 3; do
    hub c2d send dev-01 "c2d-$i" --message-id "c-$i" --correlation-id "corr-$i" \
        --content-type text/plain --content-encoding utf-8 --property "n=$i" --ack full >/dev/null ||
        fail "c2d send $i"
done

# receive: 200 with the body, the quoted ETag and the message's headers.
check "receive" is "$(status -H "Authorization: $tok" "$(url $RECV)")" 200
check "... the body" test "$(cat "$T/body")" = c2d-1
etag=$(header ETag)
check "... a quoted ETag" matches "$etag" '^"[0-9a-f-]{36}"$'
lock=${etag//\"/}
check "... iothub-messageid" is "$(header iothub-messageid)" c-1
check "... iothub-correlationid" is "$(header iothub-correlationid)" corr-1
check "... iothub-deliverycount 1" is "$(header iothub-deliverycount)" 1
check "... iothub-sequencenumber" matches "$(header iothub-sequencenumber)" '^[0-9]+$'
check "... iothub-enqueuedtime, an HTTP date" matches "$(header iothub-enqueuedtime)" 'GMT$'
check "... iothub-expiry" matches "$(header iothub-expiry)" 'GMT$'
check "... iothub-to" is "$(header iothub-to)" /devices/dev-01/messages/deviceBound
check "... iothub-ack" is "$(header iothub-ack)" full
check "... ContentType" is "$(header ContentType)" text/plain
check "... ContentEncoding" is "$(header ContentEncoding)" utf-8
check "... iothub-app-n" is "$(header iothub-app-n)" 1
check "c2d list shows it locked" bash -c "sctpm-hub --data '$HUB_DIR' c2d list dev-01 | grep -q 'state=locked deliveries=1 .* id=c-1 '"

# complete = DELETE .../{etag}, with If-Match as the SDK sends it.
check "If-Match must match the path" is "$(status -X DELETE -H "Authorization: $tok" \
    -H 'If-Match: "00000000-0000-0000-0000-000000000000"' "$(url "$RECV/$lock")")" 412
check "... PreconditionFailed" is "$(header iothub-errorcode)" PreconditionFailed
check "complete" is "$(status -X DELETE -H "Authorization: $tok" -H "If-Match: $etag" \
    "$(url "$RECV/$lock")")" 204
check "completing twice is 412" is "$(status -X DELETE -H "Authorization: $tok" "$(url "$RECV/$lock")")" 412
check "... DeviceMessageLockLost" is "$(header iothub-errorcode)" DeviceMessageLockLost
check "c2d list shows it completed" bash -c "sctpm-hub --data '$HUB_DIR' c2d list dev-01 | grep -q 'state=completed .* id=c-1 '"

# reject = DELETE .../{etag}?reject (the C SDK appends "&reject").
check "receive the second" is "$(status -H "Authorization: $tok" "$(url $RECV)")" 200
lock=$(header ETag | tr -d '"')
check "another device cannot settle it" is "$(status -X DELETE -H "Authorization: $tok2" \
    "$(url "/devices/dev-02/messages/devicebound/$lock")")" 412
check "reject" is "$(status -X DELETE -H "Authorization: $tok" "$(url "$RECV/$lock" reject)")" 204
check "c2d list shows it rejected" bash -c "sctpm-hub --data '$HUB_DIR' c2d list dev-01 | grep -q 'state=rejected .* id=c-2 '"

# abandon = POST .../{etag}/abandon: delivered again, counted, with a new lock token.
check "receive the third" is "$(status -H "Authorization: $tok" "$(url $RECV)")" 200
lock=$(header ETag | tr -d '"')
check "abandon" is "$(status -X POST -H "Authorization: $tok" -H 'Content-Length: 0' \
    "$(url "$RECV/$lock/abandon")")" 204
check "receive it again" is "$(status -H "Authorization: $tok" "$(url /devices/dev-01/messages/deviceBound)")" 200
check "... the same message" is "$(header iothub-messageid)" c-3
check "... delivery count 2" is "$(header iothub-deliverycount)" 2
lock2=$(header ETag | tr -d '"')
check "... with a new lock token" test "$lock2" != "$lock"
check "the abandoned token is dead" is "$(status -X DELETE -H "Authorization: $tok" "$(url "$RECV/$lock")")" 412
check "complete with the new one" is "$(status -X DELETE -H "Authorization: $tok" "$(url "$RECV/$lock2")")" 204
check "the queue is empty" is "$(status -H "Authorization: $tok" "$(url $RECV)")" 204

# Unauthenticated C2D requests are refused like telemetry.
check "receive without a token is 401" is "$(status "$(url $RECV)")" 401
check "receive with dev-02's token on dev-01 is 401" is "$(status -H "Authorization: $tok2" "$(url $RECV)")" 401

# Keep-alive: one curl process, several requests, one connection.
hcurl -o /dev/null -o /dev/null -o /dev/null -w '%{num_connects}\n' -H "Authorization: $tok" \
    --data 'ka' "$(url $EVENTS)" "$(url $EVENTS)" "$(url $EVENTS)" >"$T/connects"
check "three requests on one keep-alive connection" test "$(awk '{s += $1} END {print s}' "$T/connects")" = 1

finish_hubs
