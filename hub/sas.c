/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base64.h"
#include "urlenc.h"
#include "sas-priv.h"
#include "sas.h"

static void set_reason(const char **reason, const char *why)
{
    if (reason != NULL) {
        *reason = why;
    }
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/*
 * Form-decodes `len` bytes the way the service's WebUtility.UrlDecode does: "%xx" becomes the
 * byte, "+" becomes a space, and a "%" that does not start a valid escape stays as it is. An
 * escape that yields NUL is refused (it could truncate the C string); returns NULL then or when
 * memory runs out.
 */
static char *form_decode(const char *in, size_t len)
{
    char *out = malloc(len + 1);
    size_t o = 0;

    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        int hi = -1, lo = -1;

        if (in[i] == '+') {
            out[o++] = ' ';
            continue;
        }
        if (in[i] == '%' && i + 2 < len) {
            hi = hexval((unsigned char)in[i + 1]);
            lo = hexval((unsigned char)in[i + 2]);
        }
        if (hi < 0 || lo < 0) {
            out[o++] = in[i];
            continue;
        }
        if (hi == 0 && lo == 0) {
            free(out);
            return NULL;
        }
        out[o++] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

void hub_sas_free(struct hub_sas *t)
{
    if (t == NULL) {
        return;
    }
    free(t->sr_raw);
    free(t->sr);
    free(t->se_raw);
    free(t->skn);
    explicit_bzero(t, sizeof(*t));
    free(t);
}

/*
 * Parses a decimal expiry: digits only, no sign, any value an int64_t holds (as the service's
 * long does, and as common/sas.c writes them).
 */
static int parse_expiry(const char *s, int64_t *out)
{
    int64_t v = 0;
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        int d = s[n] - '0';
        if (d < 0 || d > 9 || v > (INT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    if (n == 0) {
        return -1;
    }
    *out = v;
    return 0;
}

enum sctpm_rc hub_sas_parse(const char *header, struct hub_sas **out, const char **reason)
{
    static const size_t plen = sizeof(HUB_SAS_PREFIX) - 1;
    enum sctpm_rc rc = SCTPM_RC_BAD_FORMAT;
    struct hub_sas *t = NULL;
    char *sig_text = NULL;
    uint8_t *sig = NULL;
    size_t sig_len = 0, len;
    const char *p, *end;

    *out = NULL;
    set_reason(reason, "malformed token");
    if (header == NULL) {
        set_reason(reason, "no Authorization header");
        goto out;
    }
    len = strnlen(header, HUB_SAS_MAX_LEN + 1);
    if (len > HUB_SAS_MAX_LEN) {
        set_reason(reason, "token too long");
        rc = SCTPM_RC_TOO_LARGE;
        goto out;
    }
    /* The service splits on whitespace and wants exactly the prefix and one field list. */
    if (len <= plen + 1 || strncmp(header, HUB_SAS_PREFIX, plen) != 0 ||
        (header[plen] != ' ' && header[plen] != '\t')) {
        set_reason(reason, "not a SharedAccessSignature");
        goto out;
    }
    for (size_t i = plen + 1; i < len; i++) {
        if (header[i] == ' ' || header[i] == '\t' || header[i] == '\r' || header[i] == '\n' ||
            header[i] == '\v' || header[i] == '\f') {
            set_reason(reason, "whitespace inside the token");
            goto out;
        }
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        rc = SCTPM_RC_NO_MEMORY;
        goto out;
    }
    p = header + plen + 1;
    end = header + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *fend = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(fend - p));
        const char *val;
        size_t klen, vlen;
        char **slot_raw = NULL, **slot = NULL;

        if (fend == p) {
            /* Empty fields ("&&", a trailing "&") are skipped, as the service does. */
            p = fend + 1;
            continue;
        }
        if (eq == NULL) {
            set_reason(reason, "field without '='");
            goto out;
        }
        klen = (size_t)(eq - p);
        val = eq + 1;
        vlen = (size_t)(fend - val);
        if (memchr(val, '=', vlen) != NULL) {
            /* A second '=' means an unencoded value; the service would truncate it there. */
            set_reason(reason, "unencoded '=' in a field value");
            goto out;
        }
        if (klen == 2 && strncasecmp(p, "sr", 2) == 0) {
            slot_raw = &t->sr_raw;
            slot = &t->sr;
        } else if (klen == 3 && strncasecmp(p, "sig", 3) == 0) {
            slot = &sig_text;
        } else if (klen == 2 && strncasecmp(p, "se", 2) == 0) {
            slot_raw = &t->se_raw;
        } else if (klen == 3 && strncasecmp(p, "skn", 3) == 0) {
            slot = &t->skn;
        }
        if (slot_raw != NULL) {
            if (*slot_raw != NULL) {
                set_reason(reason, "duplicate field");
                goto out;
            }
            *slot_raw = strndup(val, vlen);
            if (*slot_raw == NULL) {
                rc = SCTPM_RC_NO_MEMORY;
                goto out;
            }
        }
        if (slot != NULL) {
            if (*slot != NULL) {
                set_reason(reason, "duplicate field");
                goto out;
            }
            *slot = form_decode(val, vlen);
            if (*slot == NULL) {
                set_reason(reason, "bad escape in a field value");
                goto out;
            }
        }
        p = fend + (amp != NULL ? 1 : 0);
    }
    if (t->sr_raw == NULL || t->sr_raw[0] == '\0') {
        set_reason(reason, "missing field sr");
        goto out;
    }
    if (sig_text == NULL || sig_text[0] == '\0') {
        set_reason(reason, "missing field sig");
        goto out;
    }
    if (t->se_raw == NULL || t->se_raw[0] == '\0') {
        set_reason(reason, "missing field se");
        goto out;
    }
    {
        /* se is form-decoded before it is read as a number, but signed as sent. */
        char *se = form_decode(t->se_raw, strlen(t->se_raw));
        int bad = se == NULL || parse_expiry(se, &t->expiry) != 0;

        free(se);
        if (bad) {
            set_reason(reason, "se is not a decimal expiry time");
            goto out;
        }
    }
    if (base64_decode(sig_text, strlen(sig_text), &sig, &sig_len) != SCTPM_RC_SUCCESS ||
        sig_len != HUB_SAS_SIG_LEN) {
        set_reason(reason, "sig is not a base64 HMAC-SHA256");
        goto out;
    }
    memcpy(t->sig, sig, HUB_SAS_SIG_LEN);
    if (t->skn != NULL && t->skn[0] == '\0') {
        free(t->skn);
        t->skn = NULL;
    }
    *out = t;
    t = NULL;
    rc = SCTPM_RC_SUCCESS;
    set_reason(reason, "ok");
out:
    if (sig != NULL) {
        explicit_bzero(sig, sig_len);
        free(sig);
    }
    if (sig_text != NULL) {
        explicit_bzero(sig_text, strlen(sig_text));
        free(sig_text);
    }
    hub_sas_free(t);
    return rc;
}

enum sctpm_rc hub_sas_check_scope(const struct hub_sas *t, const char *hostname,
                                  const char *device_id, const char **reason)
{
    static const char mid[] = "/devices/";
    size_t hlen = strlen(hostname), mlen = sizeof(mid) - 1, dlen = strlen(device_id);
    const char *sr = t->sr;

    /* Host names compare case-insensitively (DNS); the path and device ids are exact. */
    if (strlen(sr) != hlen + mlen + dlen || strncasecmp(sr, hostname, hlen) != 0) {
        set_reason(reason, "sr does not name this hub and device");
        return SCTPM_RC_UNAUTHORIZED;
    }
    if (strncmp(sr + hlen, mid, mlen) != 0 || strcmp(sr + hlen + mlen, device_id) != 0) {
        set_reason(reason, "sr does not name this device");
        return SCTPM_RC_UNAUTHORIZED;
    }
    if (t->skn != NULL) {
        /* A policy token (skn=...) needs a shared access policy; this hub has device keys only. */
        set_reason(reason, "policy tokens (skn) are not accepted for devices");
        return SCTPM_RC_UNAUTHORIZED;
    }
    set_reason(reason, "ok");
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc hub_sas_verify(const struct hub_sas *t, const uint8_t *const keys[],
                             const size_t key_lens[], size_t nkeys, int64_t now_s, int64_t skew_s,
                             const char **reason)
{
    size_t srl = strlen(t->sr_raw), sel = strlen(t->se_raw);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    int match = 0;
    char *msg;

    /*
     * The service's rule: valid while expiry + skew is not before now. A sum past INT64_MAX is
     * never before now.
     */
    if (t->expiry <= INT64_MAX - skew_s && t->expiry + skew_s < now_s) {
        set_reason(reason, "token expired");
        return SCTPM_RC_EXPIRED;
    }
    msg = malloc(srl + 1 + sel);
    if (msg == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    memcpy(msg, t->sr_raw, srl);
    msg[srl] = '\n';
    memcpy(msg + srl + 1, t->se_raw, sel);
    for (size_t i = 0; i < nkeys; i++) {
        if (keys[i] == NULL || key_lens[i] == 0 || key_lens[i] > INT32_MAX) {
            continue;
        }
        if (HMAC(EVP_sha256(), keys[i], (int)key_lens[i], (const unsigned char *)msg, srl + 1 + sel,
                 mac, &maclen) == NULL ||
            maclen != HUB_SAS_SIG_LEN) {
            continue;
        }
        /* Constant time: a timing oracle must not reveal how much of a forged MAC is right. */
        match |= CRYPTO_memcmp(mac, t->sig, HUB_SAS_SIG_LEN) == 0;
    }
    explicit_bzero(mac, sizeof(mac));
    free(msg);
    if (!match) {
        set_reason(reason, "signature does not match the device key");
        return SCTPM_RC_UNAUTHORIZED;
    }
    set_reason(reason, "ok");
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc hub_sas_device_scope(const char *hostname, const char *device_id, char **sr)
{
    char *id = NULL;
    size_t n;
    enum sctpm_rc rc;

    *sr = NULL;
    if (strpbrk(device_id, "%+=") != NULL) {
        rc = url_encode(device_id, strlen(device_id), &id);
        if (rc != SCTPM_RC_SUCCESS) {
            return rc;
        }
    }
    n = strlen(hostname) + strlen(id != NULL ? id : device_id) + sizeof("/devices/");
    *sr = malloc(n);
    if (*sr == NULL) {
        free(id);
        return SCTPM_RC_NO_MEMORY;
    }
    snprintf(*sr, n, "%s/devices/%s", hostname, id != NULL ? id : device_id);
    free(id);
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc hub_sas_sign(const char *sr, int64_t expiry, const uint8_t *key, size_t key_len,
                           char **token)
{
    enum sctpm_rc rc;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char *msg = NULL;
    size_t msglen;

    *token = NULL;
    if (key_len == 0 || key_len > INT32_MAX) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    rc = sas_string_to_sign(sr, expiry, &msg, &msglen);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    if (HMAC(EVP_sha256(), key, (int)key_len, (unsigned char *)msg, msglen, mac, &maclen) == NULL) {
        rc = SCTPM_RC_GENERAL_FAILURE;
        goto out;
    }
    rc = sas_format(sr, expiry, mac, maclen, NULL, token);
out:
    free(msg);
    return rc;
}
