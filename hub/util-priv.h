/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Small helpers the hub modules share: clocks, GUIDs, Azure identifier rules, timestamps and a
 * bounded growable buffer. Candidates for common/ once another part needs them.
 */
#ifndef SCTPM_HUB_UTIL_PRIV_H
#define SCTPM_HUB_UTIL_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "sctpm/rc.h"

/* Azure limits: device and message identifiers are at most 128 characters. */
#define HUB_ID_MAX 128
/* A GUID in its 36-character text form plus the NUL. */
#define HUB_GUID_LEN 37
/* "2024-01-02T03:04:05.678Z" plus the NUL. */
#define HUB_ISO_TIME_LEN 25
/* "Tue, 02 Jan 2024 03:04:05 GMT" plus the NUL (RFC 7231 IMF-fixdate). */
#define HUB_HTTP_TIME_LEN 30

/* Wall-clock time in milliseconds since the Unix epoch (what tokens and records use). */
int64_t hub_now_ms(void);

/* Monotonic time in milliseconds, for timeouts that must not jump with the wall clock. */
int64_t hub_mono_ms(void);

/*
 * Writes a random (version 4) GUID in lowercase text form into `out`. Returns SCTPM_RC_SUCCESS,
 * or SCTPM_RC_GENERAL_FAILURE when the random generator fails (`out` is then empty).
 */
enum sctpm_rc hub_guid(char out[HUB_GUID_LEN]);

/*
 * Nonzero when `id` is a valid Azure device identifier: 1..128 characters, ASCII letters and
 * digits plus - : . + % _ # * ? ! ( ) , = @ ; $ '
 */
int hub_device_id_valid(const char *id);

/* Nonzero when `id` is a valid Azure message identifier (same length and character rules). */
int hub_message_id_valid(const char *id);

/*
 * Nonzero when `s` is a DNS host name we can put in a certificate and a connection string:
 * 1..253 characters of letters, digits, '-' and '.', no empty label, no label over 63.
 */
int hub_hostname_valid(const char *s);

/* Formats `ms` (Unix epoch milliseconds, UTC) as ISO 8601 with milliseconds and a Z. */
void hub_iso_time(int64_t ms, char out[HUB_ISO_TIME_LEN]);

/* Formats `ms` as an HTTP date (IMF-fixdate), which is what IoT Hub's HTTP headers carry. */
void hub_http_time(int64_t ms, char out[HUB_HTTP_TIME_LEN]);

/*
 * Nonzero when the `len` bytes at `data` are valid UTF-8 without control characters (tab is
 * allowed), so they can be printed on one line as they are.
 */
int hub_printable_utf8(const uint8_t *data, size_t len);

/*
 * A growable byte buffer with a hard cap. `data` is NULL until the first append; the buffer is
 * always NUL-terminated after `len` bytes once allocated, so text can be used in place.
 */
struct hub_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max; /* appends that would make len exceed max fail with SCTPM_RC_TOO_LARGE */
};

/* Initialises an empty buffer that may grow to `max` bytes. */
void hub_buf_init(struct hub_buf *b, size_t max);

/*
 * Appends `len` bytes. Returns SCTPM_RC_SUCCESS, SCTPM_RC_TOO_LARGE (nothing appended) or
 * SCTPM_RC_NO_MEMORY.
 */
enum sctpm_rc hub_buf_append(struct hub_buf *b, const void *data, size_t len);

/* Appends a NUL-terminated string. */
enum sctpm_rc hub_buf_puts(struct hub_buf *b, const char *s);

/* Appends printf-style text; fails like hub_buf_append. */
enum sctpm_rc hub_buf_printf(struct hub_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Frees the storage, wiping it first (a buffer may have held a key or a token). */
void hub_buf_free(struct hub_buf *b);

/*
 * Hands the contents to the caller: returns the NUL-terminated data (callee-allocated, free
 * with free()) and resets the buffer to empty. Returns NULL when nothing was ever appended and
 * an empty string cannot be allocated.
 */
char *hub_buf_steal(struct hub_buf *b, size_t *len);

#endif /* SCTPM_HUB_UTIL_PRIV_H */
