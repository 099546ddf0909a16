/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The outgoing queue: durability (across close, and across a process killed with SIGKILL right
 * after the enqueue returned), bounds and the refusal when full, ordering, id uniqueness,
 * concurrent enqueuers in several processes, the delivery lock, identity binding and the
 * printed-C2D record.
 */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "queue-priv.h"

static char dir[256];

static void setup(void)
{
    const char *base = getenv("SCTPM_TEST_DIR");

    snprintf(dir, sizeof(dir), "%s/q.XXXXXX", base != NULL ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    /* The queue makes its own directory, with parents: start from one that does not exist. */
    strcat(dir, "/a/b");
}

static void teardown(void)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "rm -rf '%.*s'", (int)(strlen(dir) - 4), dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot remove %s\n", dir);
    }
}

static struct queue *open_q(uint64_t max_messages, uint64_t max_bytes)
{
    struct queue_limits lim = {max_messages, max_bytes};
    struct queue *q = NULL;
    char err[512];

    ck_assert_msg(queue_open(dir, &lim, &q, err, sizeof(err)) == SCTPM_RC_SUCCESS, "%s", err);
    return q;
}

/*
 * Forked children inherit the parent's open queue and must not close it (an SQLite connection
 * does not survive fork()); keeping it and the child's own queue in statics keeps them reachable,
 * so that memcheck, which also checks a child for leaks when it exits, does not call them lost.
 */
static struct queue *volatile forked_parent_q; /* volatile: written only, it must stay */
static struct queue *forked_child_q;

/* fork() for a test whose parent holds `parent_q`. */
static pid_t fork_with(struct queue *parent_q)
{
    forked_parent_q = parent_q;
    return fork();
}

/*
 * In a forked child, which must not use Check's assertions: the queue opened as another process
 * would, or _exit(2).
 */
static struct queue *child_open_q(void)
{
    struct queue_limits lim = {10, 1 << 20};
    char err[512];

    if (queue_open(dir, &lim, &forked_child_q, err, sizeof(err)) != SCTPM_RC_SUCCESS) {
        _exit(2);
    }
    return forked_child_q;
}

/* Pushes one message with body `body` and a fresh (or given) id; returns the push's rc. */
static enum sctpm_rc push(struct queue *q, const char *body, const char *id, char *id_out)
{
    char fresh[MSG_ID_SIZE];
    struct queue_msg m;
    enum sctpm_rc rc;

    if (id == NULL) {
        ck_assert_int_eq(msg_id_new(fresh), SCTPM_RC_SUCCESS);
        id = fresh;
    }
    memset(&m, 0, sizeof(m));
    m.id = id;
    m.props = "{}";
    m.body = (const uint8_t *)body;
    m.body_len = strlen(body);
    m.size = msg_size(m.body_len, id, NULL);
    rc = queue_push(q, &m, 1, 1000);
    if (id_out != NULL) {
        strcpy(id_out, id);
    }
    return rc;
}

static uint64_t count(struct queue *q)
{
    struct queue_stats st;

    ck_assert_int_eq(queue_stats(q, &st), SCTPM_RC_SUCCESS);
    return st.messages;
}

START_TEST(test_create_private)
{
    struct queue *q = open_q(10, 1 << 20);
    char path[512];
    struct stat sb;

    ck_assert_int_eq(stat(dir, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/queue.db", dir);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    ck_assert_int_eq(push(q, "x", NULL, NULL), SCTPM_RC_SUCCESS);
    snprintf(path, sizeof(path), "%s/queue.db-wal", dir);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    ck_assert_str_eq(queue_dir(q), dir);
    queue_close(q);
}
END_TEST

START_TEST(test_order_and_remove)
{
    struct queue *q = open_q(100, 1 << 20);
    char ids[5][MSG_ID_SIZE], body[32];
    struct queue_item *items;
    size_t n;
    int64_t seqs[2];

    for (int i = 0; i < 5; i++) {
        snprintf(body, sizeof(body), "m%d", i);
        ck_assert_int_eq(push(q, body, NULL, ids[i]), SCTPM_RC_SUCCESS);
    }
    ck_assert_int_eq(queue_peek(q, 3, 1 << 20, &items, &n), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(n, 3);
    for (size_t i = 0; i < n; i++) {
        snprintf(body, sizeof(body), "m%zu", i);
        ck_assert_str_eq(items[i].id, ids[i]);
        ck_assert_str_eq((char *)items[i].body, body);
        ck_assert_uint_eq(items[i].body_len, 2);
        ck_assert_str_eq(items[i].props, "{}");
        ck_assert_int_eq(items[i].enqueued_ms, 1000);
        if (i > 0) {
            ck_assert_int_gt(items[i].seq, items[i - 1].seq);
        }
    }
    /* Removing the first two leaves the rest in order. */
    seqs[0] = items[0].seq;
    seqs[1] = items[1].seq;
    queue_items_free(items, n);
    ck_assert_int_eq(queue_remove(q, seqs, 2), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(queue_remove(q, seqs, 2), SCTPM_RC_SUCCESS); /* again: no effect */
    ck_assert_uint_eq(count(q), 3);
    ck_assert_int_eq(queue_peek(q, 10, 1 << 20, &items, &n), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(items[0].id, ids[2]);
    ck_assert_str_eq(items[2].id, ids[4]);
    queue_items_free(items, n);
    queue_close(q);
}
END_TEST

START_TEST(test_peek_byte_limit)
{
    struct queue *q = open_q(100, 1 << 20);
    char big[1001];
    struct queue_item *items;
    size_t n;

    memset(big, 'b', 1000);
    big[1000] = '\0';
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(push(q, big, NULL, NULL), SCTPM_RC_SUCCESS);
    }
    /* Each is 1000 bytes plus its id: two fit in 2200, three do not. */
    ck_assert_int_eq(queue_peek(q, 10, 2200, &items, &n), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(n, 2);
    queue_items_free(items, n);
    /* The first is returned even when it alone is over the limit. */
    ck_assert_int_eq(queue_peek(q, 10, 10, &items, &n), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(n, 1);
    queue_items_free(items, n);
    queue_close(q);
}
END_TEST

START_TEST(test_empty)
{
    struct queue *q = open_q(10, 1 << 20);
    struct queue_item *items = (void *)1;
    struct queue_stats st;
    size_t n = 99;

    ck_assert_int_eq(queue_peek(q, 10, 1 << 20, &items, &n), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(items);
    ck_assert_int_eq(queue_stats(q, &st), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(st.messages, 0);
    ck_assert_uint_eq(st.bytes, 0);
    ck_assert_int_eq(st.oldest_ms, 0);
    queue_close(q);
}
END_TEST

START_TEST(test_bound_messages)
{
    struct queue *q = open_q(3, 1 << 20);
    struct queue_msg m[2];
    char ids[2][MSG_ID_SIZE];

    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(push(q, "x", NULL, NULL), SCTPM_RC_SUCCESS);
    }
    ck_assert_int_eq(push(q, "x", NULL, NULL), SCTPM_RC_QUEUE_FULL);
    ck_assert_ptr_nonnull(strstr(queue_error(q), "is full"));
    ck_assert_ptr_nonnull(strstr(queue_error(q), "--queue-max-messages"));
    ck_assert_uint_eq(count(q), 3);
    queue_close(q);

    /* A push that would pass the bound is refused whole, even when part of it would fit. */
    q = open_q(5, 1 << 20);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(msg_id_new(ids[i]), SCTPM_RC_SUCCESS);
        memset(&m[i], 0, sizeof(m[i]));
        m[i].id = ids[i];
        m[i].props = "{}";
        m[i].body = (const uint8_t *)"y";
        m[i].body_len = 1;
        m[i].size = 1;
    }
    ck_assert_int_eq(queue_push(q, m, 2, 0), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(count(q), 5);
    queue_close(q);
}
END_TEST

START_TEST(test_bound_bytes)
{
    struct queue *q = open_q(1000, 2048);
    char body[501];
    struct queue_stats st;

    memset(body, 'z', 500);
    body[500] = '\0';
    /* 500 bytes plus the id (16 + 36) each: three fit in 2048, a fourth does not. */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(push(q, body, NULL, NULL), SCTPM_RC_SUCCESS);
    }
    ck_assert_int_eq(push(q, body, NULL, NULL), SCTPM_RC_QUEUE_FULL);
    ck_assert_ptr_nonnull(strstr(queue_error(q), "--queue-max-bytes"));
    ck_assert_int_eq(queue_stats(q, &st), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(st.messages, 3);
    ck_assert_uint_eq(st.bytes, 3 * (500 + 16 + 36));
    /* Room again once something is delivered. */
    {
        struct queue_item *items;
        size_t n;
        int64_t seq;

        ck_assert_int_eq(queue_peek(q, 1, 1 << 20, &items, &n), SCTPM_RC_SUCCESS);
        seq = items[0].seq;
        queue_items_free(items, n);
        ck_assert_int_eq(queue_remove(q, &seq, 1), SCTPM_RC_SUCCESS);
    }
    ck_assert_int_eq(push(q, body, NULL, NULL), SCTPM_RC_SUCCESS);
    queue_close(q);
}
END_TEST

START_TEST(test_ids_unique)
{
    struct queue *q = open_q(100, 1 << 20);
    struct queue_msg m;
    struct queue_item *items;
    size_t n;

    ck_assert_int_eq(push(q, "first", "fixed-id", NULL), SCTPM_RC_SUCCESS);
    /* The same id again: accepted, not added, flagged. */
    memset(&m, 0, sizeof(m));
    m.id = "fixed-id";
    m.props = "{}";
    m.body = (const uint8_t *)"second";
    m.body_len = 6;
    m.size = 6;
    ck_assert_int_eq(queue_push(q, &m, 1, 0), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(m.was_queued, 1);
    ck_assert_uint_eq(count(q), 1);
    ck_assert_int_eq(queue_peek(q, 10, 1 << 20, &items, &n), SCTPM_RC_SUCCESS);
    ck_assert_str_eq((char *)items[0].body, "first");
    queue_items_free(items, n);
    /* Invalid ids never get in. */
    m.id = "has space";
    ck_assert_int_eq(queue_push(q, &m, 1, 0), SCTPM_RC_BAD_ARGUMENT);
    queue_close(q);
}
END_TEST

START_TEST(test_survives_reopen)
{
    struct queue *q = open_q(100, 1 << 20);
    struct queue_item *items;
    char id[MSG_ID_SIZE];
    size_t n;

    ck_assert_int_eq(push(q, "durable", NULL, id), SCTPM_RC_SUCCESS);
    queue_close(q);
    q = open_q(100, 1 << 20);
    ck_assert_int_eq(queue_peek(q, 10, 1 << 20, &items, &n), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(items[0].id, id);
    ck_assert_str_eq((char *)items[0].body, "durable");
    queue_items_free(items, n);
    queue_close(q);
}
END_TEST

/* A process killed with SIGKILL right after queue_push() returned: the message is there. */
START_TEST(test_survives_sigkill)
{
    int fds[2], status;
    char id[MSG_ID_SIZE] = "";
    struct queue_item *items;
    struct queue *q;
    pid_t pid;
    size_t n;

    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char mine[MSG_ID_SIZE];
        struct queue *cq = NULL;
        struct queue_limits lim = {100, 1 << 20};
        char err[512];

        close(fds[0]);
        if (queue_open(dir, &lim, &cq, err, sizeof(err)) != SCTPM_RC_SUCCESS ||
            push(cq, "killed", NULL, mine) != SCTPM_RC_SUCCESS) {
            _exit(1);
        }
        if (write(fds[1], mine, MSG_UUID_LEN) != MSG_UUID_LEN) {
            _exit(1);
        }
        /* No close, no checkpoint: the WAL as it stands. */
        for (;;) {
            pause();
        }
    }
    close(fds[1]);
    ck_assert_int_eq(read(fds[0], id, MSG_UUID_LEN), MSG_UUID_LEN);
    close(fds[0]);
    kill(pid, SIGKILL);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status));
    q = open_q(100, 1 << 20);
    ck_assert_int_eq(queue_peek(q, 10, 1 << 20, &items, &n), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(items[0].id, id);
    queue_items_free(items, n);
    queue_close(q);
}
END_TEST

/* Four processes enqueue 50 messages each at once: all 200 arrive, once each. */
START_TEST(test_concurrent_enqueuers)
{
    enum { PROCS = 4, EACH = 50 };
    struct queue_item *items;
    struct queue *q = open_q(10000, 1 << 24);
    pid_t pids[PROCS];
    size_t n;

    queue_close(q);
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        ck_assert_int_ge(pids[p], 0);
        if (pids[p] == 0) {
            struct queue *cq = NULL;
            struct queue_limits lim = {10000, 1 << 24};
            char err[512], body[32];

            if (queue_open(dir, &lim, &cq, err, sizeof(err)) != SCTPM_RC_SUCCESS) {
                _exit(2);
            }
            for (int i = 0; i < EACH; i++) {
                snprintf(body, sizeof(body), "p%d-%d", p, i);
                if (push(cq, body, NULL, NULL) != SCTPM_RC_SUCCESS) {
                    _exit(3);
                }
            }
            queue_close(cq);
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status;
        ck_assert_int_eq(waitpid(pids[p], &status, 0), pids[p]);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
    }
    q = open_q(10000, 1 << 24);
    ck_assert_uint_eq(count(q), PROCS * EACH);
    ck_assert_int_eq(queue_peek(q, PROCS * EACH + 1, 1 << 30, &items, &n), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(n, PROCS * EACH);
    /* Each process's messages keep their own order. */
    for (int p = 0; p < PROCS; p++) {
        int next = 0;
        char prefix[8];

        snprintf(prefix, sizeof(prefix), "p%d-", p);
        for (size_t i = 0; i < n; i++) {
            if (strncmp((char *)items[i].body, prefix, strlen(prefix)) == 0) {
                ck_assert_int_eq(atoi((char *)items[i].body + strlen(prefix)), next);
                next++;
            }
        }
        ck_assert_int_eq(next, EACH);
    }
    for (size_t i = 1; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            ck_assert_str_ne(items[i].id, items[j].id);
        }
    }
    queue_items_free(items, n);
    queue_close(q);
}
END_TEST

START_TEST(test_delivery_lock)
{
    struct queue *q = open_q(10, 1 << 20);
    pid_t pid, holder = 0;
    int status;

    ck_assert_int_eq(queue_lock_delivery(q, &holder), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(queue_lock_delivery(q, &holder), SCTPM_RC_SUCCESS); /* ours already */
    pid = fork_with(q);
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct queue *cq = child_open_q();
        pid_t h = 0;
        int busy = 0;

        /* Another process may enqueue but not deliver; it learns who delivers. */
        if (push(cq, "from the child", NULL, NULL) != SCTPM_RC_SUCCESS) {
            _exit(3);
        }
        if (queue_lock_delivery(cq, &h) != SCTPM_RC_BUSY || h != getppid()) {
            _exit(4);
        }
        /* Asking who delivers sees the holder and takes nothing. */
        if (queue_delivery_holder(cq, &busy, &h) != SCTPM_RC_SUCCESS || busy != 1 ||
            h != getppid()) {
            _exit(6);
        }
        queue_close(cq);
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_uint_eq(count(q), 1);
    /* Released on unlock (and on close, or when the process dies). */
    queue_unlock_delivery(q);
    pid = fork_with(q);
    if (pid == 0) {
        _exit(queue_lock_delivery(child_open_q(), NULL) == SCTPM_RC_SUCCESS ? 0 : 5);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    queue_close(q);
}
END_TEST

/* The prober of test_delivery_probe_does_not_block: asks who delivers until told to stop. */
struct prober {
    struct queue *q;
    atomic_int stop;
    atomic_long probes;
    long failures;
};

static void *probe_loop(void *arg)
{
    struct prober *p = arg;
    pid_t h;
    int b;

    while (!atomic_load(&p->stop)) {
        if (queue_delivery_holder(p->q, &b, &h) != SCTPM_RC_SUCCESS) {
            p->failures++;
        }
        atomic_fetch_add(&p->probes, 1);
    }
    return NULL;
}

/*
 * A status query must never turn a deliverer away: while a prober asks who delivers over and
 * over (as `watch sctpm-client queue` would), the deliverer takes the lock every time. The
 * prober is a thread with a queue of its own: the lock is an open-file-description lock, so two
 * opens of the queue conflict exactly as two processes would (without a fork, whose child
 * memcheck would check for leaks of the parent's SQLite connection).
 */
START_TEST(test_delivery_probe_does_not_block)
{
    struct queue *q = open_q(10, 1 << 20);
    struct prober p = {.q = open_q(10, 1 << 20)};
    pthread_t t;
    pid_t holder = 0;
    int busy = 1, i;

    ck_assert_int_eq(queue_delivery_holder(p.q, &busy, &holder), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(busy, 0);
    ck_assert_int_eq(holder, 0);
    ck_assert_int_eq(pthread_create(&t, NULL, probe_loop, &p), 0);
    while (atomic_load(&p.probes) == 0) {
        sched_yield();
    }
    for (i = 0; i < 2000; i++) {
        ck_assert_int_eq(queue_lock_delivery(q, &holder), SCTPM_RC_SUCCESS);
        ck_assert_int_eq(queue_delivery_holder(p.q, &busy, &holder), SCTPM_RC_SUCCESS);
        ck_assert_int_eq(busy, 1);
        ck_assert_int_eq(holder, getpid());
        queue_unlock_delivery(q);
    }
    atomic_store(&p.stop, 1);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(p.failures, 0);
    ck_assert_int_gt(atomic_load(&p.probes), 1);
    queue_close(p.q);
    queue_close(q);
}
END_TEST

START_TEST(test_identity)
{
    struct queue *q = open_q(10, 1 << 20);
    struct queue_item *items;
    size_t n;
    int64_t seq;

    ck_assert_int_eq(queue_bind_identity(q, "hub.example/dev-1"), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(queue_bind_identity(q, "hub.example/dev-1"), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(push(q, "for dev-1", NULL, NULL), SCTPM_RC_SUCCESS);
    /* Queued messages belong to dev-1: another identity is refused while they wait. */
    ck_assert_int_eq(queue_bind_identity(q, "hub.example/dev-2"), SCTPM_RC_EXISTS);
    ck_assert_ptr_nonnull(strstr(queue_error(q), "dev-1"));
    ck_assert_ptr_nonnull(strstr(queue_error(q), "dev-2"));
    ck_assert_int_eq(queue_peek(q, 1, 1 << 20, &items, &n), SCTPM_RC_SUCCESS);
    seq = items[0].seq;
    queue_items_free(items, n);
    ck_assert_int_eq(queue_remove(q, &seq, 1), SCTPM_RC_SUCCESS);
    /* Empty: the queue takes the new identity. */
    ck_assert_int_eq(queue_bind_identity(q, "hub.example/dev-2"), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(queue_bind_identity(q, "hub.example/dev-1"), SCTPM_RC_SUCCESS);
    queue_close(q);
}
END_TEST

START_TEST(test_reject)
{
    struct queue *q = open_q(10, 1 << 20);
    struct queue_item *items;
    struct queue_stats st;
    char first[MSG_ID_SIZE], second[MSG_ID_SIZE];
    size_t n;

    ck_assert_int_eq(push(q, "bad", NULL, first), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(push(q, "good", NULL, second), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(queue_peek(q, 1, 1 << 20, &items, &n), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(queue_reject(q, items[0].seq, "400 ArgumentInvalid", 5), SCTPM_RC_SUCCESS);
    queue_items_free(items, n);
    ck_assert_int_eq(queue_stats(q, &st), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(st.messages, 1);
    ck_assert_uint_eq(st.rejected, 1);
    ck_assert_int_eq(queue_peek(q, 10, 1 << 20, &items, &n), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(items[0].id, second);
    queue_items_free(items, n);
    queue_close(q);
}
END_TEST

START_TEST(test_c2d_seen)
{
    struct queue *q = open_q(10, 1 << 20);
    int seen = -1;

    ck_assert_int_eq(queue_c2d_seen(q, "m1", &seen), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(seen, 0);
    ck_assert_int_eq(queue_c2d_mark(q, "m1", 1000), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(queue_c2d_seen(q, "m1", &seen), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(seen, 1);
    queue_close(q);
    q = open_q(10, 1 << 20);
    ck_assert_int_eq(queue_c2d_seen(q, "m1", &seen), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(seen, 1);
    /* Forgotten once older than the longest TTL (pruned by a later mark). */
    ck_assert_int_eq(queue_c2d_mark(q, "m2", 1000 + QUEUE_C2D_SEEN_KEEP_MS + 1), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(queue_c2d_seen(q, "m1", &seen), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(seen, 0);
    queue_close(q);
}
END_TEST

START_TEST(test_not_a_directory)
{
    struct queue *q = NULL;
    char err[512], path[300];
    FILE *f;

    snprintf(path, sizeof(path), "%.*s/file", (int)(strlen(dir) - 4), dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_ne(queue_open(path, NULL, &q, err, sizeof(err)), SCTPM_RC_SUCCESS);
    ck_assert_ptr_null(q);
    ck_assert_ptr_nonnull(strstr(err, path));
}
END_TEST

START_TEST(test_default_dir)
{
    char buf[256];

    if (geteuid() == 0) {
        ck_assert_int_eq(queue_default_dir(3, buf, sizeof(buf)), SCTPM_RC_SUCCESS);
        ck_assert_str_eq(buf, "/var/lib/sctpm/queue-3");
        return;
    }
    setenv("XDG_STATE_HOME", "/state", 1);
    ck_assert_int_eq(queue_default_dir(3, buf, sizeof(buf)), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(buf, "/state/sctpm/queue-3");
    unsetenv("XDG_STATE_HOME");
    setenv("HOME", "/home/u", 1);
    ck_assert_int_eq(queue_default_dir(0, buf, sizeof(buf)), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(buf, "/home/u/.local/state/sctpm/queue-0");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_queue");
    TCase *tc = tcase_create("queue");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_create_private);
    tcase_add_test(tc, test_order_and_remove);
    tcase_add_test(tc, test_peek_byte_limit);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_bound_messages);
    tcase_add_test(tc, test_bound_bytes);
    tcase_add_test(tc, test_ids_unique);
    tcase_add_test(tc, test_survives_reopen);
    tcase_add_test(tc, test_survives_sigkill);
    tcase_add_test(tc, test_concurrent_enqueuers);
    tcase_add_test(tc, test_delivery_lock);
    tcase_add_test(tc, test_delivery_probe_does_not_block);
    tcase_add_test(tc, test_identity);
    tcase_add_test(tc, test_reject);
    tcase_add_test(tc, test_c2d_seen);
    tcase_add_test(tc, test_not_a_directory);
    tcase_add_test(tc, test_default_dir);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
