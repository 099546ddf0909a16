/* SPDX-License-Identifier: BSD-2-Clause */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message-priv.h"

static const char *app(const struct hub_msg *m, const char *name)
{
    json_object *v = NULL;

    return json_object_object_get_ex(m->app, name, &v) ? json_object_get_string(v) : NULL;
}

START_TEST(test_properties)
{
    struct hub_msg m;
    const char *why = NULL;

    ck_assert_int_eq(hub_msg_init(&m), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_msg_set_property(&m, "iothub-messageid", "m-1", &why), SCTPM_RC_SUCCESS);
    /* Header names are case-insensitive; the property name keeps the sender's case. */
    ck_assert_int_eq(hub_msg_set_property(&m, "IoTHub-CorrelationId", "c-1", &why),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_msg_set_property(&m, "iothub-contenttype", "application/json", &why),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_msg_set_property(&m, "iothub-contentencoding", "utf-8", &why),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_msg_set_property(&m, "iothub-userid", "u", &why), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(
        hub_msg_set_property(&m, "iothub-creation-time-utc", "2024-01-01T00:00:00Z", &why),
        SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_msg_set_property(&m, "iothub-app-Temperature", "21.5", &why),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_msg_set_property(&m, "IOTHUB-APP-unit", "C", &why), SCTPM_RC_SUCCESS);
    /* Ordinary headers pass through untouched. */
    ck_assert_int_eq(hub_msg_set_property(&m, "Authorization", "x", &why), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_msg_set_property(&m, "iothub-to", "/devices/d/messages/events", &why),
                     SCTPM_RC_SUCCESS);
    ck_assert_str_eq(m.message_id, "m-1");
    ck_assert_str_eq(m.correlation_id, "c-1");
    ck_assert_str_eq(m.content_type, "application/json");
    ck_assert_str_eq(m.content_encoding, "utf-8");
    ck_assert_str_eq(m.user_id, "u");
    ck_assert_str_eq(m.creation_time, "2024-01-01T00:00:00Z");
    ck_assert_str_eq(app(&m, "Temperature"), "21.5");
    ck_assert_str_eq(app(&m, "unit"), "C");
    ck_assert_int_eq(json_object_object_length(m.app), 2);
    ck_assert_str_eq(hub_msg_app_json(&m), "{\"Temperature\":\"21.5\",\"unit\":\"C\"}");
    ck_assert_int_eq(hub_msg_finish(&m), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(m.message_id, "m-1");
    hub_msg_clear(&m);
}
END_TEST

START_TEST(test_invalid_properties)
{
    struct hub_msg m;
    const char *why = NULL;
    char big[HUB_PROP_MAX + 10];

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(hub_msg_init(&m), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_msg_set_property(&m, "iothub-messageid", "has space", &why),
                     SCTPM_RC_BAD_FORMAT);
    ck_assert_int_eq(hub_msg_set_property(&m, "iothub-messageid", "", &why), SCTPM_RC_BAD_FORMAT);
    ck_assert_int_eq(hub_msg_set_property(&m, "iothub-app-", "v", &why), SCTPM_RC_BAD_FORMAT);
    ck_assert_int_eq(hub_msg_set_property(&m, "iothub-app-a b", "v", &why), SCTPM_RC_BAD_FORMAT);
    ck_assert_int_eq(hub_msg_set_property(&m, "iothub-app-a:b", "v", &why), SCTPM_RC_BAD_FORMAT);
    ck_assert_int_eq(hub_msg_set_property(&m, "iothub-contenttype", "a\x01", &why),
                     SCTPM_RC_BAD_FORMAT);
    ck_assert_int_eq(hub_msg_set_property(&m, "iothub-correlationid", big, &why),
                     SCTPM_RC_BAD_FORMAT);
    ck_assert_ptr_nonnull(why);
    ck_assert_ptr_null(m.message_id);
    hub_msg_clear(&m);
}
END_TEST

START_TEST(test_generated_id)
{
    struct hub_msg a, b;

    ck_assert_int_eq(hub_msg_init(&a), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_msg_init(&b), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_msg_finish(&a), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_msg_finish(&b), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(strlen(a.message_id), 36);
    ck_assert_str_ne(a.message_id, b.message_id);
    hub_msg_clear(&a);
    hub_msg_clear(&b);
}
END_TEST

START_TEST(test_size_limit)
{
    struct hub_msg m;
    uint8_t *body = calloc(1, HUB_MSG_MAX_SIZE);
    uint8_t *big = calloc(1, HUB_MSG_MAX_SIZE + 1);

    ck_assert_ptr_nonnull(body);
    ck_assert_ptr_nonnull(big);
    ck_assert_int_eq(hub_msg_init(&m), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_msg_set_body(&m, big, HUB_MSG_MAX_SIZE + 1), SCTPM_RC_TOO_LARGE);
    free(big);
    /* Exactly the limit is fine; one property more is not (properties count, as in Azure). */
    ck_assert_int_eq(hub_msg_set_body(&m, body, HUB_MSG_MAX_SIZE), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_msg_finish(&m), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_msg_set_property(&m, "iothub-app-k", "v", NULL), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_msg_finish(&m), SCTPM_RC_TOO_LARGE);
    hub_msg_clear(&m);
}
END_TEST

static enum sctpm_rc parse(const char *json, struct hub_msg **msgs, size_t *n)
{
    const char *why = NULL;
    enum sctpm_rc rc = hub_msg_parse_batch((const uint8_t *)json, strlen(json), msgs, n, &why);

    ck_assert_ptr_nonnull(why);
    return rc;
}

START_TEST(test_batch)
{
    /* The C SDK's two forms: base64 bytes with app properties, and a JSON string body. */
    static const char json[] =
        " [{\"body\":\"eyJ0IjoyMS41fQ==\",\"properties\":{\"iothub-app-k\":\"v\","
        "\"iothub-messageid\":\"b-1\",\"iothub-contenttype\":\"application/json\"}},"
        "{\"body\":\"plain \\u00e9 text\",\"base64Encoded\":false},"
        "{\"body\":\"\",\"base64Encoded\":true}]\n";
    struct hub_msg *msgs = NULL;
    size_t n = 0;

    ck_assert_int_eq(parse(json, &msgs, &n), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(msgs[0].body_len, 10);
    ck_assert_int_eq(memcmp(msgs[0].body, "{\"t\":21.5}", 10), 0);
    ck_assert_str_eq(msgs[0].message_id, "b-1");
    ck_assert_str_eq(msgs[0].content_type, "application/json");
    ck_assert_str_eq(app(&msgs[0], "k"), "v");
    ck_assert_uint_eq(msgs[1].body_len, 13);
    ck_assert_int_eq(memcmp(msgs[1].body, "plain \xc3\xa9 text", 13), 0);
    ck_assert_uint_eq(strlen(msgs[1].message_id), 36);
    ck_assert_uint_eq(msgs[2].body_len, 0);
    hub_msgs_free(msgs, n);
}
END_TEST

static const char *const bad_batches[] = {
    "",
    "[",
    "[]",
    "{}",
    "\"x\"",
    "[1]",
    "[{}]",
    "[{\"body\":1}]",
    "[{\"body\":null}]",
    "[{\"body\":\"!!!!\"}]",
    "[{\"body\":\"YQ\"}]",
    "[{\"body\":\"YQ==\",\"base64Encoded\":\"yes\"}]",
    "[{\"body\":\"YQ==\",\"properties\":[]}]",
    "[{\"body\":\"YQ==\",\"properties\":{\"iothub-app-k\":1}}]",
    "[{\"body\":\"YQ==\",\"properties\":{\"iothub-app-k\":\"a\\u0000b\"}}]",
    "[{\"body\":\"YQ==\",\"properties\":{\"iothub-messageid\":\"bad id\"}}]",
    "[{\"body\":\"YQ==\",\"properties\":{\"iothub-app-\":\"v\"}}]",
    "[{\"body\":\"YQ==\"}] x",
    "[{\"body\":\"YQ==\"},]",
    "[{'body':'YQ=='}]",
    "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]",
    "[{\"body\":\"YQ==\"}]\x00",
};

START_TEST(test_bad_batch)
{
    struct hub_msg *msgs = (struct hub_msg *)1;
    size_t n = 7;
    const char *why = NULL;
    const char *json = bad_batches[_i];
    /* The last vector has an embedded NUL: pass its full length. */
    size_t len =
        _i == sizeof(bad_batches) / sizeof(bad_batches[0]) - 1 ? strlen(json) + 1 : strlen(json);

    ck_assert_int_eq(hub_msg_parse_batch((const uint8_t *)json, len, &msgs, &n, &why),
                     SCTPM_RC_BAD_FORMAT);
    ck_assert_ptr_null(msgs);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_nonnull(why);
}
END_TEST

START_TEST(test_batch_limits)
{
    struct hub_msg *msgs = NULL;
    size_t n = 0, off = 0, cap = 16 * (HUB_BATCH_MAX + 2);
    char *json = malloc(cap);

    ck_assert_ptr_nonnull(json);
    json[off++] = '[';
    for (int i = 0; i < HUB_BATCH_MAX + 1; i++) {
        off += (size_t)snprintf(json + off, cap - off, "%s{\"body\":\"\"}", i ? "," : "");
    }
    json[off++] = ']';
    json[off] = '\0';
    ck_assert_int_eq(parse(json, &msgs, &n), SCTPM_RC_TOO_LARGE);
    free(json);
    /* A body over the limit. */
    ck_assert_int_eq(
        hub_msg_parse_batch((const uint8_t *)"[]", HUB_MSG_MAX_SIZE + 1, &msgs, &n, NULL),
        SCTPM_RC_TOO_LARGE);
}
END_TEST

/* Mutations of a valid batch must never crash the parser (this suite runs under ASan). */
START_TEST(test_batch_garbage)
{
    static const char good[] = "[{\"body\":\"eyJ0IjoyMS41fQ==\",\"properties\":{\"iothub-app-k\":"
                               "\"v\"}},{\"body\":\"x\",\"base64Encoded\":false}]";
    unsigned seed = 99;
    char buf[sizeof(good)];

    for (int round = 0; round < 5000; round++) {
        struct hub_msg *msgs = NULL;
        size_t n = 0, len = sizeof(good) - 1;

        memcpy(buf, good, sizeof(good));
        for (int k = 0; k < 1 + round % 4; k++) {
            buf[rand_r(&seed) % len] = (char)(rand_r(&seed) % 256);
        }
        if (round % 3 == 0) {
            len = (size_t)rand_r(&seed) % len;
        }
        if (hub_msg_parse_batch((const uint8_t *)buf, len, &msgs, &n, NULL) == SCTPM_RC_SUCCESS) {
            ck_assert_uint_ge(n, 1);
            hub_msgs_free(msgs, n);
        }
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hub_message");
    TCase *tc = tcase_create("message");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_properties);
    tcase_add_test(tc, test_invalid_properties);
    tcase_add_test(tc, test_generated_id);
    tcase_add_test(tc, test_size_limit);
    tcase_add_test(tc, test_batch);
    tcase_add_loop_test(tc, test_bad_batch, 0, sizeof(bad_batches) / sizeof(bad_batches[0]));
    tcase_add_test(tc, test_batch_limits);
    tcase_add_test(tc, test_batch_garbage);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
