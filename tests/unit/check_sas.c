/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * common/sas: scopes, the string to sign and token formatting. The expected signatures were
 * computed independently (Python's hmac and base64, Azure's lowercase URL encoding), and each
 * test also recomputes the HMAC with OpenSSL from the same key.
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sas.h"

static uint8_t key[32];

static void setup(void)
{
    for (size_t i = 0; i < sizeof(key); i++) {
        key[i] = (uint8_t)i;
    }
}

/* Signs sas_string_to_sign(sr, se) with OpenSSL and formats the token. */
static char *make_token(const char *sr, int64_t se, const char *skn)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char *msg = NULL, *tok = NULL;
    size_t len = 0;

    ck_assert_int_eq(sas_string_to_sign(sr, se, &msg, &len), SCTPM_RC_SUCCESS);
    ck_assert_ptr_nonnull(
        HMAC(EVP_sha256(), key, sizeof(key), (unsigned char *)msg, len, mac, &maclen));
    ck_assert_int_eq(sas_format(sr, se, mac, maclen, skn, &tok), SCTPM_RC_SUCCESS);
    free(msg);
    return tok;
}

START_TEST(test_scope_device_and_module)
{
    char *sr = NULL;

    ck_assert_int_eq(sas_scope("myhub.azure-devices.net", "dev-01", NULL, &sr), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(sr, "myhub.azure-devices.net%2fdevices%2fdev-01");
    free(sr);
    ck_assert_int_eq(sas_scope("h.example", "d", "", &sr), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(sr, "h.example%2fdevices%2fd");
    free(sr);
    ck_assert_int_eq(sas_scope("h.example", "d", "m", &sr), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(sr, "h.example%2fdevices%2fd%2fmodules%2fm");
    free(sr);
    /* Characters IoT Hub allows in ids that a URL must escape. */
    ck_assert_int_eq(sas_scope("h.example", "a+b#c%d=e@f$g'h", NULL, &sr), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(sr, "h.example%2fdevices%2fa%2bb%23c%25d%3de%40f%24g%27h");
    free(sr);
    ck_assert_int_eq(sas_scope("", "d", NULL, &sr), SCTPM_RC_BAD_ARGUMENT);
    ck_assert_ptr_null(sr);
    ck_assert_int_eq(sas_scope("h", "", NULL, &sr), SCTPM_RC_BAD_ARGUMENT);
}
END_TEST

START_TEST(test_string_to_sign)
{
    char *msg = NULL;
    size_t len = 0;

    ck_assert_int_eq(sas_string_to_sign("a%2fb", 1700000000, &msg, &len), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(msg, "a%2fb\n1700000000");
    ck_assert_uint_eq(len, strlen(msg));
    free(msg);
    ck_assert_int_eq(sas_string_to_sign("x", 0, &msg, &len), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(msg, "x\n0");
    free(msg);
    ck_assert_int_eq(sas_string_to_sign("x", INT64_MAX, &msg, &len), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(msg, "x\n9223372036854775807");
    free(msg);
    ck_assert_int_eq(sas_string_to_sign("x", -1, &msg, &len), SCTPM_RC_BAD_ARGUMENT);
    ck_assert_ptr_null(msg);
}
END_TEST

START_TEST(test_known_vector)
{
    char *tok = make_token("myhub.azure-devices.net%2fdevices%2fdev-01", 1700000000, NULL);

    /* base64 "d/GwhD+9yUXa6WArSRntkBO2mjjAbvMfoGeHRrTB5Vs=": '/', '+' and '=' all escaped. */
    ck_assert_str_eq(tok, "SharedAccessSignature sr=myhub.azure-devices.net%2fdevices%2fdev-01"
                          "&sig=d%2fGwhD%2b9yUXa6WArSRntkBO2mjjAbvMfoGeHRrTB5Vs%3d&se=1700000000");
    free(tok);
}
END_TEST

START_TEST(test_module_vector_with_skn)
{
    char *tok = make_token("h.example%2fdevices%2fd%2fmodules%2fm", 0, "registration");

    ck_assert_str_eq(tok, "SharedAccessSignature sr=h.example%2fdevices%2fd%2fmodules%2fm"
                          "&sig=04SeT18LoHVcrdmCurYRl4t4kXyRZjgUSa5GEA72MfQ%3d&se=0"
                          "&skn=registration");
    free(tok);
}
END_TEST

START_TEST(test_format_refuses_token_syntax)
{
    uint8_t mac[32] = {0};
    char *tok = NULL;

    ck_assert_int_eq(sas_format("a&b", 1, mac, sizeof(mac), NULL, &tok), SCTPM_RC_BAD_ARGUMENT);
    /* The hub, like the service, would split a value at '=' (found by fuzz_sas). */
    ck_assert_int_eq(sas_format("a=b", 1, mac, sizeof(mac), NULL, &tok), SCTPM_RC_BAD_ARGUMENT);
    ck_assert_int_eq(sas_format("a", 1, mac, sizeof(mac), "x=y", &tok), SCTPM_RC_BAD_ARGUMENT);
    ck_assert_int_eq(sas_format("a b", 1, mac, sizeof(mac), NULL, &tok), SCTPM_RC_BAD_ARGUMENT);
    ck_assert_int_eq(sas_format("a\nb", 1, mac, sizeof(mac), NULL, &tok), SCTPM_RC_BAD_ARGUMENT);
    ck_assert_int_eq(sas_format("a\xc3\xa9", 1, mac, sizeof(mac), NULL, &tok),
                     SCTPM_RC_BAD_ARGUMENT);
    ck_assert_int_eq(sas_format("", 1, mac, sizeof(mac), NULL, &tok), SCTPM_RC_BAD_ARGUMENT);
    ck_assert_int_eq(sas_format("a", 1, mac, sizeof(mac), "x&y", &tok), SCTPM_RC_BAD_ARGUMENT);
    ck_assert_int_eq(sas_format("a", -5, mac, sizeof(mac), NULL, &tok), SCTPM_RC_BAD_ARGUMENT);
    ck_assert_int_eq(sas_format("a", 1, mac, 0, NULL, &tok), SCTPM_RC_BAD_ARGUMENT);
    ck_assert_ptr_null(tok);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sas");
    TCase *tc = tcase_create("format");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_scope_device_and_module);
    tcase_add_test(tc, test_string_to_sign);
    tcase_add_test(tc, test_known_vector);
    tcase_add_test(tc, test_module_vector_with_skn);
    tcase_add_test(tc, test_format_refuses_token_syntax);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
