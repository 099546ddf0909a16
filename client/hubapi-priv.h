/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * IoT Hub's device HTTPS API (docs/hub.md; azure.md section 2), over http.c, with tokens from
 * the token cache.
 *
 * URLs: the base is https://<HostName> (port 443) from the identity, or --endpoint
 * https://HOST[:PORT] for a hub or gateway elsewhere; the path always names the identity's
 * device (and module) and tokens always name the HostName, whatever the endpoint:
 *     POST   /devices/{id}[/modules/{m}]/messages/events?api-version=V
 *     GET    /devices/{id}/messages/devicebound?api-version=V
 *     DELETE /devices/{id}/messages/devicebound/{lock}?api-version=V[&reject]
 *     POST   /devices/{id}/messages/devicebound/{lock}/abandon?api-version=V
 * with ids URL-encoded (common/urlenc.c).
 *
 * Every call: Authorization from the cache; a 401 invalidates the token and the request is sent
 * once more with a fresh one; a second 401 is final (SCTPM_RC_UNAUTHORIZED).
 *
 * Outcomes (struct hubapi_result):
 *   SUCCESS       2xx
 *   UNAUTHORIZED  401 twice                                    final
 *   SERVER        429, 5xx, 403 (IoT Hub's quota), 408        retryable (Retry-After kept)
 *   BAD_FORMAT    400; TOO_LARGE 413: this message is refused  final for the message
 *   EXPIRED       412 on settle: the lock is lost               final
 *   NOT_FOUND     404: not an IoT Hub at this endpoint          final
 *   SERVER        any other status                              final
 *   NETWORK, TIMEOUT, TLS ...  from http.c                     retryable as http.c says
 *   NO_TPM, TPM, NOT_PROVISIONED ... from the token source      final
 */
#ifndef SCTPM_CLIENT_HUBAPI_PRIV_H
#define SCTPM_CLIENT_HUBAPI_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "sctpm/rc.h"
#include "http-priv.h"
#include "queue-priv.h"
#include "token-priv.h"

#define HUBAPI_VERSION "2020-03-13"
#define HUBAPI_URL_MAX 2048

struct hubapi {
    struct http *http;
    struct token_cache *tokens;
    int64_t (*now)(void); /* wall clock, seconds since the epoch (for the token cache) */
    int is_module;
    char base[512];                  /* https://host[:port] */
    char events_url[HUBAPI_URL_MAX]; /* ...messages/events?api-version=V */
    char c2d_prefix[HUBAPI_URL_MAX]; /* ...messages/devicebound (no query) */
    char to[HUBAPI_URL_MAX];         /* iothub-to: the path, not encoded */
    unsigned long auth_renewals;     /* tokens renewed because of a 401 */
};

struct hubapi_result {
    enum sctpm_rc rc;
    long status;            /* the HTTP status, 0 when none arrived */
    int retryable;          /* trying again later may succeed */
    int64_t retry_after_ms; /* the server's Retry-After, -1 when none */
    char error_code[64];    /* iothub-errorcode, "" when none */
    char message[600];      /* one sentence for the user */
};

/* A cloud-to-device message as received. */
struct hubapi_c2d {
    char lock[160];           /* the ETag, unquoted: the lock token */
    char id[MSG_ID_SIZE * 2]; /* iothub-messageid ("" when absent) */
    char correlation_id[MSG_PROP_MAX + 1];
    char content_type[MSG_PROP_MAX + 1];
    char content_encoding[MSG_PROP_MAX + 1];
    unsigned long delivery_count;
    json_object *props; /* application properties, name (without iothub-app-) -> value */
    char *body;         /* body_len bytes and a NUL */
    size_t body_len;
};

enum hubapi_settle { HUBAPI_COMPLETE, HUBAPI_REJECT, HUBAPI_ABANDON };

/*
 * The base URL: "https://<host>" without `endpoint`, else `endpoint` checked (https, a host, an
 * optional port 1-65535, no user, path, query or fragment; one trailing "/" is dropped).
 * SCTPM_RC_BAD_ARGUMENT with a static `*why` otherwise.
 */
enum sctpm_rc hubapi_base_url(const char *endpoint, const char *host, char *out, size_t size,
                              const char **why);

/*
 * Sets up `a` for the identity (`module` "" or NULL for a device). Fails with BAD_ARGUMENT (and
 * `*why`) for a bad endpoint, TOO_LARGE when a URL would not fit.
 */
enum sctpm_rc hubapi_init(struct hubapi *a, struct http *http, struct token_cache *tokens,
                          const char *endpoint, const char *host, const char *device,
                          const char *module, const char **why);

/* Sends one queued message as a single-message request. */
void hubapi_send_one(struct hubapi *a, const struct queue_item *it, struct hubapi_result *res);

/* Sends a batch body built with msg_batch_*. */
void hubapi_send_batch(struct hubapi *a, const char *body, size_t len, struct hubapi_result *res);

/*
 * Receives the next cloud-to-device message. SUCCESS with `*got` 1 and `m` filled (release with
 * hubapi_c2d_clear()), or SUCCESS with `*got` 0 when there is none (204).
 */
void hubapi_receive(struct hubapi *a, struct hubapi_c2d *m, int *got, struct hubapi_result *res);
void hubapi_c2d_clear(struct hubapi_c2d *m);

/* Completes, rejects or abandons the message locked by `lock`. */
void hubapi_settle(struct hubapi *a, const char *lock, enum hubapi_settle how,
                   struct hubapi_result *res);

/* The URL for settling `lock` (exposed for the unit tests). */
enum sctpm_rc hubapi_settle_url(const struct hubapi *a, const char *lock, enum hubapi_settle how,
                                char *out, size_t size);

/*
 * Fills `res` from a response: the outcome for `status`, Retry-After (relative to `now`), the
 * iothub-errorcode header and the error body's message (either of IoT Hub's two formats).
 * Exposed for the unit tests.
 */
void hubapi_classify(const struct http_response *resp, int64_t now, struct hubapi_result *res);

#endif /* SCTPM_CLIENT_HUBAPI_PRIV_H */
