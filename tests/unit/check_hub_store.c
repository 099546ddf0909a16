/* SPDX-License-Identifier: BSD-2-Clause */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store-priv.h"

#define T0      1700000000000LL
#define LOCK_MS 60000

static char dir[256];
static char path[300];
static struct hub_store *st;

/* Each test gets a fresh database in its own directory. */
static void setup(void)
{
    const char *base = getenv("SCTPM_TEST_DIR");

    snprintf(dir, sizeof(dir), "%s/store.XXXXXX", base != NULL ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/hub.db", dir);
    ck_assert_int_eq(hub_store_open(path, &st), SCTPM_RC_SUCCESS);
}

static void teardown(void)
{
    char cmd[400];

    hub_store_close(st);
    st = NULL;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static struct hub_device make_device(const char *id, uint8_t fill)
{
    struct hub_device d;

    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", id);
    memset(d.primary_key, fill, 32);
    d.primary_len = 32;
    memset(d.secondary_key, (uint8_t)(fill + 1), 16);
    d.secondary_len = 16;
    d.enabled = 1;
    d.created_ms = T0;
    d.updated_ms = T0;
    return d;
}

static void add_device(const char *id)
{
    struct hub_device d = make_device(id, 7);

    ck_assert_int_eq(hub_store_device_add(st, &d), SCTPM_RC_SUCCESS);
}

/* A finished message with `id` (NULL: generated) and `body`. */
static void make_msg(struct hub_msg *m, const char *id, const char *body)
{
    size_t n = strlen(body);
    uint8_t *b = malloc(n + 1);

    ck_assert_int_eq(hub_msg_init(m), SCTPM_RC_SUCCESS);
    if (id != NULL) {
        ck_assert_int_eq(hub_msg_set_property(m, "iothub-messageid", id, NULL), SCTPM_RC_SUCCESS);
    }
    ck_assert_ptr_nonnull(b);
    memcpy(b, body, n);
    ck_assert_int_eq(hub_msg_set_body(m, b, n), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_msg_finish(m), SCTPM_RC_SUCCESS);
}

START_TEST(test_file_is_private)
{
    struct stat sb;

    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
}
END_TEST

START_TEST(test_meta)
{
    char *v = NULL;

    ck_assert_int_eq(hub_store_meta_get(st, "hostname", &v), SCTPM_RC_NOT_FOUND);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(hub_store_meta_set(st, "hostname", "a.example"), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_store_meta_set(st, "hostname", "b.example"), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_store_meta_get(st, "hostname", &v), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(v, "b.example");
    free(v);
}
END_TEST

START_TEST(test_newer_schema_refused)
{
    struct hub_store *other = NULL;

    ck_assert_int_eq(hub_store_meta_set(st, "schema_version", "999"), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_store_open(path, &other), SCTPM_RC_UNSUPPORTED);
    ck_assert_ptr_null(other);
}
END_TEST

START_TEST(test_not_a_database)
{
    char junk[300];
    struct hub_store *other = NULL;
    int fd;

    snprintf(junk, sizeof(junk), "%s/junk.db", dir);
    fd = open(junk, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(
        write(fd, "this is not a database, not at all, no no no no no no no no no", 62), 62);
    close(fd);
    ck_assert_int_eq(hub_store_open(junk, &other), SCTPM_RC_CORRUPT);
    ck_assert_ptr_null(other);
}
END_TEST

static int count_devices(void *ctx, const struct hub_device *d)
{
    (void)d;
    (*(int *)ctx)++;
    return 0;
}

START_TEST(test_devices)
{
    struct hub_device d = make_device("dev-01", 1), got;
    int n = 0;

    ck_assert_int_eq(hub_store_device_add(st, &d), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_store_device_add(st, &d), SCTPM_RC_EXISTS);
    ck_assert_int_eq(hub_store_device_get(st, "dev-01", &got), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(got.id, "dev-01");
    ck_assert_uint_eq(got.primary_len, 32);
    ck_assert_uint_eq(got.secondary_len, 16);
    ck_assert_int_eq(memcmp(got.primary_key, d.primary_key, 32), 0);
    ck_assert_int_eq(memcmp(got.secondary_key, d.secondary_key, 16), 0);
    ck_assert(got.enabled);
    ck_assert_int_eq(got.created_ms, T0);
    hub_device_wipe(&got);
    ck_assert_uint_eq(got.primary_len, 0);
    ck_assert_int_eq(hub_store_device_get(st, "DEV-01", &got), SCTPM_RC_NOT_FOUND);

    ck_assert_int_eq(hub_store_device_set_enabled(st, "dev-01", 0, T0 + 5), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_store_device_get(st, "dev-01", &got), SCTPM_RC_SUCCESS);
    ck_assert(!got.enabled);
    ck_assert_int_eq(got.updated_ms, T0 + 5);
    ck_assert_int_eq(hub_store_device_set_enabled(st, "nope", 1, T0), SCTPM_RC_NOT_FOUND);

    d = make_device("dev-02", 2);
    ck_assert_int_eq(hub_store_device_add(st, &d), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_store_device_list(st, count_devices, &n), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(hub_store_device_remove(st, "dev-01"), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_store_device_remove(st, "dev-01"), SCTPM_RC_NOT_FOUND);
    n = 0;
    ck_assert_int_eq(hub_store_device_list(st, count_devices, &n), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(n, 1);

    /* Bad ids and key sizes never reach the database. */
    d = make_device("bad id", 3);
    ck_assert_int_eq(hub_store_device_add(st, &d), SCTPM_RC_BAD_ARGUMENT);
    d = make_device("dev-03", 3);
    d.primary_len = 8;
    ck_assert_int_eq(hub_store_device_add(st, &d), SCTPM_RC_BAD_ARGUMENT);
}
END_TEST

struct collected {
    int n;
    char ids[64][64];
    char bodies[64][64];
    int64_t seqs[64];
    char props[64][128];
};

static int collect(void *ctx, const struct hub_record *r)
{
    struct collected *c = ctx;

    ck_assert_int_lt(c->n, 64);
    snprintf(c->ids[c->n], sizeof(c->ids[0]), "%s", r->message_id);
    snprintf(c->bodies[c->n], sizeof(c->bodies[0]), "%.*s", (int)r->body_len,
             (const char *)r->body);
    snprintf(c->props[c->n], sizeof(c->props[0]), "%s", r->properties);
    c->seqs[c->n] = r->seq;
    c->n++;
    return 0;
}

START_TEST(test_append_dedupe)
{
    struct hub_msg m[3];
    struct collected c = {0};
    size_t stored = 9;
    int64_t last = 0;

    make_msg(&m[0], "a", "one");
    make_msg(&m[1], "b", "two");
    make_msg(&m[2], "a", "again");
    ck_assert_int_eq(hub_msg_set_property(&m[0], "iothub-app-k", "v", NULL), SCTPM_RC_SUCCESS);
    /* Within one request, and across requests and devices. */
    ck_assert_int_eq(hub_store_append(st, "dev-01", m, 3, T0, &stored), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(stored, 2);
    ck_assert_int_eq(hub_store_append(st, "dev-01", &m[1], 1, T0, &stored), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(stored, 0);
    ck_assert_int_eq(hub_store_append(st, "dev-02", &m[1], 1, T0, &stored), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(stored, 1);

    ck_assert_int_eq(hub_store_messages(st, "dev-01", 0, 100, collect, &c, &last),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(c.n, 2);
    ck_assert_str_eq(c.ids[0], "a");
    ck_assert_str_eq(c.bodies[0], "one");
    ck_assert_str_eq(c.props[0], "{\"k\":\"v\"}");
    ck_assert_str_eq(c.ids[1], "b");
    ck_assert_int_eq(last, c.seqs[1]);

    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(hub_store_messages(st, NULL, 0, 100, collect, &c, &last), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(c.n, 3);
    /* Paging: after a sequence number, at most `limit` rows. */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(hub_store_messages(st, NULL, 0, 1, collect, &c, &last), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(c.n, 1);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(hub_store_messages(st, NULL, last, 100, collect, &c, &last), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(c.n, 2);
    for (int i = 0; i < 3; i++) {
        hub_msg_clear(&m[i]);
    }
}
END_TEST

START_TEST(test_append_all_or_nothing)
{
    struct hub_msg m[2];
    struct collected c = {0};
    size_t stored = 9;

    make_msg(&m[0], "good", "x");
    make_msg(&m[1], "bad", "y");
    /* An unfinished message (no id) fails the whole request, including the good one. */
    free(m[1].message_id);
    m[1].message_id = NULL;
    ck_assert_int_eq(hub_store_append(st, "dev-01", m, 2, T0, &stored), SCTPM_RC_BAD_ARGUMENT);
    ck_assert_uint_eq(stored, 0);
    ck_assert_int_eq(hub_store_messages(st, NULL, 0, 100, collect, &c, NULL), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(c.n, 0);
    hub_msg_clear(&m[0]);
    hub_msg_clear(&m[1]);
}
END_TEST

#define THREADS    8
#define PER_THREAD 40

static void *appender(void *arg)
{
    int t = (int)(intptr_t)arg;

    for (int i = 0; i < PER_THREAD; i++) {
        struct hub_msg m;
        char id[32];
        size_t stored = 0;

        snprintf(id, sizeof(id), "t%d-%d", t, i);
        make_msg(&m, id, "body");
        ck_assert_int_eq(hub_store_append(st, "dev-01", &m, 1, T0, &stored), SCTPM_RC_SUCCESS);
        ck_assert_uint_eq(stored, 1);
        hub_msg_clear(&m);
    }
    {
        /* Every thread also sends one shared id: exactly one copy is stored. */
        struct hub_msg m;

        make_msg(&m, "shared", "body");
        ck_assert_int_eq(hub_store_append(st, "dev-01", &m, 1, T0, NULL), SCTPM_RC_SUCCESS);
        hub_msg_clear(&m);
    }
    return NULL;
}

static int count_records(void *ctx, const struct hub_record *r)
{
    (void)r;
    (*(int *)ctx)++;
    return 0;
}

START_TEST(test_group_commit_concurrent)
{
    pthread_t th[THREADS];
    int n = 0;

    for (int i = 0; i < THREADS; i++) {
        ck_assert_int_eq(pthread_create(&th[i], NULL, appender, (void *)(intptr_t)i), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    ck_assert_int_eq(hub_store_messages(st, "dev-01", 0, 100000, count_records, &n, NULL),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(n, THREADS * PER_THREAD + 1);
}
END_TEST

START_TEST(test_reopen_keeps_everything)
{
    struct hub_msg m;
    struct hub_device d;
    int n = 0;

    add_device("dev-01");
    make_msg(&m, "keep", "durable");
    ck_assert_int_eq(hub_store_append(st, "dev-01", &m, 1, T0, NULL), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_store_c2d_send(st, "dev-01", &m, NULL, T0, 1000, 10), SCTPM_RC_SUCCESS);
    hub_msg_clear(&m);
    hub_store_close(st);
    st = NULL;
    ck_assert_int_eq(hub_store_open(path, &st), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_store_device_get(st, "dev-01", &d), SCTPM_RC_SUCCESS);
    hub_device_wipe(&d);
    ck_assert_int_eq(hub_store_messages(st, NULL, 0, 10, count_records, &n, NULL),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(n, 1);
}
END_TEST

/* Remembers the last received cloud-to-device message. */
struct received {
    int calls;
    char token[HUB_GUID_LEN];
    char body[64];
    char id[64];
    unsigned count;
    int64_t seq;
    char props[128];
    char ack[16];
};

static int on_receive(void *ctx, const struct hub_c2d_record *r)
{
    struct received *x = ctx;

    x->calls++;
    snprintf(x->token, sizeof(x->token), "%s", r->lock_token);
    snprintf(x->body, sizeof(x->body), "%.*s", (int)r->r.body_len, (const char *)r->r.body);
    snprintf(x->id, sizeof(x->id), "%s", r->r.message_id);
    snprintf(x->props, sizeof(x->props), "%s", r->r.properties);
    snprintf(x->ack, sizeof(x->ack), "%s", r->ack != NULL ? r->ack : "");
    ck_assert_str_eq(r->state, "locked");
    x->count = r->delivery_count;
    x->seq = r->r.seq;
    return 0;
}

static void queue(const char *device, const char *body, int64_t now, int64_t ttl)
{
    struct hub_msg m;

    make_msg(&m, NULL, body);
    ck_assert_int_eq(hub_msg_set_property(&m, "iothub-app-n", body, NULL), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_store_c2d_send(st, device, &m, "full", now, ttl, HUB_C2D_MAX_QUEUE),
                     SCTPM_RC_SUCCESS);
    hub_msg_clear(&m);
}

static enum sctpm_rc receive(int64_t now, struct received *x)
{
    return hub_store_c2d_receive(st, "dev-01", now, LOCK_MS, 3, on_receive, x);
}

START_TEST(test_c2d_complete_reject_abandon)
{
    struct received x = {0}, y = {0};

    add_device("dev-01");
    ck_assert_int_eq(receive(T0, &x), SCTPM_RC_NOT_FOUND);
    ck_assert_int_eq(x.calls, 0);
    queue("dev-01", "one", T0, 3600000);
    queue("dev-01", "two", T0, 3600000);
    queue("dev-01", "three", T0, 3600000);

    ck_assert_int_eq(receive(T0, &x), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(x.body, "one");
    ck_assert_uint_eq(x.count, 1);
    ck_assert_str_eq(x.props, "{\"n\":\"one\"}");
    ck_assert_str_eq(x.ack, "full");
    /* Another receive while "one" is locked gets the next message, with its own lock. */
    ck_assert_int_eq(receive(T0, &y), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(y.body, "two");
    ck_assert_str_ne(x.token, y.token);
    ck_assert_int_eq(hub_store_c2d_settle(st, "dev-01", x.token, HUB_C2D_COMPLETE, T0),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_store_c2d_settle(st, "dev-01", x.token, HUB_C2D_COMPLETE, T0),
                     SCTPM_RC_NOT_FOUND);
    ck_assert_int_eq(hub_store_c2d_settle(st, "dev-01", y.token, HUB_C2D_REJECT, T0),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_store_c2d_settle(st, "dev-01", y.token, HUB_C2D_ABANDON, T0),
                     SCTPM_RC_NOT_FOUND);

    ck_assert_int_eq(receive(T0, &x), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(x.body, "three");
    /* Another device cannot settle it. */
    ck_assert_int_eq(hub_store_c2d_settle(st, "dev-02", x.token, HUB_C2D_COMPLETE, T0),
                     SCTPM_RC_NOT_FOUND);
    ck_assert_int_eq(hub_store_c2d_settle(st, "dev-01", x.token, HUB_C2D_ABANDON, T0),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(receive(T0, &y), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(y.body, "three");
    ck_assert_uint_eq(y.count, 2);
    ck_assert_int_eq(y.seq, x.seq);
    ck_assert_str_eq(y.id, x.id);
    ck_assert_int_eq(hub_store_c2d_settle(st, "dev-01", y.token, HUB_C2D_COMPLETE, T0),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(receive(T0, &x), SCTPM_RC_NOT_FOUND);
    ck_assert_int_eq(hub_store_c2d_settle(st, "dev-01", "not-a-token", HUB_C2D_COMPLETE, T0),
                     SCTPM_RC_NOT_FOUND);
}
END_TEST

START_TEST(test_c2d_lock_expiry_and_dead_letter)
{
    struct received x = {0}, y = {0};
    int64_t t = T0;

    add_device("dev-01");
    queue("dev-01", "m", t, 3600000);
    ck_assert_int_eq(receive(t, &x), SCTPM_RC_SUCCESS);
    /* While the lock holds the message is invisible. */
    ck_assert_int_eq(receive(t + LOCK_MS - 1, &y), SCTPM_RC_NOT_FOUND);
    /* Once it lapses the token is dead and the message comes back, counted again. */
    t += LOCK_MS;
    ck_assert_int_eq(hub_store_c2d_settle(st, "dev-01", x.token, HUB_C2D_COMPLETE, t),
                     SCTPM_RC_NOT_FOUND);
    ck_assert_int_eq(receive(t, &y), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(y.count, 2);
    ck_assert_str_ne(y.token, x.token);
    t += LOCK_MS;
    ck_assert_int_eq(receive(t, &y), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(y.count, 3);
    /* Three deliveries is the maximum here: the next lapse dead-letters it. */
    t += LOCK_MS;
    ck_assert_int_eq(receive(t, &y), SCTPM_RC_NOT_FOUND);
}
END_TEST

static int state_of_first(void *ctx, const struct hub_c2d_record *r)
{
    char *out = ctx;

    if (out[0] == '\0') {
        snprintf(out, 32, "%s", r->state);
    }
    return 0;
}

START_TEST(test_c2d_expiry_and_states)
{
    struct received x = {0};
    char state[32] = "";

    add_device("dev-01");
    queue("dev-01", "short", T0, 1000);
    ck_assert_int_eq(receive(T0 + 1000, &x), SCTPM_RC_NOT_FOUND);
    ck_assert_int_eq(hub_store_c2d_list(st, "dev-01", state_of_first, state), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(state, "expired");
}
END_TEST

START_TEST(test_c2d_queue_limits)
{
    struct hub_msg m;
    struct received x = {0};

    add_device("dev-01");
    make_msg(&m, NULL, "b");
    ck_assert_int_eq(hub_store_c2d_send(st, "nobody", &m, NULL, T0, 1000, 2), SCTPM_RC_NOT_FOUND);
    ck_assert_int_eq(hub_store_c2d_send(st, "dev-01", &m, NULL, T0, 1000, 2), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_store_c2d_send(st, "dev-01", &m, NULL, T0, 1000, 2), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_store_c2d_send(st, "dev-01", &m, NULL, T0, 1000, 2), SCTPM_RC_QUEUE_FULL);
    /* Completed messages no longer count. */
    ck_assert_int_eq(receive(T0, &x), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_store_c2d_settle(st, "dev-01", x.token, HUB_C2D_COMPLETE, T0),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_store_c2d_send(st, "dev-01", &m, NULL, T0, 1000, 2), SCTPM_RC_SUCCESS);
    /* Removing the device removes its queue. */
    ck_assert_int_eq(hub_store_device_remove(st, "dev-01"), SCTPM_RC_SUCCESS);
    add_device("dev-01");
    ck_assert_int_eq(receive(T0, &x), SCTPM_RC_NOT_FOUND);
    hub_msg_clear(&m);
}
END_TEST

static int refuse(void *ctx, const struct hub_c2d_record *r)
{
    (void)ctx;
    (void)r;
    return 1;
}

START_TEST(test_c2d_callback_refusal_changes_nothing)
{
    struct received x = {0};

    add_device("dev-01");
    queue("dev-01", "m", T0, 3600000);
    ck_assert_int_eq(hub_store_c2d_receive(st, "dev-01", T0, LOCK_MS, 3, refuse, NULL),
                     SCTPM_RC_INTERRUPTED);
    ck_assert_int_eq(receive(T0, &x), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(x.count, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hub_store");
    TCase *tc = tcase_create("store");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_file_is_private);
    tcase_add_test(tc, test_meta);
    tcase_add_test(tc, test_newer_schema_refused);
    tcase_add_test(tc, test_not_a_database);
    tcase_add_test(tc, test_devices);
    tcase_add_test(tc, test_append_dedupe);
    tcase_add_test(tc, test_append_all_or_nothing);
    tcase_add_test(tc, test_group_commit_concurrent);
    tcase_add_test(tc, test_reopen_keeps_everything);
    tcase_add_test(tc, test_c2d_complete_reject_abandon);
    tcase_add_test(tc, test_c2d_lock_expiry_and_dead_letter);
    tcase_add_test(tc, test_c2d_expiry_and_states);
    tcase_add_test(tc, test_c2d_queue_limits);
    tcase_add_test(tc, test_c2d_callback_refusal_changes_nothing);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
