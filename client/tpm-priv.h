/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The client's TPM: its identity slot and the token source built on libsctpm. Only the public
 * API (include/sctpm/sctpm.h) is used. The key stays in the TPM; the client holds the identity
 * strings and the tokens the TPM signs.
 */
#ifndef SCTPM_CLIENT_TPM_PRIV_H
#define SCTPM_CLIENT_TPM_PRIV_H

#include <stdint.h>

#include "sctpm/sctpm.h"
#include "token-priv.h"

struct client_tpm {
    struct sctpm_ctx *ctx;
    unsigned int slot;
    struct sctpm_identity id;
    char err[512]; /* the last failure, one sentence with the TSS2 code when there is one */
};

/*
 * Opens the TPM (`tcti` NULL for libsctpm's default order; `require_hardware` refuses an emulated
 * TPM) and reads the identity in `slot`. On failure `t->err` says why; call tpm_close() in any
 * case.
 */
enum sctpm_rc tpm_open(struct client_tpm *t, const char *tcti, unsigned int slot,
                       int require_hardware);

void tpm_close(struct client_tpm *t);

/* "host/device[/module]": what the queue is tied to. */
void tpm_identity_text(const struct client_tpm *t, char *buf, size_t size);

/* The token source for the slot (token_fetch_fn on a struct client_tpm). */
struct token_source tpm_token_source(struct client_tpm *t);

#endif /* SCTPM_CLIENT_TPM_PRIV_H */
