/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The token cache with a fake token source: renewal at 80% of the lifetime, invalidation (the
 * 401 path), failures, and the wiping of the cached token.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token-priv.h"

struct fake {
    int64_t now; /* the source's clock, as libsctpm's would be */
    unsigned calls;
    uint32_t last_ttl;
    enum sctpm_rc fail;
};

static enum sctpm_rc fake_fetch(void *ctx, uint32_t ttl, char *buf, size_t size, int64_t *expiry)
{
    struct fake *f = ctx;

    f->calls++;
    f->last_ttl = ttl;
    if (f->fail != SCTPM_RC_SUCCESS) {
        return f->fail;
    }
    *expiry = f->now + ttl;
    snprintf(buf, size, "SharedAccessSignature sr=h%%2fdevices%%2fd&sig=fake%u&se=%lld", f->calls,
             (long long)*expiry);
    return SCTPM_RC_SUCCESS;
}

static const char *fake_error(void *ctx)
{
    (void)ctx;
    return "the fake TPM is down";
}

static struct token_source source(struct fake *f)
{
    struct token_source s = {fake_fetch, fake_error, f};

    return s;
}

START_TEST(test_renew_at)
{
    ck_assert_int_eq(token_renew_at(1000, 4600), 1000 + 2880);
    ck_assert_int_eq(token_renew_at(0, 10), 8);
    ck_assert_int_eq(token_renew_at(0, 1), 0);
    ck_assert_int_eq(token_renew_at(100, 100), 100);
    ck_assert_int_eq(token_renew_at(100, 50), 100);
}
END_TEST

START_TEST(test_cached_until_80_percent)
{
    struct fake f = {.now = 1000000};
    struct token_cache c;
    const char *tok = NULL, *first;

    token_cache_init(&c, source(&f), 3600);
    ck_assert_int_eq(token_cache_get(&c, f.now, &tok), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(f.calls, 1);
    ck_assert_uint_eq(f.last_ttl, 3600);
    ck_assert_ptr_nonnull(strstr(tok, "sig=fake1"));
    first = tok;
    /* Up to 2879 s later (80% of 3600 is 2880): the same token, no TPM call. */
    for (int64_t t = 0; t < 2880; t += 97) {
        ck_assert_int_eq(token_cache_get(&c, f.now + t, &tok), SCTPM_RC_SUCCESS);
        ck_assert_ptr_eq(tok, first);
    }
    ck_assert_int_eq(token_cache_get(&c, f.now + 2879, &tok), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(f.calls, 1);
    /* At 80%: renewed. */
    f.now += 2880;
    ck_assert_int_eq(token_cache_get(&c, f.now, &tok), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(f.calls, 2);
    ck_assert_ptr_nonnull(strstr(tok, "sig=fake2"));
    ck_assert_uint_eq(c.renewals, 2);
    ck_assert_int_eq(c.issued, f.now);
    ck_assert_int_eq(c.expiry, f.now + 3600);
    token_cache_clear(&c);
}
END_TEST

START_TEST(test_short_ttl)
{
    struct fake f = {.now = 5000};
    struct token_cache c;
    const char *tok;

    /* A 10 s token lasts 8 s; a 1 s token is renewed on every use. */
    token_cache_init(&c, source(&f), 10);
    ck_assert_int_eq(token_cache_get(&c, 5000, &tok), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(token_cache_get(&c, 5007, &tok), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(f.calls, 1);
    f.now = 5008;
    ck_assert_int_eq(token_cache_get(&c, 5008, &tok), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(f.calls, 2);
    token_cache_init(&c, source(&f), 1);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(token_cache_get(&c, 5008, &tok), SCTPM_RC_SUCCESS);
    }
    ck_assert_uint_eq(f.calls, 7);
}
END_TEST

START_TEST(test_default_ttl)
{
    struct fake f = {.now = 0};
    struct token_cache c;
    const char *tok;

    token_cache_init(&c, source(&f), 0);
    ck_assert_int_eq(token_cache_get(&c, 0, &tok), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(f.last_ttl, SCTPM_DEFAULT_TTL);
}
END_TEST

START_TEST(test_invalidate)
{
    struct fake f = {.now = 100};
    struct token_cache c;
    const char *tok;

    token_cache_init(&c, source(&f), 3600);
    ck_assert_int_eq(token_cache_get(&c, 100, &tok), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(token_cache_get(&c, 101, &tok), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(f.calls, 1);
    /* After a 401: the next use fetches a fresh token even though the old one is young. */
    token_cache_invalidate(&c);
    ck_assert_int_eq(c.valid, 0);
    ck_assert_int_eq(c.token[0], '\0');
    ck_assert_int_eq(token_cache_get(&c, 102, &tok), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(f.calls, 2);
    ck_assert_ptr_nonnull(strstr(tok, "sig=fake2"));
}
END_TEST

START_TEST(test_failure)
{
    struct fake f = {.now = 100};
    struct token_cache c;
    const char *tok = "x";

    token_cache_init(&c, source(&f), 60);
    ck_assert_int_eq(token_cache_get(&c, 100, &tok), SCTPM_RC_SUCCESS);
    f.fail = SCTPM_RC_NO_TPM;
    /* Due for renewal and the TPM is gone: the error, and no stale token left behind. */
    ck_assert_int_eq(token_cache_get(&c, 200, &tok), SCTPM_RC_NO_TPM);
    ck_assert_ptr_null(tok);
    ck_assert_int_eq(c.valid, 0);
    ck_assert_str_eq(c.src.error(c.src.ctx), "the fake TPM is down");
    /* Back: the next call works. */
    f.fail = SCTPM_RC_SUCCESS;
    f.now = 300;
    ck_assert_int_eq(token_cache_get(&c, 300, &tok), SCTPM_RC_SUCCESS);
    ck_assert_ptr_nonnull(tok);
}
END_TEST

START_TEST(test_clear_wipes)
{
    struct fake f = {.now = 100};
    struct token_cache c;
    const char *tok;

    token_cache_init(&c, source(&f), 60);
    ck_assert_int_eq(token_cache_get(&c, 100, &tok), SCTPM_RC_SUCCESS);
    token_cache_clear(&c);
    for (size_t i = 0; i < sizeof(c.token); i++) {
        ck_assert_int_eq(c.token[i], 0);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_token");
    TCase *tc = tcase_create("token");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_renew_at);
    tcase_add_test(tc, test_cached_until_80_percent);
    tcase_add_test(tc, test_short_ttl);
    tcase_add_test(tc, test_default_ttl);
    tcase_add_test(tc, test_invalidate);
    tcase_add_test(tc, test_failure);
    tcase_add_test(tc, test_clear_wipes);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
