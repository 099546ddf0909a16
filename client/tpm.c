/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <stdio.h>
#include <string.h>

#define LOGMODULE tpm
#include "log.h"
#include "tpm-priv.h"

/* Records the failure of `what`: libsctpm's sentence and the raw TSS2 code, logged first. */
static enum sctpm_rc fail(struct client_tpm *t, const char *what, enum sctpm_rc rc)
{
    const char *detail = t->ctx != NULL ? sctpm_last_error(t->ctx) : "";
    uint32_t tss = t->ctx != NULL ? sctpm_tss2_rc(t->ctx) : 0;

    if (tss != 0) {
        LOG_DEBUG("%s: TSS2_RC 0x%08x", what, tss);
    }
    if (detail[0] == '\0') {
        detail = sctpm_strerror(rc);
    }
    if (tss != 0 && strstr(detail, "0x") == NULL) {
        snprintf(t->err, sizeof(t->err), "%s: %s (TSS2_RC 0x%08x)", what, detail, tss);
    } else {
        snprintf(t->err, sizeof(t->err), "%s: %s", what, detail);
    }
    return rc;
}

enum sctpm_rc tpm_open(struct client_tpm *t, const char *tcti, unsigned int slot,
                       int require_hardware)
{
    enum sctpm_rc rc;

    memset(t, 0, sizeof(*t));
    t->slot = slot;
    rc = sctpm_open(&t->ctx, tcti, require_hardware ? SCTPM_OPEN_REQUIRE_HARDWARE : 0);
    if (rc != SCTPM_RC_SUCCESS) {
        return fail(t, rc == SCTPM_RC_NOT_HARDWARE ? "refused" : "cannot open the TPM", rc);
    }
    rc = sctpm_identity(t->ctx, slot, &t->id);
    if (rc == SCTPM_RC_NOT_PROVISIONED) {
        snprintf(t->err, sizeof(t->err),
                 "slot %u holds no device identity (provision it with: sctpm provision --slot %u)",
                 slot, slot);
        return rc;
    }
    if (rc != SCTPM_RC_SUCCESS) {
        char what[64];

        snprintf(what, sizeof(what), "cannot read slot %u", slot);
        return fail(t, what, rc);
    }
    if (!t->id.has_key) {
        snprintf(t->err, sizeof(t->err),
                 "slot %u has an identity (%s/%s) but no key; provision it again", slot, t->id.host,
                 t->id.device_id);
        return SCTPM_RC_NOT_PROVISIONED;
    }
    return SCTPM_RC_SUCCESS;
}

void tpm_close(struct client_tpm *t)
{
    sctpm_close(t->ctx);
    t->ctx = NULL;
}

void tpm_identity_text(const struct client_tpm *t, char *buf, size_t size)
{
    if (t->id.module_id[0] != '\0') {
        snprintf(buf, size, "%s/%s/%s", t->id.host, t->id.device_id, t->id.module_id);
    } else {
        snprintf(buf, size, "%s/%s", t->id.host, t->id.device_id);
    }
}

static enum sctpm_rc fetch(void *ctx, uint32_t ttl, char *buf, size_t size, int64_t *expiry)
{
    struct client_tpm *t = ctx;
    enum sctpm_rc rc;
    char what[64];

    rc = sctpm_sas_token(t->ctx, t->slot, ttl, buf, size, expiry);
    if (rc != SCTPM_RC_SUCCESS) {
        snprintf(what, sizeof(what), "cannot get a token from slot %u", t->slot);
        return fail(t, what, rc);
    }
    return SCTPM_RC_SUCCESS;
}

static const char *fetch_error(void *ctx)
{
    struct client_tpm *t = ctx;

    return t->err;
}

struct token_source tpm_token_source(struct client_tpm *t)
{
    struct token_source s = {fetch, fetch_error, t};

    return s;
}
