/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <string.h>
#include <time.h>

#define LOGMODULE token
#include "log.h"
#include "token-priv.h"

void token_cache_init(struct token_cache *c, struct token_source src, uint32_t ttl)
{
    memset(c, 0, sizeof(*c));
    c->src = src;
    c->ttl = ttl > 0 ? ttl : SCTPM_DEFAULT_TTL;
}

int64_t token_renew_at(int64_t issued, int64_t expiry)
{
    int64_t life = expiry - issued;

    if (life <= 0) {
        return issued;
    }
    /* Rounded down, so a one-second token is renewed at once rather than never. */
    return issued + life * 8 / 10;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

enum sctpm_rc token_cache_get(struct token_cache *c, int64_t now, const char **token)
{
    enum sctpm_rc rc;
    int64_t expiry = 0;
    uint64_t t0;

    *token = NULL;
    if (c->valid && now < token_renew_at(c->issued, c->expiry)) {
        *token = c->token;
        return SCTPM_RC_SUCCESS;
    }
    token_cache_clear(c);
    t0 = mono_ns();
    rc = c->src.fetch(c->src.ctx, c->ttl, c->token, sizeof(c->token), &expiry);
    if (rc != SCTPM_RC_SUCCESS) {
        token_cache_clear(c);
        return rc;
    }
    c->renew_ns += mono_ns() - t0;
    c->renewals++;
    c->valid = 1;
    c->issued = now;
    c->expiry = expiry;
    LOG_DEBUG("new token, valid %lld s, renewed after %lld s", (long long)(expiry - now),
              (long long)(token_renew_at(now, expiry) - now));
    *token = c->token;
    return SCTPM_RC_SUCCESS;
}

void token_cache_invalidate(struct token_cache *c)
{
    token_cache_clear(c);
}

void token_cache_clear(struct token_cache *c)
{
    explicit_bzero(c->token, sizeof(c->token));
    c->valid = 0;
    c->issued = 0;
    c->expiry = 0;
}
