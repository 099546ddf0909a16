/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

/* RFC 4648 section 10 test vectors. */
static const struct {
    const char *plain;
    const char *encoded;
} vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

START_TEST(test_encode_rfc4648)
{
    const char *plain = vectors[_i].plain;
    char out[32];

    ck_assert_uint_eq(base64_encoded_len(strlen(plain)), strlen(vectors[_i].encoded));
    base64_encode((const uint8_t *)plain, strlen(plain), out);
    ck_assert_str_eq(out, vectors[_i].encoded);
}
END_TEST

START_TEST(test_decode_rfc4648)
{
    const char *enc = vectors[_i].encoded;
    uint8_t *out = NULL;
    size_t len = 99;

    ck_assert_int_eq(base64_decode(enc, strlen(enc), &out, &len), SCTPM_RC_SUCCESS);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(len, strlen(vectors[_i].plain));
    ck_assert_mem_eq(out, vectors[_i].plain, len);
    free(out);
}
END_TEST

START_TEST(test_binary_roundtrip)
{
    uint8_t data[256], *back = NULL;
    char enc[400];
    size_t len;

    for (int i = 0; i < 256; i++) {
        data[i] = (uint8_t)(255 - i);
    }
    for (size_t n = 0; n <= sizeof(data); n += 7) {
        base64_encode(data, n, enc);
        ck_assert_int_eq(base64_decode(enc, strlen(enc), &back, &len), SCTPM_RC_SUCCESS);
        ck_assert_uint_eq(len, n);
        ck_assert(n == 0 || memcmp(back, data, n) == 0);
        free(back);
    }
}
END_TEST

/* An Azure device key: 32 random bytes as 44 base64 characters. */
START_TEST(test_azure_key)
{
    const char *key = "4q0bLm6FK8mb0m5KBSpBTb5pbJ8Fd2s+/BbZgHb1tV0=";
    uint8_t *out = NULL;
    size_t len;

    ck_assert_int_eq(base64_decode(key, strlen(key), &out, &len), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(len, 32);
    ck_assert_uint_eq(out[0], 0xe2);
    ck_assert_uint_eq(out[31], 0x5d);
    free(out);
}
END_TEST

static const char *const malformed[] = {
    "Zg",       /* missing padding */
    "Zg=",      /* short padding */
    "Z===",     /* three padding characters */
    "Zm9v\n",   /* whitespace */
    " Zm9v",    /* leading space */
    "Zm 9",     /* embedded space */
    "Zm9v====", /* a group of padding only */
    "Zg==Zm9v", /* padding in the middle */
    "Zm=v",     /* padding inside a group */
    "Zh==",     /* non-zero bits under the padding */
    "Zm9=",     /* non-zero bits under the padding */
    "Zm9-",     /* base64url alphabet is not accepted */
    "Zm9_",     /* base64url alphabet is not accepted */
    "Zm9\x80",  /* a high byte */
    "=",        /* padding alone */
    "====",     /* padding alone */
};

START_TEST(test_malformed)
{
    const char *in = malformed[_i];
    uint8_t *out = (uint8_t *)1;
    size_t len = 42;

    ck_assert_int_eq(base64_decode(in, strlen(in), &out, &len), SCTPM_RC_BAD_FORMAT);
    ck_assert_ptr_null(out);
    ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(test_embedded_nul)
{
    uint8_t *out = NULL;
    size_t len;

    ck_assert_int_eq(base64_decode("Zm\0v", 4, &out, &len), SCTPM_RC_BAD_FORMAT);
    ck_assert_ptr_null(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("base64");
    TCase *tc = tcase_create("codec");
    SRunner *sr;
    int failed;

    tcase_add_loop_test(tc, test_encode_rfc4648, 0, sizeof(vectors) / sizeof(vectors[0]));
    tcase_add_loop_test(tc, test_decode_rfc4648, 0, sizeof(vectors) / sizeof(vectors[0]));
    tcase_add_test(tc, test_binary_roundtrip);
    tcase_add_test(tc, test_azure_key);
    tcase_add_loop_test(tc, test_malformed, 0, sizeof(malformed) / sizeof(malformed[0]));
    tcase_add_test(tc, test_embedded_nul);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
