/* SPDX-License-Identifier: BSD-2-Clause */
/* Error messages written into a caller's buffer, for modules that return a code and a sentence. */
#ifndef SCTPM_ERRBUF_H
#define SCTPM_ERRBUF_H

#include <stddef.h>

/*
 * Formats the message into `err` (at most `errlen` bytes, always terminated); does nothing when
 * the caller passed no buffer, so that every caller may ask for no message.
 */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* SCTPM_ERRBUF_H */
