/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * URL encoding as Azure IoT Hub uses it in SAS tokens (azure-c-shared-utility urlencode.c):
 * the characters A-Z a-z 0-9 - . _ ! ( ) * stay as they are; every other byte becomes %xx with
 * lowercase hex digits, so "+" is "%2b", "/" is "%2f" and "=" is "%3d".
 *
 * Bytes of 0x80 and above are encoded one byte at a time (UTF-8 input gives its UTF-8 bytes
 * percent-encoded, as RFC 3986 and the service expect). The C SDK instead widens each such byte
 * to a two-byte UTF-8 sequence; IoT Hub identifiers are ASCII, so the two never meet in practice.
 */
#ifndef SCTPM_URLENC_H
#define SCTPM_URLENC_H

#include <stddef.h>

#include "sctpm/rc.h"

/*
 * Encodes `len` bytes of `in`. `*out` (callee-allocated, free with free()) is NUL-terminated.
 * Returns SCTPM_RC_SUCCESS or SCTPM_RC_NO_MEMORY (with `*out` NULL).
 */
enum sctpm_rc url_encode(const char *in, size_t len, char **out);

/*
 * Decodes %xx escapes (either case) in `len` bytes of `in`; every other byte is copied as is
 * ("+" stays "+": tokens are not form data). A "%" not followed by two hex digits, or an escape
 * that decodes to NUL, gives SCTPM_RC_BAD_FORMAT. `*out` (callee-allocated, free with free()) is
 * NUL-terminated.
 */
enum sctpm_rc url_decode(const char *in, size_t len, char **out);

#endif /* SCTPM_URLENC_H */
