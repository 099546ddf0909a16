# SAS verification over HTTPS with the curl CLI: tokens a device SDK would send are accepted,
# and the rejected-token matrix (forged signature, other device, expired, wrong hub, missing
# fields, garbage, policy tokens, disabled and unknown devices) gets 401 with IoT Hub's error
# body, and stores nothing.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/hub-lib.sh"

start_hub hub "$T/hub"
add_device dev-01
add_device dev-02
k1=$(key_of dev-01)
k2=$(key_of dev-02)
n=0

# accepted TOKEN DESCRIPTION: the message is acknowledged.
accepted() {
    n=$((n + 1))
    check "accepted: $2" is "$(send dev-01 "$1" "{\"ok\":$n}" -H "iothub-messageid: ok-$n")" 204
}

# rejected TOKEN DESCRIPTION [CODE]: 401, IoT Hub's error code, a JSON body, a reason.
rejected() {
    local code=${3:-401002} name=IotHubUnauthorizedAccess
    [ "$code" = 401003 ] && name=IotHubUnauthorized
    check "rejected: $2" is "$(send dev-01 "$1" '{"rejected":true}' -H "iothub-messageid: rej-$RANDOM")" 401
    check "... iothub-errorcode $name" is "$(header iothub-errorcode)" "$name"
    check "... errorCode $code in the JSON body" grep -q "\"errorCode\":$code" "$T/body"
    check "... IoT Hub's Message field" grep -q "\"Message\":\"ErrorCode:$name;" "$T/body"
}

se_future=$(($(date +%s) + 600))

# Tokens as the SDKs make them.
accepted "$(token dev-01 "$k1" 600)" "C SDK form (sr not encoded)"
sr_enc=$(urlenc "$HUB_HOST/devices/dev-01")
accepted "$(token dev-01 "$k1" 600 "$sr_enc")" "sr URL-encoded and signed encoded"
accepted "$(token dev-01 "$k1" 600 "HUB.SCTPM.TEST/devices/dev-01")" "host in another case"
accepted "$(token dev-01 "$k1" 600 | sed 's/^\(SharedAccessSignature \)\(sr=[^&]*\)&\(sig=[^&]*\)&\(se=.*\)$/\1\4\&\3\&\2/')" \
    "fields in another order"
accepted "$(token dev-01 "$k1" 600)&skn=" "an empty skn"
accepted "$(token dev-01 "$k1" -5)" "expired 5 s ago, within the 30 s clock-skew allowance"
secondary=$(hub device show dev-01 | sed -n 's/^secondary-key: //p')
accepted "$(token dev-01 "$secondary" 600)" "signed with the secondary key"

# The rejected-token matrix.
rejected "$(token dev-01 "$k2" 600)" "forged: dev-01's scope signed with dev-02's key"
rejected "$(token dev-02 "$k2" 600)" "another device's valid token"
rejected "$(token dev-01 "$k1" -120)" "expired two minutes ago" 401003
rejected "$(token dev-01 "$k1" 600 "other.example/devices/dev-01")" "signed for another hub"
rejected "$(token dev-01 "$k1" 600 "$HUB_HOST/devices/dev-01/modules/m1")" "a module's scope"
rejected "$(token dev-01 "$k1" 600 "$HUB_HOST")" "the hub's scope"
rejected "$(token dev-01 "$k1" 600 "$HUB_HOST/devices/DEV-01")" "the device id in another case"
rejected "$(token dev-01 "$k1" 600)&skn=device" "a policy token (skn)"
good=$(token dev-01 "$k1" 600)
rejected "${good%%&se=*}&se=$((${good##*&se=} + 1))" "a changed expiry (the signature covers se)"
rejected "$(echo "$good" | sed 's/&sig=[^&]*//')" "no sig"
rejected "$(echo "$good" | sed 's/&se=[^&]*//')" "no se"
rejected "$(echo "$good" | sed 's/sr=[^&]*&//')" "no sr"
rejected "$(echo "$good" | sed 's/&sig=/\&sig=\&sig=/')" "a duplicate field"
raw_sig=$(sign "$HUB_HOST/devices/dev-01" "$se_future" "$k1")
rejected "SharedAccessSignature sr=$HUB_HOST/devices/dev-01&sig=$raw_sig&se=$se_future" \
    "a signature sent without URL encoding"
rejected "${good/SharedAccessSignature /SharedAccessSignature  }" "two spaces after the prefix"
rejected "sharedaccesssignature ${good#SharedAccessSignature }" "the prefix in lower case"
rejected "SharedAccessSignature garbage" "garbage fields"
rejected "Bearer abc.def.ghi" "another scheme"
rejected "SharedAccessSignature sr=$HUB_HOST/devices/dev-01&sig=AAAA&se=$se_future" \
    "a signature of the wrong length"
rejected "SharedAccessSignature sr=$HUB_HOST/devices/dev-01&sig=$(urlenc "$raw_sig")&se=soon" \
    "a non-numeric expiry"
rejected "$(head -c 3000 /dev/urandom | base64 -w0)" "random bytes"
check "rejected: no Authorization header" is "$(status --data x "$(url /devices/dev-01/messages/events)")" 401
check "rejected: an empty Authorization header" \
    is "$(status -H 'Authorization;' --data x "$(url /devices/dev-01/messages/events)")" 401

# Devices the registry does not know, or has disabled.
check "a token for an unregistered device" \
    is "$(send dev-99 "$(token dev-99 "$k1" 600)" x)" 401
check "a token for dev-02 on dev-01's path" \
    is "$(send dev-01 "$(token dev-02 "$k2" 600)" x)" 401
check "disable dev-01" hub device disable dev-01
rejected "$(token dev-01 "$k1" 600)" "a disabled device's valid token"
check "... with the reason logged" grep -q 'device is disabled' "$T/hub.log"
check "enable dev-01" hub device enable dev-01
accepted "$(token dev-01 "$k1" 600)" "the same device enabled again"
check "remove dev-02" hub device remove dev-02
check "a removed device's token" is "$(send dev-02 "$(token dev-02 "$k2" 600)" x)" 401

# Reasons are logged for the developer; signatures never are.
check "the log says why a token failed" grep -q 'signature does not match the device key' "$T/hub.log"
check "the log says when a token expired" grep -q 'token expired' "$T/hub.log"
check "no signature in the log" bash -c "! grep -qF '$(urlenc "$raw_sig")' '$T/hub.log'"

# Exactly the accepted messages were stored; nothing from a rejected request.
check "every accepted message stored" test "$(count --device dev-01)" = "$n"
check "nothing rejected stored" bash -c "! sctpm-hub --data '$HUB_DIR' messages | grep -q rejected"
check "nothing stored for other devices" test "$(count)" = "$n"

finish_hubs
