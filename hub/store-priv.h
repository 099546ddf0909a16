/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The hub's database: the device registry, the telemetry store (what Azure would route to
 * storage or Cosmos DB) and the cloud-to-device queues, in one SQLite file in WAL mode with
 * synchronous=FULL, so a commit that returned is on disk.
 *
 * Any number of processes may open the same file (the server and the CLI do); SQLite's locking
 * serialises writers and each waits up to HUB_STORE_BUSY_MS for the others. Within a process a
 * struct hub_store is safe to share between threads: it keeps a small pool of connections, and
 * hub_store_append() commits the telemetry of concurrent callers together (group commit), so
 * sixteen clients share one fsync instead of queueing for sixteen.
 *
 * Telemetry is deduplicated on (device id, message id) for the life of the store.
 *
 * Cloud-to-device message states (the `state` column):
 *
 *     queued --receive--> locked --complete--> completed
 *       ^                   |  \---reject----> rejected      (dead-lettered by the device)
 *       |                   |
 *       +----abandon--------+  (or the lock expires: the message is available again)
 *
 *     queued/locked(expired) --expiry time passes--> expired
 *     queued/locked(expired) --delivered max_delivery times--> deadlettered
 *
 * Every receive increments the delivery count and issues a fresh lock token (a GUID), valid
 * until lock_until; settling with a token that is unknown, already used or past its lock fails
 * with SCTPM_RC_NOT_FOUND (IoT Hub's "lock lost"). Expiry and dead-lettering are applied lazily
 * at the next receive for the device, inside the same transaction.
 */
#ifndef SCTPM_HUB_STORE_PRIV_H
#define SCTPM_HUB_STORE_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "sctpm/rc.h"
#include "message-priv.h"
#include "util-priv.h"

#define HUB_KEY_MIN     16
#define HUB_KEY_MAX     64
#define HUB_KEY_DEFAULT 32
/* How long one SQLite connection waits for another process's write lock. */
#define HUB_STORE_BUSY_MS 5000
/* Azure's limit on outstanding cloud-to-device messages per device. */
#define HUB_C2D_MAX_QUEUE 50

struct hub_store;

struct hub_device {
    char id[HUB_ID_MAX + 1];
    uint8_t primary_key[HUB_KEY_MAX];
    size_t primary_len;
    uint8_t secondary_key[HUB_KEY_MAX];
    size_t secondary_len;
    int enabled;
    int64_t created_ms;
    int64_t updated_ms;
};

/* Wipes the keys in `d` (call it on every struct hub_device once done with it). */
void hub_device_wipe(struct hub_device *d);

/* A stored telemetry message, valid only during the callback that receives it. */
struct hub_record {
    int64_t seq;
    const char *device_id;
    int64_t enqueued_ms;
    const char *message_id;
    const char *correlation_id; /* NULL when absent, as are the other optional fields */
    const char *content_type;
    const char *content_encoding;
    const char *user_id;
    const char *creation_time;
    const char *properties; /* JSON object text */
    const uint8_t *body;
    size_t body_len;
};

/* A cloud-to-device message, valid only during the callback that receives it. */
struct hub_c2d_record {
    struct hub_record r; /* creation_time is unused */
    const char *ack;     /* NULL when absent */
    const char *state;
    int64_t expiry_ms;
    unsigned delivery_count;
    const char *lock_token; /* NULL unless locked */
    int64_t lock_until_ms;
};

enum hub_c2d_outcome { HUB_C2D_COMPLETE, HUB_C2D_REJECT, HUB_C2D_ABANDON };

/* Callbacks return 0 to continue, nonzero to stop (the call then returns SCTPM_RC_INTERRUPTED). */
typedef int (*hub_device_cb)(void *ctx, const struct hub_device *d);
typedef int (*hub_record_cb)(void *ctx, const struct hub_record *r);
typedef int (*hub_c2d_cb)(void *ctx, const struct hub_c2d_record *r);

/*
 * Opens (creating when absent, mode 0600) the database at `path` and brings its schema up to
 * date. `*out` is callee-allocated; close with hub_store_close(). Fails with SCTPM_RC_CORRUPT for
 * a file that is not a hub database, SCTPM_RC_UNSUPPORTED for one from a newer version.
 */
enum sctpm_rc hub_store_open(const char *path, struct hub_store **out);

/* Closes every connection. No call may be in progress. NULL is ignored. */
void hub_store_close(struct hub_store *st);

/* Reads a configuration value; `*value` is callee-allocated (free()). SCTPM_RC_NOT_FOUND if unset.
 */
enum sctpm_rc hub_store_meta_get(struct hub_store *st, const char *key, char **value);
enum sctpm_rc hub_store_meta_set(struct hub_store *st, const char *key, const char *value);

/* Adds a device; SCTPM_RC_EXISTS if the id is taken. Keys must be HUB_KEY_MIN..HUB_KEY_MAX bytes.
 */
enum sctpm_rc hub_store_device_add(struct hub_store *st, const struct hub_device *d);

/* Looks a device up into `*out` (wipe it afterwards); SCTPM_RC_NOT_FOUND if there is none. */
enum sctpm_rc hub_store_device_get(struct hub_store *st, const char *id, struct hub_device *out);

/* Removes a device and its cloud-to-device queue (its telemetry stays); SCTPM_RC_NOT_FOUND. */
enum sctpm_rc hub_store_device_remove(struct hub_store *st, const char *id);

/* Enables or disables a device; SCTPM_RC_NOT_FOUND. */
enum sctpm_rc hub_store_device_set_enabled(struct hub_store *st, const char *id, int enabled,
                                           int64_t now_ms);

/* Calls `cb` for every device in id order. */
enum sctpm_rc hub_store_device_list(struct hub_store *st, hub_device_cb cb, void *ctx);

/*
 * Stores `n` finished messages from `device_id` in one transaction, all or none, committed to
 * disk before the call returns SCTPM_RC_SUCCESS. Messages whose id the device used before are
 * skipped. `*stored` (may be NULL) receives how many were new. Concurrent callers are committed
 * together. SCTPM_RC_BUSY when another process held the database for too long.
 */
enum sctpm_rc hub_store_append(struct hub_store *st, const char *device_id, struct hub_msg *msgs,
                               size_t n, int64_t now_ms, size_t *stored);

/*
 * Calls `cb` for up to `limit` messages with a sequence number above `after_seq`, oldest first,
 * of one device (or all when `device_id` is NULL). `*last_seq` (may be NULL) receives the last
 * sequence number seen, or `after_seq` when there was none.
 */
enum sctpm_rc hub_store_messages(struct hub_store *st, const char *device_id, int64_t after_seq,
                                 size_t limit, hub_record_cb cb, void *ctx, int64_t *last_seq);

/*
 * Queues a cloud-to-device message (finished: it has an id) for `device_id`, expiring `ttl_ms`
 * after `now_ms`. `ack` may be NULL. SCTPM_RC_NOT_FOUND if the device does not exist,
 * SCTPM_RC_QUEUE_FULL if it already has `max_queue` outstanding messages.
 */
enum sctpm_rc hub_store_c2d_send(struct hub_store *st, const char *device_id,
                                 const struct hub_msg *m, const char *ack, int64_t now_ms,
                                 int64_t ttl_ms, size_t max_queue);

/*
 * Receives the next available message for `device_id`: locks it for `lock_ms` with a fresh
 * token, counts the delivery, and calls `cb` with it before committing. If `cb` returns nonzero
 * nothing changes (SCTPM_RC_INTERRUPTED). SCTPM_RC_NOT_FOUND when the queue is empty.
 */
enum sctpm_rc hub_store_c2d_receive(struct hub_store *st, const char *device_id, int64_t now_ms,
                                    int64_t lock_ms, unsigned max_delivery, hub_c2d_cb cb,
                                    void *ctx);

/*
 * Completes, rejects or abandons the message locked with `lock_token`. SCTPM_RC_NOT_FOUND when
 * the token is unknown, belongs to another device, was already used or its lock has expired.
 */
enum sctpm_rc hub_store_c2d_settle(struct hub_store *st, const char *device_id,
                                   const char *lock_token, enum hub_c2d_outcome outcome,
                                   int64_t now_ms);

/* Calls `cb` for every cloud-to-device message of `device_id` (all states), oldest first. */
enum sctpm_rc hub_store_c2d_list(struct hub_store *st, const char *device_id, hub_c2d_cb cb,
                                 void *ctx);

#endif /* SCTPM_HUB_STORE_PRIV_H */
