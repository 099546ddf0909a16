/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * SAS tokens signed inside the TPM: TPM2_HMAC with the slot's persisted key and an empty
 * password (as the Azure IoT SDK and Limpet sign), or an HMAC sequence when the string to sign
 * exceeds what the TPM takes in one command.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctx-priv.h"
#include "sas.h"

/* The HMAC of `msg` with the key at `key`. */
static enum sctpm_rc tpm_hmac(struct sctpm_ctx *ctx, ESYS_TR key, const char *msg, size_t len,
                              TPM2B_DIGEST **mac)
{
    TPM2B_MAX_BUFFER buf;
    TPM2B_AUTH none = {0};
    TPMT_TK_HASHCHECK *ticket = NULL;
    ESYS_TR seq = ESYS_TR_NONE;
    size_t chunk = ctx->input_buffer, off = 0;
    TSS2_RC r;

    *mac = NULL;
    if (len <= chunk) {
        buf.size = (uint16_t)len;
        memcpy(buf.buffer, msg, len);
        r = Esys_HMAC(ctx->esys, key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &buf,
                      TPM2_ALG_NULL, mac);
        if (r != TSS2_RC_SUCCESS) {
            return ctx_tss(ctx, "TPM2_HMAC", r);
        }
        return SCTPM_RC_SUCCESS;
    }
    r = Esys_HMAC_Start(ctx->esys, key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &none,
                        TPM2_ALG_NULL, &seq);
    if (r != TSS2_RC_SUCCESS) {
        return ctx_tss(ctx, "TPM2_HMAC_Start", r);
    }
    /* Everything but the last chunk goes through SequenceUpdate; the last one completes. */
    while (len - off > chunk) {
        buf.size = (uint16_t)chunk;
        memcpy(buf.buffer, msg + off, chunk);
        r = Esys_SequenceUpdate(ctx->esys, seq, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &buf);
        if (r != TSS2_RC_SUCCESS) {
            Esys_FlushContext(ctx->esys, seq);
            return ctx_tss(ctx, "TPM2_SequenceUpdate", r);
        }
        off += chunk;
    }
    buf.size = (uint16_t)(len - off);
    memcpy(buf.buffer, msg + off, len - off);
    r = Esys_SequenceComplete(ctx->esys, seq, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &buf,
                              ESYS_TR_RH_NULL, mac, &ticket);
    Esys_Free(ticket);
    if (r != TSS2_RC_SUCCESS) {
        Esys_FlushContext(ctx->esys, seq);
        return ctx_tss(ctx, "TPM2_SequenceComplete", r);
    }
    return SCTPM_RC_SUCCESS;
}

/* Copies `s` into the caller's buffer, or says how much room it needs. */
static enum sctpm_rc give(struct sctpm_ctx *ctx, const char *s, char *buf, size_t size)
{
    size_t len = strlen(s);

    if (len >= size) {
        return ctx_fail(ctx, SCTPM_RC_TOO_LARGE, "the result is %zu bytes; the buffer holds %zu.",
                        len + 1, size);
    }
    memcpy(buf, s, len + 1);
    return SCTPM_RC_SUCCESS;
}

static enum sctpm_rc sign(struct sctpm_ctx *ctx, unsigned int slot, const char *sr, int64_t expiry,
                          const char *skn, char **token)
{
    TPM2B_DIGEST *mac = NULL;
    ESYS_TR key = ESYS_TR_NONE;
    char *msg = NULL;
    size_t len;
    enum sctpm_rc rc;

    *token = NULL;
    if (slot >= SCTPM_SLOTS) {
        return ctx_fail(ctx, SCTPM_RC_BAD_ARGUMENT, "slot %u is out of range (0 to %d).", slot,
                        SCTPM_SLOTS - 1);
    }
    rc = sas_string_to_sign(sr, expiry, &msg, &len);
    if (rc != SCTPM_RC_SUCCESS) {
        return ctx_fail(ctx, rc, "cannot build the string to sign (expiry %lld).",
                        (long long)expiry);
    }
    /* The key handle is cached like the NV handle (see slot_read()), with the same retry. */
    for (int attempt = 0;; attempt++) {
        int cached = ctx->slot_key[slot] != ESYS_TR_NONE;
        rc = slot_tr(ctx, SCTPM_KEY_HANDLE(slot), &ctx->slot_key[slot]);
        if (rc == SCTPM_RC_SUCCESS) {
            key = ctx->slot_key[slot];
            rc = tpm_hmac(ctx, key, msg, len, &mac);
        }
        if (rc == SCTPM_RC_TPM && cached && attempt == 0) {
            slot_forget(ctx, slot);
            continue;
        }
        break;
    }
    if (rc == SCTPM_RC_NOT_FOUND) {
        rc = ctx_fail(ctx, SCTPM_RC_NOT_PROVISIONED,
                      "slot %u has no key (nothing persisted at 0x%08x); run sctpm provision.",
                      slot, SCTPM_KEY_HANDLE(slot));
        goto out;
    }
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    rc = sas_format(sr, expiry, mac->buffer, mac->size, skn, token);
    if (rc != SCTPM_RC_SUCCESS) {
        rc = ctx_fail(ctx, rc,
                      "the scope or the key name contains a character a token cannot "
                      "carry (whitespace, '&', '=' or non-ASCII).");
    }
out:
    Esys_Free(mac);
    free(msg);
    return rc;
}

/* The slot's device token valid `ttl` seconds; `*expiry` set. */
static enum sctpm_rc device_token(struct sctpm_ctx *ctx, unsigned int slot, uint32_t ttl,
                                  struct sctpm_identity *id, char **token, int64_t *expiry)
{
    char *sr = NULL;
    enum sctpm_rc rc;

    rc = slot_read(ctx, slot, id, 0);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    rc = sas_scope(id->host, id->device_id, id->module_id, &sr);
    if (rc != SCTPM_RC_SUCCESS) {
        return ctx_fail(ctx, rc, "cannot build the token scope for slot %u.", slot);
    }
    *expiry = (int64_t)time(NULL) + (ttl != 0 ? ttl : SCTPM_DEFAULT_TTL);
    rc = sign(ctx, slot, sr, *expiry, NULL, token);
    free(sr);
    return rc;
}

/* A device token into `buf`, or the connection string that carries it. */
static enum sctpm_rc device_call(struct sctpm_ctx *ctx, unsigned int slot, uint32_t ttl,
                                 int connection_string, char *buf, size_t size, int64_t *expiry)
{
    struct sctpm_identity id;
    char *token = NULL, *cs = NULL;
    int64_t se = 0;
    enum sctpm_rc rc;

    if (buf == NULL || size == 0) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    buf[0] = '\0';
    rc = ctx_begin(ctx);
    if (rc == SCTPM_RC_SUCCESS) {
        rc = device_token(ctx, slot, ttl, &id, &token, &se);
    }
    if (rc == SCTPM_RC_SUCCESS && connection_string) {
        if (asprintf(&cs, "HostName=%s;DeviceId=%s%s%s;SharedAccessSignature=%s", id.host,
                     id.device_id, id.module_id[0] != '\0' ? ";ModuleId=" : "", id.module_id,
                     token) < 0) {
            cs = NULL;
            rc = ctx_fail(ctx, SCTPM_RC_NO_MEMORY, "out of memory.");
        }
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = give(ctx, connection_string ? cs : token, buf, size);
    }
    if (rc == SCTPM_RC_SUCCESS && expiry != NULL) {
        *expiry = se;
    }
    free(cs);
    free(token);
    return ctx_end(ctx, rc);
}

enum sctpm_rc sctpm_sas_token(struct sctpm_ctx *ctx, unsigned int slot, uint32_t ttl, char *buf,
                              size_t size, int64_t *expiry)
{
    return device_call(ctx, slot, ttl, 0, buf, size, expiry);
}

enum sctpm_rc sctpm_sas_token_for(struct sctpm_ctx *ctx, unsigned int slot, const char *sr,
                                  int64_t expiry, const char *skn, char *buf, size_t size)
{
    char *token = NULL;
    enum sctpm_rc rc;

    if (buf == NULL || size == 0 || sr == NULL) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    buf[0] = '\0';
    rc = ctx_begin(ctx);
    if (rc == SCTPM_RC_SUCCESS && (*sr == '\0' || expiry < 0)) {
        rc = ctx_fail(ctx, SCTPM_RC_BAD_ARGUMENT, "%s",
                      *sr == '\0' ? "the token scope (sr) is empty."
                                  : "the expiry is before the epoch.");
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = sign(ctx, slot, sr, expiry, skn, &token);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = give(ctx, token, buf, size);
    }
    free(token);
    return ctx_end(ctx, rc);
}

enum sctpm_rc sctpm_connection_string(struct sctpm_ctx *ctx, unsigned int slot, uint32_t ttl,
                                      char *buf, size_t size)
{
    return device_call(ctx, slot, ttl, 1, buf, size, NULL);
}
