/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Building Azure shared access signature (SAS) tokens, shared by everything that makes one:
 * libsctpm (the HMAC comes from the TPM) and the hub's tools (the HMAC comes from OpenSSL).
 *
 * The rules (azure-c-shared-utility sastoken.c, IoT Hub docs): the string to sign is
 * `sr + "\n" + se`, with `sr` exactly as it appears in the token; the signature is the base64 of
 * the HMAC-SHA256, URL-encoded with lowercase hex; the token is
 *     SharedAccessSignature sr=<sr>&sig=<sig>&se=<se>[&skn=<name>]
 * Device tokens carry no skn.
 */
#ifndef SCTPM_SAS_H
#define SCTPM_SAS_H

#include <stddef.h>
#include <stdint.h>

#include "sctpm/rc.h"

#define SAS_PREFIX "SharedAccessSignature"

/*
 * The resource URI of a device or module, URL-encoded as the IoT Hub documentation asks:
 * urlenc("<host>/devices/<device>[/modules/<module>]"). `module` NULL or "" means a device.
 * `*sr` is callee-allocated (free()).
 */
enum sctpm_rc sas_scope(const char *host, const char *device, const char *module, char **sr);

/*
 * The string to sign: `sr`, a newline, then `expiry` in decimal. `*msg` is callee-allocated and
 * NUL-terminated; `*len` excludes the NUL.
 */
enum sctpm_rc sas_string_to_sign(const char *sr, int64_t expiry, char **msg, size_t *len);

/*
 * The token for a signature `mac` over sas_string_to_sign(sr, expiry). `skn` NULL or "" means
 * none. `*token` is callee-allocated. SCTPM_RC_BAD_ARGUMENT for a negative expiry, an empty
 * `sr`, or `sr`/`skn` containing characters that would break the token's syntax.
 */
enum sctpm_rc sas_format(const char *sr, int64_t expiry, const uint8_t *mac, size_t mac_len,
                         const char *skn, char **token);

#endif /* SCTPM_SAS_H */
