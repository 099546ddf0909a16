/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Slots: a device identity imprinted into the TPM in the Windows IoT Core (Limpet) layout.
 *
 * Provisioning does everything that can fail on bad input or on a TPM that refuses us (parsing,
 * the SRK, importing and loading the new key, owner authorization) before it touches the slot,
 * and then replaces the slot with back-to-back commands: the identity string first (the old
 * one is kept in memory and written back if a later step fails), then the old key out and the
 * new key in. The only window in which a failure costs the old key is between those last two
 * commands, which takes the TPM itself going away.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#define LOGMODULE shim
#include "log.h"
#include "connstr.h"
#include "ctx-priv.h"
#include "dup.h"
#include "tpmtmpl.h"

/*
 * The Limpet NV attributes (read and written with the index's own empty auth, no dictionary
 * lockout), plus OWNERREAD so that tools that read with owner authorization by default see the
 * identity too.
 */
#define SLOT_NV_ATTRIBUTES                                                                         \
    (TPMA_NV_AUTHWRITE | TPMA_NV_AUTHREAD | TPMA_NV_OWNERREAD | TPMA_NV_NO_DA)

static enum sctpm_rc check_slot(struct sctpm_ctx *ctx, unsigned int slot)
{
    if (slot >= SCTPM_SLOTS) {
        return ctx_fail(ctx, SCTPM_RC_BAD_ARGUMENT, "slot %u is out of range (0 to %d).", slot,
                        SCTPM_SLOTS - 1);
    }
    return SCTPM_RC_SUCCESS;
}

/*
 * Limpet's rule for an identity string without a device id: the id is the hex SHA-256 of the
 * slot number (little-endian) and the SRK's Name.
 */
static enum sctpm_rc derived_device_id(struct sctpm_ctx *ctx, unsigned int slot, char *out,
                                       size_t size)
{
    uint8_t buf[4 + sizeof(((TPM2B_NAME *)0)->name)], md[32];
    TPM2B_NAME *name = NULL;
    ESYS_TR srk;
    unsigned int mdlen = 0;
    enum sctpm_rc rc;
    TSS2_RC r;

    rc = ctx_tr(ctx, SCTPM_SRK_HANDLE, &srk);
    if (rc == SCTPM_RC_NOT_FOUND) {
        return ctx_fail(ctx, SCTPM_RC_NOT_PROVISIONED,
                        "slot %u names no device and there is no SRK to derive one from.", slot);
    }
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    r = Esys_TR_GetName(ctx->esys, srk, &name);
    Esys_TR_Close(ctx->esys, &srk);
    if (r != TSS2_RC_SUCCESS) {
        return ctx_tss(ctx, "reading the SRK's name", r);
    }
    buf[0] = (uint8_t)slot;
    buf[1] = buf[2] = buf[3] = 0;
    memcpy(buf + 4, name->name, name->size);
    r = EVP_Digest(buf, 4 + (size_t)name->size, md, &mdlen, EVP_sha256(), NULL) == 1 ? 0 : 1;
    Esys_Free(name);
    if (r != 0) {
        return ctx_fail(ctx, SCTPM_RC_GENERAL_FAILURE, "SHA-256 failed (OpenSSL).");
    }
    for (size_t i = 0; i < sizeof(md) && 2 * i + 2 < size; i++) {
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
    return SCTPM_RC_SUCCESS;
}

/* Splits "host/device[/module]" into `id`. */
static enum sctpm_rc parse_uri(struct sctpm_ctx *ctx, unsigned int slot, const char *uri,
                               struct sctpm_identity *id)
{
    const char *s1 = strchr(uri, '/'), *s2 = s1 != NULL ? strchr(s1 + 1, '/') : NULL;
    size_t hl = s1 != NULL ? (size_t)(s1 - uri) : strlen(uri);
    size_t dl = s1 == NULL ? 0 : s2 != NULL ? (size_t)(s2 - s1 - 1) : strlen(s1 + 1);
    size_t ml = s2 != NULL ? strlen(s2 + 1) : 0;

    if (hl == 0 || hl > SCTPM_HOST_MAX || dl > SCTPM_ID_MAX || ml > SCTPM_ID_MAX ||
        (s2 != NULL && strchr(s2 + 1, '/') != NULL) || (s1 != NULL && dl == 0) ||
        (s2 != NULL && ml == 0)) {
        return ctx_fail(ctx, SCTPM_RC_CORRUPT,
                        "NV index 0x%08x (slot %u) does not hold \"host/device[/module]\".",
                        SCTPM_NV_INDEX(slot), slot);
    }
    memcpy(id->host, uri, hl);
    id->host[hl] = '\0';
    if (s1 == NULL) {
        return derived_device_id(ctx, slot, id->device_id, sizeof(id->device_id));
    }
    memcpy(id->device_id, s1 + 1, dl);
    id->device_id[dl] = '\0';
    if (s2 != NULL) {
        memcpy(id->module_id, s2 + 1, ml);
        id->module_id[ml] = '\0';
    }
    return SCTPM_RC_SUCCESS;
}

void slot_forget(struct sctpm_ctx *ctx, unsigned int slot)
{
    if (slot >= SCTPM_SLOTS) {
        return;
    }
    if (ctx->slot_nv[slot] != ESYS_TR_NONE) {
        Esys_TR_Close(ctx->esys, &ctx->slot_nv[slot]);
        ctx->slot_nv[slot] = ESYS_TR_NONE;
    }
    if (ctx->slot_key[slot] != ESYS_TR_NONE) {
        Esys_TR_Close(ctx->esys, &ctx->slot_key[slot]);
        ctx->slot_key[slot] = ESYS_TR_NONE;
    }
}

enum sctpm_rc slot_tr(struct sctpm_ctx *ctx, TPM2_HANDLE handle, ESYS_TR *cache)
{
    enum sctpm_rc rc;

    if (*cache == ESYS_TR_NONE) {
        return ctx_tr(ctx, handle, cache);
    }
    /*
     * Another process may have removed it. Using a cached handle of a removed object would
     * fail inside ESYS, which logs to stderr; asking first costs one cheap command.
     */
    rc = ctx_exists(ctx, handle);
    if (rc == SCTPM_RC_NOT_FOUND) {
        Esys_TR_Close(ctx->esys, cache);
        *cache = ESYS_TR_NONE;
    }
    return rc;
}

/* Reads the NV index `nv` of `slot` into `uri` (NUL-terminated). */
static enum sctpm_rc read_uri_at(struct sctpm_ctx *ctx, unsigned int slot, ESYS_TR nv, char *uri,
                                 size_t size, uint16_t *len)
{
    TPM2B_NV_PUBLIC *pub = NULL;
    enum sctpm_rc rc;
    TSS2_RC r;

    *len = 0;
    r = Esys_NV_ReadPublic(ctx->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
    if (r != TSS2_RC_SUCCESS) {
        rc = ctx_tss(ctx, "TPM2_NV_ReadPublic", r);
        goto out;
    }
    if (pub->nvPublic.dataSize >= size) {
        rc = ctx_fail(ctx, SCTPM_RC_CORRUPT,
                      "NV index 0x%08x (slot %u) holds %u bytes; an identity "
                      "is at most %d.",
                      SCTPM_NV_INDEX(slot), slot, (unsigned)pub->nvPublic.dataSize,
                      SCTPM_NV_URI_MAX);
        goto out;
    }
    if ((pub->nvPublic.attributes & TPMA_NV_AUTHREAD) == 0 ||
        (pub->nvPublic.attributes & TPMA_NV_WRITTEN) == 0) {
        rc = ctx_fail(ctx, SCTPM_RC_CORRUPT,
                      "NV index 0x%08x (slot %u) is not a readable identity (attributes 0x%08x).",
                      SCTPM_NV_INDEX(slot), slot, (unsigned)pub->nvPublic.attributes);
        goto out;
    }
    rc = ctx_nv_read(ctx, nv, nv, (uint8_t *)uri, pub->nvPublic.dataSize);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    uri[pub->nvPublic.dataSize] = '\0';
    *len = pub->nvPublic.dataSize;
    if (strlen(uri) != *len) {
        rc = ctx_fail(ctx, SCTPM_RC_CORRUPT, "NV index 0x%08x (slot %u) contains a NUL byte.",
                      SCTPM_NV_INDEX(slot), slot);
    }
out:
    Esys_Free(pub);
    return rc;
}

/*
 * Reads the slot's NV string with a handle of its own (for provisioning, which has forgotten the
 * slot's cached handles). SCTPM_RC_NOT_FOUND when absent.
 */
static enum sctpm_rc read_uri(struct sctpm_ctx *ctx, unsigned int slot, char *uri, size_t size,
                              uint16_t *len)
{
    enum sctpm_rc rc;
    ESYS_TR nv;

    *len = 0;
    rc = ctx_tr(ctx, SCTPM_NV_INDEX(slot), &nv);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    rc = read_uri_at(ctx, slot, nv, uri, size, len);
    Esys_TR_Close(ctx->esys, &nv);
    return rc;
}

static int key_present(struct sctpm_ctx *ctx, unsigned int slot, enum sctpm_rc *rc)
{
    ESYS_TR key;

    *rc = ctx_tr(ctx, SCTPM_KEY_HANDLE(slot), &key);
    if (*rc == SCTPM_RC_SUCCESS) {
        Esys_TR_Close(ctx->esys, &key);
        return 1;
    }
    if (*rc == SCTPM_RC_NOT_FOUND) {
        *rc = SCTPM_RC_SUCCESS;
    }
    return 0;
}

enum sctpm_rc slot_read(struct sctpm_ctx *ctx, unsigned int slot, struct sctpm_identity *id,
                        int with_key)
{
    char uri[SCTPM_NV_URI_MAX + 1];
    enum sctpm_rc rc;
    uint16_t len;

    memset(id, 0, sizeof(*id));
    id->slot = slot;
    rc = check_slot(ctx, slot);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    /*
     * The NV handle is cached across calls (a token costs NV_ReadPublic, NV_Read and HMAC). If
     * another process re-defined or removed the index meanwhile, the cached handle fails once;
     * it is then forgotten and resolved again.
     */
    for (int attempt = 0;; attempt++) {
        int cached = ctx->slot_nv[slot] != ESYS_TR_NONE;
        rc = slot_tr(ctx, SCTPM_NV_INDEX(slot), &ctx->slot_nv[slot]);
        if (rc == SCTPM_RC_SUCCESS) {
            rc = read_uri_at(ctx, slot, ctx->slot_nv[slot], uri, sizeof(uri), &len);
        }
        if (rc == SCTPM_RC_TPM && cached && attempt == 0) {
            slot_forget(ctx, slot);
            continue;
        }
        break;
    }
    if (rc == SCTPM_RC_NOT_FOUND) {
        return ctx_fail(ctx, SCTPM_RC_NOT_PROVISIONED,
                        "slot %u is not provisioned (no NV index 0x%08x).", slot,
                        SCTPM_NV_INDEX(slot));
    }
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    rc = parse_uri(ctx, slot, uri, id);
    if (rc != SCTPM_RC_SUCCESS || !with_key) {
        return rc;
    }
    if (ctx->slot_key[slot] != ESYS_TR_NONE) {
        id->has_key = 1;
    } else {
        id->has_key = key_present(ctx, slot, &rc);
    }
    return rc;
}

enum sctpm_rc sctpm_identity(struct sctpm_ctx *ctx, unsigned int slot, struct sctpm_identity *id)
{
    enum sctpm_rc rc;

    if (id == NULL) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    rc = ctx_begin(ctx);
    if (rc == SCTPM_RC_SUCCESS) {
        rc = slot_read(ctx, slot, id, 1);
    }
    return ctx_end(ctx, rc);
}

enum sctpm_rc sctpm_list(struct sctpm_ctx *ctx, struct sctpm_identity *ids, size_t max,
                         size_t *count)
{
    enum sctpm_rc rc;

    if (count == NULL || (ids == NULL && max > 0)) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    *count = 0;
    rc = ctx_begin(ctx);
    for (unsigned int slot = 0; rc == SCTPM_RC_SUCCESS && slot < SCTPM_SLOTS; slot++) {
        struct sctpm_identity id;
        rc = slot_read(ctx, slot, &id, 1);
        if (rc == SCTPM_RC_NOT_PROVISIONED) {
            ctx->err[0] = '\0';
            rc = SCTPM_RC_SUCCESS;
            continue;
        }
        if (rc == SCTPM_RC_SUCCESS) {
            if (*count < max) {
                ids[*count] = id;
            }
            (*count)++;
        }
    }
    return ctx_end(ctx, rc);
}

/* Finds the SRK, or creates it from the TCG template and persists it. */
static enum sctpm_rc ensure_srk(struct sctpm_ctx *ctx, ESYS_TR *srk)
{
    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcrs = {0};
    TPM2B_PUBLIC tmpl;
    ESYS_TR tr = ESYS_TR_NONE;
    enum sctpm_rc rc;
    TSS2_RC r;

    rc = ctx_tr(ctx, SCTPM_SRK_HANDLE, srk);
    if (rc != SCTPM_RC_NOT_FOUND) {
        return rc;
    }
    ctx->err[0] = '\0';
    LOG_INFO("no SRK at 0x%08x: creating one from the TCG template", SCTPM_SRK_HANDLE);
    tmpl_srk(&tmpl);
    r = Esys_CreatePrimary(ctx->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs, &tr, NULL, NULL, NULL,
                           NULL);
    if (r != TSS2_RC_SUCCESS) {
        return ctx_tss(ctx, "creating the SRK (TPM2_CreatePrimary under the owner hierarchy)", r);
    }
    r = Esys_EvictControl(ctx->esys, ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                          ESYS_TR_NONE, SCTPM_SRK_HANDLE, srk);
    Esys_FlushContext(ctx->esys, tr);
    if (r != TSS2_RC_SUCCESS) {
        *srk = ESYS_TR_NONE;
        return ctx_tss(ctx, "persisting the SRK at 0x81000001 (TPM2_EvictControl)", r);
    }
    return SCTPM_RC_SUCCESS;
}

/*
 * Imports the slot key `c->key` under the SRK and loads it. The duplication blob is built here,
 * with OpenSSL, for the SRK's public key (dup.c), so the key never passes through tpm2-tss in
 * the clear. TPM2_Create in a session with parameter encryption also kept the key off the wire,
 * but ESYS encrypts the parameter itself and logs the plaintext at debug level, so a user
 * debugging with TSS2_LOG=all+debug would have found the key in the log. The blob can only be
 * opened with the SRK's private key, so it is harmless on the wire and in any log.
 *
 * The SRK may be ours (RSA, tmpl_srk()) or one another tool made (an ECC SRK is common):
 * dup_hmac_key() takes its nameAlg, symmetric definition and key type from TPM2_ReadPublic,
 * read in a session salted with the EK so that the key cannot be wrapped for anyone but this
 * TPM's SRK (status_confirm_srk()).
 */
static enum sctpm_rc import_key(struct sctpm_ctx *ctx, ESYS_TR *srk, const struct connstr *c,
                                ESYS_TR *loaded)
{
    /* No inner wrapper: the outer wrapper already binds the blob to this SRK. */
    TPMT_SYM_DEF_OBJECT no_inner = {.algorithm = TPM2_ALG_NULL};
    TPM2B_DATA no_inner_key = {0};
    TPM2B_PUBLIC *parent = NULL;
    TPM2B_PRIVATE *priv = NULL;
    struct dup_blob blob;
    char why[CTX_ERR_MAX / 2];
    enum sctpm_rc rc;
    TSS2_RC r;

    *loaded = ESYS_TR_NONE;
    memset(&blob, 0, sizeof(blob));
    rc = status_confirm_srk(ctx, srk, &parent);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    why[0] = '\0';
    rc = dup_hmac_key(&parent->publicArea, c->key, c->key_len, &blob, why, sizeof(why));
    if (rc != SCTPM_RC_SUCCESS) {
        rc = ctx_fail(ctx, rc, "the key cannot be wrapped for the SRK at 0x%08x: %s",
                      SCTPM_SRK_HANDLE, why);
        goto out;
    }
    r = Esys_Import(ctx->esys, *srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &no_inner_key,
                    &blob.pub, &blob.duplicate, &blob.in_sym_seed, &no_inner, &priv);
    if (r != TSS2_RC_SUCCESS) {
        rc = ctx_tss(ctx, "importing the key under the SRK (TPM2_Import)", r);
        goto out;
    }
    r = Esys_Load(ctx->esys, *srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, priv, &blob.pub,
                  loaded);
    if (r != TSS2_RC_SUCCESS) {
        *loaded = ESYS_TR_NONE;
        rc = ctx_tss(ctx, "loading the new key (TPM2_Load)", r);
        goto out;
    }
    rc = SCTPM_RC_SUCCESS;
out:
    Esys_Free(parent);
    Esys_Free(priv);
    return rc;
}

/* Removes the NV index `tr` (closing the handle). */
static enum sctpm_rc nv_undefine(struct sctpm_ctx *ctx, ESYS_TR *tr)
{
    TSS2_RC r = Esys_NV_UndefineSpace(ctx->esys, ESYS_TR_RH_OWNER, *tr, ESYS_TR_PASSWORD,
                                      ESYS_TR_NONE, ESYS_TR_NONE);
    if (r != TSS2_RC_SUCCESS) {
        return ctx_tss(ctx, "removing the identity's NV index (TPM2_NV_UndefineSpace)", r);
    }
    *tr = ESYS_TR_NONE;
    return SCTPM_RC_SUCCESS;
}

/* Writes `uri` to the slot's NV index, defining it (or re-defining it at a new size). */
static enum sctpm_rc nv_store(struct sctpm_ctx *ctx, unsigned int slot, const char *uri)
{
    uint16_t len = (uint16_t)strlen(uri), off = 0;
    TPM2B_NV_PUBLIC info = {0}, *pub = NULL;
    TPM2B_AUTH auth = {0};
    ESYS_TR nv = ESYS_TR_NONE;
    enum sctpm_rc rc;
    TSS2_RC r;

    rc = ctx_tr(ctx, SCTPM_NV_INDEX(slot), &nv);
    if (rc == SCTPM_RC_SUCCESS) {
        r = Esys_NV_ReadPublic(ctx->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
        if (r != TSS2_RC_SUCCESS) {
            rc = ctx_tss(ctx, "TPM2_NV_ReadPublic", r);
            goto out;
        }
        /* Limpet sizes the index to the string: a new length means a new index. */
        if (pub->nvPublic.dataSize != len || pub->nvPublic.attributes & TPMA_NV_WRITELOCKED ||
            (pub->nvPublic.attributes & TPMA_NV_AUTHWRITE) == 0) {
            rc = nv_undefine(ctx, &nv);
            if (rc != SCTPM_RC_SUCCESS) {
                goto out;
            }
        }
    } else if (rc != SCTPM_RC_NOT_FOUND) {
        goto out;
    }
    if (nv == ESYS_TR_NONE) {
        info.nvPublic.nvIndex = SCTPM_NV_INDEX(slot);
        info.nvPublic.nameAlg = TPM2_ALG_SHA256;
        info.nvPublic.attributes = SLOT_NV_ATTRIBUTES;
        info.nvPublic.dataSize = len;
        r = Esys_NV_DefineSpace(ctx->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                ESYS_TR_NONE, &auth, &info, &nv);
        if (r != TSS2_RC_SUCCESS) {
            nv = ESYS_TR_NONE;
            rc = ctx_tss(ctx, "defining the identity's NV index (TPM2_NV_DefineSpace)", r);
            goto out;
        }
    }
    while (off < len) {
        TPM2B_MAX_NV_BUFFER data;
        uint32_t left = (uint32_t)(len - off);
        data.size = (uint16_t)(left > ctx->nv_buffer ? ctx->nv_buffer : left);
        memcpy(data.buffer, uri + off, data.size);
        r = Esys_NV_Write(ctx->esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &data,
                          off);
        if (r != TSS2_RC_SUCCESS) {
            rc = ctx_tss(ctx, "writing the identity (TPM2_NV_Write)", r);
            goto out;
        }
        off = (uint16_t)(off + data.size);
    }
    rc = SCTPM_RC_SUCCESS;
out:
    Esys_Free(pub);
    if (nv != ESYS_TR_NONE) {
        Esys_TR_Close(ctx->esys, &nv);
    }
    return rc;
}

/* Evicts the persistent object at `handle` if there is one. */
static enum sctpm_rc evict(struct sctpm_ctx *ctx, TPM2_HANDLE handle)
{
    ESYS_TR tr, none = ESYS_TR_NONE;
    enum sctpm_rc rc;
    TSS2_RC r;

    rc = ctx_tr(ctx, handle, &tr);
    if (rc == SCTPM_RC_NOT_FOUND) {
        return SCTPM_RC_SUCCESS;
    }
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    r = Esys_EvictControl(ctx->esys, ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                          ESYS_TR_NONE, handle, &none);
    /* ESYS keeps the evicted object's handle; a stale one would shadow the next key there. */
    Esys_TR_Close(ctx->esys, &tr);
    if (r != TSS2_RC_SUCCESS) {
        return ctx_tss(ctx, "evicting the old key (TPM2_EvictControl)", r);
    }
    return SCTPM_RC_SUCCESS;
}

static enum sctpm_rc provision(struct sctpm_ctx *ctx, unsigned int slot, const char *cs)
{
    char uri[SCTPM_NV_URI_MAX + 1], old_uri[SCTPM_NV_URI_MAX + 1];
    struct connstr c;
    ESYS_TR srk = ESYS_TR_NONE, key = ESYS_TR_NONE, persisted = ESYS_TR_NONE;
    uint16_t old_len = 0;
    int had_uri = 0;
    enum sctpm_rc rc, rc2;
    TSS2_RC r;

    rc = connstr_parse(cs, &c, ctx->err, sizeof(ctx->err));
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    /* ESYS allows one handle per TPM object: ours must not shadow the ones made below. */
    slot_forget(ctx, slot);
    connstr_uri(c.host, c.device_id, c.module_id, uri, sizeof(uri));
    rc = ensure_srk(ctx, &srk);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    rc = import_key(ctx, &srk, &c, &key);
    connstr_wipe(&c);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    /* Remember the old identity so that a failure below can put it back. */
    rc = read_uri(ctx, slot, old_uri, sizeof(old_uri), &old_len);
    if (rc == SCTPM_RC_SUCCESS) {
        had_uri = 1;
    } else if (rc == SCTPM_RC_NOT_FOUND || rc == SCTPM_RC_CORRUPT) {
        ctx->err[0] = '\0';
    } else {
        goto out;
    }
    rc = nv_store(ctx, slot, uri);
    if (rc != SCTPM_RC_SUCCESS) {
        goto restore;
    }
    rc = evict(ctx, SCTPM_KEY_HANDLE(slot));
    if (rc != SCTPM_RC_SUCCESS) {
        goto restore;
    }
    r = Esys_EvictControl(ctx->esys, ESYS_TR_RH_OWNER, key, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                          ESYS_TR_NONE, SCTPM_KEY_HANDLE(slot), &persisted);
    if (r != TSS2_RC_SUCCESS) {
        rc = ctx_tss(ctx, "persisting the new key (TPM2_EvictControl)", r);
        /* The old key is gone; an identity without a key would only mislead. */
        had_uri = 0;
        goto restore;
    }
    Esys_TR_Close(ctx->esys, &persisted);
    LOG_INFO("slot %u provisioned: key 0x%08x, identity in NV 0x%08x", slot, SCTPM_KEY_HANDLE(slot),
             SCTPM_NV_INDEX(slot));
    goto out;
restore:
    if (had_uri) {
        rc2 = nv_store(ctx, slot, old_uri);
    } else {
        ESYS_TR nv;
        rc2 = ctx_tr(ctx, SCTPM_NV_INDEX(slot), &nv);
        if (rc2 == SCTPM_RC_SUCCESS) {
            rc2 = nv_undefine(ctx, &nv);
        } else if (rc2 == SCTPM_RC_NOT_FOUND) {
            rc2 = SCTPM_RC_SUCCESS;
        }
    }
    if (rc2 != SCTPM_RC_SUCCESS) {
        LOG_ERROR("slot %u: could not restore the previous identity after a failed provision",
                  slot);
    }
out:
    connstr_wipe(&c);
    explicit_bzero(uri, sizeof(uri));
    if (key != ESYS_TR_NONE) {
        Esys_FlushContext(ctx->esys, key);
    }
    if (srk != ESYS_TR_NONE) {
        Esys_TR_Close(ctx->esys, &srk);
    }
    return rc;
}

enum sctpm_rc sctpm_provision(struct sctpm_ctx *ctx, unsigned int slot,
                              const char *connection_string)
{
    enum sctpm_rc rc;

    if (connection_string == NULL) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    rc = ctx_begin(ctx);
    if (rc == SCTPM_RC_SUCCESS) {
        rc = check_slot(ctx, slot);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = provision(ctx, slot, connection_string);
    }
    return ctx_end(ctx, rc);
}

static enum sctpm_rc deprovision(struct sctpm_ctx *ctx, unsigned int slot)
{
    enum sctpm_rc rc;
    int had_key;
    ESYS_TR nv;

    slot_forget(ctx, slot);
    had_key = key_present(ctx, slot, &rc);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    if (had_key) {
        rc = evict(ctx, SCTPM_KEY_HANDLE(slot));
        if (rc != SCTPM_RC_SUCCESS) {
            return rc;
        }
    }
    rc = ctx_tr(ctx, SCTPM_NV_INDEX(slot), &nv);
    if (rc == SCTPM_RC_NOT_FOUND) {
        if (had_key) {
            return SCTPM_RC_SUCCESS;
        }
        return ctx_fail(ctx, SCTPM_RC_NOT_PROVISIONED,
                        "slot %u is not provisioned (no key at 0x%08x, no NV index 0x%08x).", slot,
                        SCTPM_KEY_HANDLE(slot), SCTPM_NV_INDEX(slot));
    }
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    rc = nv_undefine(ctx, &nv);
    if (rc != SCTPM_RC_SUCCESS) {
        Esys_TR_Close(ctx->esys, &nv);
    }
    return rc;
}

enum sctpm_rc sctpm_deprovision(struct sctpm_ctx *ctx, unsigned int slot)
{
    enum sctpm_rc rc;

    rc = ctx_begin(ctx);
    if (rc == SCTPM_RC_SUCCESS) {
        rc = check_slot(ctx, slot);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = deprovision(ctx, slot);
    }
    return ctx_end(ctx, rc);
}
