/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sctpm-client's commands but `run` (run.c): send, flush, receive, queue.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOGMODULE client
#include "log.h"
#include "base64.h"
#include "client-priv.h"
#include "deliver-priv.h"
#include "io.h"
#include "msg-priv.h"

void client_error(const struct client_config *cfg, const char *fmt, ...)
{
    va_list ap;

    fputs("sctpm-client: ", cfg->err);
    va_start(ap, fmt);
    vfprintf(cfg->err, fmt, ap);
    va_end(ap);
    fputc('\n', cfg->err);
    fflush(cfg->err);
}

int64_t client_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int client_exit_code(enum sctpm_rc rc, int retryable)
{
    switch (rc) {
    case SCTPM_RC_SUCCESS:
        return CLIENT_OK;
    case SCTPM_RC_BAD_ARGUMENT:
        return CLIENT_BAD_INPUT;
    case SCTPM_RC_NO_TPM:
        return CLIENT_NO_TPM;
    case SCTPM_RC_TPM:
        return CLIENT_TPM_ERROR;
    case SCTPM_RC_NOT_HARDWARE:
        return CLIENT_NOT_HARDWARE;
    case SCTPM_RC_NOT_PROVISIONED:
        return CLIENT_NOT_PROVISIONED;
    case SCTPM_RC_QUEUE_FULL:
        return CLIENT_QUEUE_FULL;
    case SCTPM_RC_NETWORK:
    case SCTPM_RC_TIMEOUT:
        return CLIENT_UNREACHABLE;
    case SCTPM_RC_TLS:
        /* A handshake cut short is a reachability problem; a failed verification is not. */
        return retryable ? CLIENT_UNREACHABLE : CLIENT_TLS;
    case SCTPM_RC_UNAUTHORIZED:
        return CLIENT_UNAUTHORIZED;
    case SCTPM_RC_SERVER:
        return retryable ? CLIENT_UNREACHABLE : CLIENT_REFUSED;
    case SCTPM_RC_BAD_FORMAT:
    case SCTPM_RC_TOO_LARGE:
    case SCTPM_RC_NOT_FOUND:
    case SCTPM_RC_EXPIRED:
        return CLIENT_REFUSED;
    case SCTPM_RC_INTERRUPTED:
        return CLIENT_INTERRUPTED;
    default:
        return CLIENT_FAILURE;
    }
}

static int wall_exit(enum sctpm_rc rc)
{
    return client_exit_code(rc, 0);
}

int session_open(struct session *s, const struct client_config *cfg, unsigned what)
{
    struct http_config hc;
    enum sctpm_rc rc;
    const char *why = NULL;
    char err[640];

    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    if (what & SESSION_TPM) {
        rc = tpm_open(&s->tpm, cfg->tcti, cfg->slot, cfg->require_hardware);
        if (rc != SCTPM_RC_SUCCESS) {
            client_error(cfg, "%s", s->tpm.err);
            /* A slot whose NV holds garbage is the TPM's problem, as for sctpm(1). */
            return rc == SCTPM_RC_CORRUPT ? CLIENT_TPM_ERROR : wall_exit(rc);
        }
        tpm_identity_text(&s->tpm, s->identity, sizeof(s->identity));
        token_cache_init(&s->tokens, tpm_token_source(&s->tpm), cfg->token_ttl);
        LOG_DEBUG("slot %u: %s", cfg->slot, s->identity);
    }
    if (what & SESSION_QUEUE) {
        if (cfg->queue_dir != NULL) {
            snprintf(s->queue_dir, sizeof(s->queue_dir), "%s", cfg->queue_dir);
        } else if (queue_default_dir(cfg->slot, s->queue_dir, sizeof(s->queue_dir)) !=
                   SCTPM_RC_SUCCESS) {
            client_error(cfg, "no queue directory: set --queue DIR, XDG_STATE_HOME or HOME");
            return CLIENT_USAGE;
        }
        rc = queue_open(s->queue_dir, &cfg->limits, &s->q, err, sizeof(err));
        if (rc != SCTPM_RC_SUCCESS) {
            client_error(cfg, "%s", err);
            return CLIENT_FAILURE;
        }
        if (what & SESSION_TPM) {
            rc = queue_bind_identity(s->q, s->identity);
            if (rc != SCTPM_RC_SUCCESS) {
                client_error(cfg, "%s", queue_error(s->q));
                return CLIENT_FAILURE;
            }
        }
    }
    if (what & SESSION_HUB) {
        memset(&hc, 0, sizeof(hc));
        hc.ca_file = cfg->ca_file;
        hc.verbose = cfg->verbose;
        hc.log = cfg->err;
        hc.stop = cfg->stop;
        rc = http_new(&hc, &s->http, err, sizeof(err));
        if (rc != SCTPM_RC_SUCCESS) {
            client_error(cfg, "%s", err);
            return rc == SCTPM_RC_TLS ? CLIENT_TLS : CLIENT_FAILURE;
        }
        rc = hubapi_init(&s->api, s->http, &s->tokens, cfg->endpoint, s->tpm.id.host,
                         s->tpm.id.device_id, s->tpm.id.module_id, &why);
        if (rc != SCTPM_RC_SUCCESS) {
            client_error(cfg, "%s", why != NULL ? why : sctpm_strerror(rc));
            return CLIENT_USAGE;
        }
        if (cfg->verbose) {
            fprintf(cfg->err, "* identity %s (slot %u), endpoint %s\n", s->identity, cfg->slot,
                    s->api.base);
        }
    }
    return CLIENT_OK;
}

void session_close(struct session *s)
{
    queue_close(s->q);
    s->q = NULL;
    http_free(s->http);
    s->http = NULL;
    token_cache_clear(&s->tokens);
    tpm_close(&s->tpm);
}

/* ---- reporting deliveries ---- */

struct report {
    const struct client_config *cfg;
    /* The ids this invocation enqueued, sorted, and whether each was delivered. */
    char (*ids)[MSG_ID_SIZE];
    size_t *order; /* indices into ids, sorted by id */
    unsigned char *delivered;
    size_t nids;
    unsigned long others; /* earlier messages delivered along the way */
    uint64_t backlog;     /* queued when delivery started */
    unsigned long sent;
    unsigned long requests;
    int64_t last_progress_ms;
    int64_t start_ms;
    int print_sent; /* a "sent" line per message (flush and run), not just ours */
};

static struct report *sort_ctx;

static int by_id(const void *a, const void *b)
{
    return strcmp(sort_ctx->ids[*(const size_t *)a], sort_ctx->ids[*(const size_t *)b]);
}

static int find_id(struct report *r, const char *id)
{
    size_t lo = 0, hi = r->nids;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(r->ids[r->order[mid]], id);
        if (c == 0) {
            return (int)r->order[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -1;
}

static void progress(struct report *r, int final)
{
    int64_t now = deliver_mono_ms();
    double secs = (double)(now - r->start_ms) / 1000.0;

    if (r->backlog < CLIENT_PROGRESS_MIN) {
        return;
    }
    if (!final && now - r->last_progress_ms < CLIENT_PROGRESS_EVERY_MS) {
        return;
    }
    r->last_progress_ms = now;
    client_error(r->cfg, "delivered %lu of %llu queued messages (%.0f/s)", r->sent,
                 (unsigned long long)r->backlog, secs > 0 ? (double)r->sent / secs : 0.0);
}

static void on_sent(void *ctx, const struct queue_item *items, size_t n, int batch)
{
    struct report *r = ctx;

    (void)batch;
    for (size_t i = 0; i < n; i++) {
        int k = r->nids > 0 ? find_id(r, items[i].id) : -1;

        if (k >= 0) {
            r->delivered[k] = 1;
        } else {
            r->others++;
        }
        if (r->print_sent && !r->cfg->quiet) {
            fprintf(r->cfg->out, "sent %s\n", items[i].id);
        }
    }
    if (r->print_sent) {
        fflush(r->cfg->out);
    }
    r->sent += n;
    progress(r, 0);
}

static void on_rejected(void *ctx, const struct queue_item *it, const struct hubapi_result *res)
{
    struct report *r = ctx;

    fprintf(r->cfg->out, "rejected %s\n", it->id);
    fflush(r->cfg->out);
    client_error(r->cfg,
                 "message %s was refused by the hub and moved aside (sctpm-client queue "
                 "shows the count): %s",
                 it->id, res->message);
}

static void on_retrying(void *ctx, const struct hubapi_result *res, uint32_t delay_ms)
{
    struct report *r = ctx;

    client_error(r->cfg, "%s; retrying in %.1f s%s", res->message, delay_ms / 1000.0,
                 res->retry_after_ms >= 0 ? " (Retry-After)" : "");
}

/*
 * Delivers the backlog when no other process is delivering it. Returns the exit code for the
 * delivery (CLIENT_OK when the queue is empty afterwards); `*busy` is set when another process
 * holds the lock (then nothing was tried).
 */
static int deliver_backlog(struct session *s, struct report *r, int batch, double timeout_s,
                           int *busy, struct hubapi_result *res)
{
    struct deliver_events ev = {on_sent, on_rejected, on_retrying, r};
    struct queue_stats st;
    struct deliver d;
    enum sctpm_rc rc;
    pid_t holder = 0;
    int64_t deadline;

    *busy = 0;
    memset(res, 0, sizeof(*res));
    rc = queue_lock_delivery(s->q, &holder);
    if (rc == SCTPM_RC_BUSY) {
        *busy = holder > 0 ? (int)holder : -1;
        return CLIENT_OK;
    }
    if (rc != SCTPM_RC_SUCCESS) {
        snprintf(res->message, sizeof(res->message), "%s", queue_error(s->q));
        res->rc = rc;
        return CLIENT_FAILURE;
    }
    if (queue_stats(s->q, &st) == SCTPM_RC_SUCCESS) {
        r->backlog = st.messages;
    }
    r->start_ms = deliver_mono_ms();
    r->last_progress_ms = r->start_ms;
    deliver_init(&d, s->q, &s->api, batch, &ev);
    deadline = deliver_mono_ms() + (int64_t)(timeout_s * 1000);
    rc = deliver_flush(&d, deadline, s->cfg->stop, res);
    queue_unlock_delivery(s->q);
    if (r->sent > 0) {
        progress(r, 1);
    }
    r->requests = d.requests;
    LOG_DEBUG("delivered %lu in %lu request(s), %lu rejected, token renewals %lu", d.sent,
              d.requests, d.rejected, s->tokens.renewals);
    if (rc == SCTPM_RC_SUCCESS) {
        return CLIENT_OK;
    }
    if (res->message[0] == '\0') {
        snprintf(res->message, sizeof(res->message), "%s", sctpm_strerror(rc));
    }
    return client_exit_code(rc, res->retryable);
}

/* ---- send ---- */

struct body {
    uint8_t *data;
    size_t len;
    int owned;
};

/* Reads all of standard input, up to `max` bytes (more is an error). */
static int read_stdin(const struct client_config *cfg, size_t max, uint8_t **out, size_t *len)
{
    size_t cap = 65536, n = 0;
    uint8_t *buf = NULL, *p;
    ssize_t got;

    *out = NULL;
    *len = 0;
    for (;;) {
        if (buf == NULL || n == cap) {
            if (buf != NULL) {
                cap *= 2;
            }
            p = n <= max ? realloc(buf, cap) : NULL;
            if (p == NULL) {
                free(buf);
                if (n > max) {
                    client_error(cfg, "standard input is larger than %zu bytes", max);
                    return CLIENT_BAD_INPUT;
                }
                client_error(cfg, "out of memory");
                return CLIENT_FAILURE;
            }
            buf = p;
        }
        /* read_full() returns less than asked only at end of file. */
        got = read_full(STDIN_FILENO, buf + n, cap - n);
        if (got < 0) {
            free(buf);
            client_error(cfg, "cannot read standard input: %s", strerror((int)-got));
            return CLIENT_BAD_INPUT;
        }
        n += (size_t)got;
        if (n < cap) {
            break;
        }
    }
    if (n > max) {
        free(buf);
        client_error(cfg, "standard input is larger than %zu bytes", max);
        return CLIENT_BAD_INPUT;
    }
    *out = buf;
    *len = n;
    return CLIENT_OK;
}

/* Splits `data` into lines (without their "\n" or "\r\n"); empty lines are skipped. */
static int split_lines(const struct client_config *cfg, uint8_t *data, size_t len,
                       struct body **bodies, size_t *n)
{
    size_t count = 0, cap = 0, start = 0;
    struct body *b = NULL, *p;

    while (start < len) {
        uint8_t *nl = memchr(data + start, '\n', len - start);
        size_t end = nl != NULL ? (size_t)(nl - data) : len, l = end - start;

        if (l > 0 && data[start + l - 1] == '\r') {
            l--;
        }
        if (l > 0) {
            if (count == cap) {
                cap = cap > 0 ? cap * 2 : 64;
                p = realloc(b, cap * sizeof(*b));
                if (p == NULL) {
                    free(b);
                    client_error(cfg, "out of memory");
                    return CLIENT_FAILURE;
                }
                b = p;
            }
            b[count].data = data + start;
            b[count].len = l;
            b[count].owned = 0;
            count++;
        }
        start = end + 1;
    }
    *bodies = b;
    *n = count;
    return CLIENT_OK;
}

int client_send(const struct client_config *cfg, const struct client_send_opts *o)
{
    struct session s;
    struct body *bodies = NULL;
    struct queue_msg *msgs = NULL;
    struct report r;
    struct hubapi_result res;
    uint8_t *input = NULL;
    size_t input_len = 0, n = 0;
    const char *props_text;
    int ret = CLIENT_FAILURE, busy = 0, flush_ret = CLIENT_OK, stdin_used = 0;
    unsigned long queued_left = 0;
    enum sctpm_rc rc;

    memset(&s, 0, sizeof(s));
    memset(&r, 0, sizeof(r));
    r.cfg = cfg;
    /* 1. Every message is checked before anything is opened or queued. */
    for (size_t i = 0; i < o->nbodies; i++) {
        if (strcmp(o->bodies[i], "-") == 0) {
            if (stdin_used++) {
                client_error(cfg, "\"-\" (standard input) may be given once");
                return CLIENT_USAGE;
            }
        }
    }
    if (o->lines && !stdin_used) {
        client_error(cfg, "--lines reads standard input: give \"-\" as the BODY");
        return CLIENT_USAGE;
    }
    bodies = calloc(o->nbodies, sizeof(*bodies));
    if (bodies == NULL && o->nbodies > 0) {
        client_error(cfg, "out of memory");
        return CLIENT_FAILURE;
    }
    for (size_t i = 0; i < o->nbodies; i++) {
        if (strcmp(o->bodies[i], "-") != 0) {
            bodies[n].data = (uint8_t *)o->bodies[i];
            bodies[n].len = strlen(o->bodies[i]);
            n++;
            continue;
        }
        ret =
            read_stdin(cfg, o->lines ? (size_t)cfg->limits.max_bytes + MSG_MAX_SIZE : MSG_MAX_SIZE,
                       &input, &input_len);
        if (ret != CLIENT_OK) {
            goto out;
        }
        if (o->lines) {
            struct body *lines = NULL, *p;
            size_t nlines = 0;

            ret = split_lines(cfg, input, input_len, &lines, &nlines);
            if (ret != CLIENT_OK) {
                goto out;
            }
            p = realloc(bodies, (o->nbodies + nlines) * sizeof(*bodies));
            if (p == NULL && o->nbodies + nlines > 0) {
                free(lines);
                client_error(cfg, "out of memory");
                ret = CLIENT_FAILURE;
                goto out;
            }
            bodies = p;
            if (nlines > 0) {
                memcpy(&bodies[n], lines, nlines * sizeof(*lines));
            }
            n += nlines;
            free(lines);
        } else {
            bodies[n].data = input;
            bodies[n].len = input_len;
            n++;
        }
    }
    if (n == 0) {
        client_error(cfg, "nothing to send (standard input had no lines)");
        ret = CLIENT_BAD_INPUT;
        goto out;
    }
    if (o->message_id != NULL && n != 1) {
        client_error(cfg, "--message-id names one message, and there are %zu", n);
        ret = CLIENT_USAGE;
        goto out;
    }
    props_text = msg_props_text(o->props);
    msgs = calloc(n, sizeof(*msgs));
    r.ids = calloc(n, sizeof(*r.ids));
    r.order = calloc(n, sizeof(*r.order));
    r.delivered = calloc(n, 1);
    if (msgs == NULL || r.ids == NULL || r.order == NULL || r.delivered == NULL ||
        props_text == NULL) {
        client_error(cfg, "out of memory");
        ret = CLIENT_FAILURE;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (o->message_id != NULL) {
            snprintf(r.ids[i], sizeof(r.ids[i]), "%s", o->message_id);
        } else if (msg_id_new(r.ids[i]) != SCTPM_RC_SUCCESS) {
            client_error(cfg, "cannot make a message id: the kernel's random source failed");
            ret = CLIENT_FAILURE;
            goto out;
        }
        msgs[i].id = r.ids[i];
        msgs[i].props = props_text;
        msgs[i].body = bodies[i].data;
        msgs[i].body_len = bodies[i].len;
        msgs[i].size = msg_size(bodies[i].len, r.ids[i], o->props);
        if (msgs[i].size > MSG_MAX_SIZE) {
            client_error(cfg,
                         "message %zu is %zu bytes with its properties; IoT Hub takes at most "
                         "%d (256 KiB)",
                         i + 1, msgs[i].size, MSG_MAX_SIZE);
            ret = CLIENT_BAD_INPUT;
            goto out;
        }
        r.order[i] = i;
    }
    r.nids = n;
    sort_ctx = &r;
    qsort(r.order, n, sizeof(*r.order), by_id);
    sort_ctx = NULL;

    /* 2. The identity, then the durable enqueue: after this the messages are accepted. */
    ret = session_open(&s, cfg, SESSION_TPM | SESSION_QUEUE | (o->no_flush ? 0 : SESSION_HUB));
    if (ret != CLIENT_OK) {
        goto out;
    }
    rc = queue_push(s.q, msgs, n, client_wall_ms());
    if (rc != SCTPM_RC_SUCCESS) {
        client_error(cfg, "%s", queue_error(s.q));
        ret = rc == SCTPM_RC_QUEUE_FULL ? CLIENT_QUEUE_FULL : CLIENT_FAILURE;
        goto out;
    }
    ret = CLIENT_OK;

    /* 3. Delivery, best effort: failing here leaves the messages queued, and send succeeded. */
    if (!o->no_flush) {
        flush_ret = deliver_backlog(&s, &r, o->batch, o->timeout_s, &busy, &res);
    }
    for (size_t i = 0; i < n; i++) {
        if (r.delivered[i]) {
            fprintf(cfg->out, "sent %s\n", r.ids[i]);
        } else {
            fprintf(cfg->out, "queued %s%s\n", r.ids[i],
                    msgs[i].was_queued ? " (already queued)" : "");
            queued_left++;
        }
    }
    fflush(cfg->out);
    if (r.others > 0) {
        client_error(cfg, "also delivered %lu earlier queued message(s)", r.others);
    }
    if (o->no_flush) {
        /* Said by the "queued" lines. */
    } else if (busy != 0) {
        if (busy > 0) {
            client_error(cfg, "queued in %s; process %d is delivering the queue", s.queue_dir,
                         busy);
        } else {
            client_error(cfg, "queued in %s; another process is delivering the queue", s.queue_dir);
        }
    } else if (flush_ret != CLIENT_OK) {
        struct queue_stats st;

        if (queue_stats(s.q, &st) != SCTPM_RC_SUCCESS) {
            st.messages = queued_left;
        }
        client_error(cfg,
                     "not delivered yet: %s; %llu message(s) stay queued in %s for the next "
                     "send, flush or run",
                     res.message, (unsigned long long)st.messages, s.queue_dir);
    }
out:
    session_close(&s);
    free(msgs);
    free(r.ids);
    free(r.order);
    free(r.delivered);
    free(bodies);
    free(input);
    return ret;
}

/* ---- flush ---- */

int client_flush(const struct client_config *cfg, int batch, double timeout_s)
{
    struct session s;
    struct report r;
    struct hubapi_result res;
    struct queue_stats st;
    int ret, busy = 0;

    memset(&r, 0, sizeof(r));
    r.cfg = cfg;
    r.print_sent = 1;
    ret = session_open(&s, cfg, SESSION_TPM | SESSION_QUEUE | SESSION_HUB);
    if (ret != CLIENT_OK) {
        goto out;
    }
    ret = deliver_backlog(&s, &r, batch, timeout_s, &busy, &res);
    if (busy != 0) {
        if (busy > 0) {
            client_error(cfg, "process %d is delivering the queue in %s", busy, s.queue_dir);
        } else {
            client_error(cfg, "another process is delivering the queue in %s", s.queue_dir);
        }
        ret = CLIENT_FAILURE;
        goto out;
    }
    if (queue_stats(s.q, &st) != SCTPM_RC_SUCCESS) {
        memset(&st, 0, sizeof(st));
    }
    if (ret != CLIENT_OK) {
        client_error(cfg, "%s; %llu message(s) stay queued in %s", res.message,
                     (unsigned long long)st.messages, s.queue_dir);
    } else {
        client_error(cfg,
                     "delivered %lu message(s) in %lu request(s) in %.3f s, %lu token(s) signed "
                     "(%.3f ms each); the queue is empty",
                     r.sent, r.requests, (double)(deliver_mono_ms() - r.start_ms) / 1000.0,
                     s.tokens.renewals,
                     s.tokens.renewals > 0 ? (double)s.tokens.renew_ns / 1e6 / s.tokens.renewals
                                           : 0.0);
    }
out:
    session_close(&s);
    return ret;
}

/* ---- receive ---- */

/* Appends " name=value" when value is not empty. */
static void add_field(char **line, const char *name, const char *value)
{
    char *p;

    if (*line == NULL || value == NULL || value[0] == '\0') {
        return;
    }
    if (asprintf(&p, "%s %s=%s", *line, name, value) < 0) {
        p = NULL;
    }
    free(*line);
    *line = p;
}

/* Printable ASCII only, for ids and properties the hub echoes: nothing else reaches a terminal. */
static void sanitize(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e) {
            *s = '?';
        }
    }
}

enum sctpm_rc client_c2d_line(const struct hubapi_c2d *m, char **out)
{
    char id[sizeof(m->id)], cid[sizeof(m->correlation_id)], ct[sizeof(m->content_type)],
        ce[sizeof(m->content_encoding)], lock[sizeof(m->lock)], count[24];
    const char *props = m->props != NULL ? msg_props_text(m->props) : "{}";
    char *line = NULL, *b64 = NULL, *p;
    int text;

    *out = NULL;
    snprintf(id, sizeof(id), "%s", m->id[0] != '\0' ? m->id : "-");
    snprintf(cid, sizeof(cid), "%s", m->correlation_id);
    snprintf(ct, sizeof(ct), "%s", m->content_type);
    snprintf(ce, sizeof(ce), "%s", m->content_encoding);
    snprintf(lock, sizeof(lock), "%s", m->lock);
    sanitize(id);
    sanitize(cid);
    sanitize(ct);
    sanitize(ce);
    sanitize(lock);
    snprintf(count, sizeof(count), "%lu", m->delivery_count);
    if (asprintf(&line, "c2d id=%s lock=%s delivery=%s", id, lock, count) < 0) {
        return SCTPM_RC_NO_MEMORY;
    }
    add_field(&line, "cid", cid);
    add_field(&line, "ct", ct);
    add_field(&line, "ce", ce);
    add_field(&line, "props", props != NULL ? props : "{}");
    text = msg_printable((const uint8_t *)m->body, m->body_len) &&
           memchr(m->body, '\t', m->body_len) == NULL;
    if (line != NULL && text) {
        if (asprintf(&p, "%s body=%.*s", line, (int)m->body_len, m->body) < 0) {
            p = NULL;
        }
    } else if (line != NULL) {
        b64 = malloc(base64_encoded_len(m->body_len) + 1);
        p = NULL;
        if (b64 != NULL) {
            base64_encode((const uint8_t *)m->body, m->body_len, b64);
            if (asprintf(&p, "%s body64=%s", line, b64) < 0) {
                p = NULL;
            }
        }
    } else {
        p = NULL;
    }
    free(line);
    free(b64);
    if (p == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    *out = p;
    return SCTPM_RC_SUCCESS;
}

static const char *settle_word(enum client_settle how)
{
    switch (how) {
    case CLIENT_COMPLETE:
        return "completed";
    case CLIENT_REJECT:
        return "rejected";
    case CLIENT_ABANDON:
        return "abandoned";
    default:
        return "left locked";
    }
}

static enum hubapi_settle to_hubapi(enum client_settle how)
{
    return how == CLIENT_REJECT    ? HUBAPI_REJECT
           : how == CLIENT_ABANDON ? HUBAPI_ABANDON
                                   : HUBAPI_COMPLETE;
}

int client_receive(const struct client_config *cfg, const struct client_receive_opts *o)
{
    struct session s;
    struct hubapi_result res;
    struct hubapi_c2d m;
    struct backoff bo;
    char *line = NULL;
    int ret, got = 0;
    int64_t deadline = deliver_mono_ms() + (int64_t)(o->wait_s * 1000);

    memset(&m, 0, sizeof(m));
    ret = session_open(&s, cfg, SESSION_TPM | SESSION_HUB);
    if (ret != CLIENT_OK) {
        goto out;
    }
    if (o->lock != NULL) {
        hubapi_settle(&s.api, o->lock, to_hubapi(o->settle), &res);
        if (res.rc != SCTPM_RC_SUCCESS) {
            client_error(cfg, "%s", res.message);
            ret = client_exit_code(res.rc, res.retryable);
            goto out;
        }
        fprintf(cfg->out, "%s %s\n", settle_word(o->settle), o->lock);
        goto out;
    }
    backoff_init(&bo, 1000, 5000);
    for (;;) {
        hubapi_receive(&s.api, &m, &got, &res);
        if (res.rc == SCTPM_RC_SUCCESS && got) {
            break;
        }
        if (res.rc != SCTPM_RC_SUCCESS && !res.retryable) {
            client_error(cfg, "%s", res.message);
            ret = client_exit_code(res.rc, 0);
            goto out;
        }
        {
            uint32_t delay = res.rc == SCTPM_RC_SUCCESS
                                 ? 1000
                                 : backoff_next(&bo, backoff_random(), res.retry_after_ms);

            if (deliver_mono_ms() + delay > deadline) {
                if (res.rc != SCTPM_RC_SUCCESS) {
                    client_error(cfg, "%s", res.message);
                    ret = client_exit_code(res.rc, res.retryable);
                } else {
                    client_error(cfg, "no cloud-to-device message");
                }
                goto out;
            }
            if (deliver_sleep(delay, cfg->stop) != 0) {
                ret = CLIENT_INTERRUPTED;
                goto out;
            }
        }
    }
    if (client_c2d_line(&m, &line) != SCTPM_RC_SUCCESS) {
        client_error(cfg, "out of memory");
        ret = CLIENT_FAILURE;
        goto out;
    }
    fprintf(cfg->out, "%s\n", line);
    fflush(cfg->out);
    if (o->settle != CLIENT_SETTLE_NONE) {
        hubapi_settle(&s.api, m.lock, to_hubapi(o->settle), &res);
        if (res.rc != SCTPM_RC_SUCCESS) {
            client_error(cfg, "the message was received but not %s: %s", settle_word(o->settle),
                         res.message);
            ret = client_exit_code(res.rc, res.retryable);
            goto out;
        }
        fprintf(cfg->out, "%s %s\n", settle_word(o->settle), m.lock);
    }
out:
    free(line);
    hubapi_c2d_clear(&m);
    session_close(&s);
    return ret;
}

/* ---- queue ---- */

int client_queue_status(const struct client_config *cfg)
{
    struct session s;
    struct queue_stats st;
    pid_t holder = 0;
    enum sctpm_rc rc;
    char when[64] = "-", who[32];
    int ret, busy = 0;

    ret = session_open(&s, cfg, SESSION_QUEUE);
    if (ret != CLIENT_OK) {
        goto out;
    }
    rc = queue_stats(s.q, &st);
    if (rc != SCTPM_RC_SUCCESS) {
        client_error(cfg, "%s", queue_error(s.q));
        ret = CLIENT_FAILURE;
        goto out;
    }
    if (st.oldest_ms > 0) {
        time_t t = (time_t)(st.oldest_ms / 1000);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    rc = queue_delivery_holder(s.q, &busy, &holder);
    if (rc != SCTPM_RC_SUCCESS) {
        client_error(cfg, "%s", queue_error(s.q));
        ret = CLIENT_FAILURE;
        goto out;
    }
    if (busy && holder > 0) {
        snprintf(who, sizeof(who), "pid:%ld", (long)holder);
    } else {
        snprintf(who, sizeof(who), "%s", busy ? "yes" : "no");
    }
    fprintf(cfg->out,
            "queue %s messages=%llu bytes=%llu oldest=%s rejected=%llu max-messages=%llu "
            "max-bytes=%llu delivering=%s\n",
            s.queue_dir, (unsigned long long)st.messages, (unsigned long long)st.bytes, when,
            (unsigned long long)st.rejected, (unsigned long long)cfg->limits.max_messages,
            (unsigned long long)cfg->limits.max_bytes, who);
out:
    session_close(&s);
    return ret;
}
