/* SPDX-License-Identifier: BSD-2-Clause */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sas-priv.h"

/*
 * A known answer computed independently (Python's hmac module): key bytes 0..31,
 * sr "myhub.azure-devices.net/devices/dev-01", se 1700000000.
 */
#define HOST    "myhub.azure-devices.net"
#define SR      HOST "/devices/dev-01"
#define SE      "1700000000"
#define SIG_B64 "Ti5qQx6bo9p5ryJiTmhdpYeTLiiku+FzJ0Qf+C1GxsE="
#define SIG_ENC "Ti5qQx6bo9p5ryJiTmhdpYeTLiiku%2BFzJ0Qf%2BC1GxsE%3D"
#define TOKEN   "SharedAccessSignature sr=" SR "&sig=" SIG_ENC "&se=" SE
/* The same, with sr URL-encoded (and signed that way, as the DPS client does). */
#define SR_ENC    HOST "%2fdevices%2fdev-01"
#define SIG2_ENC  "d%2FGwhD%2B9yUXa6WArSRntkBO2mjjAbvMfoGeHRrTB5Vs%3D"
#define TOKEN_ENC "SharedAccessSignature sr=" SR_ENC "&sig=" SIG2_ENC "&se=" SE
#define NOW       1699999000

static uint8_t key[32];
static uint8_t other_key[32];

static void setup(void)
{
    for (int i = 0; i < 32; i++) {
        key[i] = (uint8_t)i;
        other_key[i] = (uint8_t)(i + 1);
    }
}

/* Parses, checks the scope for dev-01 and verifies with `k` at `now`. */
static enum sctpm_rc check_token(const char *token, const uint8_t *k, int64_t now)
{
    const uint8_t *keys[1] = {k};
    size_t lens[1] = {32};
    struct hub_sas *t = NULL;
    enum sctpm_rc rc;

    rc = hub_sas_parse(token, &t, NULL);
    if (rc == SCTPM_RC_SUCCESS) {
        rc = hub_sas_check_scope(t, HOST, "dev-01", NULL);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = hub_sas_verify(t, keys, lens, 1, now, 30, NULL);
    }
    hub_sas_free(t);
    return rc;
}

START_TEST(test_known_answer)
{
    struct hub_sas *t = NULL;
    const char *why = NULL;

    ck_assert_int_eq(hub_sas_parse(TOKEN, &t, &why), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(t->sr_raw, SR);
    ck_assert_str_eq(t->sr, SR);
    ck_assert_str_eq(t->se_raw, SE);
    ck_assert_int_eq(t->expiry, 1700000000);
    ck_assert_ptr_null(t->skn);
    hub_sas_free(t);
    ck_assert_int_eq(check_token(TOKEN, key, NOW), SCTPM_RC_SUCCESS);
}
END_TEST

START_TEST(test_encoded_scope)
{
    struct hub_sas *t = NULL;

    ck_assert_int_eq(hub_sas_parse(TOKEN_ENC, &t, NULL), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(t->sr_raw, SR_ENC);
    ck_assert_str_eq(t->sr, SR);
    hub_sas_free(t);
    ck_assert_int_eq(check_token(TOKEN_ENC, key, NOW), SCTPM_RC_SUCCESS);
}
END_TEST

START_TEST(test_field_order_and_case)
{
    ck_assert_int_eq(
        check_token("SharedAccessSignature se=" SE "&SIG=" SIG_ENC "&Sr=" SR, key, NOW),
        SCTPM_RC_SUCCESS);
    /* Empty fields are skipped, unknown ones ignored, as the service does. */
    ck_assert_int_eq(
        check_token("SharedAccessSignature &sr=" SR "&&sig=" SIG_ENC "&x=1&se=" SE "&", key, NOW),
        SCTPM_RC_SUCCESS);
}
END_TEST

START_TEST(test_host_case_insensitive)
{
    struct hub_sas *t = NULL;

    ck_assert_int_eq(hub_sas_parse(TOKEN, &t, NULL), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_sas_check_scope(t, "MyHub.Azure-Devices.NET", "dev-01", NULL),
                     SCTPM_RC_SUCCESS);
    /* Device ids are case-sensitive. */
    ck_assert_int_eq(hub_sas_check_scope(t, HOST, "DEV-01", NULL), SCTPM_RC_UNAUTHORIZED);
    hub_sas_free(t);
}
END_TEST

START_TEST(test_wrong_scope)
{
    struct hub_sas *t = NULL;
    const char *why = NULL;

    ck_assert_int_eq(hub_sas_parse(TOKEN, &t, NULL), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_sas_check_scope(t, "otherhub.azure-devices.net", "dev-01", &why),
                     SCTPM_RC_UNAUTHORIZED);
    ck_assert_int_eq(hub_sas_check_scope(t, HOST, "dev-02", &why), SCTPM_RC_UNAUTHORIZED);
    ck_assert_int_eq(hub_sas_check_scope(t, HOST, "dev-0", &why), SCTPM_RC_UNAUTHORIZED);
    ck_assert_int_eq(hub_sas_check_scope(t, "myhub.azure-devices.ne", "dev-01", &why),
                     SCTPM_RC_UNAUTHORIZED);
    hub_sas_free(t);
}
END_TEST

static const char *const bad_scopes[] = {
    /* A module's scope, the hub alone, a device prefix, another path, a scheme. */
    HOST "/devices/dev-01/modules/m1",
    HOST,
    HOST "/devices/",
    HOST "/devices/dev-01/",
    HOST "/things/dev-01",
    "https://" HOST "/devices/dev-01",
    HOST ":443/devices/dev-01",
};

START_TEST(test_bad_scopes)
{
    char token[512];
    struct hub_sas *t = NULL;

    snprintf(token, sizeof(token), "SharedAccessSignature sr=%s&sig=%s&se=%s", bad_scopes[_i],
             SIG_ENC, SE);
    ck_assert_int_eq(hub_sas_parse(token, &t, NULL), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_sas_check_scope(t, HOST, "dev-01", NULL), SCTPM_RC_UNAUTHORIZED);
    hub_sas_free(t);
}
END_TEST

START_TEST(test_policy_token_refused)
{
    struct hub_sas *t = NULL;

    ck_assert_int_eq(hub_sas_parse(TOKEN "&skn=device", &t, NULL), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(t->skn, "device");
    ck_assert_int_eq(hub_sas_check_scope(t, HOST, "dev-01", NULL), SCTPM_RC_UNAUTHORIZED);
    hub_sas_free(t);
    /* An empty skn is no policy. */
    ck_assert_int_eq(check_token(TOKEN "&skn=", key, NOW), SCTPM_RC_SUCCESS);
}
END_TEST

START_TEST(test_expiry)
{
    /* Valid up to se + skew (30 s), inclusive; expired one second later. */
    ck_assert_int_eq(check_token(TOKEN, key, 1700000000), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(check_token(TOKEN, key, 1700000030), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(check_token(TOKEN, key, 1700000031), SCTPM_RC_EXPIRED);
    ck_assert_int_eq(check_token(TOKEN, key, 1800000000), SCTPM_RC_EXPIRED);
}
END_TEST

START_TEST(test_bad_signature)
{
    ck_assert_int_eq(check_token(TOKEN, other_key, NOW), SCTPM_RC_UNAUTHORIZED);
    /* A later expiry with the old signature: the signature covers se. */
    ck_assert_int_eq(
        check_token("SharedAccessSignature sr=" SR "&sig=" SIG_ENC "&se=1700000001", key, NOW),
        SCTPM_RC_UNAUTHORIZED);
    /* The encoded scope with the signature of the unencoded one: sr is signed as sent. */
    ck_assert_int_eq(
        check_token("SharedAccessSignature sr=" SR_ENC "&sig=" SIG_ENC "&se=" SE, key, NOW),
        SCTPM_RC_UNAUTHORIZED);
    /* One bit flipped in the signature. */
    ck_assert_int_eq(check_token("SharedAccessSignature sr=" SR
                                 "&sig=Ui5qQx6bo9p5ryJiTmhdpYeTLiiku%2BFzJ0Qf%2BC1GxsE%3D&se=" SE,
                                 key, NOW),
                     SCTPM_RC_UNAUTHORIZED);
}
END_TEST

START_TEST(test_secondary_key)
{
    const uint8_t *keys[2] = {other_key, key};
    size_t lens[2] = {32, 32};
    struct hub_sas *t = NULL;

    ck_assert_int_eq(hub_sas_parse(TOKEN, &t, NULL), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_sas_verify(t, keys, lens, 2, NOW, 0, NULL), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_sas_verify(t, keys, lens, 1, NOW, 0, NULL), SCTPM_RC_UNAUTHORIZED);
    hub_sas_free(t);
}
END_TEST

static const char *const malformed[] = {
    "",
    "SharedAccessSignature",
    "SharedAccessSignature ",
    "sharedaccesssignature sr=" SR "&sig=" SIG_ENC "&se=" SE,
    "Bearer abc",
    "SharedAccessSignature  sr=" SR "&sig=" SIG_ENC "&se=" SE,
    "SharedAccessSignature sr=" SR "&sig=" SIG_ENC "&se=" SE " ",
    "SharedAccessSignature sr=" SR " &sig=" SIG_ENC "&se=" SE,
    "SharedAccessSignaturesr=" SR "&sig=" SIG_ENC "&se=" SE,
    /* Missing fields. */
    "SharedAccessSignature sig=" SIG_ENC "&se=" SE,
    "SharedAccessSignature sr=" SR "&se=" SE,
    "SharedAccessSignature sr=" SR "&sig=" SIG_ENC,
    "SharedAccessSignature sr=&sig=" SIG_ENC "&se=" SE,
    "SharedAccessSignature sr=" SR "&sig=&se=" SE,
    "SharedAccessSignature sr=" SR "&sig=" SIG_ENC "&se=",
    /* Duplicates. */
    "SharedAccessSignature sr=" SR "&sr=" SR "&sig=" SIG_ENC "&se=" SE,
    "SharedAccessSignature sr=" SR "&sig=" SIG_ENC "&SIG=" SIG_ENC "&se=" SE,
    /* A field without '=', a value with a raw '=' (an unencoded signature). */
    "SharedAccessSignature sr=" SR "&sig=" SIG_ENC "&se=" SE "&junk",
    "SharedAccessSignature sr=" SR "&sig=" SIG_B64 "&se=" SE,
    /* An unencoded '+' is a space once decoded, so not base64. */
    "SharedAccessSignature sr=" SR "&sig=Ti5qQx6bo9p5ryJiTmhdpYeTLiiku+FzJ0Qf+C1GxsE%3D&se=" SE,
    /* Not base64, not 32 bytes. */
    "SharedAccessSignature sr=" SR "&sig=%%%%&se=" SE,
    "SharedAccessSignature sr=" SR "&sig=AAAA&se=" SE,
    /* Expiry not a plain decimal. */
    "SharedAccessSignature sr=" SR "&sig=" SIG_ENC "&se=-1",
    "SharedAccessSignature sr=" SR "&sig=" SIG_ENC "&se=%2B1700000000",
    "SharedAccessSignature sr=" SR "&sig=" SIG_ENC "&se=1700000000.5",
    "SharedAccessSignature sr=" SR "&sig=" SIG_ENC "&se=0x10",
    "SharedAccessSignature sr=" SR "&sig=" SIG_ENC "&se=99999999999999999999",
    /* An escape that decodes to NUL. */
    "SharedAccessSignature sr=" SR "%00&sig=" SIG_ENC "&se=" SE,
};

START_TEST(test_malformed)
{
    struct hub_sas *t = (struct hub_sas *)1;
    const char *why = NULL;

    ck_assert_int_eq(hub_sas_parse(malformed[_i], &t, &why), SCTPM_RC_BAD_FORMAT);
    ck_assert_ptr_null(t);
    ck_assert_ptr_nonnull(why);
}
END_TEST

START_TEST(test_null_and_too_long)
{
    struct hub_sas *t = NULL;
    char *big = malloc(HUB_SAS_MAX_LEN + 100);

    ck_assert_int_eq(hub_sas_parse(NULL, &t, NULL), SCTPM_RC_BAD_FORMAT);
    ck_assert_ptr_nonnull(big);
    strcpy(big, TOKEN "&pad=");
    memset(big + strlen(big), 'a', HUB_SAS_MAX_LEN + 99 - strlen(big));
    big[HUB_SAS_MAX_LEN + 50] = '\0';
    ck_assert_int_eq(hub_sas_parse(big, &t, NULL), SCTPM_RC_TOO_LARGE);
    ck_assert_ptr_null(t);
    free(big);
}
END_TEST

START_TEST(test_sign_round_trip)
{
    char *tok = NULL;

    ck_assert_int_eq(hub_sas_sign(SR, 1700000000, key, sizeof(key), &tok), SCTPM_RC_SUCCESS);
    /* base64 with '+', '/', '=' URL-encoded with lowercase hex, as the C SDK does. */
    ck_assert_str_eq(tok, "SharedAccessSignature sr=" SR
                          "&sig=Ti5qQx6bo9p5ryJiTmhdpYeTLiiku%2bFzJ0Qf%2bC1GxsE%3d&se=" SE);
    ck_assert_int_eq(check_token(tok, key, NOW), SCTPM_RC_SUCCESS);
    free(tok);
    ck_assert_int_eq(hub_sas_sign(SR, -1, key, sizeof(key), &tok), SCTPM_RC_BAD_ARGUMENT);
    ck_assert_ptr_null(tok);
}
END_TEST

/* Every expiry the builder writes (any non-negative int64) is read back (found by fuzz_sas). */
START_TEST(test_expiry_range)
{
    static const int64_t expiries[] = {0, 7710162700553436160, INT64_MAX};
    struct hub_sas *t = NULL;
    char *tok = NULL;

    for (size_t i = 0; i < sizeof(expiries) / sizeof(expiries[0]); i++) {
        ck_assert_int_eq(hub_sas_sign(SR, expiries[i], key, sizeof(key), &tok), SCTPM_RC_SUCCESS);
        ck_assert_int_eq(hub_sas_parse(tok, &t, NULL), SCTPM_RC_SUCCESS);
        ck_assert_int_eq(t->expiry, expiries[i]);
        ck_assert_int_eq(check_token(tok, key, NOW),
                         expiries[i] < NOW - 30 ? SCTPM_RC_EXPIRED : SCTPM_RC_SUCCESS);
        hub_sas_free(t);
        free(tok);
    }
    /* One more than INT64_MAX is not a time. */
    ck_assert_int_eq(hub_sas_parse("SharedAccessSignature sr=" SR "&sig=" SIG_ENC
                                   "&se=9223372036854775808",
                                   &t, NULL),
                     SCTPM_RC_BAD_FORMAT);
    ck_assert_ptr_null(t);
}
END_TEST

/* Random bytes and truncations of a good token must never crash the parser (run under ASan). */
START_TEST(test_garbage)
{
    char buf[300];
    struct hub_sas *t = NULL;
    unsigned seed = 12345;

    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(rand_r(&seed) % (sizeof(buf) - 1));

        if (round % 2 == 0) {
            for (size_t i = 0; i < n; i++) {
                buf[i] = (char)(rand_r(&seed) % 255 + 1);
            }
            buf[n] = '\0';
        } else {
            snprintf(buf, sizeof(buf), "%s", TOKEN);
            n = strlen(buf);
            buf[rand_r(&seed) % n] = (char)(rand_r(&seed) % 255 + 1);
            buf[rand_r(&seed) % n + 1] = '\0';
        }
        if (hub_sas_parse(buf, &t, NULL) == SCTPM_RC_SUCCESS) {
            const uint8_t *keys[1] = {key};
            size_t lens[1] = {32};
            (void)hub_sas_check_scope(t, HOST, "dev-01", NULL);
            (void)hub_sas_verify(t, keys, lens, 1, NOW, 30, NULL);
            hub_sas_free(t);
        }
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hub_sas");
    TCase *tc = tcase_create("sas");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_known_answer);
    tcase_add_test(tc, test_encoded_scope);
    tcase_add_test(tc, test_field_order_and_case);
    tcase_add_test(tc, test_host_case_insensitive);
    tcase_add_test(tc, test_wrong_scope);
    tcase_add_loop_test(tc, test_bad_scopes, 0, sizeof(bad_scopes) / sizeof(bad_scopes[0]));
    tcase_add_test(tc, test_policy_token_refused);
    tcase_add_test(tc, test_expiry);
    tcase_add_test(tc, test_bad_signature);
    tcase_add_test(tc, test_secondary_key);
    tcase_add_loop_test(tc, test_malformed, 0, sizeof(malformed) / sizeof(malformed[0]));
    tcase_add_test(tc, test_null_and_too_long);
    tcase_add_test(tc, test_sign_round_trip);
    tcase_add_test(tc, test_expiry_range);
    tcase_add_test(tc, test_garbage);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
