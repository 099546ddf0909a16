/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "urlenc.h"

static const struct {
    const char *in;
    const char *out;
} vectors[] = {
    {"", ""},
    {"AZaz09-._!()*", "AZaz09-._!()*"},
    /* The three characters base64 signatures contain, lowercase hex as Azure's SDK writes it. */
    {"a+b/c=", "a%2bb%2fc%3d"},
    {"hub.azure-devices.net/devices/dev-01", "hub.azure-devices.net%2fdevices%2fdev-01"},
    {"~ '\"", "%7e%20%27%22"},
    {"?&#%:@$,;", "%3f%26%23%25%3a%40%24%2c%3b"},
    {"\x01\x7f", "%01%7f"},
    /* UTF-8 input: each byte percent-encoded (see urlenc.h). */
    {"\xc3\xa9", "%c3%a9"},
    {"\xff", "%ff"},
};

START_TEST(test_encode)
{
    char *out = NULL;

    ck_assert_int_eq(url_encode(vectors[_i].in, strlen(vectors[_i].in), &out), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(out, vectors[_i].out);
    free(out);
}
END_TEST

START_TEST(test_decode_roundtrip)
{
    char *out = NULL;

    ck_assert_int_eq(url_decode(vectors[_i].out, strlen(vectors[_i].out), &out), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(out, vectors[_i].in);
    free(out);
}
END_TEST

START_TEST(test_decode_uppercase_and_plus)
{
    char *out = NULL;

    ck_assert_int_eq(url_decode("a%2Bb%2fc+d", 11, &out), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(out, "a+b/c+d");
    free(out);
}
END_TEST

START_TEST(test_encode_embedded_nul)
{
    char *out = NULL;

    ck_assert_int_eq(url_encode("a\0b", 3, &out), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(out, "a%00b");
    free(out);
}
END_TEST

static const char *const bad[] = {"%", "%2", "abc%", "%zz", "%g0", "a%0", "%00", "%%41"};

START_TEST(test_decode_malformed)
{
    char *out = (char *)1;

    ck_assert_int_eq(url_decode(bad[_i], strlen(bad[_i]), &out), SCTPM_RC_BAD_FORMAT);
    ck_assert_ptr_null(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("urlenc");
    TCase *tc = tcase_create("azure");
    SRunner *sr;
    int failed;

    tcase_add_loop_test(tc, test_encode, 0, sizeof(vectors) / sizeof(vectors[0]));
    tcase_add_loop_test(tc, test_decode_roundtrip, 0, sizeof(vectors) / sizeof(vectors[0]));
    tcase_add_test(tc, test_decode_uppercase_and_plus);
    tcase_add_test(tc, test_encode_embedded_nul);
    tcase_add_loop_test(tc, test_decode_malformed, 0, sizeof(bad) / sizeof(bad[0]));
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
