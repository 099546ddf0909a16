/* SPDX-License-Identifier: BSD-2-Clause */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "format-priv.h"

static struct hub_record record(const char *body, size_t len)
{
    struct hub_record r;

    memset(&r, 0, sizeof(r));
    r.seq = 42;
    r.device_id = "dev-01";
    r.enqueued_ms = 1700000000123LL;
    r.message_id = "m1";
    r.properties = "{\"k\":\"v\"}";
    r.body = (const uint8_t *)body;
    r.body_len = len;
    return r;
}

START_TEST(test_connection_string)
{
    uint8_t key[32];
    char *cs = NULL;

    for (int i = 0; i < 32; i++) {
        key[i] = (uint8_t)i;
    }
    ck_assert_int_eq(hub_connection_string("hub.example", "dev-01", key, 32, &cs),
                     SCTPM_RC_SUCCESS);
    ck_assert_str_eq(cs, "HostName=hub.example;DeviceId=dev-01;"
                         "SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
    free(cs);
}
END_TEST

START_TEST(test_text_line)
{
    struct hub_record r = record("{\"t\":21.5} ok", 13);
    char *line = NULL;

    ck_assert_int_eq(hub_format_record(&r, 0, &line), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(line, "seq=42 time=2023-11-14T22:13:20.123Z device=dev-01 id=m1 "
                           "props={\"k\":\"v\"} body={\"t\":21.5} ok");
    free(line);
    r.correlation_id = "c/1";
    r.content_type = "application/json; charset=utf-8";
    ck_assert_int_eq(hub_format_record(&r, 0, &line), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(line, "seq=42 time=2023-11-14T22:13:20.123Z device=dev-01 id=m1 "
                           "sys={\"correlationId\":\"c/1\",\"contentType\":\"application/json; "
                           "charset=utf-8\"} props={\"k\":\"v\"} body={\"t\":21.5} ok");
    free(line);
}
END_TEST

START_TEST(test_binary_body)
{
    struct hub_record r = record("a\nb\0", 4);
    char *line = NULL;

    ck_assert_int_eq(hub_format_record(&r, 0, &line), SCTPM_RC_SUCCESS);
    ck_assert_ptr_nonnull(strstr(line, " body64=YQpiAA=="));
    ck_assert_ptr_null(strchr(line, '\n'));
    free(line);
    r = record(NULL, 0);
    ck_assert_int_eq(hub_format_record(&r, 0, &line), SCTPM_RC_SUCCESS);
    ck_assert_ptr_nonnull(strstr(line, " body="));
    free(line);
}
END_TEST

START_TEST(test_json_line)
{
    struct hub_record r = record("hello", 5);
    json_object *o, *v;
    char *line = NULL;

    r.content_encoding = "utf-8";
    ck_assert_int_eq(hub_format_record(&r, 1, &line), SCTPM_RC_SUCCESS);
    o = json_tokener_parse(line);
    ck_assert_ptr_nonnull(o);
    ck_assert(json_object_object_get_ex(o, "body", &v));
    ck_assert_str_eq(json_object_get_string(v), "hello");
    ck_assert(json_object_object_get_ex(o, "contentEncoding", &v));
    ck_assert_str_eq(json_object_get_string(v), "utf-8");
    ck_assert(json_object_object_get_ex(o, "properties", &v));
    ck_assert(json_object_is_type(v, json_type_object));
    ck_assert(json_object_object_get_ex(o, "seq", &v));
    ck_assert_int_eq(json_object_get_int64(v), 42);
    json_object_put(o);
    free(line);
}
END_TEST

START_TEST(test_c2d_line)
{
    struct hub_c2d_record c;
    char *line = NULL;

    memset(&c, 0, sizeof(c));
    c.r = record("cmd", 3);
    c.state = "locked";
    c.delivery_count = 2;
    c.expiry_ms = 1700003600000LL;
    c.lock_token = "t";
    c.lock_until_ms = 1700000060000LL;
    c.ack = "full";
    ck_assert_int_eq(hub_format_c2d(&c, 0, &line), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(line, "seq=42 state=locked deliveries=2 expiry=2023-11-14T23:13:20.000Z "
                           "locked-until=2023-11-14T22:14:20.000Z ack=full "
                           "time=2023-11-14T22:13:20.123Z device=dev-01 id=m1 "
                           "props={\"k\":\"v\"} body=cmd");
    free(line);
    ck_assert_int_eq(hub_format_c2d(&c, 1, &line), SCTPM_RC_SUCCESS);
    ck_assert_ptr_nonnull(strstr(line, "\"state\":\"locked\""));
    ck_assert_ptr_nonnull(strstr(line, "\"deliveryCount\":2"));
    free(line);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hub_format");
    TCase *tc = tcase_create("format");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_connection_string);
    tcase_add_test(tc, test_text_line);
    tcase_add_test(tc, test_binary_body);
    tcase_add_test(tc, test_json_line);
    tcase_add_test(tc, test_c2d_line);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
