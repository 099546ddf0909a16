/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOGMODULE deliver
#include "log.h"
#include "deliver-priv.h"

int64_t deliver_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int deliver_sleep(int64_t ms, const volatile sig_atomic_t *stop)
{
    int64_t end = deliver_mono_ms() + ms;

    for (;;) {
        int64_t left = end - deliver_mono_ms();

        if (stop != NULL && *stop) {
            return -1;
        }
        if (left <= 0) {
            return 0;
        }
        /* Short naps so a stop request is seen promptly (signals also interrupt poll). */
        poll(NULL, 0, (int)(left < 100 ? left : 100));
    }
}

void deliver_init(struct deliver *d, struct queue *q, struct hubapi *api, int batch,
                  const struct deliver_events *ev)
{
    memset(d, 0, sizeof(*d));
    d->q = q;
    d->api = api;
    d->batch = batch;
    if (ev != NULL) {
        d->ev = *ev;
    }
    backoff_init(&d->backoff, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum sctpm_rc queue_failed(struct deliver *d, enum sctpm_rc rc, struct hubapi_result *res)
{
    res->rc = rc;
    res->status = 0;
    res->retryable = rc == SCTPM_RC_BUSY;
    res->retry_after_ms = -1;
    snprintf(res->message, sizeof(res->message), "%s", queue_error(d->q));
    return rc;
}

/* The hub acknowledged `n` messages: they leave the queue. */
static enum sctpm_rc acknowledged(struct deliver *d, struct queue_item *items, size_t n, int batch,
                                  struct hubapi_result *res)
{
    int64_t seqs[DELIVER_BATCH_MAX_MESSAGES];
    enum sctpm_rc rc;

    for (size_t i = 0; i < n; i++) {
        seqs[i] = items[i].seq;
    }
    rc = queue_remove(d->q, seqs, n);
    if (rc != SCTPM_RC_SUCCESS) {
        /* Delivered but still queued: they go again with the same ids and the hub drops them. */
        return queue_failed(d, rc, res);
    }
    d->sent += n;
    if (d->singles > 0) {
        d->singles--;
    }
    if (d->ev.sent != NULL) {
        d->ev.sent(d->ev.ctx, items, n, batch);
    }
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc deliver_step(struct deliver *d, int *empty, struct hubapi_result *res)
{
    struct queue_item *items = NULL;
    struct msg_batch b;
    size_t n = 0, used = 0;
    size_t want = d->batch && d->singles == 0 ? DELIVER_BATCH_MAX_MESSAGES : 1;
    enum sctpm_rc rc;

    *empty = 0;
    memset(res, 0, sizeof(*res));
    res->retry_after_ms = -1;
    msg_batch_init(&b, MSG_BATCH_MAX);
    rc = queue_peek(d->q, want, MSG_BATCH_MAX, &items, &n);
    if (rc != SCTPM_RC_SUCCESS) {
        return queue_failed(d, rc, res);
    }
    if (n == 0) {
        *empty = 1;
        res->rc = SCTPM_RC_SUCCESS;
        return SCTPM_RC_SUCCESS;
    }
    if (n > 1) {
        for (used = 0; used < n; used++) {
            json_object *props = NULL;

            rc = msg_props_parse(items[used].props, &props);
            if (rc == SCTPM_RC_SUCCESS) {
                rc = msg_batch_add(&b, items[used].id, props, items[used].body,
                                   items[used].body_len);
            }
            json_object_put(props);
            if (rc == SCTPM_RC_TOO_LARGE) {
                break;
            }
            if (rc != SCTPM_RC_SUCCESS) {
                /* A damaged entry goes alone, where the single path reports it. */
                break;
            }
        }
    }
    d->requests++;
    if (used >= 2 && msg_batch_finish(&b) == SCTPM_RC_SUCCESS) {
        LOG_DEBUG("batch of %zu messages, %zu bytes", used, b.len);
        hubapi_send_batch(d->api, b.data, b.len, res);
        if (res->rc == SCTPM_RC_SUCCESS) {
            rc = acknowledged(d, items, used, 1, res);
        } else if (res->rc == SCTPM_RC_BAD_FORMAT || res->rc == SCTPM_RC_TOO_LARGE) {
            /* Find the culprit: these messages go one at a time. */
            LOG_INFO("batch refused (%s): sending its %zu messages one by one", res->message, used);
            d->singles = used;
            rc = SCTPM_RC_SUCCESS;
            res->rc = SCTPM_RC_SUCCESS;
        } else {
            rc = res->rc;
        }
        goto out;
    }
    hubapi_send_one(d->api, &items[0], res);
    if (res->rc == SCTPM_RC_SUCCESS) {
        rc = acknowledged(d, items, 1, 0, res);
    } else if (res->rc == SCTPM_RC_BAD_FORMAT || res->rc == SCTPM_RC_TOO_LARGE ||
               res->rc == SCTPM_RC_CORRUPT) {
        rc = queue_reject(d->q, items[0].seq, res->message, wall_ms());
        if (rc != SCTPM_RC_SUCCESS) {
            queue_failed(d, rc, res);
            goto out;
        }
        d->rejected++;
        if (d->singles > 0) {
            d->singles--;
        }
        if (d->ev.rejected != NULL) {
            d->ev.rejected(d->ev.ctx, &items[0], res);
        }
        res->rc = SCTPM_RC_SUCCESS;
        rc = SCTPM_RC_SUCCESS;
    } else {
        rc = res->rc;
    }
out:
    if (rc != SCTPM_RC_SUCCESS) {
        d->failures++;
    }
    msg_batch_free(&b);
    queue_items_free(items, n);
    return rc;
}

enum sctpm_rc deliver_flush(struct deliver *d, int64_t deadline_ms,
                            const volatile sig_atomic_t *stop, struct hubapi_result *res)
{
    enum sctpm_rc rc;
    int empty = 0;

    for (;;) {
        if (stop != NULL && *stop) {
            res->rc = SCTPM_RC_INTERRUPTED;
            snprintf(res->message, sizeof(res->message), "interrupted");
            return SCTPM_RC_INTERRUPTED;
        }
        rc = deliver_step(d, &empty, res);
        if (rc == SCTPM_RC_SUCCESS) {
            backoff_reset(&d->backoff);
            if (empty) {
                return SCTPM_RC_SUCCESS;
            }
            continue;
        }
        if (!res->retryable) {
            return rc;
        }
        {
            uint32_t delay = backoff_next(&d->backoff, backoff_random(), res->retry_after_ms);

            if (deliver_mono_ms() + delay > deadline_ms) {
                return rc;
            }
            if (d->ev.retrying != NULL) {
                d->ev.retrying(d->ev.ctx, res, delay);
            }
            if (deliver_sleep(delay, stop) != 0) {
                res->rc = SCTPM_RC_INTERRUPTED;
                snprintf(res->message, sizeof(res->message), "interrupted");
                return SCTPM_RC_INTERRUPTED;
            }
        }
    }
}
