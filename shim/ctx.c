/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tss2/tss2_rc.h>
#include <tss2/tss2_tcti.h>

#include "ctx-priv.h"

/* TPM_PT_INPUT_BUFFER and TPM_PT_NV_BUFFER_MAX; the TPM2B_MAX_BUFFER size bounds both. */
#define PT_INPUT_BUFFER  0x10d
#define PT_NV_BUFFER_MAX 0x12c
#define DEFAULT_BUFFER   1024

enum sctpm_rc ctx_fail(struct sctpm_ctx *ctx, enum sctpm_rc rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
    va_end(ap);
    return rc;
}

/* Codes that mean the path to the TPM failed, not the TPM. */
static int tcti_lost(TSS2_RC r)
{
    TSS2_RC base = r & ~TSS2_RC_LAYER_MASK;
    unsigned layer = (r & TSS2_RC_LAYER_MASK) >> TSS2_RC_LAYER_SHIFT;

    return layer == (TSS2_TCTI_RC_LAYER >> TSS2_RC_LAYER_SHIFT) &&
           (base == TSS2_BASE_RC_IO_ERROR || base == TSS2_BASE_RC_NO_CONNECTION);
}

enum sctpm_rc ctx_tss(struct sctpm_ctx *ctx, const char *what, TSS2_RC r)
{
    ctx->tss2_rc = r;
    if (tcti_lost(r)) {
        return ctx_fail(ctx, SCTPM_RC_NO_TPM,
                        "%s failed: the connection to the TPM (%s) was lost: "
                        "%s (TSS2_RC 0x%08x).",
                        what, ctx->choice.conf, Tss2_RC_Decode(r), r);
    }
    return ctx_fail(ctx, SCTPM_RC_TPM, "%s failed: %s (TSS2_RC 0x%08x).", what, Tss2_RC_Decode(r),
                    r);
}

enum sctpm_rc ctx_enter(struct sctpm_ctx *ctx)
{
    if (ctx == NULL) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    pthread_mutex_lock(&ctx->lock);
    if (ctx->open_rc != SCTPM_RC_SUCCESS) {
        /* Keep the sentence from sctpm_open(): it is the one that explains. */
        return ctx->open_rc;
    }
    ctx->err[0] = '\0';
    ctx->tss2_rc = 0;
    return SCTPM_RC_SUCCESS;
}

/*
 * The outcome of the calling thread's last call, so that threads sharing a context each read
 * their own error rather than whichever thread called last.
 */
static __thread struct {
    const struct sctpm_ctx *ctx;
    char err[CTX_ERR_MAX];
    uint32_t tss2_rc;
} last;

void ctx_leave(struct sctpm_ctx *ctx)
{
    last.ctx = ctx;
    memcpy(last.err, ctx->err, sizeof(last.err));
    last.tss2_rc = ctx->tss2_rc;
    pthread_mutex_unlock(&ctx->lock);
}

enum sctpm_rc ctx_policy(struct sctpm_ctx *ctx)
{
    enum sctpm_rc rc;

    if (!ctx->require_hardware) {
        return SCTPM_RC_SUCCESS;
    }
    rc = status_classify(ctx);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    if (ctx->status.kind != SCTPM_KIND_HARDWARE) {
        return ctx_fail(ctx, SCTPM_RC_NOT_HARDWARE,
                        "hardware TPM required, but the TPM at %s is %s: %s.", ctx->choice.conf,
                        sctpm_kind_name(ctx->status.kind), ctx->status.verdict_reason);
    }
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc ctx_exists(struct sctpm_ctx *ctx, TPM2_HANDLE handle)
{
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more;
    int present;
    TSS2_RC r;

    r = Esys_GetCapability(ctx->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                           handle, 1, &more, &cap);
    if (r != TSS2_RC_SUCCESS) {
        return ctx_tss(ctx, "listing handles (TPM2_GetCapability)", r);
    }
    present = cap->data.handles.count == 1 && cap->data.handles.handle[0] == handle;
    Esys_Free(cap);
    return present ? SCTPM_RC_SUCCESS : SCTPM_RC_NOT_FOUND;
}

enum sctpm_rc ctx_begin(struct sctpm_ctx *ctx)
{
    enum sctpm_rc rc = ctx_enter(ctx);

    return rc == SCTPM_RC_SUCCESS ? ctx_policy(ctx) : rc;
}

enum sctpm_rc ctx_end(struct sctpm_ctx *ctx, enum sctpm_rc rc)
{
    if (ctx != NULL) {
        ctx_leave(ctx);
    }
    return rc;
}

enum sctpm_rc ctx_tr(struct sctpm_ctx *ctx, TPM2_HANDLE handle, ESYS_TR *tr)
{
    enum sctpm_rc rc;
    TSS2_RC r;

    *tr = ESYS_TR_NONE;
    /*
     * Ask first whether the handle exists: reading a missing one fails inside ESYS, which
     * logs the failure to stderr, and the library must not print.
     */
    rc = ctx_exists(ctx, handle);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    r = Esys_TR_FromTPMPublic(ctx->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, tr);
    if (r != TSS2_RC_SUCCESS) {
        *tr = ESYS_TR_NONE;
        return ctx_tss(ctx, "reading the public area of a handle", r);
    }
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc ctx_nv_read(struct sctpm_ctx *ctx, ESYS_TR auth, ESYS_TR tr, uint8_t *buf,
                          uint16_t size)
{
    uint16_t off = 0;

    while (off < size) {
        TPM2B_MAX_NV_BUFFER *data = NULL;
        uint32_t left = (uint32_t)(size - off);
        uint16_t n = (uint16_t)(left > ctx->nv_buffer ? ctx->nv_buffer : left);
        TSS2_RC r = Esys_NV_Read(ctx->esys, auth, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                 n, off, &data);
        if (r != TSS2_RC_SUCCESS) {
            return ctx_tss(ctx, "TPM2_NV_Read", r);
        }
        if (data->size != n) {
            Esys_Free(data);
            return ctx_fail(ctx, SCTPM_RC_TPM, "TPM2_NV_Read returned %u bytes for %u.",
                            (unsigned)data->size, (unsigned)n);
        }
        memcpy(buf + off, data->buffer, n);
        Esys_Free(data);
        off = (uint16_t)(off + n);
    }
    return SCTPM_RC_SUCCESS;
}

/* Reads a fixed TPM property; `def` when the TPM does not report it. */
static uint32_t read_property(ESYS_CONTEXT *esys, uint32_t prop, uint32_t def, TSS2_RC *r)
{
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more;
    uint32_t v = def;

    *r = Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                            prop, 1, &more, &cap);
    if (*r == TSS2_RC_SUCCESS && cap->data.tpmProperties.count == 1 &&
        cap->data.tpmProperties.tpmProperty[0].property == prop) {
        v = cap->data.tpmProperties.tpmProperty[0].value;
    }
    Esys_Free(cap);
    return v;
}

/* Reads the TPM's buffer limits, starting the TPM first if nobody has (a fresh simulator). */
static enum sctpm_rc probe(struct sctpm_ctx *ctx)
{
    TSS2_RC r;

    ctx->input_buffer = read_property(ctx->esys, PT_INPUT_BUFFER, DEFAULT_BUFFER, &r);
    if ((r & 0xfff) == TPM2_RC_INITIALIZE) {
        r = Esys_Startup(ctx->esys, TPM2_SU_CLEAR);
        if (r != TSS2_RC_SUCCESS && (r & 0xfff) != TPM2_RC_INITIALIZE) {
            return ctx_tss(ctx, "TPM2_Startup", r);
        }
        ctx->input_buffer = read_property(ctx->esys, PT_INPUT_BUFFER, DEFAULT_BUFFER, &r);
    }
    if (r != TSS2_RC_SUCCESS) {
        return ctx_tss(ctx, "TPM2_GetCapability", r);
    }
    ctx->nv_buffer = read_property(ctx->esys, PT_NV_BUFFER_MAX, DEFAULT_BUFFER, &r);
    if (r != TSS2_RC_SUCCESS) {
        return ctx_tss(ctx, "TPM2_GetCapability", r);
    }
    if (ctx->input_buffer == 0 || ctx->input_buffer > sizeof(((TPM2B_MAX_BUFFER *)0)->buffer)) {
        ctx->input_buffer = sizeof(((TPM2B_MAX_BUFFER *)0)->buffer);
    }
    if (ctx->nv_buffer == 0 || ctx->nv_buffer > sizeof(((TPM2B_MAX_NV_BUFFER *)0)->buffer)) {
        ctx->nv_buffer = sizeof(((TPM2B_MAX_NV_BUFFER *)0)->buffer);
    }
    return SCTPM_RC_SUCCESS;
}

static int env_true(const char *name)
{
    const char *v = getenv(name);

    return v != NULL &&
           (strcmp(v, "1") == 0 || strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0);
}

enum sctpm_rc sctpm_open(struct sctpm_ctx **out, const char *tcti, unsigned int flags)
{
    struct sctpm_ctx *ctx;
    enum sctpm_rc rc;
    TSS2_RC r;

    if (out == NULL) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    *out = NULL;
    if ((flags & ~(unsigned)SCTPM_OPEN_REQUIRE_HARDWARE) != 0) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    pthread_mutex_init(&ctx->lock, NULL);
    for (int i = 0; i < SCTPM_SLOTS; i++) {
        ctx->slot_nv[i] = ctx->slot_key[i] = ESYS_TR_NONE;
    }
    ctx->require_hardware =
        (flags & SCTPM_OPEN_REQUIRE_HARDWARE) != 0 || env_true("SCTPM_REQUIRE_HARDWARE");
    if (tcti == NULL || *tcti == '\0') {
        tcti = getenv("SCTPM_TCTI");
    }
    r = select_tcti(tcti, &ctx->tcti, &ctx->choice);
    if (r != TSS2_RC_SUCCESS) {
        ctx->tcti = NULL;
        ctx->tss2_rc = r;
        if (tcti != NULL && *tcti != '\0') {
            rc = ctx_fail(ctx, SCTPM_RC_NO_TPM, "no TPM reachable through %s: %s (TSS2_RC 0x%08x).",
                          tcti, Tss2_RC_Decode(r), r);
        } else {
            rc =
                ctx_fail(ctx, SCTPM_RC_NO_TPM, "no TPM reachable: %s (TSS2_RC 0x%08x).",
                         ctx->choice.reason[0] != '\0' ? ctx->choice.reason : Tss2_RC_Decode(r), r);
        }
        goto out;
    }
    r = Esys_Initialize(&ctx->esys, ctx->tcti, NULL);
    if (r != TSS2_RC_SUCCESS) {
        ctx->esys = NULL;
        rc = ctx_tss(ctx, "Esys_Initialize", r);
        goto out;
    }
    rc = probe(ctx);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    rc = ctx_policy(ctx);
out:
    ctx->open_rc = rc;
    *out = ctx;
    return rc;
}

enum sctpm_rc ctx_esys_renew(struct sctpm_ctx *ctx, const TPM2_HANDLE *stale, size_t n)
{
    TSS2_RC r;

    /* The TCTI is ours, so Esys_Finalize leaves it (and its connection) open. */
    Esys_Finalize(&ctx->esys);
    for (int i = 0; i < SCTPM_SLOTS; i++) {
        ctx->slot_nv[i] = ctx->slot_key[i] = ESYS_TR_NONE;
    }
    r = Esys_Initialize(&ctx->esys, ctx->tcti, NULL);
    if (r != TSS2_RC_SUCCESS) {
        /* The caller's sentence stays: it says what went wrong first. */
        ctx->esys = NULL;
        ctx->tss2_rc = r;
        ctx->open_rc = SCTPM_RC_TPM;
        return ctx->open_rc;
    }
    for (size_t i = 0; i < n; i++) {
        ESYS_TR tr;
        if (stale[i] != TPM2_RH_NULL &&
            Esys_TR_FromTPMPublic(ctx->esys, stale[i], ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                  &tr) == TSS2_RC_SUCCESS) {
            Esys_FlushContext(ctx->esys, tr);
        }
    }
    return SCTPM_RC_SUCCESS;
}

void sctpm_close(struct sctpm_ctx *ctx)
{
    if (ctx == NULL) {
        return;
    }
    if (ctx->esys != NULL) {
        /* Esys_Finalize frees every ESYS handle, the cached slot handles included. */
        Esys_Finalize(&ctx->esys);
    }
    if (ctx->tcti != NULL) {
        select_finalize(ctx->tcti);
    }
    pthread_mutex_destroy(&ctx->lock);
    if (last.ctx == ctx) {
        last.ctx = NULL;
    }
    free(ctx);
}

const char *sctpm_last_error(const struct sctpm_ctx *ctx)
{
    if (ctx == NULL) {
        return "no context";
    }
    return last.ctx == ctx ? last.err : ctx->err;
}

uint32_t sctpm_tss2_rc(const struct sctpm_ctx *ctx)
{
    if (ctx == NULL) {
        return 0;
    }
    return last.ctx == ctx ? last.tss2_rc : ctx->tss2_rc;
}

const char *sctpm_kind_name(enum sctpm_kind kind)
{
    switch (kind) {
    case SCTPM_KIND_HARDWARE:
        return "HARDWARE";
    case SCTPM_KIND_EMULATED:
        return "EMULATED";
    default:
        return "UNKNOWN";
    }
}

const char *sctpm_version(void)
{
    return PACKAGE_VERSION;
}
