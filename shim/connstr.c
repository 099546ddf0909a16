/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "connstr.h"
#include "errbuf.h"

enum field { F_HOST, F_DEVICE, F_MODULE, F_KEY, F_COUNT };

static const char *const field_names[F_COUNT] = {"HostName", "DeviceId", "ModuleId",
                                                 "SharedAccessKey"};

/* Fields of other kinds of connection strings, and why each cannot be imprinted. */
static const struct {
    const char *name;
    const char *why;
} refused[] = {
    {"SharedAccessKeyName", "names a hub access policy: this is a service connection string, not "
                            "a device's"},
    {"SharedAccessSignature", "carries a token, not a key: there is nothing to imprint"},
    {"x509", "selects an X.509 identity, which has no shared access key"},
    {"GatewayHostName", "is not stored in the TPM; give the gateway to sctpm-client --endpoint"},
};

int connstr_valid_id(const char *id)
{
    /* IoT Hub's device and module id rule: ASCII letters, digits and - . + % _ # * ? ! ( ) , : = @
     * $ ' */
    static const char extra[] = "-.+%_#*?!(),:=@$'";
    size_t n = 0;

    for (; id[n] != '\0'; n++) {
        unsigned char c = (unsigned char)id[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              strchr(extra, c) != NULL)) {
            return 0;
        }
    }
    return n >= 1 && n <= SCTPM_ID_MAX;
}

int connstr_valid_host(const char *host)
{
    size_t n = strlen(host), label = 0;

    if (n == 0 || n > SCTPM_HOST_MAX) {
        return 0;
    }
    for (size_t i = 0; i <= n; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c == '.' || c == '\0') {
            /* Labels are 1..63 characters and neither start nor end with '-'. */
            if (label == 0 || label > 63 || host[i - 1] == '-' || host[i - label] == '-') {
                return 0;
            }
            label = 0;
        } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-') {
            label++;
        } else {
            return 0;
        }
    }
    return 1;
}

enum sctpm_rc connstr_uri(const char *host, const char *device, const char *module, char *out,
                          size_t size)
{
    int n;

    if (module == NULL) {
        module = "";
    }
    n = snprintf(out, size, "%s/%s%s%s", host, device, *module != '\0' ? "/" : "", module);
    if (n < 0 || (size_t)n >= size) {
        if (size > 0) {
            out[0] = '\0';
        }
        return SCTPM_RC_TOO_LARGE;
    }
    return SCTPM_RC_SUCCESS;
}

void connstr_wipe(struct connstr *c)
{
    explicit_bzero(c, sizeof(*c));
}

/* Copies a value into a fixed field; SCTPM_RC_TOO_LARGE when it does not fit. */
static enum sctpm_rc copy_value(char *dst, size_t size, const char *v, size_t len)
{
    if (len >= size) {
        return SCTPM_RC_TOO_LARGE;
    }
    memcpy(dst, v, len);
    dst[len] = '\0';
    return SCTPM_RC_SUCCESS;
}

static enum sctpm_rc take_key(struct connstr *c, const char *v, size_t len, char *err,
                              size_t errlen)
{
    uint8_t *key = NULL;
    size_t key_len = 0;
    enum sctpm_rc rc;

    rc = base64_decode(v, len, &key, &key_len);
    if (rc != SCTPM_RC_SUCCESS) {
        errbuf_set(err, errlen, "SharedAccessKey is not valid base64.");
        return SCTPM_RC_BAD_FORMAT;
    }
    if (key_len < CONNSTR_KEY_MIN || key_len > CONNSTR_KEY_MAX) {
        errbuf_set(err, errlen,
                   "SharedAccessKey decodes to %zu bytes; IoT Hub keys are %d to %d bytes.",
                   key_len, CONNSTR_KEY_MIN, CONNSTR_KEY_MAX);
        rc = SCTPM_RC_BAD_FORMAT;
    } else {
        memcpy(c->key, key, key_len);
        c->key_len = key_len;
    }
    explicit_bzero(key, key_len);
    free(key);
    return rc;
}

static enum sctpm_rc take_field(struct connstr *c, enum field f, const char *v, size_t len,
                                char *err, size_t errlen)
{
    enum sctpm_rc rc = SCTPM_RC_SUCCESS;

    if (len == 0) {
        errbuf_set(err, errlen, "%s is empty.", field_names[f]);
        return SCTPM_RC_BAD_FORMAT;
    }
    switch (f) {
    case F_HOST:
        rc = copy_value(c->host, sizeof(c->host), v, len);
        if (rc != SCTPM_RC_SUCCESS) {
            errbuf_set(err, errlen, "HostName is %zu characters; the limit is %d.", len,
                       SCTPM_HOST_MAX);
        } else if (!connstr_valid_host(c->host)) {
            errbuf_set(err, errlen, "HostName is not a valid DNS host name.");
            rc = SCTPM_RC_BAD_FORMAT;
        }
        break;
    case F_DEVICE:
    case F_MODULE: {
        char *dst = f == F_DEVICE ? c->device_id : c->module_id;
        rc = copy_value(dst, SCTPM_ID_MAX + 1, v, len);
        if (rc != SCTPM_RC_SUCCESS) {
            errbuf_set(err, errlen, "%s is %zu characters; IoT Hub allows %d.", field_names[f], len,
                       SCTPM_ID_MAX);
        } else if (!connstr_valid_id(dst)) {
            errbuf_set(err, errlen,
                       "%s has a character IoT Hub does not allow (letters, digits and "
                       "-.+%%_#*?!(),:=@$' only).",
                       field_names[f]);
            rc = SCTPM_RC_BAD_FORMAT;
        }
        break;
    }
    case F_KEY:
        rc = take_key(c, v, len, err, errlen);
        break;
    default:
        rc = SCTPM_RC_GENERAL_FAILURE;
        break;
    }
    return rc;
}

enum sctpm_rc connstr_parse(const char *s, struct connstr *c, char *err, size_t errlen)
{
    enum sctpm_rc rc = SCTPM_RC_BAD_FORMAT;
    int seen[F_COUNT] = {0};
    const char *p = s, *end = s + strlen(s);
    char uri[SCTPM_NV_URI_MAX + 1];

    memset(c, 0, sizeof(*c));
    errbuf_set(err, errlen, "%s", "");
    /* Trailing whitespace is what files and pipes add; whitespace elsewhere is an error. */
    while (end > s && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    if (end == s) {
        errbuf_set(err, errlen, "the connection string is empty.");
        goto out;
    }
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p)), *eq;
        size_t seglen = (semi != NULL ? semi : end) - p, namelen;
        enum field f = F_COUNT;

        if (seglen == 0) {
            errbuf_set(err, errlen,
                       "the connection string has an empty field (\";;\" or a leading "
                       "';').");
            goto out;
        }
        eq = memchr(p, '=', seglen);
        if (eq == NULL) {
            errbuf_set(err, errlen, "the field at character %zu has no '=' (expected Name=Value).",
                       (size_t)(p - s) + 1);
            goto out;
        }
        namelen = (size_t)(eq - p);
        for (size_t i = 0; i < seglen; i++) {
            if (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
                errbuf_set(err, errlen,
                           "the connection string contains whitespace inside a field.");
                goto out;
            }
        }
        for (int i = 0; i < F_COUNT; i++) {
            if (strlen(field_names[i]) == namelen && strncasecmp(p, field_names[i], namelen) == 0) {
                f = (enum field)i;
            }
        }
        if (f == F_COUNT) {
            size_t shown = namelen > 40 ? 40 : namelen;
            for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
                if (strlen(refused[i].name) == namelen &&
                    strncasecmp(p, refused[i].name, namelen) == 0) {
                    errbuf_set(err, errlen, "%s %s.", refused[i].name, refused[i].why);
                    goto out;
                }
            }
            errbuf_set(err, errlen,
                       "unknown field \"%.*s\" (expected HostName, DeviceId, ModuleId, "
                       "SharedAccessKey).",
                       (int)shown, p);
            goto out;
        }
        if (seen[f]) {
            errbuf_set(err, errlen, "%s appears twice.", field_names[f]);
            goto out;
        }
        seen[f] = 1;
        rc = take_field(c, f, eq + 1, seglen - namelen - 1, err, errlen);
        if (rc != SCTPM_RC_SUCCESS) {
            goto out;
        }
        rc = SCTPM_RC_BAD_FORMAT;
        p += seglen + (semi != NULL ? 1 : 0);
    }
    for (int i = 0; i < F_COUNT; i++) {
        if (!seen[i] && i != F_MODULE) {
            errbuf_set(err, errlen, "%s is missing.", field_names[i]);
            goto out;
        }
    }
    /* The NV index holds "host/device[/module]" in at most 512 bytes (the Limpet layout). */
    if (connstr_uri(c->host, c->device_id, c->module_id, uri, sizeof(uri)) != SCTPM_RC_SUCCESS) {
        errbuf_set(err, errlen,
                   "HostName is too long: \"host/device/module\" must fit the %d-byte NV index.",
                   SCTPM_NV_URI_MAX);
        rc = SCTPM_RC_TOO_LARGE;
        goto out;
    }
    rc = SCTPM_RC_SUCCESS;
out:
    if (rc != SCTPM_RC_SUCCESS) {
        connstr_wipe(c);
    }
    return rc;
}
