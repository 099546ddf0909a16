/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Standard base64 (RFC 4648 section 4, with padding), as Azure uses it for keys and signatures.
 */
#ifndef SCTPM_BASE64_H
#define SCTPM_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "sctpm/rc.h"

/* Length of the encoding of `len` bytes, without the terminating NUL. */
size_t base64_encoded_len(size_t len);

/*
 * Encodes `len` bytes of `data` into `out`, which must hold base64_encoded_len(len) + 1 bytes;
 * the result is NUL-terminated.
 */
void base64_encode(const uint8_t *data, size_t len, char *out);

/*
 * Decodes `in` (`in_len` characters, no NUL needed) strictly: the length must be a multiple of 4,
 * padding must be present and only at the end, no whitespace or other characters are allowed, and
 * the unused bits of the last group must be zero, so every byte string has exactly one accepted
 * encoding. On success `*out` (callee-allocated, free with free(); wipe it first if it held a key)
 * holds `*out_len` bytes and SCTPM_RC_SUCCESS is returned. Malformed input gives
 * SCTPM_RC_BAD_FORMAT with `*out` NULL and `*out_len` 0.
 */
enum sctpm_rc base64_decode(const char *in, size_t in_len, uint8_t **out, size_t *out_len);

#endif /* SCTPM_BASE64_H */
