/* SPDX-License-Identifier: BSD-2-Clause */
/* UTF-8 checks shared by the tools that print what a peer sent (the hub, the client). */
#ifndef SCTPM_UTF8_H
#define SCTPM_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Nonzero when the `len` bytes at `data` are valid UTF-8 (no overlong forms, surrogates or code
 * points above U+10FFFF) without C0 or C1 control characters (tab is allowed), so they can be
 * printed on one line as they are without a terminal taking any of it as a command.
 */
int utf8_printable(const uint8_t *data, size_t len);

#endif /* SCTPM_UTF8_H */
