/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tokenbench TCTI SLOT N: N SAS tokens from libsctpm on one open context, the way a device
 * client makes them. Prints "tokens_per_s=... p50_us=... p99_us=... open_ms=..." on one line.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sctpm/sctpm.h"

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    struct sctpm_ctx *ctx = NULL;
    char tok[SCTPM_TOKEN_MAX];
    double t0, start, *lat;
    long n;
    unsigned slot;
    enum sctpm_rc rc;

    if (argc != 4 || (n = strtol(argv[3], NULL, 10)) <= 0) {
        fprintf(stderr, "usage: tokenbench TCTI SLOT N\n");
        return 2;
    }
    slot = (unsigned)strtoul(argv[2], NULL, 10);
    lat = calloc((size_t)n, sizeof(*lat));
    if (lat == NULL) {
        return 1;
    }
    t0 = now_us();
    rc = sctpm_open(&ctx, argv[1], 0);
    if (rc != SCTPM_RC_SUCCESS) {
        fprintf(stderr, "tokenbench: %s\n", sctpm_last_error(ctx));
        return 1;
    }
    start = now_us();
    for (long i = 0; i < n; i++) {
        double t = now_us();
        rc = sctpm_sas_token(ctx, slot, 3600, tok, sizeof(tok), NULL);
        if (rc != SCTPM_RC_SUCCESS) {
            fprintf(stderr, "tokenbench: %s\n", sctpm_last_error(ctx));
            return 1;
        }
        lat[i] = now_us() - t;
    }
    {
        double total = now_us() - start;
        qsort(lat, (size_t)n, sizeof(*lat), cmp);
        printf("tokens_per_s=%.0f p50_us=%.0f p99_us=%.0f open_ms=%.1f\n", n / (total / 1e6),
               lat[n / 2], lat[(n * 99) / 100], (start - t0) / 1e3);
    }
    sctpm_close(ctx);
    free(lat);
    return 0;
}
