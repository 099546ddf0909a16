/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tpm-client: an ESAPI test client that checks every answer it gets.
 *   tpm-client TCTI ITERATIONS [OBJECTS [--no-flush] [--session] [--ready FILE]]
 * Loads OBJECTS (default 1) HMAC keys with known random key bytes through TPM2_LoadExternal, then
 * runs ITERATIONS TPM2_HMAC calls spread over the keys and compares each result with OpenSSL's
 * HMAC of the same data. With --session each HMAC also runs under an HMAC authorization session
 * (with continueSession). With --ready, FILE is created once the keys (and session) are loaded.
 * Keys are flushed at the end unless --no-flush. Exits 0 only when every
 * call succeeded and every result matched; prints "ok N hmacs" on success.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#define MAX_OBJECTS 64

static int check(TSS2_RC rc, const char *what)
{
    if (rc != TSS2_RC_SUCCESS) {
        fprintf(stderr, "tpm-client: %s failed: 0x%08x\n", what, rc);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    TSS2_TCTI_CONTEXT *tcti = NULL;
    ESYS_CONTEXT *esys = NULL;
    ESYS_TR keys[MAX_OBJECTS], session = ESYS_TR_NONE;
    uint8_t secrets[MAX_OBJECTS][32];
    int n, objects = 1, flush = 1, use_session = 0, status = 1;
    const char *ready = NULL;

    if (argc < 3) {
        fprintf(stderr, "usage: tpm-client TCTI ITERATIONS [OBJECTS [--no-flush] [--session]]\n");
        return 2;
    }
    n = atoi(argv[2]);
    if (argc > 3) {
        objects = atoi(argv[3]);
    }
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--no-flush") == 0) {
            flush = 0;
        } else if (strcmp(argv[i], "--session") == 0) {
            use_session = 1;
        } else if (strcmp(argv[i], "--ready") == 0 && i + 1 < argc) {
            ready = argv[++i];
        }
    }
    if (objects < 1 || objects > MAX_OBJECTS) {
        fprintf(stderr, "tpm-client: OBJECTS must be 1..%d\n", MAX_OBJECTS);
        return 2;
    }
    if (check(Tss2_TctiLdr_Initialize(argv[1], &tcti), "Tss2_TctiLdr_Initialize") ||
        check(Esys_Initialize(&esys, tcti, NULL), "Esys_Initialize")) {
        goto out;
    }
    for (int k = 0; k < objects; k++) {
        TPM2B_SENSITIVE sens = {.sensitiveArea = {.sensitiveType = TPM2_ALG_KEYEDHASH}};
        TPM2B_PUBLIC pub = {
            .publicArea = {.type = TPM2_ALG_KEYEDHASH,
                           .nameAlg = TPM2_ALG_SHA256,
                           .objectAttributes = TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_USERWITHAUTH,
                           .parameters.keyedHashDetail.scheme = {
                               .scheme = TPM2_ALG_HMAC, .details.hmac.hashAlg = TPM2_ALG_SHA256}}};
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned int ulen = 32;
        RAND_bytes(secrets[k], 32);
        sens.sensitiveArea.sensitive.bits.size = 32;
        memcpy(sens.sensitiveArea.sensitive.bits.buffer, secrets[k], 32);
        /* The TPM checks unique = H(seedValue || key), with a seed of the digest's size. */
        sens.sensitiveArea.seedValue.size = 32;
        RAND_bytes(sens.sensitiveArea.seedValue.buffer, 32);
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        EVP_DigestUpdate(md, sens.sensitiveArea.seedValue.buffer, 32);
        EVP_DigestUpdate(md, secrets[k], 32);
        EVP_DigestFinal_ex(md, pub.publicArea.unique.keyedHash.buffer, &ulen);
        EVP_MD_CTX_free(md);
        pub.publicArea.unique.keyedHash.size = 32;
        if (check(Esys_LoadExternal(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &pub,
                                    ESYS_TR_RH_NULL, &keys[k]),
                  "Esys_LoadExternal")) {
            goto out;
        }
    }
    if (use_session) {
        TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
        if (check(Esys_StartAuthSession(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                        ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_HMAC, &sym,
                                        TPM2_ALG_SHA256, &session),
                  "Esys_StartAuthSession") ||
            check(Esys_TRSess_SetAttributes(esys, session, TPMA_SESSION_CONTINUESESSION, 0xff),
                  "Esys_TRSess_SetAttributes")) {
            goto out;
        }
    }
    if (ready != NULL) {
        FILE *f = fopen(ready, "w");
        if (f != NULL) {
            fclose(f);
        }
    }
    for (int i = 0; i < n; i++) {
        int k = i % objects;
        TPM2B_MAX_BUFFER data = {.size = 48};
        TPM2B_DIGEST *out = NULL;
        uint8_t want[32];
        unsigned int want_len = sizeof(want);
        TSS2_RC rc;

        RAND_bytes(data.buffer, data.size);
        rc = Esys_HMAC(esys, keys[k], use_session ? session : ESYS_TR_PASSWORD, ESYS_TR_NONE,
                       ESYS_TR_NONE, &data, TPM2_ALG_SHA256, &out);
        if (check(rc, "Esys_HMAC")) {
            goto out;
        }
        HMAC(EVP_sha256(), secrets[k], 32, data.buffer, data.size, want, &want_len);
        if (out->size != 32 || memcmp(out->buffer, want, 32) != 0) {
            fprintf(stderr, "tpm-client: HMAC %d with key %d does not match OpenSSL\n", i, k);
            Esys_Free(out);
            goto out;
        }
        Esys_Free(out);
    }
    if (flush) {
        for (int k = 0; k < objects; k++) {
            if (check(Esys_FlushContext(esys, keys[k]), "Esys_FlushContext")) {
                goto out;
            }
        }
        if (session != ESYS_TR_NONE && check(Esys_FlushContext(esys, session), "flush session")) {
            goto out;
        }
    }
    printf("ok %d hmacs\n", n);
    status = 0;
out:
    Esys_Finalize(&esys);
    Tss2_TctiLdr_Finalize(&tcti);
    return status;
}
