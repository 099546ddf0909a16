/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The hub's HTTPS endpoint: IoT Hub's device REST API on libmicrohttpd, loopback only.
 *
 *   POST   /devices/{id}/messages/events                      telemetry (one, or a batch)
 *   GET    /devices/{id}/messages/devicebound                 receive a cloud-to-device message
 *   DELETE /devices/{id}/messages/devicebound/{etag}          complete it ("?reject": reject it)
 *   POST   /devices/{id}/messages/devicebound/{etag}/abandon  abandon it
 *
 * Every request needs `api-version` and a device SAS token for {id} in Authorization. Errors
 * carry IoT Hub's status codes, an `iothub-errorcode` header and a JSON body with both of IoT
 * Hub's error formats ({"Message":"ErrorCode:...","ExceptionMessage":...} and {"errorCode":...,
 * "message":...}).
 *
 * Each connection has its own thread (libmicrohttpd's thread-per-connection mode), so a request
 * may block on the database without stalling others. Connections are closed when idle for
 * `idle_timeout_s`; a watchdog also closes any connection whose request takes longer than
 * `request_timeout_s` (a slow sender that keeps the idle timer alive one byte at a time).
 */
#ifndef SCTPM_HUB_SERVER_PRIV_H
#define SCTPM_HUB_SERVER_PRIV_H

#include <stdint.h>

#include "sctpm/rc.h"
#include "store-priv.h"

struct hub_server_config {
    const char *hostname; /* the hub's name: tokens must be scoped to it */
    uint16_t port;        /* 0 picks a free port (see hub_server_port()) */
    const char *cert_pem; /* server certificate chain, PEM */
    const char *key_pem;  /* server private key, PEM */
    unsigned idle_timeout_s;
    unsigned request_timeout_s;
    unsigned c2d_lock_timeout_s;
    unsigned c2d_max_delivery;
    unsigned clock_skew_s;
    unsigned max_connections;
};

/* Defaults for the fields above, as the man page documents them. */
#define HUB_DEFAULT_PORT             8443
#define HUB_DEFAULT_IDLE_TIMEOUT     60
#define HUB_DEFAULT_REQUEST_TIMEOUT  30
#define HUB_DEFAULT_C2D_LOCK_TIMEOUT 60
#define HUB_DEFAULT_C2D_MAX_DELIVERY 10
#define HUB_DEFAULT_CLOCK_SKEW       30
#define HUB_DEFAULT_MAX_CONNECTIONS  256

struct hub_server;

/*
 * Starts serving on 127.0.0.1 and, when the host has IPv6 loopback, on [::1] at the same port.
 * `cfg` is copied; `store` must outlive the server. `*out` is callee-allocated; stop with
 * hub_server_stop(). Returns SCTPM_RC_NETWORK when the port cannot be bound, SCTPM_RC_TLS when
 * the certificate or key is refused, SCTPM_RC_UNSUPPORTED when libmicrohttpd lacks TLS.
 */
enum sctpm_rc hub_server_start(const struct hub_server_config *cfg, struct hub_store *store,
                               struct hub_server **out);

/* The TCP port the server listens on. */
uint16_t hub_server_port(const struct hub_server *srv);

/* Nonzero when the server also listens on [::1]. */
int hub_server_ipv6(const struct hub_server *srv);

/* Stops accepting, closes every connection, waits for their threads and frees the server. */
void hub_server_stop(struct hub_server *srv);

/*
 * The parts of request handling that need no connection, so that the fuzz targets reach them.
 * A request path names one of four routes; each takes exactly one method.
 */
enum hub_route {
    HUB_ROUTE_EVENTS,
    HUB_ROUTE_C2D_RECEIVE,
    HUB_ROUTE_C2D_SETTLE,
    HUB_ROUTE_C2D_ABANDON
};

struct hub_path {
    enum hub_route route;
    char device_id[HUB_ID_MAX + 1]; /* as the path gives it: not checked against the id rules */
    char *etag;                     /* the lock token (settle and abandon), else NULL */
    const char *allow;              /* the method the route takes (static); NULL if unknown */
};

/*
 * Splits an (already unescaped) request path into `*p`; free it with hub_server_path_clear().
 * Returns 1 for a known route, 0 for an unknown path (the device id is still filled in when the
 * path names one, for the log line), -1 when memory runs out.
 */
int hub_server_parse_path(const char *url, struct hub_path *p);
void hub_server_path_clear(struct hub_path *p);

/* Nonzero when `v` (NULL: absent) is an IoT Hub api-version: 2020-03-13, maybe with a suffix. */
int hub_server_api_version_valid(const char *v);

/* Nonzero when the media type of `content_type` (NULL: absent) is the batch type. */
int hub_server_is_batch(const char *content_type);

/* Nonzero when an If-Match header (NULL: absent; quoted or bare) matches the lock token. */
int hub_server_if_match(const char *if_match, const char *etag);

#endif /* SCTPM_HUB_SERVER_PRIV_H */
