/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "sas.h"
#include "urlenc.h"

/* Longest decimal int64 plus a sign. */
#define SE_MAX 21

/*
 * A value in the token must not contain the separators of the token's own syntax ('&' between
 * fields, '=' between a name and its value), or the service would read a different token from
 * the one we signed.
 */
static int token_safe(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == '&' || c == '=' || c >= 0x7f) {
            return 0;
        }
    }
    return 1;
}

enum sctpm_rc sas_scope(const char *host, const char *device, const char *module, char **sr)
{
    enum sctpm_rc rc;
    size_t need;
    char *raw;

    *sr = NULL;
    if (host == NULL || device == NULL || *host == '\0' || *device == '\0') {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    if (module == NULL) {
        module = "";
    }
    need = strlen(host) + strlen("/devices/") + strlen(device) + strlen("/modules/") +
           strlen(module) + 1;
    raw = malloc(need);
    if (raw == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    snprintf(raw, need, "%s/devices/%s%s%s", host, device, *module != '\0' ? "/modules/" : "",
             module);
    rc = url_encode(raw, strlen(raw), sr);
    free(raw);
    return rc;
}

enum sctpm_rc sas_string_to_sign(const char *sr, int64_t expiry, char **msg, size_t *len)
{
    size_t need;
    int n;

    *msg = NULL;
    *len = 0;
    if (expiry < 0) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    need = strlen(sr) + 1 + SE_MAX + 1;
    *msg = malloc(need);
    if (*msg == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    n = snprintf(*msg, need, "%s\n%" PRId64, sr, expiry);
    *len = (size_t)n;
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc sas_format(const char *sr, int64_t expiry, const uint8_t *mac, size_t mac_len,
                         const char *skn, char **token)
{
    enum sctpm_rc rc;
    char *b64 = NULL, *sig = NULL;
    size_t need;

    *token = NULL;
    if (skn == NULL) {
        skn = "";
    }
    if (expiry < 0 || *sr == '\0' || !token_safe(sr) || !token_safe(skn) || mac_len == 0) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    b64 = malloc(base64_encoded_len(mac_len) + 1);
    if (b64 == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    base64_encode(mac, mac_len, b64);
    rc = url_encode(b64, strlen(b64), &sig);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    need =
        sizeof(SAS_PREFIX " sr=&sig=&se=&skn=") + strlen(sr) + strlen(sig) + SE_MAX + strlen(skn);
    *token = malloc(need);
    if (*token == NULL) {
        rc = SCTPM_RC_NO_MEMORY;
        goto out;
    }
    snprintf(*token, need, SAS_PREFIX " sr=%s&sig=%s&se=%" PRId64 "%s%s", sr, sig, expiry,
             *skn != '\0' ? "&skn=" : "", skn);
    rc = SCTPM_RC_SUCCESS;
out:
    free(b64);
    free(sig);
    return rc;
}
