/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "urlenc.h"

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '!' || c == '(' || c == ')' || c == '*';
}

enum sctpm_rc url_encode(const char *in, size_t len, char **out)
{
    static const char hex[] = "0123456789abcdef";
    char *buf, *o;

    *out = NULL;
    buf = malloc(len * 3 + 1);
    if (buf == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    o = buf;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (unreserved(c)) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    *out = buf;
    return SCTPM_RC_SUCCESS;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

enum sctpm_rc url_decode(const char *in, size_t len, char **out)
{
    char *buf, *o;

    *out = NULL;
    buf = malloc(len + 1);
    if (buf == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    o = buf;
    for (size_t i = 0; i < len; i++) {
        if (in[i] != '%') {
            *o++ = in[i];
            continue;
        }
        int hi = i + 2 < len ? hexval((unsigned char)in[i + 1]) : -1;
        int lo = i + 2 < len ? hexval((unsigned char)in[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(buf);
            return SCTPM_RC_BAD_FORMAT;
        }
        *o++ = (char)(hi << 4 | lo);
        i += 2;
    }
    *o = '\0';
    *out = buf;
    return SCTPM_RC_SUCCESS;
}
