/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LOGMODULE hubapi
#include "log.h"
#include "backoff-priv.h"
#include "hubapi-priv.h"
#include "urlenc.h"

static void set_msg(struct hubapi_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_msg(struct hubapi_result *res, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
}

static void result_init(struct hubapi_result *res)
{
    memset(res, 0, sizeof(*res));
    res->rc = SCTPM_RC_GENERAL_FAILURE;
    res->retry_after_ms = -1;
}

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

enum sctpm_rc hubapi_base_url(const char *endpoint, const char *host, char *out, size_t size,
                              const char **why)
{
    const char *h, *end, *port = NULL;
    size_t len, host_len;

    if (endpoint == NULL) {
        if ((size_t)snprintf(out, size, "https://%s", host) >= size) {
            *why = "the host name is too long";
            return SCTPM_RC_TOO_LARGE;
        }
        return SCTPM_RC_SUCCESS;
    }
    if (strncasecmp(endpoint, "https://", 8) != 0) {
        *why = "--endpoint must be https://HOST[:PORT]";
        return SCTPM_RC_BAD_ARGUMENT;
    }
    h = endpoint + 8;
    len = strlen(h);
    if (len > 0 && h[len - 1] == '/') {
        len--;
    }
    end = h + len;
    for (const char *p = h; p < end; p++) {
        if (*p == '/' || *p == '?' || *p == '#' || *p == '@' || *p == ' ' ||
            (unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) {
            *why = "--endpoint takes no path, query, user or spaces: https://HOST[:PORT]";
            return SCTPM_RC_BAD_ARGUMENT;
        }
    }
    if (h[0] == '[') {
        const char *close = memchr(h, ']', len);
        if (close == NULL || close == h + 1) {
            *why = "--endpoint has a malformed IPv6 address";
            return SCTPM_RC_BAD_ARGUMENT;
        }
        host_len = (size_t)(close - h) + 1;
        if (close + 1 < end) {
            if (close[1] != ':') {
                *why = "--endpoint has a malformed IPv6 address";
                return SCTPM_RC_BAD_ARGUMENT;
            }
            port = close + 2;
        }
    } else {
        const char *colon = memchr(h, ':', len);
        host_len = colon != NULL ? (size_t)(colon - h) : len;
        if (colon != NULL) {
            port = colon + 1;
        }
    }
    if (host_len == 0) {
        *why = "--endpoint names no host";
        return SCTPM_RC_BAD_ARGUMENT;
    }
    if (port != NULL) {
        unsigned long v = 0;
        const char *p = port;

        if (p == end) {
            *why = "--endpoint has an empty port";
            return SCTPM_RC_BAD_ARGUMENT;
        }
        for (; p < end; p++) {
            if (*p < '0' || *p > '9' || v > 65535) {
                *why = "--endpoint has a bad port (1-65535)";
                return SCTPM_RC_BAD_ARGUMENT;
            }
            v = v * 10 + (unsigned long)(*p - '0');
        }
        if (v == 0 || v > 65535) {
            *why = "--endpoint has a bad port (1-65535)";
            return SCTPM_RC_BAD_ARGUMENT;
        }
    }
    if ((size_t)snprintf(out, size, "https://%.*s", (int)len, h) >= size) {
        *why = "--endpoint is too long";
        return SCTPM_RC_TOO_LARGE;
    }
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc hubapi_init(struct hubapi *a, struct http *http, struct token_cache *tokens,
                          const char *endpoint, const char *host, const char *device,
                          const char *module, const char **why)
{
    char *dev = NULL, *mod = NULL, prefix[HUBAPI_URL_MAX];
    enum sctpm_rc rc;
    int n;

    memset(a, 0, sizeof(*a));
    a->http = http;
    a->tokens = tokens;
    a->now = wall_now;
    a->is_module = module != NULL && module[0] != '\0';
    rc = hubapi_base_url(endpoint, host, a->base, sizeof(a->base), why);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    rc = url_encode(device, strlen(device), &dev);
    if (rc == SCTPM_RC_SUCCESS && a->is_module) {
        rc = url_encode(module, strlen(module), &mod);
    }
    if (rc != SCTPM_RC_SUCCESS) {
        *why = "out of memory";
        goto out;
    }
    rc = SCTPM_RC_TOO_LARGE;
    *why = "a URL is too long";
    if (a->is_module) {
        n = snprintf(prefix, sizeof(prefix), "%s/devices/%s/modules/%s", a->base, dev, mod);
    } else {
        n = snprintf(prefix, sizeof(prefix), "%s/devices/%s", a->base, dev);
    }
    if (n < 0 || (size_t)n >= sizeof(prefix)) {
        goto out;
    }
    n = snprintf(a->events_url, sizeof(a->events_url), "%s/messages/events?api-version=%s", prefix,
                 HUBAPI_VERSION);
    if (n < 0 || (size_t)n >= sizeof(a->events_url)) {
        goto out;
    }
    n = snprintf(a->c2d_prefix, sizeof(a->c2d_prefix), "%s/messages/devicebound", prefix);
    if (n < 0 || (size_t)n >= sizeof(a->c2d_prefix)) {
        goto out;
    }
    if (a->is_module) {
        n = snprintf(a->to, sizeof(a->to), "/devices/%s/modules/%s/messages/events", device,
                     module);
    } else {
        n = snprintf(a->to, sizeof(a->to), "/devices/%s/messages/events", device);
    }
    if (n < 0 || (size_t)n >= sizeof(a->to)) {
        goto out;
    }
    *why = NULL;
    rc = SCTPM_RC_SUCCESS;
out:
    free(dev);
    free(mod);
    return rc;
}

/* The error text of IoT Hub's error body: "message", else "Message" without its prefix. */
static void error_text(const struct http_response *resp, char *out, size_t size)
{
    json_object *o, *v;
    const char *s = NULL;

    out[0] = '\0';
    if (resp->body == NULL || resp->body_len == 0) {
        return;
    }
    o = json_tokener_parse(resp->body);
    if (o != NULL && json_object_is_type(o, json_type_object)) {
        if (json_object_object_get_ex(o, "message", &v) &&
            json_object_is_type(v, json_type_string)) {
            s = json_object_get_string(v);
        } else if (json_object_object_get_ex(o, "Message", &v) &&
                   json_object_is_type(v, json_type_string)) {
            s = json_object_get_string(v);
            /* "ErrorCode:IotHubUnauthorizedAccess;Unauthorized" -> "Unauthorized" */
            if (strncmp(s, "ErrorCode:", 10) == 0 && strchr(s, ';') != NULL) {
                s = strchr(s, ';') + 1;
            }
        }
    }
    if (s != NULL) {
        size_t o_len = 0;
        for (; *s != '\0' && o_len + 1 < size && o_len < 300; s++) {
            out[o_len++] = (unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f ? *s : '.';
        }
        out[o_len] = '\0';
    }
    json_object_put(o);
}

void hubapi_classify(const struct http_response *resp, int64_t now, struct hubapi_result *res)
{
    const char *code = http_response_header(resp, "iothub-errorcode");
    char text[320], what[400];
    long s = resp->status;

    res->status = s;
    res->retry_after_ms = backoff_parse_retry_after(http_response_header(resp, "Retry-After"), now);
    snprintf(res->error_code, sizeof(res->error_code), "%s", code != NULL ? code : "");
    for (char *p = res->error_code; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) {
            *p = '.';
        }
    }
    if (s >= 200 && s < 300) {
        res->rc = SCTPM_RC_SUCCESS;
        res->retryable = 0;
        res->message[0] = '\0';
        return;
    }
    error_text(resp, text, sizeof(text));
    snprintf(what, sizeof(what), "%ld%s%s%s%s", s, res->error_code[0] != '\0' ? " " : "",
             res->error_code, text[0] != '\0' ? ": " : "", text);
    res->retryable = 0;
    if (s == 401) {
        res->rc = SCTPM_RC_UNAUTHORIZED;
        set_msg(res,
                "the hub refused the token (%s), also a freshly signed one; check that the slot "
                "was provisioned with this device's key",
                what);
    } else if (s == 429 || s == 408 || s == 403 || s >= 500) {
        res->rc = SCTPM_RC_SERVER;
        res->retryable = 1;
        set_msg(res, "the hub is %s (%s)", s == 429 ? "throttling" : "unavailable", what);
    } else if (s == 400) {
        res->rc = SCTPM_RC_BAD_FORMAT;
        set_msg(res, "the hub refused the message (%s)", what);
    } else if (s == 413) {
        res->rc = SCTPM_RC_TOO_LARGE;
        set_msg(res, "the hub refused the message as too large (%s)", what);
    } else if (s == 412) {
        res->rc = SCTPM_RC_EXPIRED;
        set_msg(res, "the lock token is no longer valid (%s)", what);
    } else if (s == 404) {
        res->rc = SCTPM_RC_NOT_FOUND;
        set_msg(res, "the endpoint does not serve this request (%s); is --endpoint an IoT hub?",
                what);
    } else {
        res->rc = SCTPM_RC_SERVER;
        set_msg(res, "the hub answered %s", what);
    }
}

/*
 * One request with the current token; after a 401 once more with a fresh one. `resp` holds the
 * last response (cleared by the caller) when res->status is nonzero.
 */
static void call(struct hubapi *a, const char *method, const char *url,
                 const struct http_header *extra, size_t nextra, const void *body, size_t len,
                 struct http_response *resp, struct hubapi_result *res)
{
    struct http_header *headers;
    const char *token;
    enum sctpm_rc rc;

    result_init(res);
    memset(resp, 0, sizeof(*resp));
    headers = calloc(nextra + 2, sizeof(*headers));
    if (headers == NULL) {
        res->rc = SCTPM_RC_NO_MEMORY;
        set_msg(res, "out of memory");
        return;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = token_cache_get(a->tokens, a->now(), &token);
        if (rc != SCTPM_RC_SUCCESS) {
            const char *e =
                a->tokens->src.error != NULL ? a->tokens->src.error(a->tokens->src.ctx) : NULL;
            res->rc = rc;
            set_msg(res, "%s", e != NULL && e[0] != '\0' ? e : sctpm_strerror(rc));
            goto out;
        }
        headers[0].name = "Authorization";
        headers[0].value = token;
        headers[1].name = "Accept";
        headers[1].value = "application/json";
        if (nextra > 0) {
            memcpy(&headers[2], extra, nextra * sizeof(*extra));
        }
        http_response_clear(resp);
        rc = http_request(a->http, method, url, headers, nextra + 2, body, len, resp);
        if (rc != SCTPM_RC_SUCCESS) {
            res->rc = rc;
            res->retryable = http_retryable(a->http);
            set_msg(res, "%s", http_error(a->http));
            goto out;
        }
        if (resp->status != 401 || attempt == 1) {
            break;
        }
        LOG_DEBUG("401: renewing the token and trying once more");
        token_cache_invalidate(a->tokens);
        a->auth_renewals++;
    }
    hubapi_classify(resp, a->now(), res);
out:
    /* The token itself stays in the cache, which wipes it. */
    free(headers);
}

void hubapi_send_one(struct hubapi *a, const struct queue_item *it, struct hubapi_result *res)
{
    struct http_header *h = NULL;
    struct http_response resp;
    json_object *props = NULL;
    size_t n = 3;

    result_init(res);
    if (msg_props_parse(it->props, &props) != SCTPM_RC_SUCCESS) {
        res->rc = SCTPM_RC_CORRUPT;
        set_msg(res, "queued message %s has damaged properties", it->id);
        return;
    }
    h = calloc(3 + (size_t)json_object_object_length(props), sizeof(*h));
    if (h == NULL) {
        json_object_put(props);
        res->rc = SCTPM_RC_NO_MEMORY;
        set_msg(res, "out of memory");
        return;
    }
    h[0].name = "iothub-to";
    h[0].value = a->to;
    h[1].name = "Content-Type";
    h[1].value = "application/octet-stream";
    h[2].name = "iothub-messageid";
    h[2].value = it->id;
    json_object_object_foreach(props, key, val)
    {
        h[n].name = key;
        h[n].value = json_object_get_string(val);
        n++;
    }
    call(a, "POST", a->events_url, h, n, it->body, it->body_len, &resp, res);
    http_response_clear(&resp);
    free(h);
    json_object_put(props);
}

void hubapi_send_batch(struct hubapi *a, const char *body, size_t len, struct hubapi_result *res)
{
    struct http_header h[2] = {{"iothub-to", a->to},
                               {"Content-Type", MSG_BATCH_CONTENT_TYPE "; charset=utf-8"}};
    struct http_response resp;

    call(a, "POST", a->events_url, h, 2, body, len, &resp, res);
    http_response_clear(&resp);
}

void hubapi_c2d_clear(struct hubapi_c2d *m)
{
    json_object_put(m->props);
    free(m->body);
    memset(m, 0, sizeof(*m));
}

static void copy_header(const struct http_response *resp, const char *name, char *out, size_t size)
{
    const char *v = http_response_header(resp, name);

    snprintf(out, size, "%s", v != NULL ? v : "");
}

void hubapi_receive(struct hubapi *a, struct hubapi_c2d *m, int *got, struct hubapi_result *res)
{
    char url[HUBAPI_URL_MAX];
    struct http_response resp;
    const char *etag, *count;
    size_t n;

    memset(m, 0, sizeof(*m));
    *got = 0;
    result_init(res);
    if (a->is_module) {
        res->rc = SCTPM_RC_UNSUPPORTED;
        set_msg(res, "cloud-to-device messages are sent to devices, and this slot holds a module");
        return;
    }
    if ((size_t)snprintf(url, sizeof(url), "%s?api-version=%s", a->c2d_prefix, HUBAPI_VERSION) >=
        sizeof(url)) {
        res->rc = SCTPM_RC_TOO_LARGE;
        set_msg(res, "the receive URL is too long");
        return;
    }
    call(a, "GET", url, NULL, 0, NULL, 0, &resp, res);
    if (res->rc != SCTPM_RC_SUCCESS || resp.status == 204) {
        goto out;
    }
    etag = http_response_header(&resp, "ETag");
    if (etag == NULL) {
        res->rc = SCTPM_RC_BAD_FORMAT;
        set_msg(res, "the hub sent a cloud-to-device message without an ETag (lock token)");
        goto out;
    }
    n = strlen(etag);
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
        etag++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(m->lock) || memchr(etag, '/', n) != NULL) {
        res->rc = SCTPM_RC_BAD_FORMAT;
        set_msg(res, "the hub sent a malformed lock token");
        goto out;
    }
    memcpy(m->lock, etag, n);
    m->lock[n] = '\0';
    copy_header(&resp, "iothub-messageid", m->id, sizeof(m->id));
    copy_header(&resp, "iothub-correlationid", m->correlation_id, sizeof(m->correlation_id));
    copy_header(&resp, "ContentType", m->content_type, sizeof(m->content_type));
    copy_header(&resp, "ContentEncoding", m->content_encoding, sizeof(m->content_encoding));
    count = http_response_header(&resp, "iothub-deliverycount");
    m->delivery_count = count != NULL ? strtoul(count, NULL, 10) : 0;
    m->props = json_object_new_object();
    if (m->props == NULL) {
        res->rc = SCTPM_RC_NO_MEMORY;
        set_msg(res, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < resp.nheaders; i++) {
        const char *name = resp.headers[i].name;

        if (strncasecmp(name, MSG_APP_PREFIX, sizeof(MSG_APP_PREFIX) - 1) == 0 &&
            name[sizeof(MSG_APP_PREFIX) - 1] != '\0') {
            json_object_object_add(m->props, name + sizeof(MSG_APP_PREFIX) - 1,
                                   json_object_new_string(resp.headers[i].value));
        }
    }
    m->body = resp.body != NULL ? resp.body : strdup("");
    m->body_len = resp.body != NULL ? resp.body_len : 0;
    resp.body = NULL;
    if (m->body == NULL) {
        res->rc = SCTPM_RC_NO_MEMORY;
        set_msg(res, "out of memory");
        goto out;
    }
    *got = 1;
out:
    if (!*got) {
        hubapi_c2d_clear(m);
    }
    http_response_clear(&resp);
}

enum sctpm_rc hubapi_settle_url(const struct hubapi *a, const char *lock, enum hubapi_settle how,
                                char *out, size_t size)
{
    char *enc = NULL;
    int n;

    if (url_encode(lock, strlen(lock), &enc) != SCTPM_RC_SUCCESS) {
        return SCTPM_RC_NO_MEMORY;
    }
    switch (how) {
    case HUBAPI_ABANDON:
        n = snprintf(out, size, "%s/%s/abandon?api-version=%s", a->c2d_prefix, enc, HUBAPI_VERSION);
        break;
    case HUBAPI_REJECT:
        n = snprintf(out, size, "%s/%s?api-version=%s&reject", a->c2d_prefix, enc, HUBAPI_VERSION);
        break;
    default:
        n = snprintf(out, size, "%s/%s?api-version=%s", a->c2d_prefix, enc, HUBAPI_VERSION);
        break;
    }
    free(enc);
    return n > 0 && (size_t)n < size ? SCTPM_RC_SUCCESS : SCTPM_RC_TOO_LARGE;
}

void hubapi_settle(struct hubapi *a, const char *lock, enum hubapi_settle how,
                   struct hubapi_result *res)
{
    char url[HUBAPI_URL_MAX], quoted[200];
    struct http_header h[1] = {{"If-Match", quoted}};
    struct http_response resp;

    result_init(res);
    if (lock[0] == '\0' || strlen(lock) > 150 || strpbrk(lock, "\"\r\n") != NULL) {
        res->rc = SCTPM_RC_BAD_ARGUMENT;
        set_msg(res, "malformed lock token");
        return;
    }
    if (hubapi_settle_url(a, lock, how, url, sizeof(url)) != SCTPM_RC_SUCCESS) {
        res->rc = SCTPM_RC_TOO_LARGE;
        set_msg(res, "the settle URL is too long");
        return;
    }
    snprintf(quoted, sizeof(quoted), "\"%s\"", lock);
    call(a, how == HUBAPI_ABANDON ? "POST" : "DELETE", url, h, 1, NULL, 0, &resp, res);
    http_response_clear(&resp);
}
