/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "util-priv.h"
#include "utf8.h"

int64_t hub_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hub_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum sctpm_rc hub_guid(char out[HUB_GUID_LEN])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    size_t o = 0;

    out[0] = '\0';
    if (RAND_bytes(b, sizeof(b)) != 1) {
        return SCTPM_RC_GENERAL_FAILURE;
    }
    /* RFC 4122 version 4 and variant bits, so the result is a well-formed random UUID. */
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    for (size_t i = 0; i < sizeof(b); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[o++] = '-';
        }
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
    return SCTPM_RC_SUCCESS;
}

/* The special characters Azure allows in device and message identifiers. */
static int azure_id_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-:.+%_#*?!(),=@;$'", c) != NULL);
}

static int azure_id_valid(const char *id)
{
    size_t n = 0;

    if (id == NULL) {
        return 0;
    }
    for (; id[n] != '\0'; n++) {
        if (n >= HUB_ID_MAX || !azure_id_char((unsigned char)id[n])) {
            return 0;
        }
    }
    return n > 0;
}

int hub_device_id_valid(const char *id)
{
    return azure_id_valid(id);
}

int hub_message_id_valid(const char *id)
{
    return azure_id_valid(id);
}

int hub_hostname_valid(const char *s)
{
    size_t n = 0, label = 0;

    if (s == NULL) {
        return 0;
    }
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= 253) {
            return 0;
        }
        if (c == '.') {
            if (label == 0) {
                return 0;
            }
            label = 0;
            continue;
        }
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-')) {
            return 0;
        }
        if (++label > 63) {
            return 0;
        }
    }
    return n > 0 && label > 0;
}

void hub_iso_time(int64_t ms, char out[HUB_ISO_TIME_LEN])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    /* Unsigned and reduced, so the compiler can see every field fits its width. */
    gmtime_r(&secs, &tm);
    snprintf(out, HUB_ISO_TIME_LEN, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ",
             (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)(tm.tm_mon + 1) % 100u,
             (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
             (unsigned)tm.tm_sec % 100u, (unsigned)(ms % 1000) % 1000u);
}

void hub_http_time(int64_t ms, char out[HUB_HTTP_TIME_LEN])
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    /* Formatted by hand: strftime's %a and %b follow the locale, HTTP dates must not. */
    gmtime_r(&secs, &tm);
    snprintf(out, HUB_HTTP_TIME_LEN, "%s, %02u %s %04u %02u:%02u:%02u GMT",
             days[(unsigned)tm.tm_wday % 7u], (unsigned)tm.tm_mday % 100u,
             months[(unsigned)tm.tm_mon % 12u], (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u);
}

int hub_printable_utf8(const uint8_t *data, size_t len)
{
    return utf8_printable(data, len);
}

void hub_buf_init(struct hub_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

/* Makes room for `extra` more bytes plus the terminating NUL. */
static enum sctpm_rc reserve(struct hub_buf *b, size_t extra)
{
    size_t need, cap;
    uint8_t *p;

    if (extra > b->max || b->len > b->max - extra) {
        return SCTPM_RC_TOO_LARGE;
    }
    need = b->len + extra + 1;
    if (need <= b->cap) {
        return SCTPM_RC_SUCCESS;
    }
    cap = b->cap < 256 ? 256 : b->cap;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    if (b->max < SIZE_MAX && cap > b->max + 1) {
        cap = b->max + 1;
    }
    p = malloc(cap);
    if (p == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    /* Copy and wipe rather than realloc: a buffer may hold secrets that realloc would leave. */
    if (b->data != NULL) {
        memcpy(p, b->data, b->len + 1);
        explicit_bzero(b->data, b->cap);
        free(b->data);
    } else {
        p[0] = '\0';
    }
    b->data = p;
    b->cap = cap;
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc hub_buf_append(struct hub_buf *b, const void *data, size_t len)
{
    enum sctpm_rc rc = reserve(b, len);

    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    if (len > 0) {
        memcpy(b->data + b->len, data, len);
    }
    b->len += len;
    b->data[b->len] = '\0';
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc hub_buf_puts(struct hub_buf *b, const char *s)
{
    return hub_buf_append(b, s, strlen(s));
}

enum sctpm_rc hub_buf_printf(struct hub_buf *b, const char *fmt, ...)
{
    enum sctpm_rc rc;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return SCTPM_RC_GENERAL_FAILURE;
    }
    rc = reserve(b, (size_t)n);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return SCTPM_RC_SUCCESS;
}

void hub_buf_free(struct hub_buf *b)
{
    if (b->data != NULL) {
        explicit_bzero(b->data, b->cap);
        free(b->data);
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

char *hub_buf_steal(struct hub_buf *b, size_t *len)
{
    char *p;

    if (b->data == NULL && reserve(b, 0) != SCTPM_RC_SUCCESS) {
        return NULL;
    }
    p = (char *)b->data;
    if (len != NULL) {
        *len = b->len;
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
