/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Retry timing: exponential backoff with jitter, and the server's Retry-After.
 *
 * Attempt k (0-based) waits d = min(cap, base * 2^k), jittered to a uniform value in [d/2, d)
 * ("equal jitter": never less than half the nominal delay, so a burst of failing clients spreads
 * out without any of them hammering the server). A Retry-After from the server replaces the
 * computed delay: the client waits at least what the server asked (up to BACKOFF_RETRY_AFTER_MAX),
 * plus a jitter of up to a tenth of it (at most one second) so that clients told the same
 * moment do not all return at once.
 */
#ifndef SCTPM_CLIENT_BACKOFF_PRIV_H
#define SCTPM_CLIENT_BACKOFF_PRIV_H

#include <stdint.h>

/* Defaults: first retry after about half a second, never more than a minute apart. */
#define BACKOFF_BASE_MS 500
#define BACKOFF_CAP_MS  60000
/* The longest Retry-After honoured as given; longer requests are clamped to it. */
#define BACKOFF_RETRY_AFTER_MAX_MS (3600 * 1000)

struct backoff {
    uint32_t base_ms;
    uint32_t cap_ms;
    unsigned attempt; /* failures since the last success */
};

void backoff_init(struct backoff *b, uint32_t base_ms, uint32_t cap_ms);

/* After a success: the next failure waits the base delay again. */
void backoff_reset(struct backoff *b);

/*
 * The delay before the next attempt after a failure, in milliseconds, and counts the failure.
 * `r` is a uniform random number in [0, 1) (backoff_random() outside tests). `retry_after_ms` is
 * the server's Retry-After converted to milliseconds, or -1 when it sent none.
 */
uint32_t backoff_next(struct backoff *b, double r, int64_t retry_after_ms);

/* A uniform random number in [0, 1) from the kernel's random source. */
double backoff_random(void);

/*
 * Parses a Retry-After value (RFC 9110 section 10.2.3): either delta-seconds (digits only) or an
 * HTTP-date, in the preferred IMF-fixdate form ("Sun, 06 Nov 1994 08:49:37 GMT") or either
 * obsolete form (RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT", asctime "Sun Nov  6 08:49:37 1994"),
 * as recipients must accept. `now` is the current time in seconds since the epoch. Returns the
 * wait in milliseconds (0 for a date in the past; waits longer than BACKOFF_RETRY_AFTER_MAX_MS are
 * clamped to it), or -1 when the value is malformed or NULL.
 */
int64_t backoff_parse_retry_after(const char *value, int64_t now);

/*
 * Parses an HTTP-date as above into seconds since the epoch. Returns 0 on success, -1 when
 * malformed.
 */
int backoff_parse_http_date(const char *value, int64_t *out);

#endif /* SCTPM_CLIENT_BACKOFF_PRIV_H */
