/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The SAS token cache.
 *
 * Tokens come from a token source: a function and its context, so that the cache can be tested
 * without a TPM. The real source (tpm.c) asks libsctpm, which has the TPM compute the HMAC; the
 * client never holds a key, only tokens.
 *
 * A token is renewed once 80% of its lifetime has passed (the Azure IoT C SDK's
 * SAS_REFRESH_MULTIPLIER): with the default hour, every 48 minutes. token_cache_invalidate()
 * drops the cached token, for the one renewal a 401 earns.
 *
 * Tokens are bearer credentials for their lifetime: the buffer is wiped when replaced or freed,
 * and a token is never logged.
 */
#ifndef SCTPM_CLIENT_TOKEN_PRIV_H
#define SCTPM_CLIENT_TOKEN_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "sctpm/rc.h"
#include "sctpm/sctpm.h"

/*
 * A token source: writes a token valid `ttl` seconds into `buf` (`size` bytes, NUL-terminated)
 * and its expiry (seconds since the epoch) into `*expiry`. On failure it returns the error and
 * may leave a sentence in its context for the caller to report.
 */
typedef enum sctpm_rc (*token_fetch_fn)(void *ctx, uint32_t ttl, char *buf, size_t size,
                                        int64_t *expiry);

struct token_source {
    token_fetch_fn fetch;
    /* One sentence about the source's last failure (may be NULL: sctpm_strerror() is used). */
    const char *(*error)(void *ctx);
    void *ctx;
};

struct token_cache {
    struct token_source src;
    uint32_t ttl;
    int valid;
    int64_t issued; /* when the token was fetched (seconds since the epoch) */
    int64_t expiry; /* its se */
    char token[SCTPM_TOKEN_MAX];
    /* Statistics: renewals made and the time they took (monotonic nanoseconds). */
    unsigned long renewals;
    uint64_t renew_ns;
};

void token_cache_init(struct token_cache *c, struct token_source src, uint32_t ttl);

/*
 * The instant (seconds since the epoch) at which a token issued at `issued` and expiring at
 * `expiry` is due for renewal: issued + 80% of its lifetime.
 */
int64_t token_renew_at(int64_t issued, int64_t expiry);

/*
 * The current token, renewed first when there is none or `now` (seconds since the epoch) has
 * reached its renewal time. `*token` points into the cache and stays valid until the next call
 * that renews or invalidates. On failure the previous token is gone and the source's error is
 * returned.
 */
enum sctpm_rc token_cache_get(struct token_cache *c, int64_t now, const char **token);

/* Forgets the token, so the next get fetches a new one. */
void token_cache_invalidate(struct token_cache *c);

/* Wipes the token. */
void token_cache_clear(struct token_cache *c);

#endif /* SCTPM_CLIENT_TOKEN_PRIV_H */
