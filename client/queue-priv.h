/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The outgoing queue: every message the client accepts is here, on disk, before the client says
 * so, and stays until the hub has acknowledged it.
 *
 * One SQLite database, DIR/queue.db (mode 0600 in a 0700 directory), in WAL mode:
 *   outbox    the messages to deliver, oldest first (seq). Each has its message id, assigned at
 *             enqueue and UNIQUE, so an id is queued at most once and every delivery attempt
 *             carries the same id: the hub drops the copies that at-least-once produces.
 *   totals    one row with the outbox's message count and byte total, kept by triggers inside
 *             the same transactions, so the bound check costs one row read.
 *   rejected  messages the hub refused for good (400 or 413: malformed or too large), kept with
 *             the reason instead of blocking the queue; the newest QUEUE_REJECTED_KEEP are kept.
 *   c2d_seen  cloud-to-device message ids `run` has printed, so a redelivered message is
 *             settled without being printed again.
 *   meta      the identity ("host/device[/module]") the queued messages belong to.
 *
 * Durability: an enqueue commits with synchronous=FULL (the WAL is fsync'd before the commit
 * returns), so a message is on disk when queue_push() returns and survives kill -9 and power
 * loss. Removing delivered messages commits with synchronous=NORMAL: the deletion survives the
 * process dying; a power loss can undo it, in which case the messages are sent again with the
 * same ids and the hub drops them. That saves an fsync per delivery request.
 *
 * Concurrency: any number of processes may enqueue at once (SQLite's write lock, waited for up to
 * QUEUE_BUSY_TIMEOUT_MS). Only one process delivers at a time: queue_lock_delivery() takes an
 * exclusive open-file-description lock (fcntl F_OFD_SETLK) on DIR/deliver.lock; others only
 * enqueue, and the holder's pid is recorded in the file so they can say who is delivering.
 *
 * Bounds: the outbox holds at most `max_messages` messages and `max_bytes` bytes (as msg_size()
 * counts them). A push that would pass either is refused whole with SCTPM_RC_QUEUE_FULL: nothing
 * already queued is ever dropped to make room.
 */
#ifndef SCTPM_CLIENT_QUEUE_PRIV_H
#define SCTPM_CLIENT_QUEUE_PRIV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sctpm/rc.h"
#include "msg-priv.h"

#define QUEUE_DEFAULT_MAX_MESSAGES 100000
#define QUEUE_DEFAULT_MAX_BYTES    (64ull * 1024 * 1024)
#define QUEUE_BUSY_TIMEOUT_MS      10000
#define QUEUE_REJECTED_KEEP        1000
/* Printed cloud-to-device ids are remembered this long (IoT Hub's longest message TTL is 48 h). */
#define QUEUE_C2D_SEEN_KEEP_MS (72ll * 3600 * 1000)

struct queue;

struct queue_limits {
    uint64_t max_messages;
    uint64_t max_bytes;
};

/* A message to enqueue. */
struct queue_msg {
    const char *id;      /* [in] a valid message id (msg_id_valid()) */
    const char *props;   /* [in] property set as JSON text (msg_props_text()) */
    const uint8_t *body; /* [in] */
    size_t body_len;
    size_t size;    /* [in] msg_size() of the message */
    int was_queued; /* [out] 1 when the id was in the outbox already (nothing was added) */
};

/* A queued message, as queue_peek() returns it. */
struct queue_item {
    int64_t seq;
    char id[MSG_ID_SIZE];
    int64_t enqueued_ms;
    char *props;   /* JSON text */
    uint8_t *body; /* body_len bytes (plus a NUL, for convenience) */
    size_t body_len;
    size_t size;
};

struct queue_stats {
    uint64_t messages;
    uint64_t bytes;
    int64_t oldest_ms; /* enqueue time of the oldest message, 0 when empty */
    uint64_t rejected;
};

/*
 * Opens (creating when needed, with parents, mode 0700) the queue in `dir`. `limits` NULL means
 * the defaults. On failure `*q` is NULL and `err` holds one sentence.
 */
enum sctpm_rc queue_open(const char *dir, const struct queue_limits *limits, struct queue **q,
                         char *err, size_t err_size);

/* Closes the queue (and releases the delivery lock if held). NULL is ignored. */
void queue_close(struct queue *q);

/* One sentence about the last failure on `q`. */
const char *queue_error(const struct queue *q);

/* The queue's directory. */
const char *queue_dir(const struct queue *q);

/*
 * Ties the queue to an identity ("host/device[/module]"). The first call records it; later calls
 * with another identity fail with SCTPM_RC_EXISTS while messages for the recorded one are still
 * queued (they must not go to another device), and take the new identity when the outbox is
 * empty.
 */
enum sctpm_rc queue_bind_identity(struct queue *q, const char *identity);

/*
 * Appends `n` messages in one transaction, committed to disk before the call returns: all or
 * none. A message whose id is queued already is not added again (its `was_queued` is set).
 * SCTPM_RC_QUEUE_FULL (nothing added) when the bound would be passed.
 */
enum sctpm_rc queue_push(struct queue *q, struct queue_msg *msgs, size_t n, int64_t now_ms);

/*
 * The oldest messages, in order: at most `max_n`, and no more once their sizes add up to more
 * than `max_bytes` (the first is always returned). `*items` is callee-allocated (free with
 * queue_items_free()); `*n` is 0 when the queue is empty.
 */
enum sctpm_rc queue_peek(struct queue *q, size_t max_n, size_t max_bytes, struct queue_item **items,
                         size_t *n);

void queue_items_free(struct queue_item *items, size_t n);

/* Removes delivered messages (by seq) in one transaction. Unknown seqs are ignored. */
enum sctpm_rc queue_remove(struct queue *q, const int64_t *seqs, size_t n);

/* Moves one message to `rejected` with the hub's reason (the newest few hundred are kept). */
enum sctpm_rc queue_reject(struct queue *q, int64_t seq, const char *reason, int64_t now_ms);

enum sctpm_rc queue_stats(struct queue *q, struct queue_stats *st);

/*
 * Takes the delivery lock without waiting. SCTPM_RC_BUSY when another process holds it; then
 * `*holder` (may be NULL) is its pid, or 0 when unknown.
 */
enum sctpm_rc queue_lock_delivery(struct queue *q, pid_t *holder);
void queue_unlock_delivery(struct queue *q);

/*
 * Tells whether some process holds the delivery lock, without taking it (so that asking never
 * makes a deliverer that starts at that moment find the queue busy): `*busy` 1 or 0, and
 * `*holder` the recorded pid, or 0 when unknown. SCTPM_RC_IO when the lock file cannot be used.
 */
enum sctpm_rc queue_delivery_holder(struct queue *q, int *busy, pid_t *holder);

/* Whether `run` printed the cloud-to-device message `id` already, and recording that it did. */
enum sctpm_rc queue_c2d_seen(struct queue *q, const char *id, int *seen);
enum sctpm_rc queue_c2d_mark(struct queue *q, const char *id, int64_t now_ms);

/*
 * The default queue directory for `slot`: /var/lib/sctpm/queue-N for root, otherwise
 * $XDG_STATE_HOME/sctpm/queue-N, else $HOME/.local/state/sctpm/queue-N. Returns
 * SCTPM_RC_NOT_FOUND when neither variable is set for a non-root user.
 */
enum sctpm_rc queue_default_dir(unsigned int slot, char *buf, size_t size);

#endif /* SCTPM_CLIENT_QUEUE_PRIV_H */
