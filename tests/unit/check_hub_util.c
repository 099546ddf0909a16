/* SPDX-License-Identifier: BSD-2-Clause */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util-priv.h"

START_TEST(test_guid)
{
    char a[HUB_GUID_LEN], b[HUB_GUID_LEN];

    ck_assert_int_eq(hub_guid(a), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_guid(b), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(strlen(a), 36);
    ck_assert_str_ne(a, b);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            ck_assert_int_eq(a[i], '-');
        } else {
            ck_assert_ptr_nonnull(strchr("0123456789abcdef", a[i]));
        }
    }
    /* Version 4, RFC 4122 variant. */
    ck_assert_int_eq(a[14], '4');
    ck_assert_ptr_nonnull(strchr("89ab", a[19]));
}
END_TEST

START_TEST(test_device_ids)
{
    char long_id[HUB_ID_MAX + 2];

    ck_assert(hub_device_id_valid("dev-01"));
    ck_assert(hub_device_id_valid("a"));
    ck_assert(hub_device_id_valid("A-z_0.9:+%#*?!(),=@;$'"));
    ck_assert(!hub_device_id_valid(""));
    ck_assert(!hub_device_id_valid(NULL));
    ck_assert(!hub_device_id_valid("dev 01"));
    ck_assert(!hub_device_id_valid("dev/01"));
    ck_assert(!hub_device_id_valid("dev&01"));
    ck_assert(!hub_device_id_valid("d\xc3\xa9v"));
    ck_assert(!hub_device_id_valid("dev\n"));
    memset(long_id, 'x', HUB_ID_MAX);
    long_id[HUB_ID_MAX] = '\0';
    ck_assert(hub_device_id_valid(long_id));
    long_id[HUB_ID_MAX] = 'x';
    long_id[HUB_ID_MAX + 1] = '\0';
    ck_assert(!hub_device_id_valid(long_id));
    ck_assert(hub_message_id_valid("3f2504e0-4f89-11d3-9a0c-0305e82c3301"));
    ck_assert(!hub_message_id_valid("has space"));
}
END_TEST

START_TEST(test_hostnames)
{
    ck_assert(hub_hostname_valid("sctpm-hub.local"));
    ck_assert(hub_hostname_valid("localhost"));
    ck_assert(hub_hostname_valid("MyHub.azure-devices.net"));
    ck_assert(!hub_hostname_valid(""));
    ck_assert(!hub_hostname_valid("a..b"));
    ck_assert(!hub_hostname_valid(".a"));
    ck_assert(!hub_hostname_valid("a."));
    ck_assert(!hub_hostname_valid("a,DNS:evil"));
    ck_assert(!hub_hostname_valid("a b"));
    ck_assert(!hub_hostname_valid("a_b"));
    ck_assert(!hub_hostname_valid("0123456789012345678901234567890123456789012345678901234567890123"
                                  ".com"));
}
END_TEST

START_TEST(test_times)
{
    char iso[HUB_ISO_TIME_LEN], http[HUB_HTTP_TIME_LEN];

    hub_iso_time(1700000000123, iso);
    ck_assert_str_eq(iso, "2023-11-14T22:13:20.123Z");
    hub_http_time(1700000000123, http);
    ck_assert_str_eq(http, "Tue, 14 Nov 2023 22:13:20 GMT");
    hub_iso_time(0, iso);
    ck_assert_str_eq(iso, "1970-01-01T00:00:00.000Z");
    ck_assert(hub_now_ms() > 1600000000000);
    ck_assert(hub_mono_ms() > 0);
}
END_TEST

START_TEST(test_printable)
{
    ck_assert(hub_printable_utf8((const uint8_t *)"", 0));
    ck_assert(hub_printable_utf8((const uint8_t *)"{\"t\":21.5}\tok", 13));
    ck_assert(hub_printable_utf8((const uint8_t *)"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
    ck_assert(!hub_printable_utf8((const uint8_t *)"a\nb", 3));
    ck_assert(!hub_printable_utf8((const uint8_t *)"a\0b", 3));
    ck_assert(!hub_printable_utf8((const uint8_t *)"\x1b[2J", 4));
    ck_assert(!hub_printable_utf8((const uint8_t *)"\x7f", 1));
    ck_assert(!hub_printable_utf8((const uint8_t *)"\xc3", 1));
    ck_assert(!hub_printable_utf8((const uint8_t *)"\xc0\xaf", 2));         /* overlong */
    ck_assert(!hub_printable_utf8((const uint8_t *)"\xed\xa0\x80", 3));     /* surrogate */
    ck_assert(!hub_printable_utf8((const uint8_t *)"\xc2\x9b", 2));         /* C1 CSI */
    ck_assert(!hub_printable_utf8((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    ck_assert(!hub_printable_utf8((const uint8_t *)"\xff", 1));
}
END_TEST

START_TEST(test_buf)
{
    struct hub_buf b;
    size_t len = 0;
    char *s;

    hub_buf_init(&b, 10);
    ck_assert_int_eq(hub_buf_puts(&b, "hello"), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_buf_printf(&b, "%d", 12345), SCTPM_RC_SUCCESS);
    ck_assert_str_eq((char *)b.data, "hello12345");
    ck_assert_int_eq(hub_buf_append(&b, "x", 1), SCTPM_RC_TOO_LARGE);
    ck_assert_int_eq(hub_buf_printf(&b, "%s", "y"), SCTPM_RC_TOO_LARGE);
    ck_assert_uint_eq(b.len, 10);
    s = hub_buf_steal(&b, &len);
    ck_assert_str_eq(s, "hello12345");
    ck_assert_uint_eq(len, 10);
    ck_assert_ptr_null(b.data);
    free(s);
    /* Stealing an empty buffer gives an empty string, not NULL. */
    s = hub_buf_steal(&b, &len);
    ck_assert_str_eq(s, "");
    ck_assert_uint_eq(len, 0);
    free(s);
    hub_buf_free(&b);
    /* Growth across several reallocations keeps the contents. */
    hub_buf_init(&b, 100000);
    for (int i = 0; i < 10000; i++) {
        ck_assert_int_eq(hub_buf_append(&b, "0123456789", 10), SCTPM_RC_SUCCESS);
    }
    ck_assert_uint_eq(b.len, 100000);
    ck_assert_int_eq(memcmp(b.data + 99990, "0123456789", 10), 0);
    ck_assert_int_eq(b.data[100000], '\0');
    hub_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hub_util");
    TCase *tc = tcase_create("util");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_guid);
    tcase_add_test(tc, test_device_ids);
    tcase_add_test(tc, test_hostnames);
    tcase_add_test(tc, test_times);
    tcase_add_test(tc, test_printable);
    tcase_add_test(tc, test_buf);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
