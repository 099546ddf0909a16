/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Shared access signature (SAS) tokens, verified the way Azure IoT Hub verifies them.
 *
 * A device-scoped token is
 *
 *     SharedAccessSignature sr=<scope>&sig=<urlenc(base64(hmac))>&se=<expiry>
 *
 * where hmac = HMAC-SHA256(device key, sr + "\n" + se), computed over `sr` and `se` exactly as
 * they appear in the token (a client may send `sr` URL-encoded or not; it must sign what it
 * sends). The parser follows the service's rules (Microsoft.Azure.Devices SharedAccessSignature
 * parser): one space after the prefix and no other whitespace, fields separated by '&', field
 * names case-insensitive, duplicates refused, unknown fields ignored, values form-decoded ("%xx"
 * escapes, and "+" is a space) except that the signature covers the raw `sr`.
 *
 * Verification order: scope (hub host case-insensitive, device id exact), policy name (device
 * tokens have none), expiry with a clock-skew allowance, then the signature, compared in
 * constant time against each of the device's keys.
 */
#ifndef SCTPM_HUB_SAS_PRIV_H
#define SCTPM_HUB_SAS_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "sctpm/rc.h"

#define HUB_SAS_PREFIX "SharedAccessSignature"
/* Longer Authorization headers are refused before any parsing. */
#define HUB_SAS_MAX_LEN 4096
#define HUB_SAS_SIG_LEN 32

struct hub_sas {
    char *sr_raw;   /* `sr` exactly as sent: the signed bytes */
    char *sr;       /* `sr` decoded: what the scope check compares */
    char *se_raw;   /* `se` exactly as sent: the signed bytes */
    int64_t expiry; /* `se` as seconds since the Unix epoch */
    char *skn;      /* decoded policy name; NULL when absent or empty */
    uint8_t sig[HUB_SAS_SIG_LEN];
};

/*
 * Parses the value of an Authorization header. On success `*out` (callee-allocated, free with
 * hub_sas_free()) holds the token. A malformed token gives SCTPM_RC_BAD_FORMAT (or
 * SCTPM_RC_TOO_LARGE) with `*out` NULL and, when `reason` is not NULL, a static description
 * in `*reason` that is safe to log (it never quotes the token).
 */
enum sctpm_rc hub_sas_parse(const char *header, struct hub_sas **out, const char **reason);

/* Frees a parsed token, wiping the signature. NULL is ignored. */
void hub_sas_free(struct hub_sas *t);

/*
 * Checks that the token names `hostname`/devices/`device_id` and carries no policy name.
 * Returns SCTPM_RC_SUCCESS or SCTPM_RC_UNAUTHORIZED with a static `*reason`.
 */
enum sctpm_rc hub_sas_check_scope(const struct hub_sas *t, const char *hostname,
                                  const char *device_id, const char **reason);

/*
 * Checks expiry against `now_s` (seconds since the epoch) allowing `skew_s` seconds, then the
 * signature against each of the `nkeys` keys. Returns SCTPM_RC_SUCCESS, SCTPM_RC_EXPIRED or
 * SCTPM_RC_UNAUTHORIZED (with a static `*reason`), or SCTPM_RC_NO_MEMORY.
 */
enum sctpm_rc hub_sas_verify(const struct hub_sas *t, const uint8_t *const keys[],
                             const size_t key_lens[], size_t nkeys, int64_t now_s, int64_t skew_s,
                             const char **reason);

/*
 * The scope of a device's tokens in the C SDK's form, `hostname`/devices/`device_id`, not
 * URL-encoded: except that a device id holding a character the hub (like the service) would
 * read otherwise in a token ('%', '+', '=') is URL-encoded. `*sr` is callee-allocated (free with
 * free()).
 */
enum sctpm_rc hub_sas_device_scope(const char *hostname, const char *device_id, char **sr);

/*
 * Builds a device token for `sr` (used exactly as given) expiring at `expiry`, signed with
 * `key`. `*token` is callee-allocated (free with free()). For tools and tests: the hub itself
 * only verifies.
 */
enum sctpm_rc hub_sas_sign(const char *sr, int64_t expiry, const uint8_t *key, size_t key_len,
                           char **token);

#endif /* SCTPM_HUB_SAS_PRIV_H */
