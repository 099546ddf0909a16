/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sctpm-lib: drives the public libsctpm API for integration tests, and checks every token it
 * gets with OpenSSL's HMAC from the key the test provisioned.
 *
 *   sctpm-lib TCTI threads SLOT KEY_B64 THREADS N   N tokens from THREADS threads sharing one
 *                                                   context; all must verify
 *   sctpm-lib TCTI repl                             one context; for each stdin line
 *                                                   "SLOT KEY_B64" prints "ok" when the slot's
 *                                                   token verifies with that key, else
 *                                                   "bad ..." or "error <rc> <message>"
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sctpm/sctpm.h"

static struct sctpm_ctx *ctx;
static unsigned slot;
static uint8_t key[64];
static int key_len;
static long per_thread;
static int failures;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Azure's URL encoding of base64: '+', '/' and '=' as lowercase escapes. */
static void encode(const char *in, char *out)
{
    for (; *in != '\0'; in++) {
        if (*in == '+' || *in == '/' || *in == '=') {
            out += sprintf(out, "%%%02x", (unsigned char)*in);
        } else {
            *out++ = *in;
        }
    }
    *out = '\0';
}

/* 1 when `tok` carries HMAC-SHA256(key, sr "\n" se) over its own sr and se. */
static int verify(const char *tok)
{
    const char *sr = strstr(tok, " sr="), *sig = strstr(tok, "&sig="), *se = strstr(tok, "&se=");
    unsigned char mac[EVP_MAX_MD_SIZE], b64[128];
    char msg[SCTPM_TOKEN_MAX], want[256];
    unsigned int maclen = 0;
    int n;

    if (sr == NULL || sig == NULL || se == NULL || !(sr < sig && sig < se)) {
        return 0;
    }
    sr += 4;
    n = snprintf(msg, sizeof(msg), "%.*s\n%s", (int)(sig - sr), sr, se + 4);
    HMAC(EVP_sha256(), key, key_len, (unsigned char *)msg, (size_t)n, mac, &maclen);
    EVP_EncodeBlock(b64, mac, (int)maclen);
    encode((char *)b64, want);
    return strlen(want) == (size_t)(se - sig - 5) && strncmp(sig + 5, want, strlen(want)) == 0;
}

static void *worker(void *arg)
{
    char tok[SCTPM_TOKEN_MAX];

    (void)arg;
    for (long i = 0; i < per_thread; i++) {
        enum sctpm_rc rc = sctpm_sas_token(ctx, slot, 600, tok, sizeof(tok), NULL);
        if (rc != SCTPM_RC_SUCCESS || !verify(tok)) {
            pthread_mutex_lock(&lock);
            failures++;
            fprintf(stderr, "token %ld: %s\n", i,
                    rc != SCTPM_RC_SUCCESS ? sctpm_last_error(ctx) : "does not verify");
            pthread_mutex_unlock(&lock);
        }
    }
    return NULL;
}

static int set_key(const char *b64)
{
    key_len = EVP_DecodeBlock(key, (const unsigned char *)b64, (int)strlen(b64));
    for (const char *p = b64 + strlen(b64); p > b64 && p[-1] == '='; p--) {
        key_len--;
    }
    return key_len > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    enum sctpm_rc rc;

    if (argc < 3) {
        fprintf(stderr, "usage: see tests/sctpm-lib.c\n");
        return 2;
    }
    rc = sctpm_open(&ctx, argv[1], 0);
    if (rc != SCTPM_RC_SUCCESS) {
        fprintf(stderr, "sctpm_open: %s\n", sctpm_last_error(ctx));
        return 1;
    }
    if (strcmp(argv[2], "threads") == 0 && argc == 7) {
        int nthreads = atoi(argv[5]);
        pthread_t th[64];
        slot = (unsigned)atoi(argv[3]);
        if (set_key(argv[4]) != 0 || nthreads < 1 || nthreads > 64) {
            return 2;
        }
        per_thread = atol(argv[6]) / nthreads;
        for (int i = 0; i < nthreads; i++) {
            pthread_create(&th[i], NULL, worker, NULL);
        }
        for (int i = 0; i < nthreads; i++) {
            pthread_join(th[i], NULL);
        }
        printf("%ld tokens from %d threads, %d failures\n", per_thread * nthreads, nthreads,
               failures);
    } else if (strcmp(argv[2], "repl") == 0) {
        char line[256], b64[128], tok[SCTPM_TOKEN_MAX];
        while (fgets(line, sizeof(line), stdin) != NULL) {
            if (sscanf(line, "%u %127s", &slot, b64) != 2 || set_key(b64) != 0) {
                printf("usage\n");
            } else if ((rc = sctpm_sas_token(ctx, slot, 600, tok, sizeof(tok), NULL)) !=
                       SCTPM_RC_SUCCESS) {
                printf("error %d %s\n", rc, sctpm_last_error(ctx));
            } else {
                printf("%s\n", verify(tok) ? "ok" : "bad signature");
            }
            fflush(stdout);
        }
    } else {
        return 2;
    }
    sctpm_close(ctx);
    return failures == 0 ? 0 : 1;
}
