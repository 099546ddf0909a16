/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * HTTPS for the client: one libcurl easy handle, reused for every request so that its
 * connection stays open (keep-alive), with TLS verification always on.
 *
 * Trust: libcurl's default CA bundle (the system's), plus the certificates in `ca_file` when one
 * is given. libcurl cannot take both a bundle and an extra file, so with the OpenSSL backend the
 * extra certificates are added to each new connection's X509 store from CURLOPT_SSL_CTX_FUNCTION;
 * with any other backend `ca_file` replaces the system bundle (and http_new() says so in
 * verbose mode).
 *
 * Proxies: libcurl's own environment variables (https_proxy, no_proxy, ...), as curl(1) reads
 * them.
 *
 * Verbose mode writes the exchange to `log`: connection events, the request line and headers,
 * the status line and response headers, and body sizes; never bodies, and never a secret: the
 * Authorization header keeps only its sr and se, and any "sig=" value on any line is replaced.
 */
#ifndef SCTPM_CLIENT_HTTP_PRIV_H
#define SCTPM_CLIENT_HTTP_PRIV_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include "sctpm/rc.h"

/* Responses larger than this are refused (IoT Hub's largest is a 256 KiB C2D message). */
#define HTTP_RESPONSE_MAX       (1024 * 1024)
#define HTTP_HEADERS_MAX        64
#define HTTP_CONNECT_TIMEOUT_MS 10000
#define HTTP_TIMEOUT_MS         30000

struct http;

struct http_config {
    const char *ca_file; /* [in] extra CA certificates (PEM), or NULL */
    int verbose;
    FILE *log; /* where verbose output goes (stderr when NULL) */
    long connect_timeout_ms;
    long timeout_ms;
    /* [in] when set and nonzero, the transfer in progress is abandoned (SCTPM_RC_INTERRUPTED) */
    const volatile sig_atomic_t *stop;
};

struct http_header {
    const char *name;
    const char *value;
};

struct http_response {
    long status;
    char *body; /* body_len bytes and a NUL */
    size_t body_len;
    size_t nheaders;
    struct {
        char *name;
        char *value;
    } headers[HTTP_HEADERS_MAX];
};

/*
 * Creates the client. A `ca_file` that cannot be read or holds no certificate fails here
 * (SCTPM_RC_TLS) with the reason in `err`.
 */
enum sctpm_rc http_new(const struct http_config *cfg, struct http **h, char *err, size_t err_size);

void http_free(struct http *h);

/*
 * Sends one request and reads the response. SCTPM_RC_SUCCESS means a response arrived,
 * whatever its status. Otherwise nothing usable came back:
 *   SCTPM_RC_NETWORK      the server could not be reached, or the connection broke;
 *   SCTPM_RC_TIMEOUT      no complete answer within the time limits;
 *   SCTPM_RC_TLS          TLS failed (certificate verification, or the handshake);
 *   SCTPM_RC_INTERRUPTED  the stop flag was raised;
 *   SCTPM_RC_TOO_LARGE    the response passed HTTP_RESPONSE_MAX or HTTP_HEADERS_MAX;
 *   SCTPM_RC_BAD_ARGUMENT the URL or options were refused.
 * http_error() then says what happened in one sentence, and http_retryable() whether trying
 * again may help. `resp` must be released with http_response_clear() in every case.
 */
enum sctpm_rc http_request(struct http *h, const char *method, const char *url,
                           const struct http_header *headers, size_t nheaders, const void *body,
                           size_t body_len, struct http_response *resp);

const char *http_error(const struct http *h);
int http_retryable(const struct http *h);
/* The raw CURLcode of the last failure (0 when the last request got a response). */
int http_curl_code(const struct http *h);

void http_response_clear(struct http_response *resp);

/* The value of response header `name` (case-insensitive), or NULL. */
const char *http_response_header(const struct http_response *resp, const char *name);

/*
 * Copies one line of HTTP text for logging with secrets removed: in an "Authorization:" header
 * the signature (or, when it is not a SAS token, the whole value) is replaced by "[redacted]",
 * and so is every "sig=" value anywhere. Control characters become '.'. Always NUL-terminates.
 */
void http_redact(const char *line, size_t len, char *out, size_t size);

#endif /* SCTPM_CLIENT_HTTP_PRIV_H */
