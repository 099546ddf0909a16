/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The hub's request handling, without a socket: what hub/server.c does with a request once
 * libmicrohttpd has parsed it, in the same order. The input is a flags byte, then a request in
 * HTTP/1.1 shape, which this file splits the way libmicrohttpd would:
 *
 *     POST /devices/dev-01/messages/events?api-version=2020-03-13
 *     Authorization: SharedAccessSignature sr=...&sig=...&se=...
 *     iothub-app-temp: 21
 *     <empty line>
 *     body
 *
 * The request is routed (hub_server_parse_path), its method, api-version and length are
 * checked, its token is parsed, scoped to its device and verified (hub/sas.c) against device
 * dev-01's two keys, and then by route: telemetry becomes one message from the headers and the
 * body (hub_msg_set_property, hub_msg_set_body, hub_msg_finish) or a batch
 * (hub_msg_parse_batch); settling checks If-Match against the lock token. Storing is left out
 * (hub/store.c hands every value to SQLite as a bound parameter).
 *
 * Flags bit 0 carries on as if the token had verified: a fuzzer cannot forge an HMAC, and the
 * message parsers behind the check deserve the same attention. The seeds hold valid tokens
 * (sr=hub.example/devices/dev-01, key bytes 0..31, expiry in 2100) for the faithful path.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "message-priv.h"
#include "sas-priv.h"
#include "server-priv.h"
#include "util-priv.h"

#define HOST        "hub.example"
#define DEVICE      "dev-01"
#define NOW         1700000000
#define MAX_HEADERS 64

struct request {
    char *text; /* the input as a NUL-terminated copy; the fields below point into it */
    const char *method, *path, *query;
    const char *names[MAX_HEADERS], *values[MAX_HEADERS];
    size_t n_headers;
    const uint8_t *body;
    size_t body_len;
};

/* Splits the input; 0 when it has no request line. */
static int split(const uint8_t *data, size_t size, struct request *r)
{
    char *p, *eol, *q;
    size_t head;
    const uint8_t *blank = NULL;

    /* The head ends at the first empty line; the body is the rest, bytes as they are. */
    for (size_t i = 0; i + 1 < size; i++) {
        if (data[i] == '\n' && data[i + 1] == '\n') {
            blank = data + i;
            break;
        }
    }
    head = blank != NULL ? (size_t)(blank - data) : size;
    r->body = blank != NULL ? blank + 2 : data + size;
    r->body_len = blank != NULL ? size - head - 2 : 0;
    r->text = malloc(head + 1);
    if (r->text == NULL) {
        return 0;
    }
    memcpy(r->text, data, head);
    r->text[head] = '\0';
    p = r->text;
    eol = strchr(p, '\n');
    if (eol != NULL) {
        *eol = '\0';
    }
    q = strchr(p, ' ');
    if (q == NULL) {
        return 0;
    }
    *q = '\0';
    r->method = p;
    r->path = q + 1;
    q = strchr(q + 1, '?');
    if (q != NULL) {
        *q = '\0';
        r->query = q + 1;
    }
    /* Header lines: "Name: value", the value trimmed as libmicrohttpd trims it. */
    for (p = eol != NULL ? eol + 1 : NULL; p != NULL && r->n_headers < MAX_HEADERS; p = eol) {
        char *colon;
        eol = strchr(p, '\n');
        if (eol != NULL) {
            *eol++ = '\0';
        }
        colon = strchr(p, ':');
        if (colon == NULL) {
            continue;
        }
        *colon++ = '\0';
        while (*colon == ' ' || *colon == '\t') {
            colon++;
        }
        r->names[r->n_headers] = p;
        r->values[r->n_headers++] = colon;
    }
    return 1;
}

/* The first header of that name (libmicrohttpd compares names without regard to case). */
static const char *header(const struct request *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        if (strcasecmp(r->names[i], name) == 0) {
            return r->values[i];
        }
    }
    return NULL;
}

/* The value of query argument `name` (copied into `buf`), or NULL. */
static const char *query_arg(const struct request *r, const char *name, char *buf, size_t size)
{
    size_t n = strlen(name);

    for (const char *p = r->query; p != NULL && *p != '\0';) {
        const char *amp = strchr(p, '&');
        size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        if (len >= n && strncmp(p, name, n) == 0 && (len == n || p[n] == '=')) {
            size_t vlen = len > n ? len - n - 1 : 0;
            if (vlen >= size) {
                vlen = size - 1;
            }
            memcpy(buf, p + n + (len > n), vlen);
            buf[vlen] = '\0';
            return buf;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return NULL;
}

/* hub/server.c authenticate(), with the registry holding dev-01 only. */
static int authenticate(const struct request *r, const char *device_id)
{
    static uint8_t primary[32], secondary[32];
    const uint8_t *keys[2] = {primary, secondary};
    size_t lens[2] = {sizeof(primary), sizeof(secondary)};
    struct hub_sas *tok = NULL;
    const char *why = NULL;
    enum sctpm_rc rc;

    for (int i = 0; i < 32; i++) {
        primary[i] = (uint8_t)i;
        secondary[i] = (uint8_t)(i + 1);
    }
    rc = hub_sas_parse(header(r, "Authorization"), &tok, &why);
    if (rc == SCTPM_RC_SUCCESS) {
        rc = hub_sas_check_scope(tok, HOST, device_id, &why);
    }
    if (rc == SCTPM_RC_SUCCESS && strcmp(device_id, DEVICE) != 0) {
        rc = SCTPM_RC_UNAUTHORIZED;
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = hub_sas_verify(tok, keys, lens, 2, NOW, 30, &why);
    }
    hub_sas_free(tok);
    return rc == SCTPM_RC_SUCCESS;
}

static void check_message(const struct hub_msg *m)
{
    if (!hub_message_id_valid(m->message_id) || m->app == NULL || m->size > HUB_MSG_MAX_SIZE) {
        fuzz_fail("an accepted message breaks the rules");
    }
    (void)hub_msg_app_json(m);
}

/* hub/server.c handle_events(). */
static void events(const struct request *r, int batch)
{
    struct hub_msg single, *msgs = NULL;
    const char *why = NULL;
    uint8_t *body;
    size_t n = 0;
    enum sctpm_rc rc;

    if (batch) {
        rc = hub_msg_parse_batch(r->body, r->body_len, &msgs, &n, &why);
        if (rc == SCTPM_RC_SUCCESS) {
            if (n == 0 || n > HUB_BATCH_MAX) {
                fuzz_fail("a batch of %zu messages accepted", n);
            }
            for (size_t i = 0; i < n; i++) {
                check_message(&msgs[i]);
            }
            hub_msgs_free(msgs, n);
        } else if (msgs != NULL || n != 0 || why == NULL) {
            fuzz_fail("a refused batch left outputs or no reason");
        }
        return;
    }
    if (hub_msg_init(&single) != SCTPM_RC_SUCCESS) {
        return;
    }
    rc = SCTPM_RC_SUCCESS;
    for (size_t i = 0; i < r->n_headers && rc == SCTPM_RC_SUCCESS; i++) {
        rc = hub_msg_set_property(&single, r->names[i], r->values[i], &why);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        body = malloc(r->body_len + 1);
        if (body == NULL) {
            hub_msg_clear(&single);
            return;
        }
        memcpy(body, r->body, r->body_len);
        body[r->body_len] = '\0';
        rc = hub_msg_set_body(&single, body, r->body_len);
        if (rc != SCTPM_RC_SUCCESS) {
            free(body);
        }
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = hub_msg_finish(&single);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        check_message(&single);
    }
    hub_msg_clear(&single);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t flags = fuzz_u8(&in);
    struct request r = {0};
    struct hub_path path;
    char api[64], rej[16];
    const char *v;
    int known;

    if (!split(in.p, in.left, &r)) {
        goto out;
    }
    /* begin() */
    known = hub_server_parse_path(r.path, &path);
    if (known != 1) {
        if (known == 0 && (path.allow != NULL || path.etag != NULL)) {
            fuzz_fail("an unknown path left a route behind");
        }
        hub_server_path_clear(&path);
        goto out;
    }
    if (path.allow == NULL || strlen(path.device_id) > HUB_ID_MAX ||
        ((path.route == HUB_ROUTE_C2D_SETTLE || path.route == HUB_ROUTE_C2D_ABANDON) !=
         (path.etag != NULL))) {
        fuzz_fail("a known path is incomplete");
    }
    if (strcmp(r.method, path.allow) != 0 ||
        !hub_server_api_version_valid(query_arg(&r, "api-version", api, sizeof(api)))) {
        goto clear;
    }
    v = query_arg(&r, "reject", rej, sizeof(rej));
    if (path.route == HUB_ROUTE_C2D_SETTLE && v != NULL && v[0] != '\0' &&
        strcasecmp(v, "true") != 0 && strcasecmp(v, "false") != 0) {
        goto clear;
    }
    v = header(&r, "Content-Length");
    if ((v != NULL && strtoull(v, NULL, 10) > HUB_MSG_MAX_SIZE) || r.body_len > HUB_MSG_MAX_SIZE) {
        goto clear;
    }
    if (!authenticate(&r, path.device_id) && !(flags & 1)) {
        goto clear;
    }
    /* on_request(), once the body is in. */
    switch (path.route) {
    case HUB_ROUTE_EVENTS:
        events(&r, hub_server_is_batch(header(&r, "Content-Type")));
        break;
    case HUB_ROUTE_C2D_SETTLE:
    case HUB_ROUTE_C2D_ABANDON:
        (void)hub_server_if_match(header(&r, "If-Match"), path.etag);
        break;
    case HUB_ROUTE_C2D_RECEIVE:
        break;
    }
clear:
    hub_server_path_clear(&path);
out:
    free(r.text);
    return 0;
}
