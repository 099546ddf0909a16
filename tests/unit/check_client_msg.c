/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Messages: ids (format, randomness, stability of derived ids), properties, sizes as IoT Hub
 * counts them, and the batch body (format, the 255 KB - 1 limit).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base64.h"
#include "msg-priv.h"

static void assert_uuid(const char *id, char version)
{
    ck_assert_uint_eq(strlen(id), MSG_UUID_LEN);
    for (int i = 0; i < MSG_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            ck_assert_int_eq(id[i], '-');
        } else {
            ck_assert_ptr_nonnull(strchr("0123456789abcdef", id[i]));
        }
    }
    ck_assert_int_eq(id[14], version);
    ck_assert_ptr_nonnull(strchr("89ab", id[19]));
    ck_assert(msg_id_valid(id));
}

START_TEST(test_new_ids)
{
    char ids[100][MSG_ID_SIZE];

    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(msg_id_new(ids[i]), SCTPM_RC_SUCCESS);
        assert_uuid(ids[i], '4');
        for (int j = 0; j < i; j++) {
            ck_assert_str_ne(ids[i], ids[j]);
        }
    }
}
END_TEST

START_TEST(test_derived_ids_stable)
{
    uint8_t d1[32], d2[32];
    char a[MSG_ID_SIZE], b[MSG_ID_SIZE], c[MSG_ID_SIZE];

    for (int i = 0; i < 32; i++) {
        d1[i] = (uint8_t)i;
        d2[i] = (uint8_t)(i + 1);
    }
    msg_id_from_digest(d1, a);
    msg_id_from_digest(d1, b);
    msg_id_from_digest(d2, c);
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    assert_uuid(a, '8');
    /* Fixed: a derived id must never change between versions, or a file would be sent twice. */
    ck_assert_str_eq(a, "00010203-0405-8607-8809-0a0b0c0d0e0f");
}
END_TEST

START_TEST(test_id_rules)
{
    char max[MSG_ID_MAX + 2];

    ck_assert(msg_id_valid("a"));
    ck_assert(msg_id_valid("A-z_0.9:+%#*?!(),=@;$'"));
    ck_assert(!msg_id_valid(""));
    ck_assert(!msg_id_valid(NULL));
    ck_assert(!msg_id_valid("has space"));
    ck_assert(!msg_id_valid("slash/"));
    ck_assert(!msg_id_valid("amp&"));
    ck_assert(!msg_id_valid("quote\""));
    ck_assert(!msg_id_valid("nl\n"));
    ck_assert(!msg_id_valid("\xc3\xa9"));
    memset(max, 'm', MSG_ID_MAX);
    max[MSG_ID_MAX] = '\0';
    ck_assert(msg_id_valid(max));
    max[MSG_ID_MAX] = 'm';
    max[MSG_ID_MAX + 1] = '\0';
    ck_assert(!msg_id_valid(max));
}
END_TEST

START_TEST(test_app_props)
{
    json_object *p = msg_props_new(), *v;
    const char *why = NULL;

    ck_assert_int_eq(msg_props_add_app(p, "unit=celsius", &why), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(msg_props_add_app(p, "empty=", &why), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(msg_props_add_app(p, "eq=a=b", &why), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(msg_props_add_app(p, "utf8=\xc3\xa9t\xc3\xa9", &why), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(msg_props_add_app(p, "unit=kelvin", &why), SCTPM_RC_SUCCESS); /* replaces */
    ck_assert(json_object_object_get_ex(p, "iothub-app-unit", &v));
    ck_assert_str_eq(json_object_get_string(v), "kelvin");
    ck_assert(json_object_object_get_ex(p, "iothub-app-eq", &v));
    ck_assert_str_eq(json_object_get_string(v), "a=b");
    ck_assert_int_eq(json_object_object_length(p), 4);
    ck_assert_str_eq(msg_props_text(p), "{\"iothub-app-unit\":\"kelvin\",\"iothub-app-empty\":\"\","
                                        "\"iothub-app-eq\":\"a=b\",\"iothub-app-utf8\":\"\xc3\xa9t"
                                        "\xc3\xa9\"}");
    json_object_put(p);
}
END_TEST

START_TEST(test_bad_app_props)
{
    static const char *const bad[] = {
        "noequals",      "=value",      "sp ace=1",   "colon:=1",    "slash/=1",
        "x=line\nbreak", "x=tab\there", "x= leading", "x=trailing ", "x=\x7f",
    };
    json_object *p = msg_props_new();
    const char *why;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        ck_assert_msg(msg_props_add_app(p, bad[i], &why) == SCTPM_RC_BAD_FORMAT, "accepted %s",
                      bad[i]);
        ck_assert_ptr_nonnull(why);
    }
    ck_assert_int_eq(json_object_object_length(p), 0);
    json_object_put(p);
}
END_TEST

START_TEST(test_system_props)
{
    json_object *p = msg_props_new(), *v;
    const char *why;

    ck_assert_int_eq(msg_props_set_system(p, "iothub-contenttype", "application/json", &why),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(msg_props_set_system(p, "iothub-contentencoding", "utf-8", &why),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(msg_props_set_system(p, "iothub-correlationid", "c-1", &why),
                     SCTPM_RC_SUCCESS);
    ck_assert(json_object_object_get_ex(p, "iothub-contenttype", &v));
    ck_assert_int_eq(msg_props_set_system(p, "iothub-contenttype", "", &why), SCTPM_RC_BAD_FORMAT);
    ck_assert_int_eq(msg_props_set_system(p, "iothub-contenttype", "\xc3\xa9", &why),
                     SCTPM_RC_BAD_FORMAT);
    ck_assert_int_eq(msg_props_set_system(p, "iothub-messageid", "x", &why), SCTPM_RC_BAD_ARGUMENT);
    json_object_put(p);
}
END_TEST

START_TEST(test_props_roundtrip)
{
    json_object *p = msg_props_new(), *q = NULL;
    const char *why;

    ck_assert_int_eq(msg_props_add_app(p, "a=1", &why), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(msg_props_parse(msg_props_text(p), &q), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(msg_props_text(q), msg_props_text(p));
    json_object_put(q);
    ck_assert_int_eq(msg_props_parse("[1]", &q), SCTPM_RC_CORRUPT);
    ck_assert_ptr_null(q);
    ck_assert_int_eq(msg_props_parse("{\"a\":1}", &q), SCTPM_RC_CORRUPT);
    ck_assert_int_eq(msg_props_parse("{", &q), SCTPM_RC_CORRUPT);
    json_object_put(p);
}
END_TEST

START_TEST(test_size)
{
    json_object *p = msg_props_new();
    const char *why;

    ck_assert_uint_eq(msg_size(10, NULL, NULL), 10);
    /* "iothub-messageid" (16) + the id. */
    ck_assert_uint_eq(msg_size(10, "abc", NULL), 10 + 16 + 3);
    ck_assert_int_eq(msg_props_add_app(p, "k=vv", &why), SCTPM_RC_SUCCESS);
    /* "iothub-app-k" (12) + "vv" (2). */
    ck_assert_uint_eq(msg_size(0, NULL, p), 14);
    json_object_put(p);
}
END_TEST

START_TEST(test_batch_format)
{
    struct msg_batch b;
    json_object *p = msg_props_new(), *arr, *el, *v, *props;
    const char *why;
    uint8_t *decoded;
    size_t dlen;

    ck_assert_int_eq(msg_props_add_app(p, "unit=c", &why), SCTPM_RC_SUCCESS);
    msg_batch_init(&b, MSG_BATCH_MAX);
    ck_assert_int_eq(msg_batch_finish(&b), SCTPM_RC_BAD_ARGUMENT); /* an empty batch */
    ck_assert_int_eq(msg_batch_add(&b, "id-1", p, (const uint8_t *)"one", 3), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(msg_batch_add(&b, "id-2", NULL, (const uint8_t *)"\x00\xff", 2),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(msg_batch_finish(&b), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(b.count, 2);
    ck_assert_uint_eq(strlen(b.data), b.len);
    arr = json_tokener_parse(b.data);
    ck_assert_ptr_nonnull(arr);
    ck_assert(json_object_is_type(arr, json_type_array));
    ck_assert_uint_eq(json_object_array_length(arr), 2);
    el = json_object_array_get_idx(arr, 0);
    ck_assert(json_object_object_get_ex(el, "body", &v));
    ck_assert_str_eq(json_object_get_string(v), "b25l");
    ck_assert(json_object_object_get_ex(el, "properties", &props));
    ck_assert(json_object_object_get_ex(props, "iothub-messageid", &v));
    ck_assert_str_eq(json_object_get_string(v), "id-1");
    ck_assert(json_object_object_get_ex(props, "iothub-app-unit", &v));
    ck_assert_str_eq(json_object_get_string(v), "c");
    el = json_object_array_get_idx(arr, 1);
    ck_assert(json_object_object_get_ex(el, "body", &v));
    ck_assert_int_eq(base64_decode(json_object_get_string(v), 4, &decoded, &dlen),
                     SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(dlen, 2);
    ck_assert_int_eq(memcmp(decoded, "\x00\xff", 2), 0);
    free(decoded);
    json_object_put(arr);
    json_object_put(p);
    msg_batch_free(&b);
}
END_TEST

START_TEST(test_batch_limit)
{
    struct msg_batch b;
    uint8_t *body = malloc(100 * 1024);
    size_t added = 0;

    memset(body, 'x', 100 * 1024);
    msg_batch_init(&b, MSG_BATCH_MAX);
    /* 100 KiB bodies are about 133 KiB in base64: one fits in 255 KB - 1, a second does not. */
    ck_assert_int_eq(msg_batch_add(&b, "a", NULL, body, 100 * 1024), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(msg_batch_add(&b, "b", NULL, body, 100 * 1024), SCTPM_RC_TOO_LARGE);
    ck_assert_uint_eq(b.count, 1);
    msg_batch_free(&b);
    /* Small messages until full: the finished body stays within the limit. */
    msg_batch_init(&b, MSG_BATCH_MAX);
    while (msg_batch_add(&b, "id", NULL, body, 1000) == SCTPM_RC_SUCCESS) {
        added++;
    }
    ck_assert_uint_gt(added, 150);
    ck_assert_int_eq(msg_batch_finish(&b), SCTPM_RC_SUCCESS);
    ck_assert_uint_le(b.len, MSG_BATCH_MAX);
    ck_assert_uint_gt(b.len, MSG_BATCH_MAX - 1500);
    msg_batch_free(&b);
    /* A body whose encoding alone is over the limit is refused before encoding. */
    msg_batch_init(&b, 1000);
    ck_assert_int_eq(msg_batch_add(&b, "a", NULL, body, 800), SCTPM_RC_TOO_LARGE);
    msg_batch_free(&b);
    free(body);
}
END_TEST

START_TEST(test_printable)
{
    ck_assert(msg_printable((const uint8_t *)"hello world", 11));
    ck_assert(msg_printable((const uint8_t *)"tab\there", 8));
    ck_assert(
        msg_printable((const uint8_t *)"\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
    ck_assert(msg_printable((const uint8_t *)"", 0));
    ck_assert(!msg_printable((const uint8_t *)"nl\n", 3));
    ck_assert(!msg_printable((const uint8_t *)"nul\0", 4));
    ck_assert(!msg_printable((const uint8_t *)"esc\x1b[2J", 7));
    ck_assert(!msg_printable((const uint8_t *)"\xff", 1));
    ck_assert(!msg_printable((const uint8_t *)"\xc3", 1));         /* truncated */
    ck_assert(!msg_printable((const uint8_t *)"\xc0\xaf", 2));     /* overlong */
    ck_assert(!msg_printable((const uint8_t *)"\xed\xa0\x80", 3)); /* surrogate */
    ck_assert(!msg_printable((const uint8_t *)"\xc2\x9b", 2));     /* C1 control (CSI) */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_msg");
    TCase *tc = tcase_create("msg");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_new_ids);
    tcase_add_test(tc, test_derived_ids_stable);
    tcase_add_test(tc, test_id_rules);
    tcase_add_test(tc, test_app_props);
    tcase_add_test(tc, test_bad_app_props);
    tcase_add_test(tc, test_system_props);
    tcase_add_test(tc, test_props_roundtrip);
    tcase_add_test(tc, test_size);
    tcase_add_test(tc, test_batch_format);
    tcase_add_test(tc, test_batch_limit);
    tcase_add_test(tc, test_printable);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
