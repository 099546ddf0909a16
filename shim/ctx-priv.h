/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The inside of a libsctpm context, shared by the library's modules (ctx.c, slot.c, token.c,
 * status.c). Every public call takes the context's lock, clears the last error, checks the
 * hardware policy, and reports failures through ctx_fail()/ctx_tss().
 */
#ifndef SCTPM_SHIM_CTX_PRIV_H
#define SCTPM_SHIM_CTX_PRIV_H

#include <pthread.h>
#include <stdint.h>

#include <tss2/tss2_esys.h>

#include "sctpm/sctpm.h"
#include "select.h"

#define CTX_ERR_MAX 512

struct sctpm_ctx {
    pthread_mutex_t lock;
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    struct select_choice choice;
    int require_hardware;
    /* The classification, made once per context on first need. */
    int classified;
    struct sctpm_status status;
    /* TPM limits, read once. */
    uint32_t input_buffer;
    uint32_t nv_buffer;
    /* ESYS handles of each slot's NV index and key, kept between calls; ESYS_TR_NONE: unknown. */
    ESYS_TR slot_nv[SCTPM_SLOTS];
    ESYS_TR slot_key[SCTPM_SLOTS];
    /* The last failure. */
    char err[CTX_ERR_MAX];
    uint32_t tss2_rc;
    enum sctpm_rc open_rc; /* a context that failed to open keeps failing with this */
};

/* Records `rc` and one sentence (printf-style) as the last failure; returns `rc`. */
enum sctpm_rc ctx_fail(struct sctpm_ctx *ctx, enum sctpm_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Records a failed TSS2 call: "<what> failed: <decoded TSS2_RC> (TSS2_RC 0x...)". Returns
 * SCTPM_RC_TPM, or SCTPM_RC_NO_TPM when the TCTI lost the TPM.
 */
enum sctpm_rc ctx_tss(struct sctpm_ctx *ctx, const char *what, TSS2_RC r);

/* Locks `ctx`, clears the last error, and checks that the context opened. */
enum sctpm_rc ctx_enter(struct sctpm_ctx *ctx);
/* Checks the hardware policy (classifying the TPM if needed). Call with the lock held. */
enum sctpm_rc ctx_policy(struct sctpm_ctx *ctx);
void ctx_leave(struct sctpm_ctx *ctx);

/*
 * The frame of every public call that needs the TPM: ctx_begin() is ctx_enter() then
 * ctx_policy(); ctx_end() leaves (when `ctx` is not NULL) and returns `rc`.
 */
enum sctpm_rc ctx_begin(struct sctpm_ctx *ctx);
enum sctpm_rc ctx_end(struct sctpm_ctx *ctx, enum sctpm_rc rc);

/*
 * Replaces the ESYS context, over the same TCTI, after a response that failed ESYS's HMAC
 * check: ESYS refuses every later call on a context that saw one. Every ESYS handle is gone
 * afterwards (the cached slot handles are reset); the transient objects and sessions `stale`
 * (TPM handles, TPM2_RH_NULL for none) are flushed from the TPM. When no new context can be
 * made, every later call fails with SCTPM_RC_TPM.
 */
enum sctpm_rc ctx_esys_renew(struct sctpm_ctx *ctx, const TPM2_HANDLE *stale, size_t n);

/* Classifies the TPM into ctx->status (status.c). Call with the lock held. */
enum sctpm_rc status_classify(struct sctpm_ctx *ctx);
/*
 * Reads the SRK's public area so that it can be trusted (status.c): in an audit session salted
 * with the EK (the certified one on hardware), checking that it is a storage primary key of the
 * owner hierarchy. `*pub` is freed with Esys_Free(). When the ESYS context had to be renewed
 * (ctx_esys_renew()), `*srk` is set to ESYS_TR_NONE. Call with the lock held.
 */
enum sctpm_rc status_confirm_srk(struct sctpm_ctx *ctx, ESYS_TR *srk, TPM2B_PUBLIC **pub);

/* SCTPM_RC_SUCCESS when the TPM has `handle`, SCTPM_RC_NOT_FOUND (no message) when not. */
enum sctpm_rc ctx_exists(struct sctpm_ctx *ctx, TPM2_HANDLE handle);

/*
 * Gets an ESYS handle for the persistent or NV handle `handle`. SCTPM_RC_NOT_FOUND (no message)
 * when the TPM has no such handle. Close the result with Esys_TR_Close().
 */
enum sctpm_rc ctx_tr(struct sctpm_ctx *ctx, TPM2_HANDLE handle, ESYS_TR *tr);

/*
 * Reads all of the NV index `tr` (size `size`) into `buf`, in chunks the TPM accepts, authorized
 * by `auth` (the index itself or a hierarchy).
 */
enum sctpm_rc ctx_nv_read(struct sctpm_ctx *ctx, ESYS_TR auth, ESYS_TR tr, uint8_t *buf,
                          uint16_t size);

/*
 * Reads the identity string of `slot` into `id` (slot.c), and whether its key is present when
 * `with_key`. Call with the lock held.
 */
enum sctpm_rc slot_read(struct sctpm_ctx *ctx, unsigned int slot, struct sctpm_identity *id,
                        int with_key);

/* The cached ESYS handle `*cache` of `handle`, resolving it on first use. */
enum sctpm_rc slot_tr(struct sctpm_ctx *ctx, TPM2_HANDLE handle, ESYS_TR *cache);

/* Closes the cached handles of `slot`. */
void slot_forget(struct sctpm_ctx *ctx, unsigned int slot);

#endif /* SCTPM_SHIM_CTX_PRIV_H */
