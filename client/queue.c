/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#define LOGMODULE queue
#include "log.h"
#include "io.h"
#include "queue-priv.h"

#define SCHEMA_VERSION 1

struct queue {
    sqlite3 *db;
    char *dir;
    struct queue_limits limits;
    int lock_fd;
    char err[512];
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS outbox ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  message_id TEXT NOT NULL UNIQUE,"
    "  enqueued_ms INTEGER NOT NULL,"
    "  props TEXT NOT NULL,"
    "  body BLOB NOT NULL,"
    "  size INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS totals ("
    "  id INTEGER PRIMARY KEY CHECK (id = 0),"
    "  messages INTEGER NOT NULL,"
    "  bytes INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO totals VALUES (0, 0, 0);"
    "CREATE TRIGGER IF NOT EXISTS outbox_insert AFTER INSERT ON outbox BEGIN"
    "  UPDATE totals SET messages = messages + 1, bytes = bytes + NEW.size WHERE id = 0;"
    "END;"
    "CREATE TRIGGER IF NOT EXISTS outbox_delete AFTER DELETE ON outbox BEGIN"
    "  UPDATE totals SET messages = messages - 1, bytes = bytes - OLD.size WHERE id = 0;"
    "END;"
    "CREATE TABLE IF NOT EXISTS rejected ("
    "  seq INTEGER PRIMARY KEY,"
    "  message_id TEXT NOT NULL,"
    "  enqueued_ms INTEGER NOT NULL,"
    "  rejected_ms INTEGER NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  props TEXT NOT NULL,"
    "  body BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS c2d_seen ("
    "  message_id TEXT PRIMARY KEY,"
    "  seen_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS c2d_seen_time ON c2d_seen (seen_ms);";

static void set_err(struct queue *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(struct queue *q, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(q->err, sizeof(q->err), fmt, ap);
    va_end(ap);
}

/* Maps an SQLite result to ours and records what failed. */
static enum sctpm_rc db_fail(struct queue *q, int src, const char *what)
{
    int code = src & 0xff;

    set_err(q, "queue %s: %s: %s (SQLite %d)", q->dir, what, sqlite3_errstr(src), src);
    LOG_DEBUG("%s", q->err);
    switch (code) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        set_err(q, "queue %s: %s: the database stayed locked by another process for %d s", q->dir,
                what, QUEUE_BUSY_TIMEOUT_MS / 1000);
        return SCTPM_RC_BUSY;
    case SQLITE_NOMEM:
        return SCTPM_RC_NO_MEMORY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return SCTPM_RC_CORRUPT;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return SCTPM_RC_PERMISSION;
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
        return SCTPM_RC_IO;
    default:
        return SCTPM_RC_GENERAL_FAILURE;
    }
}

static enum sctpm_rc exec(struct queue *q, const char *sql, const char *what)
{
    int src = sqlite3_exec(q->db, sql, NULL, NULL, NULL);

    return src == SQLITE_OK ? SCTPM_RC_SUCCESS : db_fail(q, src, what);
}

static enum sctpm_rc prepare(struct queue *q, const char *sql, sqlite3_stmt **st)
{
    int src = sqlite3_prepare_v2(q->db, sql, -1, st, NULL);

    return src == SQLITE_OK ? SCTPM_RC_SUCCESS : db_fail(q, src, "prepare");
}

/*
 * Runs a statement that returns no rows, then finalizes it (`*st` becomes NULL, so a `goto out`
 * that finalizes again is harmless). Anything but SQLITE_DONE is a failure described by `what`.
 */
static enum sctpm_rc step_done(struct queue *q, sqlite3_stmt **st, const char *what)
{
    int src = sqlite3_step(*st);

    sqlite3_finalize(*st);
    *st = NULL;
    return src == SQLITE_DONE ? SCTPM_RC_SUCCESS : db_fail(q, src, what);
}

static void rollback(struct queue *q)
{
    if (!sqlite3_get_autocommit(q->db)) {
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    }
}

/* mkdir -p with mode 0700 for the directories it creates. */
static int mkdirs(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(buf)) {
        return -ENAMETOOLONG;
    }
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/') {
            continue;
        }
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
            return -errno;
        }
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
        return -errno;
    }
    return 0;
}

enum sctpm_rc queue_open(const char *dir, const struct queue_limits *limits, struct queue **qp,
                         char *err, size_t err_size)
{
    enum sctpm_rc rc = SCTPM_RC_NO_MEMORY;
    struct queue *q;
    char *path = NULL;
    sqlite3_stmt *st = NULL;
    struct stat sb;
    int fd, src, version = 0;

    *qp = NULL;
    if (err_size > 0) {
        err[0] = '\0';
    }
    q = calloc(1, sizeof(*q));
    if (q == NULL || (q->dir = strdup(dir)) == NULL || asprintf(&path, "%s/queue.db", dir) < 0) {
        path = NULL;
        snprintf(err, err_size, "out of memory");
        goto fail;
    }
    q->lock_fd = -1;
    q->limits.max_messages = QUEUE_DEFAULT_MAX_MESSAGES;
    q->limits.max_bytes = QUEUE_DEFAULT_MAX_BYTES;
    if (limits != NULL) {
        q->limits = *limits;
    }
    fd = mkdirs(dir);
    if (fd != 0) {
        snprintf(err, err_size, "queue %s: cannot create the directory: %s", dir, strerror(-fd));
        rc = fd == -EACCES || fd == -EPERM || fd == -EROFS ? SCTPM_RC_PERMISSION : SCTPM_RC_IO;
        goto fail;
    }
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, err_size, "queue %s: not a directory", dir);
        rc = SCTPM_RC_IO;
        goto fail;
    }
    /* Create the file ourselves so it is 0600 from the start; SQLite gives -wal/-shm its mode. */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, err_size, "queue %s: cannot open %s: %s", dir, path, strerror(errno));
        rc =
            errno == EACCES || errno == EPERM || errno == EROFS ? SCTPM_RC_PERMISSION : SCTPM_RC_IO;
        goto fail;
    }
    close(fd);
    src = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        rc = db_fail(q, src, "open");
        snprintf(err, err_size, "%s", q->err);
        goto fail;
    }
    sqlite3_busy_timeout(q->db, QUEUE_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(q->db, 1);
    rc = exec(q, "PRAGMA journal_mode=WAL", "set WAL mode");
    if (rc == SCTPM_RC_SUCCESS) {
        rc = exec(q, "PRAGMA synchronous=FULL", "set synchronous");
    }
    /* Creating the schema under a write lock keeps two first-time opens from racing. */
    if (rc == SCTPM_RC_SUCCESS) {
        rc = exec(q, "BEGIN IMMEDIATE", "lock");
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = prepare(q, "PRAGMA user_version", &st);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            version = sqlite3_column_int(st, 0);
        }
        sqlite3_finalize(st);
        st = NULL;
        if (version > SCHEMA_VERSION) {
            set_err(q, "queue %s was made by a newer sctpm-client (schema %d, this one knows %d)",
                    dir, version, SCHEMA_VERSION);
            rc = SCTPM_RC_UNSUPPORTED;
        }
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = exec(q, schema, "create the schema");
    }
    if (rc == SCTPM_RC_SUCCESS && version < SCHEMA_VERSION) {
        rc = exec(q, "PRAGMA user_version = 1", "set the schema version");
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = exec(q, "COMMIT", "commit the schema");
    }
    if (rc != SCTPM_RC_SUCCESS) {
        rollback(q);
        snprintf(err, err_size, "%s", q->err);
        goto fail;
    }
    free(path);
    *qp = q;
    return SCTPM_RC_SUCCESS;
fail:
    free(path);
    queue_close(q);
    return rc;
}

void queue_close(struct queue *q)
{
    if (q == NULL) {
        return;
    }
    queue_unlock_delivery(q);
    if (q->db != NULL) {
        sqlite3_close_v2(q->db);
    }
    free(q->dir);
    free(q);
}

const char *queue_error(const struct queue *q)
{
    return q->err;
}

const char *queue_dir(const struct queue *q)
{
    return q->dir;
}

enum sctpm_rc queue_bind_identity(struct queue *q, const char *identity)
{
    enum sctpm_rc rc;
    sqlite3_stmt *st = NULL;
    char *old = NULL;
    int64_t queued = 0;
    int src;

    rc = exec(q, "BEGIN IMMEDIATE", "lock");
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    rc = prepare(q, "SELECT value, (SELECT messages FROM totals) FROM meta WHERE name = 'identity'",
                 &st);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        old = strdup((const char *)sqlite3_column_text(st, 0));
        queued = sqlite3_column_int64(st, 1);
        if (old == NULL) {
            rc = SCTPM_RC_NO_MEMORY;
            goto out;
        }
    } else if (src != SQLITE_DONE) {
        rc = db_fail(q, src, "read the identity");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (old != NULL && strcmp(old, identity) == 0) {
        rc = exec(q, "COMMIT", "commit");
        goto out;
    }
    if (old != NULL && queued > 0) {
        set_err(q,
                "queue %s holds %lld message(s) for %s, but the slot's identity is now %s; deliver "
                "them with the old identity or use another --queue",
                q->dir, (long long)queued, old, identity);
        rc = SCTPM_RC_EXISTS;
        goto out;
    }
    rc = prepare(q, "INSERT OR REPLACE INTO meta (name, value) VALUES ('identity', ?)", &st);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    sqlite3_bind_text(st, 1, identity, -1, SQLITE_STATIC);
    rc = step_done(q, &st, "record the identity");
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    rc = exec(q, "COMMIT", "commit");
out:
    sqlite3_finalize(st);
    if (rc != SCTPM_RC_SUCCESS) {
        rollback(q);
    }
    free(old);
    return rc;
}

static void human_bytes(uint64_t n, char *buf, size_t size)
{
    if (n >= 1024 * 1024 && n % (1024 * 1024) == 0) {
        snprintf(buf, size, "%llu MiB", (unsigned long long)(n / (1024 * 1024)));
    } else if (n >= 1024 && n % 1024 == 0) {
        snprintf(buf, size, "%llu KiB", (unsigned long long)(n / 1024));
    } else {
        snprintf(buf, size, "%llu bytes", (unsigned long long)n);
    }
}

enum sctpm_rc queue_push(struct queue *q, struct queue_msg *msgs, size_t n, int64_t now_ms)
{
    enum sctpm_rc rc;
    sqlite3_stmt *tot = NULL, *ins = NULL;
    uint64_t count = 0, bytes = 0, add_bytes = 0;
    int src;

    if (n == 0) {
        return SCTPM_RC_SUCCESS;
    }
    for (size_t i = 0; i < n; i++) {
        if (!msg_id_valid(msgs[i].id) || msgs[i].props == NULL ||
            (msgs[i].body == NULL && msgs[i].body_len > 0) || msgs[i].body_len > INT32_MAX) {
            set_err(q, "queue %s: invalid message", q->dir);
            return SCTPM_RC_BAD_ARGUMENT;
        }
        msgs[i].was_queued = 0;
        add_bytes += msgs[i].size;
    }
    rc = exec(q, "BEGIN IMMEDIATE", "lock");
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    rc = prepare(q, "SELECT messages, bytes FROM totals WHERE id = 0", &tot);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    src = sqlite3_step(tot);
    if (src != SQLITE_ROW) {
        rc = db_fail(q, src == SQLITE_DONE ? SQLITE_CORRUPT : src, "read the totals");
        goto out;
    }
    count = (uint64_t)sqlite3_column_int64(tot, 0);
    bytes = (uint64_t)sqlite3_column_int64(tot, 1);
    if (count + n > q->limits.max_messages || bytes + add_bytes > q->limits.max_bytes) {
        char have[32], max[32];

        human_bytes(bytes, have, sizeof(have));
        human_bytes(q->limits.max_bytes, max, sizeof(max));
        set_err(q,
                "queue %s is full: %llu message(s), %s queued, bounds %llu messages and %s "
                "(--queue-max-messages, --queue-max-bytes); not accepted",
                q->dir, (unsigned long long)count, have, (unsigned long long)q->limits.max_messages,
                max);
        rc = SCTPM_RC_QUEUE_FULL;
        goto out;
    }
    rc = prepare(q,
                 "INSERT OR IGNORE INTO outbox (message_id, enqueued_ms, props, body, size) "
                 "VALUES (?, ?, ?, ?, ?)",
                 &ins);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(ins);
        sqlite3_bind_text(ins, 1, msgs[i].id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 2, now_ms);
        sqlite3_bind_text(ins, 3, msgs[i].props, -1, SQLITE_STATIC);
        sqlite3_bind_blob(ins, 4, msgs[i].body_len > 0 ? (const void *)msgs[i].body : "",
                          (int)msgs[i].body_len, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 5, (sqlite3_int64)msgs[i].size);
        src = sqlite3_step(ins);
        if (src != SQLITE_DONE) {
            rc = db_fail(q, src, "enqueue");
            goto out;
        }
        msgs[i].was_queued = sqlite3_changes(q->db) == 0;
    }
    /* synchronous=FULL: the WAL is on disk when COMMIT returns. */
    rc = exec(q, "COMMIT", "commit the enqueue");
out:
    sqlite3_finalize(tot);
    sqlite3_finalize(ins);
    if (rc != SCTPM_RC_SUCCESS) {
        rollback(q);
    }
    return rc;
}

void queue_items_free(struct queue_item *items, size_t n)
{
    if (items == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(items[i].props);
        free(items[i].body);
    }
    free(items);
}

enum sctpm_rc queue_peek(struct queue *q, size_t max_n, size_t max_bytes,
                         struct queue_item **itemsp, size_t *np)
{
    enum sctpm_rc rc;
    sqlite3_stmt *st = NULL;
    struct queue_item *items = NULL;
    size_t n = 0, total = 0;
    int src = SQLITE_DONE;

    *itemsp = NULL;
    *np = 0;
    if (max_n == 0) {
        return SCTPM_RC_SUCCESS;
    }
    items = calloc(max_n, sizeof(*items));
    if (items == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    rc = prepare(q,
                 "SELECT seq, message_id, enqueued_ms, props, body, size FROM outbox "
                 "ORDER BY seq LIMIT ?",
                 &st);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)max_n);
    while (n < max_n) {
        struct queue_item *it = &items[n];
        const char *id, *props;
        const void *body;
        int body_len;
        int64_t size;

        src = sqlite3_step(st);
        if (src != SQLITE_ROW) {
            break;
        }
        id = (const char *)sqlite3_column_text(st, 1);
        props = (const char *)sqlite3_column_text(st, 3);
        body = sqlite3_column_blob(st, 4);
        body_len = sqlite3_column_bytes(st, 4);
        size = sqlite3_column_int64(st, 5);

        if (n > 0 && total + (size_t)size > max_bytes) {
            break;
        }
        if (id == NULL || !msg_id_valid(id) || props == NULL || body_len < 0 || size < 0) {
            set_err(q, "queue %s: message %lld is damaged", q->dir,
                    (long long)sqlite3_column_int64(st, 0));
            rc = SCTPM_RC_CORRUPT;
            goto out;
        }
        it->seq = sqlite3_column_int64(st, 0);
        snprintf(it->id, sizeof(it->id), "%s", id);
        it->enqueued_ms = sqlite3_column_int64(st, 2);
        it->props = strdup(props);
        it->body = malloc((size_t)body_len + 1);
        if (it->props == NULL || it->body == NULL) {
            n++;
            rc = SCTPM_RC_NO_MEMORY;
            goto out;
        }
        if (body_len > 0) {
            memcpy(it->body, body, (size_t)body_len);
        }
        it->body[body_len] = '\0';
        it->body_len = (size_t)body_len;
        it->size = (size_t)size;
        total += (size_t)size;
        n++;
    }
    if (n < max_n && src != SQLITE_DONE && src != SQLITE_ROW) {
        rc = db_fail(q, src, "read the queue");
        goto out;
    }
    rc = SCTPM_RC_SUCCESS;
out:
    sqlite3_finalize(st);
    if (rc != SCTPM_RC_SUCCESS || n == 0) {
        queue_items_free(items, n);
        items = NULL;
        n = 0;
    }
    *itemsp = items;
    *np = n;
    return rc;
}

enum sctpm_rc queue_remove(struct queue *q, const int64_t *seqs, size_t n)
{
    enum sctpm_rc rc;
    sqlite3_stmt *st = NULL;
    int src;

    if (n == 0) {
        return SCTPM_RC_SUCCESS;
    }
    /* See the header: a power loss may undo this, and the hub drops the resent copies. */
    rc = exec(q, "PRAGMA synchronous=NORMAL", "set synchronous");
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    rc = exec(q, "BEGIN IMMEDIATE", "lock");
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    rc = prepare(q, "DELETE FROM outbox WHERE seq = ?", &st);
    for (size_t i = 0; rc == SCTPM_RC_SUCCESS && i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, seqs[i]);
        src = sqlite3_step(st);
        if (src != SQLITE_DONE) {
            rc = db_fail(q, src, "remove delivered messages");
        }
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = exec(q, "COMMIT", "commit the removal");
    }
out:
    sqlite3_finalize(st);
    if (rc != SCTPM_RC_SUCCESS) {
        rollback(q);
    }
    /* Back to FULL for every other write, whatever happened. */
    sqlite3_exec(q->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    return rc;
}

enum sctpm_rc queue_reject(struct queue *q, int64_t seq, const char *reason, int64_t now_ms)
{
    enum sctpm_rc rc;
    sqlite3_stmt *st = NULL;

    rc = exec(q, "BEGIN IMMEDIATE", "lock");
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    rc = prepare(q,
                 "INSERT OR REPLACE INTO rejected (seq, message_id, enqueued_ms, rejected_ms, "
                 "reason, props, body) SELECT seq, message_id, enqueued_ms, ?, ?, props, body "
                 "FROM outbox WHERE seq = ?",
                 &st);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, seq);
    rc = step_done(q, &st, "keep a rejected message");
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    rc = prepare(q, "DELETE FROM outbox WHERE seq = ?", &st);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, seq);
    rc = step_done(q, &st, "remove a rejected message");
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    rc = prepare(q,
                 "DELETE FROM rejected WHERE seq NOT IN "
                 "(SELECT seq FROM rejected ORDER BY seq DESC LIMIT ?)",
                 &st);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    sqlite3_bind_int(st, 1, QUEUE_REJECTED_KEEP);
    rc = step_done(q, &st, "trim the rejected messages");
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    rc = exec(q, "COMMIT", "commit");
out:
    sqlite3_finalize(st);
    if (rc != SCTPM_RC_SUCCESS) {
        rollback(q);
    }
    return rc;
}

enum sctpm_rc queue_stats(struct queue *q, struct queue_stats *s)
{
    enum sctpm_rc rc;
    sqlite3_stmt *st = NULL;
    int src;

    memset(s, 0, sizeof(*s));
    rc = prepare(q,
                 "SELECT messages, bytes, "
                 "(SELECT enqueued_ms FROM outbox ORDER BY seq LIMIT 1), "
                 "(SELECT count(*) FROM rejected) FROM totals WHERE id = 0",
                 &st);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        s->messages = (uint64_t)sqlite3_column_int64(st, 0);
        s->bytes = (uint64_t)sqlite3_column_int64(st, 1);
        s->oldest_ms = sqlite3_column_int64(st, 2);
        s->rejected = (uint64_t)sqlite3_column_int64(st, 3);
    } else {
        rc = db_fail(q, src == SQLITE_DONE ? SQLITE_CORRUPT : src, "read the totals");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Opens DIR/deliver.lock, creating it; -1 with the error set on failure. */
static int open_lock_file(struct queue *q)
{
    char path[PATH_MAX];
    int fd;

    if ((size_t)snprintf(path, sizeof(path), "%s/deliver.lock", q->dir) >= sizeof(path)) {
        set_err(q, "queue %s: path too long", q->dir);
        return -1;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        set_err(q, "queue %s: cannot open %s: %s", q->dir, path, strerror(errno));
    }
    return fd;
}

/* The pid a deliverer recorded in the lock file, or 0 when there is none. */
static pid_t recorded_holder(int fd)
{
    char buf[32];
    ssize_t n;

    n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    return (pid_t)strtol(buf, NULL, 10);
}

/*
 * The lock is an open-file-description lock (F_OFD_SETLK) on the whole file rather than a flock,
 * because only fcntl locks can be tested without being taken (F_OFD_GETLK): `sctpm-client queue`
 * asks whether someone delivers, and if asking meant holding the lock for a moment, a deliverer
 * starting in that moment would wrongly find the queue busy and leave it undelivered.
 */
static struct flock whole_file_lock(short type)
{
    struct flock fl;

    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    return fl;
}

enum sctpm_rc queue_lock_delivery(struct queue *q, pid_t *holder)
{
    struct flock fl = whole_file_lock(F_WRLCK);
    char buf[32];
    ssize_t n;
    int fd;

    if (holder != NULL) {
        *holder = 0;
    }
    if (q->lock_fd >= 0) {
        return SCTPM_RC_SUCCESS;
    }
    fd = open_lock_file(q);
    if (fd < 0) {
        return SCTPM_RC_IO;
    }
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        int e = errno;

        if ((e == EAGAIN || e == EACCES) && holder != NULL) {
            *holder = recorded_holder(fd);
        }
        close(fd);
        if (e == EAGAIN || e == EACCES) {
            set_err(q, "queue %s is being delivered by another process", q->dir);
            return SCTPM_RC_BUSY;
        }
        set_err(q, "queue %s: cannot lock its deliver.lock: %s", q->dir, strerror(e));
        return SCTPM_RC_IO;
    }
    /* The pid is advisory, for messages: the fcntl lock is the lock. */
    n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        LOG_DEBUG("cannot record the pid in %s/deliver.lock: %s", q->dir, strerror(errno));
    }
    q->lock_fd = fd;
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc queue_delivery_holder(struct queue *q, int *busy, pid_t *holder)
{
    struct flock fl = whole_file_lock(F_WRLCK);
    int fd;

    *busy = 0;
    *holder = 0;
    if (q->lock_fd >= 0) {
        *busy = 1;
        *holder = getpid();
        return SCTPM_RC_SUCCESS;
    }
    fd = open_lock_file(q);
    if (fd < 0) {
        return SCTPM_RC_IO;
    }
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0) {
        set_err(q, "queue %s: cannot test its deliver.lock: %s", q->dir, strerror(errno));
        close(fd);
        return SCTPM_RC_IO;
    }
    if (fl.l_type != F_UNLCK) {
        *busy = 1;
        *holder = recorded_holder(fd);
    }
    close(fd);
    return SCTPM_RC_SUCCESS;
}

void queue_unlock_delivery(struct queue *q)
{
    if (q->lock_fd < 0) {
        return;
    }
    if (ftruncate(q->lock_fd, 0) != 0) {
        LOG_DEBUG("cannot clear the delivery lock file: %s", strerror(errno));
    }
    close(q->lock_fd);
    q->lock_fd = -1;
}

enum sctpm_rc queue_c2d_seen(struct queue *q, const char *id, int *seen)
{
    enum sctpm_rc rc;
    sqlite3_stmt *st = NULL;
    int src;

    *seen = 0;
    rc = prepare(q, "SELECT 1 FROM c2d_seen WHERE message_id = ?", &st);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *seen = 1;
    } else if (src != SQLITE_DONE) {
        rc = db_fail(q, src, "read the printed cloud-to-device ids");
    }
    sqlite3_finalize(st);
    return rc;
}

enum sctpm_rc queue_c2d_mark(struct queue *q, const char *id, int64_t now_ms)
{
    enum sctpm_rc rc;
    sqlite3_stmt *st = NULL;

    rc = exec(q, "BEGIN IMMEDIATE", "lock");
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    rc = prepare(q, "INSERT OR REPLACE INTO c2d_seen (message_id, seen_ms) VALUES (?, ?)", &st);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    rc = step_done(q, &st, "record a printed cloud-to-device id");
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    rc = prepare(q, "DELETE FROM c2d_seen WHERE seen_ms < ?", &st);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, now_ms - QUEUE_C2D_SEEN_KEEP_MS);
    rc = step_done(q, &st, "forget old cloud-to-device ids");
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    rc = exec(q, "COMMIT", "commit");
out:
    sqlite3_finalize(st);
    if (rc != SCTPM_RC_SUCCESS) {
        rollback(q);
    }
    return rc;
}

enum sctpm_rc queue_default_dir(unsigned int slot, char *buf, size_t size)
{
    const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    int n;

    if (geteuid() == 0) {
        n = snprintf(buf, size, "/var/lib/sctpm/queue-%u", slot);
    } else if (state != NULL && state[0] == '/') {
        n = snprintf(buf, size, "%s/sctpm/queue-%u", state, slot);
    } else if (home != NULL && home[0] == '/') {
        n = snprintf(buf, size, "%s/.local/state/sctpm/queue-%u", home, slot);
    } else {
        return SCTPM_RC_NOT_FOUND;
    }
    return n > 0 && (size_t)n < size ? SCTPM_RC_SUCCESS : SCTPM_RC_TOO_LARGE;
}
