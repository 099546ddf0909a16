/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOGMODULE fuzz
#include "fuzz.h"
#include "log.h"

char *fuzz_str(struct fuzz_in *in)
{
    const uint8_t *nul = memchr(in->p, '\0', in->left);
    size_t n = nul != NULL ? (size_t)(nul - in->p) : in->left;
    char *s = malloc(n + 1);

    if (s == NULL) {
        return NULL;
    }
    memcpy(s, in->p, n);
    s[n] = '\0';
    n += nul != NULL ? 1 : 0;
    in->p += n;
    in->left -= n;
    return s;
}

void fuzz_quiet_logs(void)
{
    log_set_default(LOG_LEVEL_DEBUG);
    if (getenv("SCTPM_LOGFILE") == NULL) {
        (void)log_set_file("/dev/null");
    }
}

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;

    fputs("fuzz: invariant broken: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}
