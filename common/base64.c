/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t len)
{
    return (len + 2) / 3 * 4;
}

void base64_encode(const uint8_t *data, size_t len, char *out)
{
    size_t i = 0;
    char *o = out;

    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *o++ = alphabet[v >> 18 & 63];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = alphabet[v >> 6 & 63];
        *o++ = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len) {
            v |= (uint32_t)data[i + 1] << 8;
        }
        *o++ = alphabet[v >> 18 & 63];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
}

/* Returns the 6-bit value of c, or -1 when c is not in the alphabet. */
static int value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

enum sctpm_rc base64_decode(const char *in, size_t in_len, uint8_t **out, size_t *out_len)
{
    enum sctpm_rc rc = SCTPM_RC_BAD_FORMAT;
    uint8_t *buf = NULL;
    size_t pad = 0, n = 0;

    *out = NULL;
    *out_len = 0;
    if (in_len % 4 != 0) {
        goto out;
    }
    if (in_len > 0 && in[in_len - 1] == '=') {
        pad = in_len > 1 && in[in_len - 2] == '=' ? 2 : 1;
    }
    /* One spare byte so that an empty input still yields a valid, freeable pointer. */
    buf = malloc(in_len / 4 * 3 + 1);
    if (buf == NULL) {
        rc = SCTPM_RC_NO_MEMORY;
        goto out;
    }
    for (size_t i = 0; i < in_len; i += 4) {
        int last = i + 4 == in_len;
        int v[4];
        for (int k = 0; k < 4; k++) {
            if (last && k >= 4 - (int)pad) {
                v[k] = 0;
                continue;
            }
            v[k] = value((unsigned char)in[i + k]);
            if (v[k] < 0) {
                goto out;
            }
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        buf[n++] = (uint8_t)(w >> 16);
        if (!last || pad < 2) {
            buf[n++] = (uint8_t)(w >> 8);
        }
        if (!last || pad < 1) {
            buf[n++] = (uint8_t)w;
        }
        /* Non-zero bits under the padding would make two encodings decode alike: refuse them. */
        if (last && pad == 2 && (v[1] & 0x0f) != 0) {
            goto out;
        }
        if (last && pad == 1 && (v[2] & 0x03) != 0) {
            goto out;
        }
    }
    *out = buf;
    *out_len = n;
    buf = NULL;
    rc = SCTPM_RC_SUCCESS;
out:
    if (buf != NULL) {
        explicit_bzero(buf, in_len / 4 * 3 + 1);
        free(buf);
    }
    return rc;
}
