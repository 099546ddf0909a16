/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Text the CLI prints: connection strings and one-line renderings of stored messages.
 *
 * A telemetry line is
 *
 *     seq=<n> time=<ISO 8601> device=<id> id=<message id> [sys=<JSON>] props=<JSON> body=<body>
 *
 * `sys` holds the optional system properties (correlationId, contentType, contentEncoding,
 * userId, creationTimeUtc) and is left out when there are none. The body comes last and
 * verbatim when it is printable UTF-8 (so a line can be grepped for it); otherwise the line
 * ends in `body64=<base64>`. With `json`, the line is one JSON object with the same fields.
 */
#ifndef SCTPM_HUB_FORMAT_PRIV_H
#define SCTPM_HUB_FORMAT_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "sctpm/rc.h"
#include "store-priv.h"

/*
 * Builds "HostName=<host>;DeviceId=<id>;SharedAccessKey=<base64 key>". `*out` is
 * callee-allocated; it contains the key, so wipe it before freeing.
 */
enum sctpm_rc hub_connection_string(const char *hostname, const char *device_id, const uint8_t *key,
                                    size_t key_len, char **out);

/* Renders a telemetry record as one line (no newline). `*line` is callee-allocated. */
enum sctpm_rc hub_format_record(const struct hub_record *r, int json, char **line);

/* Renders a cloud-to-device record, with its state, as one line. */
enum sctpm_rc hub_format_c2d(const struct hub_c2d_record *r, int json, char **line);

#endif /* SCTPM_HUB_FORMAT_PRIV_H */
