/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#define LOGMODULE hub
#include "log.h"
#include "store-priv.h"

#define SCHEMA_VERSION "1"
/* Connections per process: enough for every busy thread, few enough to stay cheap. */
#define POOL_MAX 16
/* Each pooled connection's page cache, in KiB (see conn_open). */
#define HUB_STORE_CACHE_KIB_STR "256"
/* At most this many append calls share one transaction. */
#define GROUP_MAX 256

/* Every statement the store runs, prepared once per connection and reused. */
enum stmt_id {
    ST_META_GET,
    ST_META_SET,
    ST_DEV_GET,
    ST_DEV_ADD,
    ST_DEV_DEL,
    ST_DEV_C2D_DEL,
    ST_DEV_ENABLE,
    ST_DEV_LIST,
    ST_MSG_INSERT,
    ST_MSG_LIST_ALL,
    ST_MSG_LIST_DEV,
    ST_C2D_INSERT,
    ST_C2D_DEPTH,
    ST_C2D_EXPIRE,
    ST_C2D_DEADLETTER,
    ST_C2D_NEXT,
    ST_C2D_LOCK,
    ST_C2D_SETTLE,
    ST_C2D_LIST,
    ST_COUNT
};

#define MSG_COLUMNS                                                                                \
    "seq, device_id, enqueued_ms, message_id, correlation_id, content_type, content_encoding, "    \
    "user_id, creation_time, properties, body"
#define C2D_COLUMNS                                                                                \
    "seq, device_id, enqueued_ms, message_id, correlation_id, content_type, content_encoding, "    \
    "user_id, ack, properties, body, state, expiry_ms, delivery_count, lock_token, lock_until_ms"
/* A cloud-to-device message another receive may take: queued, or locked with an expired lock. */
#define C2D_AVAILABLE "(state = 'queued' OR (state = 'locked' AND lock_until_ms <= ?2))"

static const char *const sql[ST_COUNT] = {
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [ST_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [ST_DEV_GET] = "SELECT id, primary_key, secondary_key, enabled, created_ms, updated_ms "
                   "FROM devices WHERE id = ?1",
    [ST_DEV_ADD] = "INSERT INTO devices (id, primary_key, secondary_key, enabled, created_ms, "
                   "updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_DEV_DEL] = "DELETE FROM devices WHERE id = ?1",
    [ST_DEV_C2D_DEL] = "DELETE FROM c2d WHERE device_id = ?1",
    [ST_DEV_ENABLE] = "UPDATE devices SET enabled = ?2, updated_ms = ?3 WHERE id = ?1",
    [ST_DEV_LIST] = "SELECT id, primary_key, secondary_key, enabled, created_ms, updated_ms "
                    "FROM devices ORDER BY id",
    [ST_MSG_INSERT] = "INSERT OR IGNORE INTO messages (device_id, enqueued_ms, message_id, "
                      "correlation_id, content_type, content_encoding, user_id, creation_time, "
                      "properties, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_MSG_LIST_ALL] = "SELECT " MSG_COLUMNS " FROM messages WHERE seq > ?1 ORDER BY seq "
                        "LIMIT ?2",
    [ST_MSG_LIST_DEV] = "SELECT " MSG_COLUMNS " FROM messages WHERE device_id = ?3 AND seq > ?1 "
                        "ORDER BY seq LIMIT ?2",
    [ST_C2D_INSERT] = "INSERT INTO c2d (device_id, enqueued_ms, message_id, correlation_id, "
                      "content_type, content_encoding, user_id, ack, properties, body, state, "
                      "expiry_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'queued', ?11)",
    [ST_C2D_DEPTH] = "SELECT count(*) FROM c2d WHERE device_id = ?1 AND state IN ('queued', "
                     "'locked')",
    [ST_C2D_EXPIRE] = "UPDATE c2d SET state = 'expired', lock_token = NULL WHERE device_id = ?1 "
                      "AND expiry_ms <= ?2 AND " C2D_AVAILABLE,
    [ST_C2D_DEADLETTER] = "UPDATE c2d SET state = 'deadlettered', lock_token = NULL WHERE "
                          "device_id = ?1 AND delivery_count >= ?3 AND " C2D_AVAILABLE,
    [ST_C2D_NEXT] = "SELECT " C2D_COLUMNS " FROM c2d WHERE device_id = ?1 AND " C2D_AVAILABLE
                    " ORDER BY seq LIMIT 1",
    [ST_C2D_LOCK] = "UPDATE c2d SET state = 'locked', lock_token = ?2, lock_until_ms = ?3, "
                    "delivery_count = delivery_count + 1 WHERE seq = ?1",
    [ST_C2D_SETTLE] = "UPDATE c2d SET state = ?3, lock_token = NULL, lock_until_ms = NULL "
                      "WHERE device_id = ?1 AND lock_token = ?2 AND state = 'locked' AND "
                      "lock_until_ms > ?4",
    [ST_C2D_LIST] = "SELECT " C2D_COLUMNS " FROM c2d WHERE device_id = ?1 ORDER BY seq",
};

/*
 * The schema. seq columns are AUTOINCREMENT so a sequence number is never reused, even after
 * the newest row is deleted. Devices keep two keys, as Azure's do: a token signed with either
 * is accepted, which lets a fleet rotate keys without downtime.
 */
static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS devices ("
    "  id TEXT PRIMARY KEY,"
    "  primary_key BLOB NOT NULL,"
    "  secondary_key BLOB NOT NULL,"
    "  enabled INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS messages ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  device_id TEXT NOT NULL,"
    "  enqueued_ms INTEGER NOT NULL,"
    "  message_id TEXT NOT NULL,"
    "  correlation_id TEXT, content_type TEXT, content_encoding TEXT, user_id TEXT,"
    "  creation_time TEXT,"
    "  properties TEXT NOT NULL,"
    "  body BLOB NOT NULL,"
    "  UNIQUE (device_id, message_id));"
    "CREATE INDEX IF NOT EXISTS messages_device ON messages (device_id, seq);"
    "CREATE TABLE IF NOT EXISTS c2d ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  device_id TEXT NOT NULL,"
    "  enqueued_ms INTEGER NOT NULL,"
    "  message_id TEXT NOT NULL,"
    "  correlation_id TEXT, content_type TEXT, content_encoding TEXT, user_id TEXT, ack TEXT,"
    "  properties TEXT NOT NULL,"
    "  body BLOB NOT NULL,"
    "  state TEXT NOT NULL,"
    "  expiry_ms INTEGER NOT NULL,"
    "  delivery_count INTEGER NOT NULL DEFAULT 0,"
    "  lock_token TEXT,"
    "  lock_until_ms INTEGER);"
    "CREATE INDEX IF NOT EXISTS c2d_device ON c2d (device_id, state, seq);"
    "CREATE UNIQUE INDEX IF NOT EXISTS c2d_lock ON c2d (lock_token) WHERE lock_token IS NOT NULL;";

struct conn {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    struct conn *next;
};

/* One hub_store_append() call waiting for its messages to be committed. */
struct job {
    const char *device_id;
    struct hub_msg *msgs;
    size_t n;
    int64_t now_ms;
    size_t stored;
    enum sctpm_rc rc;
    int done;
    struct job *next;
};

struct hub_store {
    char *path;
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t pool_cond;
    pthread_cond_t commit_cond;
    struct conn *idle;
    size_t open;
    struct job *queue_head;
    struct job *queue_tail;
    int leader; /* a thread is committing a group */
};

static enum sctpm_rc map_rc(int e)
{
    switch (e & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return SCTPM_RC_SUCCESS;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return SCTPM_RC_BUSY;
    case SQLITE_CONSTRAINT:
        return SCTPM_RC_EXISTS;
    case SQLITE_NOMEM:
        return SCTPM_RC_NO_MEMORY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return SCTPM_RC_CORRUPT;
    case SQLITE_TOOBIG:
        return SCTPM_RC_TOO_LARGE;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return SCTPM_RC_IO;
    default:
        return SCTPM_RC_GENERAL_FAILURE;
    }
}

/* Maps a SQLite failure, logging it with SQLite's own code and message. */
static enum sctpm_rc fail(struct conn *c, int e, const char *what)
{
    LOG_WARNING("sqlite: %s failed: %s (0x%08x)", what, sqlite3_errmsg(c->db), (unsigned)e);
    return map_rc(e);
}

static enum sctpm_rc exec(struct conn *c, const char *text)
{
    int e = sqlite3_exec(c->db, text, NULL, NULL, NULL);

    return e == SQLITE_OK ? SCTPM_RC_SUCCESS : fail(c, e, text);
}

static void conn_close(struct conn *c)
{
    if (c == NULL) {
        return;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(c->st[i]);
    }
    sqlite3_close(c->db);
    free(c);
}

static enum sctpm_rc conn_open(const char *path, struct conn **out)
{
    enum sctpm_rc rc = SCTPM_RC_NO_MEMORY;
    struct conn *c;
    int e;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        goto out;
    }
    /* NOMUTEX: each connection is used by one thread at a time (the pool hands it out). */
    e = sqlite3_open_v2(path, &c->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                            SQLITE_OPEN_EXRESCODE,
                        NULL);
    if (e != SQLITE_OK) {
        rc = c->db != NULL ? fail(c, e, "open") : SCTPM_RC_NO_MEMORY;
        goto out;
    }
    sqlite3_busy_timeout(c->db, HUB_STORE_BUSY_MS);
    /* FULL: a commit is durable once it returns, which is what "acknowledged" must mean. */
    rc = exec(c, "PRAGMA synchronous = FULL");
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    /*
     * SQLite caches up to 2 MiB of pages per connection by default, and the pool holds up to
     * POOL_MAX connections: the hub would grow with its database towards 32 MiB. The pages it
     * reads again (the tail of the message table and its index) fit in far less.
     */
    rc = exec(c, "PRAGMA cache_size = -" HUB_STORE_CACHE_KIB_STR);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    *out = c;
    c = NULL;
out:
    conn_close(c);
    return rc;
}

/* Returns the prepared statement `id`, reset and with no bindings, or NULL (logged). */
static sqlite3_stmt *stmt(struct conn *c, enum stmt_id id)
{
    if (c->st[id] == NULL) {
        int e = sqlite3_prepare_v3(c->db, sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL);
        if (e != SQLITE_OK) {
            fail(c, e, "prepare");
            c->st[id] = NULL;
            return NULL;
        }
    }
    return c->st[id];
}

static void done_with(sqlite3_stmt *s)
{
    if (s != NULL) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
}

/* Binds a string that may be NULL (an absent optional field). */
static int bind_text(sqlite3_stmt *s, int i, const char *v)
{
    return v != NULL ? sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

static enum sctpm_rc acquire(struct hub_store *st, struct conn **out)
{
    enum sctpm_rc rc;
    struct conn *c;

    pthread_mutex_lock(&st->lock);
    while (st->idle == NULL && st->open >= POOL_MAX) {
        pthread_cond_wait(&st->pool_cond, &st->lock);
    }
    c = st->idle;
    if (c != NULL) {
        st->idle = c->next;
        pthread_mutex_unlock(&st->lock);
        *out = c;
        return SCTPM_RC_SUCCESS;
    }
    st->open++;
    pthread_mutex_unlock(&st->lock);
    /* Opened outside the lock: opening a file may wait on the disk. */
    rc = conn_open(st->path, out);
    if (rc != SCTPM_RC_SUCCESS) {
        pthread_mutex_lock(&st->lock);
        st->open--;
        pthread_cond_signal(&st->pool_cond);
        pthread_mutex_unlock(&st->lock);
    }
    return rc;
}

static void release(struct hub_store *st, struct conn *c)
{
    if (c == NULL) {
        return;
    }
    /* Never hand on a connection inside a transaction a failed call left open. */
    if (!sqlite3_get_autocommit(c->db)) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_lock(&st->lock);
    c->next = st->idle;
    st->idle = c;
    pthread_cond_signal(&st->pool_cond);
    pthread_mutex_unlock(&st->lock);
}

/*
 * Takes a connection and prepares statement `id` on it. On failure nothing is held: the
 * connection went back to the pool.
 */
static enum sctpm_rc acquire_stmt(struct hub_store *st, enum stmt_id id, struct conn **c,
                                  sqlite3_stmt **s)
{
    enum sctpm_rc rc = acquire(st, c);

    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    *s = stmt(*c, id);
    if (*s == NULL) {
        release(st, *c);
        *c = NULL;
        return SCTPM_RC_GENERAL_FAILURE;
    }
    return SCTPM_RC_SUCCESS;
}

/* Creates the schema or checks that an existing one is ours and not newer than we are. */
static enum sctpm_rc init_schema(struct conn *c)
{
    enum sctpm_rc rc;
    sqlite3_stmt *s = NULL;
    const char *mode;
    int e;

    /* WAL: readers (the CLI, other requests) never block the writer, and commits are cheap. */
    e = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
    if (e != SQLITE_OK) {
        return fail(c, e, "PRAGMA journal_mode");
    }
    e = sqlite3_step(s);
    mode = e == SQLITE_ROW ? col_text(s, 0) : NULL;
    if (mode == NULL || strcmp(mode, "wal") != 0) {
        rc = e == SQLITE_ROW ? SCTPM_RC_IO : fail(c, e, "PRAGMA journal_mode");
        LOG_ERROR("cannot put the database into WAL mode");
        sqlite3_finalize(s);
        return rc;
    }
    sqlite3_finalize(s);
    rc = exec(c, "BEGIN IMMEDIATE");
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    rc = exec(c, schema);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    s = stmt(c, ST_META_GET);
    if (s == NULL) {
        rc = SCTPM_RC_GENERAL_FAILURE;
        goto out;
    }
    sqlite3_bind_text(s, 1, "schema_version", -1, SQLITE_STATIC);
    e = sqlite3_step(s);
    if (e == SQLITE_ROW) {
        if (strcmp(col_text(s, 0), SCHEMA_VERSION) != 0) {
            LOG_ERROR("database schema version %s is not %s: made by another sctpm-hub version",
                      col_text(s, 0), SCHEMA_VERSION);
            rc = SCTPM_RC_UNSUPPORTED;
            done_with(s);
            goto out;
        }
        done_with(s);
    } else if (e == SQLITE_DONE) {
        done_with(s);
        rc = exec(c, "INSERT INTO meta (key, value) VALUES ('schema_version', " SCHEMA_VERSION ")");
        if (rc != SCTPM_RC_SUCCESS) {
            goto out;
        }
    } else {
        rc = fail(c, e, "read schema version");
        done_with(s);
        goto out;
    }
    rc = exec(c, "COMMIT");
out:
    if (rc != SCTPM_RC_SUCCESS && !sqlite3_get_autocommit(c->db)) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

enum sctpm_rc hub_store_open(const char *path, struct hub_store **out)
{
    enum sctpm_rc rc = SCTPM_RC_NO_MEMORY;
    struct hub_store *st = NULL;
    struct conn *c = NULL;
    int fd;

    *out = NULL;
    /* Create the file ourselves so that it is private from the first byte (it holds keys). */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        LOG_ERROR("cannot open %s: %s", path, strerror(errno));
        return SCTPM_RC_IO;
    }
    close(fd);
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        goto out;
    }
    st->path = strdup(path);
    if (st->path == NULL) {
        free(st);
        st = NULL;
        goto out;
    }
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->pool_cond, NULL);
    pthread_cond_init(&st->commit_cond, NULL);
    rc = conn_open(path, &c);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    rc = init_schema(c);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    st->idle = c;
    st->open = 1;
    c = NULL;
    *out = st;
    st = NULL;
out:
    conn_close(c);
    hub_store_close(st);
    return rc;
}

void hub_store_close(struct hub_store *st)
{
    if (st == NULL) {
        return;
    }
    LOG_INFO("database: %zu connection(s) pooled; SQLite memory in use %lld bytes, at most %lld",
             st->open, (long long)sqlite3_memory_used(), (long long)sqlite3_memory_highwater(0));
    while (st->idle != NULL) {
        struct conn *c = st->idle;
        st->idle = c->next;
        conn_close(c);
    }
    pthread_cond_destroy(&st->commit_cond);
    pthread_cond_destroy(&st->pool_cond);
    pthread_mutex_destroy(&st->lock);
    free(st->path);
    free(st);
}

enum sctpm_rc hub_store_meta_get(struct hub_store *st, const char *key, char **value)
{
    enum sctpm_rc rc;
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;
    int e;

    *value = NULL;
    rc = acquire_stmt(st, ST_META_GET, &c, &s);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    e = sqlite3_step(s);
    if (e == SQLITE_DONE) {
        rc = SCTPM_RC_NOT_FOUND;
    } else if (e != SQLITE_ROW) {
        rc = fail(c, e, "read setting");
    } else {
        *value = strdup(col_text(s, 0));
        rc = *value != NULL ? SCTPM_RC_SUCCESS : SCTPM_RC_NO_MEMORY;
    }
    done_with(s);
    release(st, c);
    return rc;
}

enum sctpm_rc hub_store_meta_set(struct hub_store *st, const char *key, const char *value)
{
    enum sctpm_rc rc;
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;
    int e;

    rc = acquire_stmt(st, ST_META_SET, &c, &s);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
    e = sqlite3_step(s);
    rc = e == SQLITE_DONE ? SCTPM_RC_SUCCESS : fail(c, e, "write setting");
    done_with(s);
    release(st, c);
    return rc;
}

void hub_device_wipe(struct hub_device *d)
{
    explicit_bzero(d->primary_key, sizeof(d->primary_key));
    explicit_bzero(d->secondary_key, sizeof(d->secondary_key));
    d->primary_len = 0;
    d->secondary_len = 0;
}

static int key_len_ok(size_t n)
{
    return n >= HUB_KEY_MIN && n <= HUB_KEY_MAX;
}

enum sctpm_rc hub_store_device_add(struct hub_store *st, const struct hub_device *d)
{
    enum sctpm_rc rc;
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;
    int e;

    if (!hub_device_id_valid(d->id) || !key_len_ok(d->primary_len) ||
        !key_len_ok(d->secondary_len)) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    rc = acquire_stmt(st, ST_DEV_ADD, &c, &s);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    sqlite3_bind_text(s, 1, d->id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, d->primary_key, (int)d->primary_len, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, d->secondary_key, (int)d->secondary_len, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, d->enabled ? 1 : 0);
    sqlite3_bind_int64(s, 5, d->created_ms);
    sqlite3_bind_int64(s, 6, d->updated_ms);
    e = sqlite3_step(s);
    if (e == SQLITE_DONE) {
        rc = SCTPM_RC_SUCCESS;
    } else if ((e & 0xff) == SQLITE_CONSTRAINT) {
        rc = SCTPM_RC_EXISTS;
    } else {
        rc = fail(c, e, "add device");
    }
    done_with(s);
    release(st, c);
    return rc;
}

/* Copies the device row `s` is on into `d`, refusing keys of impossible sizes. */
static enum sctpm_rc read_device(sqlite3_stmt *s, struct hub_device *d)
{
    const char *id = col_text(s, 0);
    int plen = sqlite3_column_bytes(s, 1), slen = sqlite3_column_bytes(s, 2);

    memset(d, 0, sizeof(*d));
    if (id == NULL || strlen(id) > HUB_ID_MAX || !key_len_ok((size_t)plen) ||
        !key_len_ok((size_t)slen)) {
        LOG_ERROR("corrupt device row in the registry");
        return SCTPM_RC_CORRUPT;
    }
    strcpy(d->id, id);
    memcpy(d->primary_key, sqlite3_column_blob(s, 1), (size_t)plen);
    d->primary_len = (size_t)plen;
    memcpy(d->secondary_key, sqlite3_column_blob(s, 2), (size_t)slen);
    d->secondary_len = (size_t)slen;
    d->enabled = sqlite3_column_int(s, 3) != 0;
    d->created_ms = sqlite3_column_int64(s, 4);
    d->updated_ms = sqlite3_column_int64(s, 5);
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc hub_store_device_get(struct hub_store *st, const char *id, struct hub_device *out)
{
    enum sctpm_rc rc;
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;
    int e;

    memset(out, 0, sizeof(*out));
    rc = acquire_stmt(st, ST_DEV_GET, &c, &s);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    e = sqlite3_step(s);
    if (e == SQLITE_ROW) {
        rc = read_device(s, out);
    } else if (e == SQLITE_DONE) {
        rc = SCTPM_RC_NOT_FOUND;
    } else {
        rc = fail(c, e, "look up device");
    }
    done_with(s);
    release(st, c);
    return rc;
}

/* Runs one single-row statement with `id` bound to ?1; NOT_FOUND when no row changed. */
static enum sctpm_rc change_one(struct conn *c, sqlite3_stmt *s, const char *what)
{
    int e = sqlite3_step(s);

    if (e != SQLITE_DONE) {
        return fail(c, e, what);
    }
    return sqlite3_changes(c->db) > 0 ? SCTPM_RC_SUCCESS : SCTPM_RC_NOT_FOUND;
}

enum sctpm_rc hub_store_device_remove(struct hub_store *st, const char *id)
{
    enum sctpm_rc rc;
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL, *q = NULL;

    rc = acquire(st, &c);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    s = stmt(c, ST_DEV_DEL);
    q = stmt(c, ST_DEV_C2D_DEL);
    if (s == NULL || q == NULL) {
        rc = SCTPM_RC_GENERAL_FAILURE;
        goto out;
    }
    rc = exec(c, "BEGIN IMMEDIATE");
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    rc = change_one(c, s, "remove device");
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    rc = change_one(c, q, "remove device queue");
    if (rc != SCTPM_RC_SUCCESS && rc != SCTPM_RC_NOT_FOUND) {
        goto out;
    }
    rc = exec(c, "COMMIT");
out:
    done_with(s);
    done_with(q);
    release(st, c);
    return rc;
}

enum sctpm_rc hub_store_device_set_enabled(struct hub_store *st, const char *id, int enabled,
                                           int64_t now_ms)
{
    enum sctpm_rc rc;
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;

    rc = acquire_stmt(st, ST_DEV_ENABLE, &c, &s);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, enabled ? 1 : 0);
    sqlite3_bind_int64(s, 3, now_ms);
    rc = change_one(c, s, "update device");
    done_with(s);
    release(st, c);
    return rc;
}

enum sctpm_rc hub_store_device_list(struct hub_store *st, hub_device_cb cb, void *ctx)
{
    enum sctpm_rc rc;
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;
    struct hub_device d;
    int e;

    rc = acquire_stmt(st, ST_DEV_LIST, &c, &s);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    for (e = sqlite3_step(s); e == SQLITE_ROW; e = sqlite3_step(s)) {
        rc = read_device(s, &d);
        if (rc == SCTPM_RC_SUCCESS && cb(ctx, &d) != 0) {
            rc = SCTPM_RC_INTERRUPTED;
        }
        hub_device_wipe(&d);
        if (rc != SCTPM_RC_SUCCESS) {
            goto out;
        }
    }
    rc = e == SQLITE_DONE ? SCTPM_RC_SUCCESS : fail(c, e, "list devices");
out:
    done_with(s);
    release(st, c);
    return rc;
}

/* Inserts the messages of one job; the caller owns the surrounding transaction. */
static enum sctpm_rc insert_job(struct conn *c, struct job *j)
{
    sqlite3_stmt *s = stmt(c, ST_MSG_INSERT);

    j->stored = 0;
    if (s == NULL) {
        return SCTPM_RC_GENERAL_FAILURE;
    }
    for (size_t i = 0; i < j->n; i++) {
        const struct hub_msg *m = &j->msgs[i];
        int e;

        if (m->message_id == NULL || m->body_len > INT32_MAX) {
            return SCTPM_RC_BAD_ARGUMENT;
        }
        sqlite3_bind_text(s, 1, j->device_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, j->now_ms);
        sqlite3_bind_text(s, 3, m->message_id, -1, SQLITE_STATIC);
        bind_text(s, 4, m->correlation_id);
        bind_text(s, 5, m->content_type);
        bind_text(s, 6, m->content_encoding);
        bind_text(s, 7, m->user_id);
        bind_text(s, 8, m->creation_time);
        sqlite3_bind_text(s, 9, hub_msg_app_json(m), -1, SQLITE_TRANSIENT);
        /* A zero-length blob, not NULL: the column is NOT NULL and empty bodies are valid. */
        sqlite3_bind_blob(s, 10, m->body_len > 0 ? (const void *)m->body : "", (int)m->body_len,
                          SQLITE_STATIC);
        e = sqlite3_step(s);
        done_with(s);
        if (e != SQLITE_DONE) {
            return fail(c, e, "store message");
        }
        j->stored += (size_t)sqlite3_changes(c->db);
    }
    return SCTPM_RC_SUCCESS;
}

/*
 * Commits a group of jobs in one transaction. Each job runs in its own savepoint, so one bad job
 * fails alone; the COMMIT decides for all the others. A job's rc is success only once the COMMIT
 * has returned, i.e. once its messages are on disk.
 */
static void commit_group(struct hub_store *st, struct job *group)
{
    struct conn *c = NULL;
    enum sctpm_rc rc;

    rc = acquire(st, &c);
    if (rc == SCTPM_RC_SUCCESS) {
        rc = exec(c, "BEGIN IMMEDIATE");
    }
    if (rc != SCTPM_RC_SUCCESS) {
        for (struct job *j = group; j != NULL; j = j->next) {
            j->rc = rc;
            j->stored = 0;
        }
        release(st, c);
        return;
    }
    for (struct job *j = group; j != NULL; j = j->next) {
        j->rc = exec(c, "SAVEPOINT job");
        if (j->rc != SCTPM_RC_SUCCESS) {
            continue;
        }
        j->rc = insert_job(c, j);
        if (j->rc != SCTPM_RC_SUCCESS) {
            j->stored = 0;
            exec(c, "ROLLBACK TO job");
        }
        exec(c, "RELEASE job");
    }
    rc = exec(c, "COMMIT");
    if (rc != SCTPM_RC_SUCCESS) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        for (struct job *j = group; j != NULL; j = j->next) {
            if (j->rc == SCTPM_RC_SUCCESS) {
                j->rc = rc;
            }
            j->stored = 0;
        }
    }
    release(st, c);
}

enum sctpm_rc hub_store_append(struct hub_store *st, const char *device_id, struct hub_msg *msgs,
                               size_t n, int64_t now_ms, size_t *stored)
{
    struct job self = {device_id, msgs, n, now_ms, 0, SCTPM_RC_GENERAL_FAILURE, 0, NULL};

    if (stored != NULL) {
        *stored = 0;
    }
    if (n == 0) {
        return SCTPM_RC_SUCCESS;
    }
    /*
     * Leader/follower group commit: queue the job; whoever finds no commit in progress becomes
     * the leader, takes everything queued so far and commits it while later arrivals queue up
     * for the next round. Followers sleep until their job is marked done.
     */
    pthread_mutex_lock(&st->lock);
    if (st->queue_tail != NULL) {
        st->queue_tail->next = &self;
    } else {
        st->queue_head = &self;
    }
    st->queue_tail = &self;
    while (!self.done) {
        struct job *group, *last;
        size_t k = 1;

        if (st->leader) {
            pthread_cond_wait(&st->commit_cond, &st->lock);
            continue;
        }
        st->leader = 1;
        group = st->queue_head;
        last = group;
        while (last->next != NULL && k < GROUP_MAX) {
            last = last->next;
            k++;
        }
        st->queue_head = last->next;
        if (st->queue_head == NULL) {
            st->queue_tail = NULL;
        }
        last->next = NULL;
        pthread_mutex_unlock(&st->lock);

        commit_group(st, group);

        pthread_mutex_lock(&st->lock);
        for (struct job *j = group, *next; j != NULL; j = next) {
            next = j->next;
            j->done = 1;
        }
        st->leader = 0;
        pthread_cond_broadcast(&st->commit_cond);
    }
    pthread_mutex_unlock(&st->lock);
    if (stored != NULL) {
        *stored = self.stored;
    }
    return self.rc;
}

/* Fills the common record fields from a row in MSG_COLUMNS / C2D_COLUMNS order. */
static void read_record(sqlite3_stmt *s, struct hub_record *r)
{
    r->seq = sqlite3_column_int64(s, 0);
    r->device_id = col_text(s, 1);
    r->enqueued_ms = sqlite3_column_int64(s, 2);
    r->message_id = col_text(s, 3);
    r->correlation_id = col_text(s, 4);
    r->content_type = col_text(s, 5);
    r->content_encoding = col_text(s, 6);
    r->user_id = col_text(s, 7);
    r->creation_time = NULL;
    r->properties = col_text(s, 9);
    r->body = sqlite3_column_blob(s, 10);
    r->body_len = (size_t)sqlite3_column_bytes(s, 10);
    if (r->properties == NULL) {
        r->properties = "{}";
    }
}

enum sctpm_rc hub_store_messages(struct hub_store *st, const char *device_id, int64_t after_seq,
                                 size_t limit, hub_record_cb cb, void *ctx, int64_t *last_seq)
{
    enum sctpm_rc rc;
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;
    int e;

    if (last_seq != NULL) {
        *last_seq = after_seq;
    }
    rc = acquire(st, &c);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    s = stmt(c, device_id != NULL ? ST_MSG_LIST_DEV : ST_MSG_LIST_ALL);
    if (s == NULL) {
        rc = SCTPM_RC_GENERAL_FAILURE;
        goto out;
    }
    sqlite3_bind_int64(s, 1, after_seq);
    sqlite3_bind_int64(s, 2, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
    if (device_id != NULL) {
        sqlite3_bind_text(s, 3, device_id, -1, SQLITE_STATIC);
    }
    for (e = sqlite3_step(s); e == SQLITE_ROW; e = sqlite3_step(s)) {
        struct hub_record r;

        read_record(s, &r);
        r.creation_time = col_text(s, 8);
        if (last_seq != NULL) {
            *last_seq = r.seq;
        }
        if (cb(ctx, &r) != 0) {
            rc = SCTPM_RC_INTERRUPTED;
            goto out;
        }
    }
    rc = e == SQLITE_DONE ? SCTPM_RC_SUCCESS : fail(c, e, "list messages");
out:
    done_with(s);
    release(st, c);
    return rc;
}

static void read_c2d(sqlite3_stmt *s, struct hub_c2d_record *r)
{
    read_record(s, &r->r);
    r->ack = col_text(s, 8);
    r->state = col_text(s, 11);
    r->expiry_ms = sqlite3_column_int64(s, 12);
    r->delivery_count = (unsigned)sqlite3_column_int(s, 13);
    r->lock_token = col_text(s, 14);
    r->lock_until_ms = sqlite3_column_int64(s, 15);
    if (r->state == NULL) {
        r->state = "";
    }
}

enum sctpm_rc hub_store_c2d_send(struct hub_store *st, const char *device_id,
                                 const struct hub_msg *m, const char *ack, int64_t now_ms,
                                 int64_t ttl_ms, size_t max_queue)
{
    enum sctpm_rc rc;
    struct conn *c = NULL;
    sqlite3_stmt *dev = NULL, *depth = NULL, *ins = NULL;
    int e;

    if (m->message_id == NULL || m->body_len > INT32_MAX || ttl_ms <= 0 ||
        now_ms > INT64_MAX - ttl_ms) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    rc = acquire(st, &c);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    dev = stmt(c, ST_DEV_GET);
    depth = stmt(c, ST_C2D_DEPTH);
    ins = stmt(c, ST_C2D_INSERT);
    if (dev == NULL || depth == NULL || ins == NULL) {
        rc = SCTPM_RC_GENERAL_FAILURE;
        goto out;
    }
    /* IMMEDIATE: the depth check and the insert must see the same queue. */
    rc = exec(c, "BEGIN IMMEDIATE");
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    sqlite3_bind_text(dev, 1, device_id, -1, SQLITE_STATIC);
    e = sqlite3_step(dev);
    if (e != SQLITE_ROW) {
        rc = e == SQLITE_DONE ? SCTPM_RC_NOT_FOUND : fail(c, e, "look up device");
        goto out;
    }
    sqlite3_bind_text(depth, 1, device_id, -1, SQLITE_STATIC);
    e = sqlite3_step(depth);
    if (e != SQLITE_ROW) {
        rc = fail(c, e, "count queue");
        goto out;
    }
    if ((size_t)sqlite3_column_int64(depth, 0) >= max_queue) {
        rc = SCTPM_RC_QUEUE_FULL;
        goto out;
    }
    sqlite3_bind_text(ins, 1, device_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 2, now_ms);
    sqlite3_bind_text(ins, 3, m->message_id, -1, SQLITE_STATIC);
    bind_text(ins, 4, m->correlation_id);
    bind_text(ins, 5, m->content_type);
    bind_text(ins, 6, m->content_encoding);
    bind_text(ins, 7, m->user_id);
    bind_text(ins, 8, ack);
    sqlite3_bind_text(ins, 9, hub_msg_app_json(m), -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(ins, 10, m->body_len > 0 ? (const void *)m->body : "", (int)m->body_len,
                      SQLITE_STATIC);
    sqlite3_bind_int64(ins, 11, now_ms + ttl_ms);
    e = sqlite3_step(ins);
    if (e != SQLITE_DONE) {
        rc = fail(c, e, "queue message");
        goto out;
    }
    rc = exec(c, "COMMIT");
out:
    done_with(dev);
    done_with(depth);
    done_with(ins);
    release(st, c);
    return rc;
}

enum sctpm_rc hub_store_c2d_receive(struct hub_store *st, const char *device_id, int64_t now_ms,
                                    int64_t lock_ms, unsigned max_delivery, hub_c2d_cb cb,
                                    void *ctx)
{
    enum sctpm_rc rc;
    struct conn *c = NULL;
    sqlite3_stmt *expire = NULL, *dead = NULL, *next = NULL, *lock = NULL;
    struct hub_c2d_record r;
    char token[HUB_GUID_LEN];
    int e;

    if (lock_ms <= 0 || now_ms > INT64_MAX - lock_ms) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    rc = hub_guid(token);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    rc = acquire(st, &c);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    expire = stmt(c, ST_C2D_EXPIRE);
    dead = stmt(c, ST_C2D_DEADLETTER);
    next = stmt(c, ST_C2D_NEXT);
    lock = stmt(c, ST_C2D_LOCK);
    if (expire == NULL || dead == NULL || next == NULL || lock == NULL) {
        rc = SCTPM_RC_GENERAL_FAILURE;
        goto out;
    }
    rc = exec(c, "BEGIN IMMEDIATE");
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    sqlite3_bind_text(expire, 1, device_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(expire, 2, now_ms);
    e = sqlite3_step(expire);
    if (e != SQLITE_DONE) {
        rc = fail(c, e, "expire messages");
        goto out;
    }
    sqlite3_bind_text(dead, 1, device_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(dead, 2, now_ms);
    sqlite3_bind_int64(dead, 3, max_delivery);
    e = sqlite3_step(dead);
    if (e != SQLITE_DONE) {
        rc = fail(c, e, "dead-letter messages");
        goto out;
    }
    sqlite3_bind_text(next, 1, device_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(next, 2, now_ms);
    e = sqlite3_step(next);
    if (e == SQLITE_DONE) {
        /* Keep what expiry and dead-lettering did: it is true whether or not a message came. */
        rc = exec(c, "COMMIT");
        if (rc == SCTPM_RC_SUCCESS) {
            rc = SCTPM_RC_NOT_FOUND;
        }
        goto out;
    }
    if (e != SQLITE_ROW) {
        rc = fail(c, e, "receive message");
        goto out;
    }
    read_c2d(next, &r);
    sqlite3_bind_int64(lock, 1, r.r.seq);
    sqlite3_bind_text(lock, 2, token, -1, SQLITE_STATIC);
    sqlite3_bind_int64(lock, 3, now_ms + lock_ms);
    e = sqlite3_step(lock);
    if (e != SQLITE_DONE) {
        rc = fail(c, e, "lock message");
        goto out;
    }
    /* The row `next` is on is still readable; present it as it is now that it is locked. */
    r.state = "locked";
    r.delivery_count++;
    r.lock_token = token;
    r.lock_until_ms = now_ms + lock_ms;
    if (cb(ctx, &r) != 0) {
        rc = SCTPM_RC_INTERRUPTED;
        goto out;
    }
    done_with(next);
    next = NULL;
    rc = exec(c, "COMMIT");
out:
    done_with(expire);
    done_with(dead);
    done_with(next);
    done_with(lock);
    release(st, c);
    return rc;
}

enum sctpm_rc hub_store_c2d_settle(struct hub_store *st, const char *device_id,
                                   const char *lock_token, enum hub_c2d_outcome outcome,
                                   int64_t now_ms)
{
    static const char *const states[] = {
        [HUB_C2D_COMPLETE] = "completed",
        [HUB_C2D_REJECT] = "rejected",
        [HUB_C2D_ABANDON] = "queued",
    };
    enum sctpm_rc rc;
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;

    if ((unsigned)outcome > HUB_C2D_ABANDON) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    rc = acquire_stmt(st, ST_C2D_SETTLE, &c, &s);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    /* One UPDATE, so the check (locked, this token, lock not expired) and the change are atomic. */
    sqlite3_bind_text(s, 1, device_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, lock_token, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, states[outcome], -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, now_ms);
    rc = change_one(c, s, "settle message");
    done_with(s);
    release(st, c);
    return rc;
}

enum sctpm_rc hub_store_c2d_list(struct hub_store *st, const char *device_id, hub_c2d_cb cb,
                                 void *ctx)
{
    enum sctpm_rc rc;
    struct conn *c = NULL;
    sqlite3_stmt *s = NULL;
    int e;

    rc = acquire_stmt(st, ST_C2D_LIST, &c, &s);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    sqlite3_bind_text(s, 1, device_id, -1, SQLITE_STATIC);
    for (e = sqlite3_step(s); e == SQLITE_ROW; e = sqlite3_step(s)) {
        struct hub_c2d_record r;

        read_c2d(s, &r);
        if (cb(ctx, &r) != 0) {
            rc = SCTPM_RC_INTERRUPTED;
            goto out;
        }
    }
    rc = e == SQLITE_DONE ? SCTPM_RC_SUCCESS : fail(c, e, "list queue");
out:
    done_with(s);
    release(st, c);
    return rc;
}
