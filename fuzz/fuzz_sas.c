/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * SAS tokens: the hub's parser and verifier (hub/sas.c), and the builder every token maker
 * shares (common/sas.c, common/urlenc.c). The first input byte picks the mode:
 *
 *   0  the rest is an Authorization header: parse it, check its scope, verify it;
 *   1  round trip of a device token as libsctpm makes it (sas_scope): host NUL device NUL
 *      module NUL, 8 bytes of expiry, then the key. A token the builder makes for a device must
 *      parse, name that device, and verify with its key, as the hub sees it;
 *   2  the same for a token as `sctpm-hub token` makes it (hub_sas_device_scope), for a valid
 *      host name and device id: host NUL device NUL, expiry, key;
 *   3  round trip of a token for a raw `sr` (hub_sas_sign): sr NUL, expiry, key. What the
 *      builder accepts, the parser must read back as it was written; except an escape that
 *      decodes to NUL ("%00"), which the hub refuses on purpose.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fuzz.h"
#include "sas-priv.h"
#include "sas.h"
#include "urlenc.h"
#include "util-priv.h"

#define HOST   "hub.example"
#define DEVICE "dev-01"
#define NOW    1700000000

static const uint8_t key1[32] = {1, 2, 3};
static const uint8_t key2[16] = {4, 5, 6};

static void parse_header(const uint8_t *data, size_t size)
{
    const uint8_t *keys[2] = {key1, key2};
    size_t lens[2] = {sizeof(key1), sizeof(key2)};
    struct hub_sas *t = NULL;
    const char *why = NULL;
    char *header = malloc(size + 1);
    enum sctpm_rc rc;

    if (header == NULL) {
        return;
    }
    memcpy(header, data, size);
    header[size] = '\0';
    rc = hub_sas_parse(header, &t, &why);
    if (why == NULL) {
        fuzz_fail("hub_sas_parse gave no reason");
    }
    if (rc == SCTPM_RC_SUCCESS) {
        if (t == NULL || t->sr_raw == NULL || t->sr == NULL || t->se_raw == NULL || t->expiry < 0 ||
            (t->skn != NULL && t->skn[0] == '\0')) {
            fuzz_fail("a parsed token is incomplete");
        }
        (void)hub_sas_check_scope(t, HOST, DEVICE, &why);
        (void)hub_sas_verify(t, keys, lens, 2, NOW, 30, &why);
        (void)hub_sas_verify(t, keys, lens, 2, INT64_MAX, INT64_MAX, &why);
        hub_sas_free(t);
    } else if (t != NULL) {
        fuzz_fail("a refused token was returned");
    }
    free(header);
}

/* The token the builder makes for `sr`, signed with `key`, checked as the hub checks it. */
static void round_trip(const char *sr, int64_t expiry, const uint8_t *key, size_t key_len,
                       const char *host, const char *device)
{
    const uint8_t *keys[1] = {key};
    size_t lens[1] = {key_len};
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    char *msg = NULL, *token = NULL, *token2 = NULL;
    struct hub_sas *t = NULL;
    const char *why = "";
    size_t msg_len;

    if (sas_string_to_sign(sr, expiry, &msg, &msg_len) != SCTPM_RC_SUCCESS) {
        return;
    }
    if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, msg_len, mac, &mac_len) ==
            NULL ||
        sas_format(sr, expiry, mac, mac_len, NULL, &token) != SCTPM_RC_SUCCESS) {
        goto out;
    }
    if (hub_sas_sign(sr, expiry, key, key_len, &token2) != SCTPM_RC_SUCCESS ||
        strcmp(token, token2) != 0) {
        fuzz_fail("hub_sas_sign and sas_format disagree on sr \"%s\"", sr);
    }
    if (strlen(token) > HUB_SAS_MAX_LEN) {
        goto out; /* the hub refuses long headers before parsing, by design */
    }
    if (hub_sas_parse(token, &t, &why) != SCTPM_RC_SUCCESS) {
        fuzz_fail("the hub refuses a token the builder made (%s): %s", why, token);
    }
    if (t->expiry != expiry || strcmp(t->sr_raw, sr) != 0) {
        fuzz_fail("the token parses to other values: %s", token);
    }
    if (host != NULL && hub_sas_check_scope(t, host, device, &why) != SCTPM_RC_SUCCESS) {
        fuzz_fail("the token does not name its device (%s): %s", why, token);
    }
    if (hub_sas_verify(t, keys, lens, 1, expiry, 30, &why) != SCTPM_RC_SUCCESS) {
        fuzz_fail("the token does not verify with its key (%s): %s", why, token);
    }
out:
    hub_sas_free(t);
    free(token2);
    free(token);
    free(msg);
}

static void device_token(struct fuzz_in *in)
{
    char *host = fuzz_str(in), *device = fuzz_str(in), *module = fuzz_str(in);
    int64_t expiry = (int64_t)((uint64_t)fuzz_u32(in) << 32 | fuzz_u32(in));
    char *sr = NULL, *decoded = NULL, *want = NULL;
    size_t key_len, want_len;
    const uint8_t *key = fuzz_bytes(in, 64, &key_len);

    if (host == NULL || device == NULL || module == NULL || key_len == 0) {
        goto out;
    }
    if (sas_scope(host, device, module, &sr) != SCTPM_RC_SUCCESS) {
        if (host[0] != '\0' && device[0] != '\0') {
            fuzz_fail("sas_scope refused a host and device");
        }
        goto out;
    }
    /* What url_encode makes, url_decode takes back. */
    want_len = strlen(host) + strlen(device) + strlen(module) + 32;
    want = malloc(want_len);
    if (want == NULL) {
        goto out;
    }
    snprintf(want, want_len, "%s/devices/%s%s%s", host, device, module[0] ? "/modules/" : "",
             module);
    if (url_decode(sr, strlen(sr), &decoded) != SCTPM_RC_SUCCESS || strcmp(decoded, want) != 0) {
        fuzz_fail("url_decode does not undo url_encode for \"%s\"", sr);
    }
    round_trip(sr, expiry, key, key_len, module[0] == '\0' ? host : NULL, device);
out:
    free(want);
    free(decoded);
    free(sr);
    free(module);
    free(device);
    free(host);
}

static void cli_token(struct fuzz_in *in)
{
    char *host = fuzz_str(in), *device = fuzz_str(in), *sr = NULL;
    int64_t expiry = (int64_t)((uint64_t)fuzz_u32(in) << 32 | fuzz_u32(in));
    size_t key_len;
    const uint8_t *key = fuzz_bytes(in, 64, &key_len);

    if (host != NULL && device != NULL && key_len > 0 && hub_hostname_valid(host) &&
        hub_device_id_valid(device)) {
        if (hub_sas_device_scope(host, device, &sr) != SCTPM_RC_SUCCESS) {
            fuzz_fail("no scope for a valid host and device");
        }
        round_trip(sr, expiry, key, key_len, host, device);
    }
    free(sr);
    free(device);
    free(host);
}

static void raw_token(struct fuzz_in *in)
{
    char *sr = fuzz_str(in);
    int64_t expiry = (int64_t)((uint64_t)fuzz_u32(in) << 32 | fuzz_u32(in));
    size_t key_len;
    const uint8_t *key = fuzz_bytes(in, 64, &key_len);

    if (sr != NULL && key_len > 0 && strstr(sr, "%00") == NULL) {
        round_trip(sr, expiry, key, key_len, NULL, NULL);
    }
    free(sr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);

    switch (mode & 3) {
    case 1:
        device_token(&in);
        break;
    case 2:
        cli_token(&in);
        break;
    case 3:
        raw_token(&in);
        break;
    default:
        parse_header(in.p, in.left);
        break;
    }
    return 0;
}
