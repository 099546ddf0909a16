/* SPDX-License-Identifier: BSD-2-Clause */
#include "sctpm/rc.h"

#include <stddef.h>

/* Indexed by the frozen code numbers; a gap would read as "unknown error code". */
static const char *const messages[] = {
    [SCTPM_RC_SUCCESS] = "success",
    [SCTPM_RC_GENERAL_FAILURE] = "internal error",
    [SCTPM_RC_BAD_ARGUMENT] = "invalid argument",
    [SCTPM_RC_NO_MEMORY] = "out of memory",
    [SCTPM_RC_IO] = "input/output error",
    [SCTPM_RC_BAD_FORMAT] = "malformed input",
    [SCTPM_RC_TOO_LARGE] = "size limit exceeded",
    [SCTPM_RC_NOT_FOUND] = "not found",
    [SCTPM_RC_EXISTS] = "already exists",
    [SCTPM_RC_PERMISSION] = "permission denied",
    [SCTPM_RC_BUSY] = "resource busy",
    [SCTPM_RC_TIMEOUT] = "timed out",
    [SCTPM_RC_CORRUPT] = "stored data is corrupt",
    [SCTPM_RC_BAD_KEY] = "wrong key",
    [SCTPM_RC_UNSUPPORTED] = "not supported",
    [SCTPM_RC_TPM] = "TPM error",
    [SCTPM_RC_NO_TPM] = "no TPM reachable",
    [SCTPM_RC_NOT_HARDWARE] = "TPM is emulated, but hardware is required",
    [SCTPM_RC_NOT_PROVISIONED] = "slot is not provisioned",
    [SCTPM_RC_NETWORK] = "network error",
    [SCTPM_RC_TLS] = "TLS error",
    [SCTPM_RC_UNAUTHORIZED] = "unauthorized",
    [SCTPM_RC_SERVER] = "server error",
    [SCTPM_RC_QUEUE_FULL] = "queue is full",
    [SCTPM_RC_EXPIRED] = "expired",
    [SCTPM_RC_INTERRUPTED] = "interrupted",
    [SCTPM_RC_UNTRUSTED] = "the TPM's answer could not be confirmed",
};

SCTPM_API const char *sctpm_strerror(enum sctpm_rc rc)
{
    size_t i = (size_t)rc;

    if (i >= sizeof(messages) / sizeof(messages[0]) || messages[i] == NULL) {
        return "unknown error code";
    }
    return messages[i];
}
