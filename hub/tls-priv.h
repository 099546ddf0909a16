/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The hub's TLS identity: a private CA created on first start and a server certificate it signs.
 *
 * Files in the data directory (keys 0600, certificates 0644):
 *   ca.pem, ca-key.pem          the CA clients trust (ECDSA P-256, 10 years)
 *   server.pem, server-key.pem  the server certificate (ECDSA P-256, 397 days) with the SANs
 *                               DNS:<hostname>, DNS:localhost, IP:127.0.0.1 and IP:::1
 * The CA is never replaced once it exists (clients have it). The server certificate is issued
 * again whenever it is missing, does not chain to the CA, does not match its key, lacks one of
 * the names, or expires within HUB_TLS_RENEW_DAYS.
 */
#ifndef SCTPM_HUB_TLS_PRIV_H
#define SCTPM_HUB_TLS_PRIV_H

#include <stddef.h>

#include "sctpm/rc.h"

#define HUB_TLS_CA_DAYS     3650
#define HUB_TLS_SERVER_DAYS 397
#define HUB_TLS_RENEW_DAYS  30

struct hub_tls_identity {
    char *cert_pem; /* the server certificate followed by the CA certificate */
    char *key_pem;  /* the server's private key (PKCS#8 PEM); wiped by hub_tls_identity_clear() */
    int issued;     /* nonzero when this call issued a new server certificate */
    int ca_created; /* nonzero when this call created the CA */
};

/*
 * Makes sure `dir` holds a CA and a valid server certificate for `hostname`, creating what is
 * missing, and loads the server's certificate chain and key into `*id` (release with
 * hub_tls_identity_clear()). Returns SCTPM_RC_IO for unreadable or unwritable files,
 * SCTPM_RC_CORRUPT when a file exists but cannot be used (a CA without its key, say), or
 * SCTPM_RC_TLS when OpenSSL fails.
 */
enum sctpm_rc hub_tls_ensure(const char *dir, const char *hostname, struct hub_tls_identity *id);

/* Wipes and frees the PEM buffers. */
void hub_tls_identity_clear(struct hub_tls_identity *id);

#endif /* SCTPM_HUB_TLS_PRIV_H */
