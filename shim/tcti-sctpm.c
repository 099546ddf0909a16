/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libtss2-tcti-sctpm.so.0: a tpm2-tss TCTI module, so that any tpm2-tss program reaches a TPM
 * the sctpm way with `-T sctpm` (tctildr loads libtss2-tcti-<name>.so.0 and calls the exported
 * Tss2_Tcti_Info). Installed as libtss2-tcti-default.so, it also serves programs that configure
 * nothing (tctildr tries that name first, with a NULL configuration).
 *
 * The module chooses a TPM with select_tcti() (hardware, a running sctpmd, a simulator on
 * localhost, or a per-user sctpmd it starts) and then only forwards: every call goes to the
 * chosen TCTI, whose state machine (transmit, then receive, partial reads, timeouts) is the one
 * that counts. Our context keeps the common V2 layout first, as tpm2-tss requires, then the
 * inner context.
 *
 * Configuration: "" (or none) is the sctpm order; otherwise comma-separated key=value options of
 * select_opts_parse(), e.g. `-T sctpm:devices=,port=0` (no hardware, no TCP simulator).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <tss2/tss2_tcti.h>

#include "select-priv.h"
#include "select.h"

#define SCTPM_API __attribute__((visibility("default")))

/* "sctpmTCI": identifies our contexts, as each tpm2-tss TCTI has its own magic. */
#define TCTI_SCTPM_MAGIC 0x736374706d544349ULL
#define TCTI_VERSION     2

struct tcti_sctpm {
    TSS2_TCTI_CONTEXT_COMMON_V2 common; /* first: tpm2-tss casts the context to it */
    TSS2_TCTI_CONTEXT *inner;           /* from select_tcti(); NULL once finalized */
    struct select_choice choice;
};

/* Our context, or NULL when `tcti` is not one of ours or has been finalized. */
static struct tcti_sctpm *ours(TSS2_TCTI_CONTEXT *tcti)
{
    struct tcti_sctpm *c = (struct tcti_sctpm *)tcti;

    if (c == NULL || c->common.v1.magic != TCTI_SCTPM_MAGIC || c->inner == NULL) {
        return NULL;
    }
    return c;
}

static TSS2_RC not_ours(TSS2_TCTI_CONTEXT *tcti)
{
    return tcti == NULL ? TSS2_TCTI_RC_BAD_REFERENCE : TSS2_TCTI_RC_BAD_CONTEXT;
}

static TSS2_RC tcti_transmit(TSS2_TCTI_CONTEXT *tcti, size_t size, const uint8_t *command)
{
    struct tcti_sctpm *c = ours(tcti);

    return c == NULL ? not_ours(tcti) : Tss2_Tcti_Transmit(c->inner, size, command);
}

static TSS2_RC tcti_receive(TSS2_TCTI_CONTEXT *tcti, size_t *size, uint8_t *response,
                            int32_t timeout)
{
    struct tcti_sctpm *c = ours(tcti);

    return c == NULL ? not_ours(tcti) : Tss2_Tcti_Receive(c->inner, size, response, timeout);
}

static TSS2_RC tcti_cancel(TSS2_TCTI_CONTEXT *tcti)
{
    struct tcti_sctpm *c = ours(tcti);

    return c == NULL ? not_ours(tcti) : Tss2_Tcti_Cancel(c->inner);
}

static TSS2_RC tcti_get_poll_handles(TSS2_TCTI_CONTEXT *tcti, TSS2_TCTI_POLL_HANDLE *handles,
                                     size_t *num_handles)
{
    struct tcti_sctpm *c = ours(tcti);

    return c == NULL ? not_ours(tcti) : Tss2_Tcti_GetPollHandles(c->inner, handles, num_handles);
}

static TSS2_RC tcti_set_locality(TSS2_TCTI_CONTEXT *tcti, uint8_t locality)
{
    struct tcti_sctpm *c = ours(tcti);

    return c == NULL ? not_ours(tcti) : Tss2_Tcti_SetLocality(c->inner, locality);
}

static TSS2_RC tcti_make_sticky(TSS2_TCTI_CONTEXT *tcti, TPM2_HANDLE *handle, uint8_t sticky)
{
    struct tcti_sctpm *c = ours(tcti);

    return c == NULL ? not_ours(tcti) : Tss2_Tcti_MakeSticky(c->inner, handle, sticky);
}

/* Releases the inner TCTI. tpm2-tss frees our context itself, after this returns. */
static void tcti_finalize(TSS2_TCTI_CONTEXT *tcti)
{
    struct tcti_sctpm *c = ours(tcti);

    if (c == NULL) {
        return;
    }
    select_finalize(c->inner);
    c->inner = NULL;
}

/*
 * The TCTI init protocol: called first with tcti NULL to learn the size, then with that much
 * zeroed memory. The options are checked in both calls, so that a bad configuration fails before
 * anything is allocated; the TPM is chosen (and perhaps sctpmd started) only in the second.
 */
static TSS2_RC tcti_init(TSS2_TCTI_CONTEXT *tcti, size_t *size, const char *conf)
{
    struct tcti_sctpm *c = (struct tcti_sctpm *)tcti;
    struct select_opts opts;
    char full[1200], err[256];
    TSS2_RC rc;

    if (tcti == NULL && size == NULL) {
        return TSS2_TCTI_RC_BAD_VALUE;
    }
    if (conf == NULL) {
        conf = "";
    }
    memset(&opts, 0, sizeof(opts));
    if (select_opts_parse(&opts, conf, err, sizeof(err)) != 0 ||
        snprintf(full, sizeof(full), "sctpm:%s", conf) >= (int)sizeof(full)) {
        return TSS2_TCTI_RC_BAD_VALUE;
    }
    if (tcti == NULL) {
        *size = sizeof(struct tcti_sctpm);
        return TSS2_RC_SUCCESS;
    }
    if (size != NULL && *size < sizeof(struct tcti_sctpm)) {
        return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
    }
    memset(c, 0, sizeof(*c));
    rc = select_tcti(full, &c->inner, &c->choice);
    if (rc != TSS2_RC_SUCCESS) {
        return rc;
    }
    c->common.v1.magic = TCTI_SCTPM_MAGIC;
    c->common.v1.version = TCTI_VERSION;
    c->common.v1.transmit = tcti_transmit;
    c->common.v1.receive = tcti_receive;
    c->common.v1.finalize = tcti_finalize;
    c->common.v1.cancel = tcti_cancel;
    c->common.v1.getPollHandles = tcti_get_poll_handles;
    c->common.v1.setLocality = tcti_set_locality;
    c->common.makeSticky = tcti_make_sticky;
    return TSS2_RC_SUCCESS;
}

static const TSS2_TCTI_INFO info = {
    .version = TCTI_VERSION,
    .name = "tcti-sctpm",
    .description = "The sctpm order: a TPM device (/dev/tpmrm0, /dev/tpm0), a running sctpmd, a "
                   "simulator on localhost:2321, else a per-user sctpmd started on demand.",
    .config_help = "Empty for the sctpm order, or comma-separated options: devices=PATH[:PATH...] "
                   "(empty: no hardware), port=N (localhost simulator port, 0: none), "
                   "autostart=yes|no, idle-exit=SECONDS. See docs/tcti-sctpm.md.",
    .init = tcti_init,
};

SCTPM_API const TSS2_TCTI_INFO *Tss2_Tcti_Info(void);
SCTPM_API const TSS2_TCTI_INFO *Tss2_Tcti_Info(void)
{
    return &info;
}
