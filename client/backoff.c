/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "backoff-priv.h"

void backoff_init(struct backoff *b, uint32_t base_ms, uint32_t cap_ms)
{
    b->base_ms = base_ms > 0 ? base_ms : 1;
    b->cap_ms = cap_ms >= b->base_ms ? cap_ms : b->base_ms;
    b->attempt = 0;
}

void backoff_reset(struct backoff *b)
{
    b->attempt = 0;
}

uint32_t backoff_next(struct backoff *b, double r, int64_t retry_after_ms)
{
    uint64_t d = b->base_ms;

    if (r < 0 || r >= 1) {
        r = 0;
    }
    if (retry_after_ms >= 0) {
        uint64_t ra = (uint64_t)retry_after_ms, jitter;

        if (ra > BACKOFF_RETRY_AFTER_MAX_MS) {
            ra = BACKOFF_RETRY_AFTER_MAX_MS;
        }
        jitter = ra / 10 < 1000 ? ra / 10 : 1000;
        b->attempt++;
        return (uint32_t)(ra + (uint64_t)(r * (double)jitter));
    }
    for (unsigned i = 0; i < b->attempt && d < b->cap_ms; i++) {
        d *= 2;
    }
    if (d > b->cap_ms) {
        d = b->cap_ms;
    }
    if (b->attempt < 64) {
        b->attempt++;
    }
    return (uint32_t)(d / 2 + (uint64_t)(r * (double)(d - d / 2)));
}

double backoff_random(void)
{
    uint64_t v = 0;
    ssize_t n;

    do {
        n = getrandom(&v, sizeof(v), 0);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(v)) {
        /* Jitter only spreads retries out: a poor source is not a security problem here. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        v = (uint64_t)ts.tv_nsec * 6364136223846793005ull + (uint64_t)ts.tv_sec;
    }
    return (double)(v >> 11) / (double)(1ull << 53);
}

static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const days[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const long_days[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                         "Thursday", "Friday", "Saturday"};

/* Reads exactly `n` digits. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9') {
            return -1;
        }
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int literal(const char **p, const char *s)
{
    size_t n = strlen(s);

    if (strncmp(*p, s, n) != 0) {
        return -1;
    }
    *p += n;
    return 0;
}

static int month(const char **p, int *out)
{
    for (int i = 0; i < 12; i++) {
        if (strncmp(*p, months[i], 3) == 0) {
            *p += 3;
            *out = i;
            return 0;
        }
    }
    return -1;
}

/* "HH:MM:SS" */
static int clock_time(const char **p, struct tm *tm)
{
    if (digits(p, 2, &tm->tm_hour) != 0 || literal(p, ":") != 0 || digits(p, 2, &tm->tm_min) != 0 ||
        literal(p, ":") != 0 || digits(p, 2, &tm->tm_sec) != 0) {
        return -1;
    }
    return tm->tm_hour < 24 && tm->tm_min < 60 && tm->tm_sec <= 60 ? 0 : -1;
}

static int valid_day(const struct tm *tm)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = tm->tm_year + 1900;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    if (tm->tm_mday < 1 || tm->tm_mday > mdays[tm->tm_mon]) {
        return 0;
    }
    return tm->tm_mon != 1 || tm->tm_mday <= 28 + leap;
}

int backoff_parse_http_date(const char *value, int64_t *out)
{
    const char *p = value;
    struct tm tm;
    int wday = -1, year = 0;
    time_t t;

    if (value == NULL) {
        return -1;
    }
    memset(&tm, 0, sizeof(tm));
    for (int i = 0; i < 7 && wday < 0; i++) {
        if (strncmp(p, long_days[i], strlen(long_days[i])) == 0) {
            /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
            p += strlen(long_days[i]);
            if (literal(&p, ", ") != 0 || digits(&p, 2, &tm.tm_mday) != 0 ||
                literal(&p, "-") != 0 || month(&p, &tm.tm_mon) != 0 || literal(&p, "-") != 0 ||
                digits(&p, 2, &year) != 0 || literal(&p, " ") != 0 || clock_time(&p, &tm) != 0 ||
                literal(&p, " GMT") != 0) {
                return -1;
            }
            /* Two-digit years: RFC 9110 says a year more than 50 years ahead is in the past. */
            year += year < 70 ? 2000 : 1900;
            wday = i;
        }
    }
    for (int i = 0; i < 7 && wday < 0; i++) {
        if (strncmp(p, days[i], 3) != 0) {
            continue;
        }
        p += 3;
        wday = i;
        if (p[0] == ',') {
            /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
            if (literal(&p, ", ") != 0 || digits(&p, 2, &tm.tm_mday) != 0 ||
                literal(&p, " ") != 0 || month(&p, &tm.tm_mon) != 0 || literal(&p, " ") != 0 ||
                digits(&p, 4, &year) != 0 || literal(&p, " ") != 0 || clock_time(&p, &tm) != 0 ||
                literal(&p, " GMT") != 0) {
                return -1;
            }
        } else {
            /* asctime: "Sun Nov  6 08:49:37 1994" (a space pads a one-digit day) */
            if (literal(&p, " ") != 0 || month(&p, &tm.tm_mon) != 0 || literal(&p, " ") != 0) {
                return -1;
            }
            if (p[0] == ' ') {
                p++;
                if (digits(&p, 1, &tm.tm_mday) != 0) {
                    return -1;
                }
            } else if (digits(&p, 2, &tm.tm_mday) != 0) {
                return -1;
            }
            if (literal(&p, " ") != 0 || clock_time(&p, &tm) != 0 || literal(&p, " ") != 0 ||
                digits(&p, 4, &year) != 0) {
                return -1;
            }
        }
    }
    if (wday < 0 || *p != '\0' || year < 1900) {
        return -1;
    }
    tm.tm_year = year - 1900;
    if (!valid_day(&tm)) {
        return -1;
    }
    t = timegm(&tm);
    if (t == (time_t)-1) {
        return -1;
    }
    /* The day of the week is redundant; a sender that gets it wrong sent a bad date. */
    if (tm.tm_wday != wday) {
        return -1;
    }
    *out = (int64_t)t;
    return 0;
}

int64_t backoff_parse_retry_after(const char *value, int64_t now)
{
    int64_t when;

    if (value == NULL) {
        return -1;
    }
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    if (*value >= '0' && *value <= '9') {
        uint64_t secs = 0;
        const char *p = value;

        for (; *p >= '0' && *p <= '9'; p++) {
            if (secs < 86400) {
                secs = secs * 10 + (uint64_t)(*p - '0');
            }
        }
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (*p != '\0') {
            return -1;
        }
        if (secs * 1000 > BACKOFF_RETRY_AFTER_MAX_MS) {
            return BACKOFF_RETRY_AFTER_MAX_MS;
        }
        return (int64_t)secs * 1000;
    }
    if (backoff_parse_http_date(value, &when) != 0) {
        return -1;
    }
    if (when <= now) {
        return 0;
    }
    if (when - now > BACKOFF_RETRY_AFTER_MAX_MS / 1000) {
        return BACKOFF_RETRY_AFTER_MAX_MS;
    }
    return (when - now) * 1000;
}
