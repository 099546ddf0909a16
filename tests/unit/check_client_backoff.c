/* SPDX-License-Identifier: BSD-2-Clause */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "backoff-priv.h"

START_TEST(test_doubling_and_cap)
{
    struct backoff b;
    uint32_t nominal = 500;

    backoff_init(&b, 500, 8000);
    for (int i = 0; i < 10; i++) {
        /* r = 0 gives the lower bound d/2; r -> 1 the upper bound d. */
        struct backoff lo = b, hi = b;
        uint32_t d_lo = backoff_next(&lo, 0.0, -1), d_hi = backoff_next(&hi, 0.999999, -1);

        ck_assert_uint_eq(d_lo, nominal / 2);
        ck_assert_uint_ge(d_hi, nominal - 1);
        ck_assert_uint_le(d_hi, nominal);
        backoff_next(&b, 0.5, -1);
        nominal = nominal * 2 > 8000 ? 8000 : nominal * 2;
    }
    ck_assert_uint_eq(b.attempt, 10);
}
END_TEST

START_TEST(test_jitter_spread)
{
    struct backoff b;
    uint32_t min = UINT32_MAX, max = 0;

    /* Delays with random r stay in [d/2, d) and actually spread. */
    for (int i = 0; i < 1000; i++) {
        uint32_t d;

        backoff_init(&b, 1000, 60000);
        b.attempt = 3; /* nominal 8000 */
        d = backoff_next(&b, backoff_random(), -1);
        ck_assert_uint_ge(d, 4000);
        ck_assert_uint_lt(d, 8000);
        min = d < min ? d : min;
        max = d > max ? d : max;
    }
    ck_assert_uint_lt(min, 4500);
    ck_assert_uint_gt(max, 7500);
}
END_TEST

START_TEST(test_reset)
{
    struct backoff b;

    backoff_init(&b, 500, 60000);
    for (int i = 0; i < 5; i++) {
        backoff_next(&b, 0, -1);
    }
    ck_assert_uint_eq(backoff_next(&b, 0, -1), 8000);
    backoff_reset(&b);
    ck_assert_uint_eq(backoff_next(&b, 0, -1), 250);
}
END_TEST

START_TEST(test_huge_attempt_count)
{
    struct backoff b;

    backoff_init(&b, 500, 60000);
    b.attempt = 1000;
    ck_assert_uint_eq(backoff_next(&b, 0, -1), 30000);
    ck_assert_uint_le(backoff_next(&b, 0.999, -1), 60000);
}
END_TEST

START_TEST(test_retry_after_wins)
{
    struct backoff b;

    backoff_init(&b, 500, 60000);
    /* The server's wait, at least, plus up to a tenth (capped at 1 s) of jitter. */
    ck_assert_uint_eq(backoff_next(&b, 0, 5000), 5000);
    ck_assert_uint_eq(backoff_next(&b, 0.999999, 5000), 5499);
    ck_assert_uint_eq(backoff_next(&b, 0.999999, 120000), 120999);
    /* Longer than the exponential cap is still honoured... */
    ck_assert_uint_ge(backoff_next(&b, 0, 300000), 300000);
    /* ...up to an hour. */
    ck_assert_uint_eq(backoff_next(&b, 0, 10ll * 3600 * 1000), BACKOFF_RETRY_AFTER_MAX_MS);
    /* Retry-After: 0 means now. */
    ck_assert_uint_eq(backoff_next(&b, 0.5, 0), 0);
    /* A Retry-After still counts as a failure. */
    ck_assert_uint_eq(b.attempt, 6);
}
END_TEST

START_TEST(test_random_range)
{
    for (int i = 0; i < 10000; i++) {
        double r = backoff_random();
        ck_assert(r >= 0 && r < 1);
    }
}
END_TEST

/* 1994-11-06 08:49:37 UTC, RFC 9110's example date. */
#define EXAMPLE 784111777

START_TEST(test_http_dates)
{
    int64_t t = 0;

    ck_assert_int_eq(backoff_parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
    ck_assert_int_eq(t, EXAMPLE);
    t = 0;
    ck_assert_int_eq(backoff_parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
    ck_assert_int_eq(t, EXAMPLE);
    t = 0;
    ck_assert_int_eq(backoff_parse_http_date("Sun Nov  6 08:49:37 1994", &t), 0);
    ck_assert_int_eq(t, EXAMPLE);
    ck_assert_int_eq(backoff_parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT", &t), 0);
    ck_assert_int_eq(t, 1709251199);
    ck_assert_int_eq(backoff_parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT", &t), 0);
    ck_assert_int_eq(t, 0);
    /* RFC 850 two-digit years below 70 are this century. */
    ck_assert_int_eq(backoff_parse_http_date("Tuesday, 01-Jan-30 00:00:00 GMT", &t), 0);
    ck_assert_int_eq(t, 1893456000);
}
END_TEST

START_TEST(test_bad_http_dates)
{
    static const char *const bad[] = {
        "",
        "Sun, 06 Nov 1994 08:49:37",      /* no GMT */
        "Sun, 06 Nov 1994 08:49:37 UTC",  /* not GMT */
        "Mon, 06 Nov 1994 08:49:37 GMT",  /* wrong day of the week */
        "Sun, 6 Nov 1994 08:49:37 GMT",   /* one-digit day in IMF-fixdate */
        "Sun, 06 Nov 94 08:49:37 GMT",    /* two-digit year in IMF-fixdate */
        "Sun, 06 Foo 1994 08:49:37 GMT",  /* no such month */
        "Sun, 31 Nov 1994 08:49:37 GMT",  /* no such day */
        "Wed, 29 Feb 2023 08:49:37 GMT",  /* not a leap year */
        "Sun, 06 Nov 1994 24:00:00 GMT",  /* no such hour */
        "Sun, 06 Nov 1994 08:60:00 GMT",  /* no such minute */
        "Sun, 06 Nov 1994 08:49:37 GMT ", /* trailing space */
        "Sun, 06 Nov 1994 08:49:37 GMTx", /* trailing junk */
        "sun, 06 nov 1994 08:49:37 gmt",  /* names are case-sensitive */
        "Sunday, 06 Nov 1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994", /* asctime pads one-digit days with a space */
        "Sun Nov  6 08:49:37 94",
        "tomorrow",
    };
    int64_t t = 42;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(backoff_parse_http_date(bad[i], &t) != 0, "accepted \"%s\"", bad[i]);
    }
    ck_assert_int_ne(backoff_parse_http_date(NULL, &t), 0);
    ck_assert_int_eq(t, 42);
}
END_TEST

START_TEST(test_retry_after_seconds)
{
    ck_assert_int_eq(backoff_parse_retry_after("0", 1000), 0);
    ck_assert_int_eq(backoff_parse_retry_after("5", 1000), 5000);
    ck_assert_int_eq(backoff_parse_retry_after("120", 1000), 120000);
    ck_assert_int_eq(backoff_parse_retry_after(" 7 ", 1000), 7000);
    ck_assert_int_eq(backoff_parse_retry_after("3600", 1000), 3600000);
    /* Clamped to an hour, however many digits. */
    ck_assert_int_eq(backoff_parse_retry_after("86400", 1000), BACKOFF_RETRY_AFTER_MAX_MS);
    ck_assert_int_eq(backoff_parse_retry_after("99999999999999999999999", 1000),
                     BACKOFF_RETRY_AFTER_MAX_MS);
    ck_assert_int_eq(backoff_parse_retry_after(NULL, 1000), -1);
    ck_assert_int_eq(backoff_parse_retry_after("", 1000), -1);
    ck_assert_int_eq(backoff_parse_retry_after("-5", 1000), -1);
    ck_assert_int_eq(backoff_parse_retry_after("5s", 1000), -1);
    ck_assert_int_eq(backoff_parse_retry_after("1.5", 1000), -1);
    ck_assert_int_eq(backoff_parse_retry_after("0x10", 1000), -1);
}
END_TEST

START_TEST(test_retry_after_dates)
{
    /* A date ten seconds ahead of "now". */
    ck_assert_int_eq(backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", EXAMPLE - 10),
                     10000);
    ck_assert_int_eq(backoff_parse_retry_after("Sun Nov  6 08:49:37 1994", EXAMPLE - 10), 10000);
    /* In the past, or now: retry at once. */
    ck_assert_int_eq(backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", EXAMPLE), 0);
    ck_assert_int_eq(backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", EXAMPLE + 99), 0);
    /* Far ahead: clamped. */
    ck_assert_int_eq(backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 0),
                     BACKOFF_RETRY_AFTER_MAX_MS);
    ck_assert_int_eq(backoff_parse_retry_after("Mon, 06 Nov 1994 08:49:37 GMT", 0), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_backoff");
    TCase *tc = tcase_create("backoff");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_doubling_and_cap);
    tcase_add_test(tc, test_jitter_spread);
    tcase_add_test(tc, test_reset);
    tcase_add_test(tc, test_huge_attempt_count);
    tcase_add_test(tc, test_retry_after_wins);
    tcase_add_test(tc, test_random_range);
    tcase_add_test(tc, test_http_dates);
    tcase_add_test(tc, test_bad_http_dates);
    tcase_add_test(tc, test_retry_after_seconds);
    tcase_add_test(tc, test_retry_after_dates);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
