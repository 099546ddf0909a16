/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>
#include <microhttpd.h>

#define LOGMODULE hub
#include "log.h"
#include "message-priv.h"
#include "sas-priv.h"
#include "server-priv.h"
#include "store-priv.h"
#include "util-priv.h"

/* Bodies up to this size are read and dropped after an early error, to keep the connection. */
#define DISCARD_MAX (1024 * 1024)
/* Per-connection memory for libmicrohttpd: the request line and headers must fit. */
#define CONNECTION_MEMORY (64 * 1024)
/* How often the watchdog looks for requests that take too long. */
#define WATCHDOG_PERIOD_MS 250
/* TLS 1.2 and 1.3 only (GnuTLS priority syntax: libmicrohttpd uses GnuTLS). */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* A connection the watchdog keeps an eye on; guarded by hub_server.lock. */
struct tracked {
    int fd;
    int64_t idle_since;    /* monotonic ms: when the connection opened or its last request ended */
    int64_t request_start; /* monotonic ms when the current request's headers arrived; 0: none */
    int killed;
    struct tracked *prev;
    struct tracked *next;
};

struct hub_server {
    struct hub_server_config cfg;
    char *hostname;
    char *cert_pem;
    char *key_pem;
    struct hub_store *store;
    struct MHD_Daemon *d4;
    struct MHD_Daemon *d6;
    uint16_t port;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stopping;
    int watchdog_started;
    pthread_t watchdog;
    struct tracked *conns;
};

/* One request, from its first access-handler call to the completion callback. */
struct request {
    struct hub_server *srv;
    struct tracked *track;
    struct hub_path path; /* route, device id and lock token */
    int reject;
    int batch;
    struct hub_buf body;
    /* An error decided before the body was read: sent once the body has been drained. */
    unsigned err_status;
    const char *err_code;
    int err_number;
    char err_msg[200];
    int draining;
    size_t drained;
    int body_done; /* the whole request has arrived */
};

/* IoT Hub's error codes, with the numeric form newer API versions use. */
#define E_BAD_REQUEST   400, "ArgumentInvalid", 400004
#define E_API_VERSION   400, "InvalidProtocolVersion", 400001
#define E_UNAUTHORIZED  401, "IotHubUnauthorizedAccess", 401002
#define E_TOKEN_EXPIRED 401, "IotHubUnauthorized", 401003
#define E_NOT_FOUND     404, "IotHubNotFound", 404002
#define E_METHOD        405, "InvalidOperation", 405001
#define E_PRECONDITION  412, "PreconditionFailed", 412001
#define E_LOCK_LOST     412, "DeviceMessageLockLost", 412002
#define E_TOO_LARGE     413, "MessageTooLarge", 413001
#define E_SERVER        500, "ServerError", 500001
#define E_UNAVAILABLE   503, "ServiceUnavailable", 503001

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    size_t n;

    (void)cls;
    vsnprintf(buf, sizeof(buf), fmt, ap);
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        buf[--n] = '\0';
    }
    /* libmicrohttpd reports client misbehaviour (bad TLS, resets) here: useful, not alarming. */
    LOG_INFO("libmicrohttpd: %s", buf);
}

/* Builds IoT Hub's error body. Returns NULL when memory runs out. */
static char *error_body(const char *code, int number, const char *msg)
{
    char tracking[HUB_GUID_LEN], stamp[32], iso[HUB_ISO_TIME_LEN], text[400];
    int64_t now = hub_now_ms();
    time_t secs = (time_t)(now / 1000);
    json_object *o = json_object_new_object();
    char *out = NULL;
    struct tm tm;

    if (o == NULL) {
        return NULL;
    }
    if (hub_guid(tracking) != SCTPM_RC_SUCCESS) {
        strcpy(tracking, "00000000-0000-0000-0000-000000000000");
    }
    gmtime_r(&secs, &tm);
    snprintf(stamp, sizeof(stamp), "%02d/%02d/%04d %02d:%02d:%02d", (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100, (tm.tm_year + 1900) % 10000, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100);
    hub_iso_time(now, iso);
    snprintf(text, sizeof(text), "ErrorCode:%s;%s", code, msg);
    json_object_object_add(o, "Message", json_object_new_string(text));
    snprintf(text, sizeof(text), "Tracking ID:%s-G:0-TimeStamp:%s", tracking, stamp);
    json_object_object_add(o, "ExceptionMessage", json_object_new_string(text));
    json_object_object_add(o, "errorCode", json_object_new_int(number));
    json_object_object_add(o, "trackingId", json_object_new_string(tracking));
    json_object_object_add(o, "message", json_object_new_string(msg));
    json_object_object_add(o, "timestampUtc", json_object_new_string(iso));
    out = strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return out;
}

static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *resp)
{
    enum MHD_Result ret;

    if (resp == NULL) {
        return MHD_NO;
    }
    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *code,
                                  int number, const char *msg, const char *allow)
{
    char *body = error_body(code, number, msg);
    struct MHD_Response *resp;

    if (body == NULL) {
        return MHD_NO;
    }
    resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/json; charset=utf-8") != MHD_YES ||
        MHD_add_response_header(resp, "iothub-errorcode", code) != MHD_YES ||
        (allow != NULL && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return queue(c, status, resp);
}

/*
 * libmicrohttpd's buffer parameter is not const even where it only reads (MUST_COPY and
 * PERSISTENT buffers are never written); this says so without a cast that hides mistakes.
 */
static void *mhd_buffer(const void *p)
{
    union {
        const void *in;
        void *out;
    } u = {.in = p};

    return u.out;
}

static enum MHD_Result send_empty(struct MHD_Connection *c, unsigned status)
{
    return queue(c, status,
                 MHD_create_response_from_buffer(0, mhd_buffer(""), MHD_RESPMEM_PERSISTENT));
}

/*
 * Fails a request. When a body is still on its way (and not too big) the error is kept and
 * sent after the body has been read and dropped, so that a keep-alive client keeps its
 * connection and never sees a reset instead of the answer; otherwise it is sent at once (and
 * libmicrohttpd closes the connection if a body was left unread).
 */
static enum MHD_Result reject(struct MHD_Connection *c, struct request *r, unsigned status,
                              const char *code, int number, const char *msg)
{
    const char *len =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    int has_body = (len != NULL && strcmp(len, "0") != 0) || te != NULL;
    unsigned long long n = len != NULL ? strtoull(len, NULL, 10) : 0;

    /* The id comes from the URL: only a valid one (no control characters) goes into the log. */
    LOG_INFO("%s: %u %s: %s", hub_device_id_valid(r->path.device_id) ? r->path.device_id : "-",
             status, code, msg);
    if (!r->body_done && !r->draining && has_body && n <= DISCARD_MAX) {
        r->err_status = status;
        r->err_code = code;
        r->err_number = number;
        snprintf(r->err_msg, sizeof(r->err_msg), "%s", msg);
        r->draining = 1;
        return MHD_YES;
    }
    return send_error(c, status, code, number, msg, status == 405 ? r->path.allow : NULL);
}

static void request_free(struct request *r)
{
    if (r == NULL) {
        return;
    }
    hub_buf_free(&r->body);
    hub_server_path_clear(&r->path);
    free(r);
}

int hub_server_parse_path(const char *url, struct hub_path *p)
{
    char *copy = strdup(url), *seg[7], *save = NULL, *q;
    size_t n = 0;
    int known = 0;

    memset(p, 0, sizeof(*p));
    if (copy == NULL) {
        return -1;
    }
    if (copy[0] != '/') {
        goto out;
    }
    /* Empty segments ("//", a trailing "/") make the path unknown: strtok would hide them. */
    for (q = copy + 1;; q++) {
        if (*q == '/' && (q[-1] == '/' || q[1] == '\0')) {
            goto out;
        }
        if (*q == '\0') {
            break;
        }
    }
    for (char *s = strtok_r(copy + 1, "/", &save); s != NULL; s = strtok_r(NULL, "/", &save)) {
        if (n == sizeof(seg) / sizeof(seg[0])) {
            goto out;
        }
        seg[n++] = s;
    }
    if (n < 4 || strcasecmp(seg[0], "devices") != 0 || strcasecmp(seg[2], "messages") != 0 ||
        strlen(seg[1]) > HUB_ID_MAX) {
        goto out;
    }
    strcpy(p->device_id, seg[1]);
    if (n == 4 && strcasecmp(seg[3], "events") == 0) {
        p->route = HUB_ROUTE_EVENTS;
        p->allow = "POST";
    } else if (n == 4 && strcasecmp(seg[3], "devicebound") == 0) {
        p->route = HUB_ROUTE_C2D_RECEIVE;
        p->allow = "GET";
    } else if (n == 5 && strcasecmp(seg[3], "devicebound") == 0) {
        p->route = HUB_ROUTE_C2D_SETTLE;
        p->allow = "DELETE";
    } else if (n == 6 && strcasecmp(seg[3], "devicebound") == 0 &&
               strcasecmp(seg[5], "abandon") == 0) {
        p->route = HUB_ROUTE_C2D_ABANDON;
        p->allow = "POST";
    } else {
        goto out;
    }
    if (n >= 5) {
        p->etag = strdup(seg[4]);
        if (p->etag == NULL) {
            known = -1;
            goto out;
        }
    }
    known = 1;
out:
    if (known != 1) {
        p->allow = NULL;
    }
    free(copy);
    return known;
}

void hub_server_path_clear(struct hub_path *p)
{
    free(p->etag);
    memset(p, 0, sizeof(*p));
}

int hub_server_api_version_valid(const char *v)
{
    if (v == NULL || strlen(v) < 10) {
        return 0;
    }
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7 ? v[i] != '-' : (v[i] < '0' || v[i] > '9')) {
            return 0;
        }
    }
    for (const char *p = v + 10; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) {
            return 0;
        }
    }
    return 1;
}

int hub_server_is_batch(const char *content_type)
{
    size_t n = sizeof(HUB_BATCH_CONTENT_TYPE) - 1;

    if (content_type == NULL || strncasecmp(content_type, HUB_BATCH_CONTENT_TYPE, n) != 0) {
        return 0;
    }
    return content_type[n] == '\0' || content_type[n] == ';' || content_type[n] == ' ';
}

int hub_server_if_match(const char *if_match, const char *etag)
{
    size_t n;

    if (if_match == NULL) {
        return 1;
    }
    n = strlen(if_match);
    /* The SDKs send the ETag as received: quoted. Accept it bare as well. */
    if (n >= 2 && if_match[0] == '"' && if_match[n - 1] == '"') {
        if_match++;
        n -= 2;
    }
    return n == strlen(etag) && strncmp(if_match, etag, n) == 0;
}

/*
 * Authenticates the request for r->path.device_id. Returns 0 when the token is good, otherwise
 * queues (or defers) the 401 and returns -1 with `*ret` set.
 */
static int authenticate(struct MHD_Connection *c, struct request *r, enum MHD_Result *ret)
{
    struct hub_server *srv = r->srv;
    const char *header =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *why = "unauthorized";
    struct hub_sas *tok = NULL;
    struct hub_device dev;
    enum sctpm_rc rc;
    char msg[160];
    int result = -1;

    memset(&dev, 0, sizeof(dev));
    rc = hub_sas_parse(header, &tok, &why);
    if (rc == SCTPM_RC_SUCCESS) {
        rc = hub_sas_check_scope(tok, srv->hostname, r->path.device_id, &why);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = hub_store_device_get(srv->store, r->path.device_id, &dev);
        if (rc == SCTPM_RC_NOT_FOUND) {
            why = "device is not registered";
            rc = SCTPM_RC_UNAUTHORIZED;
        } else if (rc == SCTPM_RC_BUSY) {
            *ret = reject(c, r, E_UNAVAILABLE, "the registry is busy; retry");
            goto out;
        } else if (rc != SCTPM_RC_SUCCESS) {
            *ret = reject(c, r, E_SERVER, "the registry is unavailable");
            goto out;
        }
    }
    if (rc == SCTPM_RC_SUCCESS) {
        const uint8_t *keys[2] = {dev.primary_key, dev.secondary_key};
        size_t lens[2] = {dev.primary_len, dev.secondary_len};

        rc = hub_sas_verify(tok, keys, lens, 2, hub_now_ms() / 1000, srv->cfg.clock_skew_s, &why);
    }
    if (rc == SCTPM_RC_SUCCESS && !dev.enabled) {
        /* Checked after the signature, so only the key holder learns the device is disabled. */
        why = "device is disabled";
        rc = SCTPM_RC_UNAUTHORIZED;
    }
    if (rc == SCTPM_RC_SUCCESS) {
        result = 0;
        goto out;
    }
    snprintf(msg, sizeof(msg), "Unauthorized: %s", why);
    if (rc == SCTPM_RC_EXPIRED) {
        *ret = reject(c, r, E_TOKEN_EXPIRED, msg);
    } else if (rc == SCTPM_RC_NO_MEMORY) {
        *ret = reject(c, r, E_SERVER, "out of memory");
    } else {
        *ret = reject(c, r, E_UNAUTHORIZED, msg);
    }
out:
    hub_device_wipe(&dev);
    hub_sas_free(tok);
    return result;
}

/* Collects the message properties from the request headers (for a single message). */
struct header_ctx {
    struct hub_msg *m;
    enum sctpm_rc rc;
    const char *why;
};

static enum MHD_Result on_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    struct header_ctx *h = cls;

    (void)kind;
    if (value == NULL) {
        return MHD_YES;
    }
    h->rc = hub_msg_set_property(h->m, key, value, &h->why);
    return h->rc == SCTPM_RC_SUCCESS ? MHD_YES : MHD_NO;
}

static enum MHD_Result handle_events(struct MHD_Connection *c, struct request *r)
{
    struct hub_msg single, *msgs = NULL;
    size_t n = 0, stored = 0, len = 0;
    struct header_ctx h = {&single, SCTPM_RC_SUCCESS, "invalid property"};
    enum sctpm_rc rc;
    enum MHD_Result ret;
    uint8_t *body;
    char msg[240];

    if (r->batch) {
        rc = hub_msg_parse_batch(r->body.data != NULL ? r->body.data : (const uint8_t *)"",
                                 r->body.len, &msgs, &n, &h.why);
        if (rc == SCTPM_RC_TOO_LARGE) {
            return reject(c, r, E_TOO_LARGE, h.why);
        }
        if (rc == SCTPM_RC_NO_MEMORY) {
            return reject(c, r, E_SERVER, "out of memory");
        }
        if (rc != SCTPM_RC_SUCCESS) {
            snprintf(msg, sizeof(msg), "%s", h.why);
            return reject(c, r, E_BAD_REQUEST, msg);
        }
    } else {
        if (hub_msg_init(&single) != SCTPM_RC_SUCCESS) {
            return reject(c, r, E_SERVER, "out of memory");
        }
        msgs = &single;
        n = 1;
        MHD_get_connection_values(c, MHD_HEADER_KIND, on_header, &h);
        rc = h.rc;
        if (rc == SCTPM_RC_SUCCESS) {
            body = (uint8_t *)hub_buf_steal(&r->body, &len);
            rc = body != NULL ? hub_msg_set_body(&single, body, len) : SCTPM_RC_NO_MEMORY;
            if (rc != SCTPM_RC_SUCCESS) {
                free(body);
            }
        }
        if (rc == SCTPM_RC_SUCCESS) {
            rc = hub_msg_finish(&single);
        }
        if (rc != SCTPM_RC_SUCCESS) {
            hub_msg_clear(&single);
            if (rc == SCTPM_RC_TOO_LARGE) {
                return reject(c, r, E_TOO_LARGE, "message too large");
            }
            if (rc == SCTPM_RC_NO_MEMORY) {
                return reject(c, r, E_SERVER, "out of memory");
            }
            snprintf(msg, sizeof(msg), "%s", h.why);
            return reject(c, r, E_BAD_REQUEST, msg);
        }
    }
    /* The 204 goes out only after hub_store_append() returned, i.e. after the commit. */
    rc = hub_store_append(r->srv->store, r->path.device_id, msgs, n, hub_now_ms(), &stored);
    if (rc == SCTPM_RC_SUCCESS) {
        LOG_DEBUG("%s: stored %zu of %zu message(s)", r->path.device_id, stored, n);
        ret = send_empty(c, MHD_HTTP_NO_CONTENT);
    } else if (rc == SCTPM_RC_BUSY) {
        ret = reject(c, r, E_UNAVAILABLE, "the message store is busy; retry");
    } else {
        ret = reject(c, r, E_SERVER, "the message could not be stored");
    }
    if (msgs == &single) {
        hub_msg_clear(&single);
    } else {
        hub_msgs_free(msgs, n);
    }
    return ret;
}

/* Builds the 200 response for a received cloud-to-device message. */
struct receive_ctx {
    struct MHD_Response *resp;
};

static int add_header(struct MHD_Response *resp, const char *name, const char *value)
{
    return value == NULL || MHD_add_response_header(resp, name, value) == MHD_YES;
}

static int on_c2d(void *cls, const struct hub_c2d_record *m)
{
    struct receive_ctx *rc = cls;
    char etag[HUB_GUID_LEN + 2], num[24], count[16], enq[HUB_HTTP_TIME_LEN], exp[HUB_HTTP_TIME_LEN],
        to[HUB_ID_MAX + 40];
    struct MHD_Response *resp;
    json_object *props;
    int ok;

    resp = MHD_create_response_from_buffer(
        m->r.body_len, mhd_buffer(m->r.body_len > 0 ? m->r.body : (const void *)""),
        MHD_RESPMEM_MUST_COPY);
    if (resp == NULL) {
        return 1;
    }
    snprintf(etag, sizeof(etag), "\"%s\"", m->lock_token);
    snprintf(num, sizeof(num), "%lld", (long long)m->r.seq);
    snprintf(count, sizeof(count), "%u", m->delivery_count);
    hub_http_time(m->r.enqueued_ms, enq);
    hub_http_time(m->expiry_ms, exp);
    snprintf(to, sizeof(to), "/devices/%s/messages/deviceBound", m->r.device_id);
    ok = add_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream") &&
         add_header(resp, MHD_HTTP_HEADER_ETAG, etag) &&
         add_header(resp, "iothub-messageid", m->r.message_id) &&
         add_header(resp, "iothub-correlationid", m->r.correlation_id) &&
         add_header(resp, "iothub-userid", m->r.user_id) &&
         add_header(resp, "iothub-sequencenumber", num) &&
         add_header(resp, "iothub-enqueuedtime", enq) && add_header(resp, "iothub-expiry", exp) &&
         add_header(resp, "iothub-deliverycount", count) && add_header(resp, "iothub-to", to) &&
         add_header(resp, "iothub-ack", m->ack) &&
         add_header(resp, "ContentType", m->r.content_type) &&
         add_header(resp, "ContentEncoding", m->r.content_encoding);
    props = ok ? json_tokener_parse(m->r.properties) : NULL;
    if (props != NULL && json_object_is_type(props, json_type_object)) {
        char name[HUB_PROP_MAX + sizeof(HUB_APP_PREFIX)];

        json_object_object_foreach(props, key, val)
        {
            snprintf(name, sizeof(name), HUB_APP_PREFIX "%s", key);
            ok = ok && add_header(resp, name, json_object_get_string(val));
        }
    } else if (ok) {
        LOG_WARNING("corrupt properties on cloud-to-device message %lld", (long long)m->r.seq);
    }
    if (props != NULL) {
        json_object_put(props);
    }
    if (!ok) {
        MHD_destroy_response(resp);
        return 1;
    }
    rc->resp = resp;
    return 0;
}

static enum MHD_Result handle_receive(struct MHD_Connection *c, struct request *r)
{
    struct hub_server *srv = r->srv;
    struct receive_ctx ctx = {NULL};
    enum sctpm_rc rc;

    rc = hub_store_c2d_receive(srv->store, r->path.device_id, hub_now_ms(),
                               (int64_t)srv->cfg.c2d_lock_timeout_s * 1000,
                               srv->cfg.c2d_max_delivery, on_c2d, &ctx);
    if (rc == SCTPM_RC_NOT_FOUND) {
        return send_empty(c, MHD_HTTP_NO_CONTENT);
    }
    if (rc != SCTPM_RC_SUCCESS) {
        if (ctx.resp != NULL) {
            MHD_destroy_response(ctx.resp);
        }
        return rc == SCTPM_RC_BUSY ? reject(c, r, E_UNAVAILABLE, "the queue is busy; retry")
                                   : reject(c, r, E_SERVER, "the queue is unavailable");
    }
    LOG_DEBUG("%s: delivered a cloud-to-device message", r->path.device_id);
    return queue(c, MHD_HTTP_OK, ctx.resp);
}

static enum MHD_Result handle_settle(struct MHD_Connection *c, struct request *r)
{
    struct hub_server *srv = r->srv;
    const char *if_match =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_MATCH);
    enum hub_c2d_outcome outcome = HUB_C2D_ABANDON;
    enum sctpm_rc rc;

    if (!hub_server_if_match(if_match, r->path.etag)) {
        return reject(c, r, E_PRECONDITION, "If-Match does not match the lock token in the path");
    }
    if (r->path.route == HUB_ROUTE_C2D_SETTLE) {
        outcome = r->reject ? HUB_C2D_REJECT : HUB_C2D_COMPLETE;
    }
    rc = hub_store_c2d_settle(srv->store, r->path.device_id, r->path.etag, outcome, hub_now_ms());
    if (rc == SCTPM_RC_NOT_FOUND) {
        return reject(c, r, E_LOCK_LOST, "the lock token is unknown, already used or expired");
    }
    if (rc != SCTPM_RC_SUCCESS) {
        return rc == SCTPM_RC_BUSY ? reject(c, r, E_UNAVAILABLE, "the queue is busy; retry")
                                   : reject(c, r, E_SERVER, "the queue is unavailable");
    }
    LOG_DEBUG("%s: %s a cloud-to-device message", r->path.device_id,
              outcome == HUB_C2D_COMPLETE ? "completed"
              : outcome == HUB_C2D_REJECT ? "rejected"
                                          : "abandoned");
    return send_empty(c, MHD_HTTP_NO_CONTENT);
}

static struct tracked *tracker_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return info != NULL ? info->socket_context : NULL;
}

/* The first call for a request: routing, api-version, size and authentication. */
static enum MHD_Result begin(struct hub_server *srv, struct MHD_Connection *c, const char *url,
                             const char *method, void **req_cls)
{
    const char *v;
    struct request *r;
    enum MHD_Result ret = MHD_YES;
    int known;

    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return MHD_NO;
    }
    r->srv = srv;
    hub_buf_init(&r->body, HUB_MSG_MAX_SIZE);
    *req_cls = r;
    r->track = tracker_of(c);
    if (r->track != NULL) {
        pthread_mutex_lock(&srv->lock);
        r->track->request_start = hub_mono_ms();
        pthread_mutex_unlock(&srv->lock);
    }
    known = hub_server_parse_path(url, &r->path);
    if (known < 0) {
        return MHD_NO;
    }
    if (known == 0) {
        return reject(c, r, E_NOT_FOUND, "no such resource");
    }
    if (strcmp(method, r->path.allow) != 0) {
        return reject(c, r, E_METHOD, "method not allowed on this resource");
    }
    if (!hub_server_api_version_valid(
            MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "api-version"))) {
        return reject(c, r, E_API_VERSION, "a valid api-version query parameter is required");
    }
    if (r->path.route == HUB_ROUTE_C2D_SETTLE &&
        MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, "reject", 6, &v, NULL) == MHD_YES) {
        if (v == NULL || v[0] == '\0' || strcasecmp(v, "true") == 0) {
            r->reject = 1;
        } else if (strcasecmp(v, "false") != 0) {
            return reject(c, r, E_BAD_REQUEST, "reject must be empty, true or false");
        }
    }
    v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (v != NULL && strtoull(v, NULL, 10) > HUB_MSG_MAX_SIZE) {
        return reject(c, r, E_TOO_LARGE, "message too large");
    }
    if (authenticate(c, r, &ret) != 0) {
        return ret;
    }
    r->batch = r->path.route == HUB_ROUTE_EVENTS &&
               hub_server_is_batch(
                   MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE));
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct hub_server *srv = cls;
    struct request *r = *req_cls;
    enum sctpm_rc rc;

    (void)version;
    if (r == NULL) {
        return begin(srv, c, url, method, req_cls);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;

        *upload_data_size = 0;
        if (r->draining) {
            r->drained += n;
            /* Past this, reading on costs more than a reconnect: drop the connection. */
            return r->drained > DISCARD_MAX ? MHD_NO : MHD_YES;
        }
        rc = hub_buf_append(&r->body, upload_data, n);
        if (rc == SCTPM_RC_TOO_LARGE) {
            /* A chunked body past the limit: drop what we have and drain the rest. */
            r->drained = r->body.len + n;
            hub_buf_free(&r->body);
            return reject(c, r, E_TOO_LARGE, "message too large");
        }
        return rc == SCTPM_RC_SUCCESS ? MHD_YES : MHD_NO;
    }
    /* The whole request has arrived. */
    r->body_done = 1;
    if (r->draining) {
        return send_error(c, r->err_status, r->err_code, r->err_number, r->err_msg,
                          r->err_status == 405 ? r->path.allow : NULL);
    }
    switch (r->path.route) {
    case HUB_ROUTE_EVENTS:
        return handle_events(c, r);
    case HUB_ROUTE_C2D_RECEIVE:
        return handle_receive(c, r);
    case HUB_ROUTE_C2D_SETTLE:
    case HUB_ROUTE_C2D_ABANDON:
        return handle_settle(c, r);
    }
    return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct hub_server *srv = cls;
    struct request *r = *req_cls;

    (void)c;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        LOG_DEBUG("request ended early (libmicrohttpd code %d)", (int)toe);
    }
    if (r != NULL && r->track != NULL) {
        pthread_mutex_lock(&srv->lock);
        r->track->request_start = 0;
        r->track->idle_since = hub_mono_ms();
        pthread_mutex_unlock(&srv->lock);
    }
    request_free(r);
    *req_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct hub_server *srv = cls;
    struct tracked *t;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

        t = calloc(1, sizeof(*t));
        if (t == NULL || info == NULL) {
            /* Untracked, the connection still has libmicrohttpd's idle timeout. */
            free(t);
            return;
        }
        t->fd = info->connect_fd;
        t->idle_since = hub_mono_ms();
        pthread_mutex_lock(&srv->lock);
        t->next = srv->conns;
        if (srv->conns != NULL) {
            srv->conns->prev = t;
        }
        srv->conns = t;
        pthread_mutex_unlock(&srv->lock);
        *socket_context = t;
        return;
    }
    /*
     * libmicrohttpd calls this before it closes the socket, so while `t` is in the list its fd
     * is still this connection's and the watchdog may shut it down.
     */
    t = *socket_context;
    if (t == NULL) {
        return;
    }
    pthread_mutex_lock(&srv->lock);
    if (t->prev != NULL) {
        t->prev->next = t->next;
    } else {
        srv->conns = t->next;
    }
    if (t->next != NULL) {
        t->next->prev = t->prev;
    }
    pthread_mutex_unlock(&srv->lock);
    free(t);
    *socket_context = NULL;
}

/*
 * Closes connections whose request takes too long. libmicrohttpd's timeout only measures
 * silence, so a client sending a byte every few seconds would hold a connection (and its
 * thread) forever; this bounds the whole request instead. Idle keep-alive connections are left
 * to libmicrohttpd, which closes them after idle_timeout_s, before the bound here applies.
 */
static void *watchdog(void *arg)
{
    struct hub_server *srv = arg;
    int64_t req_ms = (int64_t)srv->cfg.request_timeout_s * 1000;
    int64_t idle_ms = (int64_t)srv->cfg.idle_timeout_s * 1000;

    pthread_mutex_lock(&srv->lock);
    while (!srv->stopping) {
        struct timespec ts;
        int64_t now;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += WATCHDOG_PERIOD_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&srv->cond, &srv->lock, &ts);
        now = hub_mono_ms();
        for (struct tracked *t = srv->conns; t != NULL; t = t->next) {
            int slow;

            if (t->killed) {
                continue;
            }
            slow = t->request_start != 0 ? now - t->request_start > req_ms
                                         : now - t->idle_since > idle_ms + req_ms;
            if (slow) {
                LOG_INFO("closing a connection whose request took longer than %u s",
                         srv->cfg.request_timeout_s);
                shutdown(t->fd, SHUT_RDWR);
                t->killed = 1;
            }
        }
    }
    pthread_mutex_unlock(&srv->lock);
    return NULL;
}

static struct MHD_Daemon *start_daemon(struct hub_server *srv, const struct sockaddr *addr,
                                       unsigned extra_flags)
{
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_TLS | MHD_USE_ERROR_LOG | extra_flags;

    /* The logger goes first so that libmicrohttpd reports option errors through it too. */
    return MHD_start_daemon(
        flags, srv->port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_HTTPS_MEM_CERT, srv->cert_pem,
        MHD_OPTION_HTTPS_MEM_KEY, srv->key_pem, MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)srv->cfg.idle_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)srv->cfg.max_connections,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_END);
}

/* Nonzero when [::1] can be bound here (containers often have IPv6 switched off). */
static int have_ipv6_loopback(void)
{
    struct sockaddr_in6 a;
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ok;

    if (fd < 0) {
        return 0;
    }
    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

enum sctpm_rc hub_server_start(const struct hub_server_config *cfg, struct hub_store *store,
                               struct hub_server **out)
{
    enum sctpm_rc rc = SCTPM_RC_NO_MEMORY;
    struct hub_server *srv = NULL;
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    const union MHD_DaemonInfo *info;

    *out = NULL;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        LOG_ERROR("libmicrohttpd was built without TLS support");
        return SCTPM_RC_UNSUPPORTED;
    }
    if (cfg->idle_timeout_s == 0 || cfg->request_timeout_s == 0 || cfg->c2d_lock_timeout_s == 0 ||
        cfg->c2d_max_delivery == 0 || cfg->max_connections == 0) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    pthread_mutex_init(&srv->lock, NULL);
    {
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&srv->cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    srv->cfg = *cfg;
    srv->store = store;
    srv->port = cfg->port;
    srv->hostname = strdup(cfg->hostname);
    srv->cert_pem = strdup(cfg->cert_pem);
    srv->key_pem = strdup(cfg->key_pem);
    if (srv->hostname == NULL || srv->cert_pem == NULL || srv->key_pem == NULL) {
        goto out;
    }
    srv->cfg.hostname = srv->hostname;
    srv->cfg.cert_pem = srv->cert_pem;
    srv->cfg.key_pem = srv->key_pem;
    if (pthread_create(&srv->watchdog, NULL, watchdog, srv) != 0) {
        rc = SCTPM_RC_GENERAL_FAILURE;
        goto out;
    }
    srv->watchdog_started = 1;

    memset(&a4, 0, sizeof(a4));
    a4.sin_family = AF_INET;
    a4.sin_port = htons(srv->port);
    a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv->d4 = start_daemon(srv, (const struct sockaddr *)&a4, 0);
    if (srv->d4 == NULL) {
        LOG_ERROR("cannot serve on 127.0.0.1:%u (port in use, or the certificate was refused)",
                  (unsigned)srv->port);
        rc = SCTPM_RC_NETWORK;
        goto out;
    }
    info = MHD_get_daemon_info(srv->d4, MHD_DAEMON_INFO_BIND_PORT);
    if (info != NULL && info->port != 0) {
        srv->port = info->port;
    }
    if (have_ipv6_loopback()) {
        memset(&a6, 0, sizeof(a6));
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons(srv->port);
        a6.sin6_addr = in6addr_loopback;
        srv->d6 = start_daemon(srv, (const struct sockaddr *)&a6, MHD_USE_IPv6);
        if (srv->d6 == NULL) {
            LOG_WARNING("cannot serve on [::1]:%u as well; serving on 127.0.0.1 only",
                        (unsigned)srv->port);
        }
    }
    *out = srv;
    srv = NULL;
    rc = SCTPM_RC_SUCCESS;
out:
    hub_server_stop(srv);
    return rc;
}

uint16_t hub_server_port(const struct hub_server *srv)
{
    return srv->port;
}

int hub_server_ipv6(const struct hub_server *srv)
{
    return srv->d6 != NULL;
}

void hub_server_stop(struct hub_server *srv)
{
    if (srv == NULL) {
        return;
    }
    /* Daemons first: their connection threads report to the tracker list until they are gone. */
    if (srv->d6 != NULL) {
        MHD_stop_daemon(srv->d6);
    }
    if (srv->d4 != NULL) {
        MHD_stop_daemon(srv->d4);
    }
    if (srv->watchdog_started) {
        pthread_mutex_lock(&srv->lock);
        srv->stopping = 1;
        pthread_cond_broadcast(&srv->cond);
        pthread_mutex_unlock(&srv->lock);
        pthread_join(srv->watchdog, NULL);
    }
    pthread_cond_destroy(&srv->cond);
    pthread_mutex_destroy(&srv->lock);
    if (srv->key_pem != NULL) {
        explicit_bzero(srv->key_pem, strlen(srv->key_pem));
        free(srv->key_pem);
    }
    free(srv->cert_pem);
    free(srv->hostname);
    free(srv);
}
