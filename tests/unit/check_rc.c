/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "sctpm/rc.h"

START_TEST(test_frozen_numbers)
{
    /* These numbers are public contract: a change here breaks users' scripts and logs. */
    ck_assert_int_eq(SCTPM_RC_SUCCESS, 0);
    ck_assert_int_eq(SCTPM_RC_BAD_FORMAT, 5);
    ck_assert_int_eq(SCTPM_RC_TPM, 15);
    ck_assert_int_eq(SCTPM_RC_NOT_HARDWARE, 17);
    ck_assert_int_eq(SCTPM_RC_INTERRUPTED, 25);
    ck_assert_int_eq(SCTPM_RC_UNTRUSTED, 26);
}
END_TEST

START_TEST(test_every_code_has_a_message)
{
    for (int rc = SCTPM_RC_SUCCESS; rc <= SCTPM_RC_UNTRUSTED; rc++) {
        const char *m = sctpm_strerror((enum sctpm_rc)rc);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_ne(m, "unknown error code");
    }
}
END_TEST

START_TEST(test_unknown_codes)
{
    ck_assert_str_eq(sctpm_strerror((enum sctpm_rc)9999), "unknown error code");
    ck_assert_str_eq(sctpm_strerror((enum sctpm_rc) - 1), "unknown error code");
    ck_assert_str_eq(sctpm_strerror(SCTPM_RC_SUCCESS), "success");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rc");
    TCase *tc = tcase_create("strerror");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_frozen_numbers);
    tcase_add_test(tc, test_every_code_has_a_message);
    tcase_add_test(tc, test_unknown_codes);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
