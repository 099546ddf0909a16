/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Delivery: takes the oldest queued messages, sends them, and removes them once the hub has
 * acknowledged them (2xx). The caller holds the queue's delivery lock.
 *
 * A step sends one request: the oldest message alone, or, in batch mode, as many of the oldest
 * messages as fit in one batch body (MSG_BATCH_MAX; at least two, else the single form). Order is
 * kept: a message is never sent before an older one has been acknowledged or rejected.
 *
 * A message the hub refuses for good (400, 413) is moved to the queue's `rejected` table with the
 * hub's reason, so it cannot block the messages behind it; a refused batch is retried one
 * message at a time, so only the culprit is rejected. Every other failure leaves the messages
 * queued, and the caller decides when to try again (retryable) or gives up (final).
 */
#ifndef SCTPM_CLIENT_DELIVER_PRIV_H
#define SCTPM_CLIENT_DELIVER_PRIV_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "backoff-priv.h"
#include "hubapi-priv.h"
#include "queue-priv.h"

/* A batch holds at most this many messages (sctpm-hub's bound; IoT Hub's is the size). */
#define DELIVER_BATCH_MAX_MESSAGES 500

struct deliver_events {
    /* `n` messages were acknowledged by the hub (and removed from the queue). */
    void (*sent)(void *ctx, const struct queue_item *items, size_t n, int batch);
    /* A message was refused for good and moved to `rejected`. */
    void (*rejected)(void *ctx, const struct queue_item *it, const struct hubapi_result *res);
    /* deliver_flush() waits `delay_ms` before trying again after `res`. */
    void (*retrying)(void *ctx, const struct hubapi_result *res, uint32_t delay_ms);
    void *ctx;
};

struct deliver {
    struct queue *q;
    struct hubapi *api;
    int batch;
    struct deliver_events ev;
    struct backoff backoff;
    size_t singles; /* after a refused batch: this many steps send one message each */
    /* Statistics. */
    unsigned long sent;
    unsigned long requests;
    unsigned long rejected;
    unsigned long failures;
};

void deliver_init(struct deliver *d, struct queue *q, struct hubapi *api, int batch,
                  const struct deliver_events *ev);

/*
 * One request. Returns SCTPM_RC_SUCCESS when it made progress or there was nothing to send
 * (`*empty` then 1); otherwise the failure, with `res` saying what happened (res->retryable:
 * whether trying later may help). Queue errors are returned with res->message set as well.
 */
enum sctpm_rc deliver_step(struct deliver *d, int *empty, struct hubapi_result *res);

/*
 * Steps until the queue is empty (SCTPM_RC_SUCCESS), a final failure, the monotonic deadline
 * `deadline_ms` (the last retryable failure is returned), or `*stop` (SCTPM_RC_INTERRUPTED).
 * Between retryable failures it waits with exponential backoff and jitter, honouring
 * Retry-After; a wait that would pass the deadline is not started. `res` holds the last failure.
 */
enum sctpm_rc deliver_flush(struct deliver *d, int64_t deadline_ms,
                            const volatile sig_atomic_t *stop, struct hubapi_result *res);

/* Monotonic milliseconds. */
int64_t deliver_mono_ms(void);

/* Sleeps `ms`, waking early (returning -1) when `*stop` is raised. */
int deliver_sleep(int64_t ms, const volatile sig_atomic_t *stop);

#endif /* SCTPM_CLIENT_DELIVER_PRIV_H */
