/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * IoT Hub device connection strings:
 *     HostName=<host>;DeviceId=<id>[;ModuleId=<m>];SharedAccessKey=<base64>
 *
 * Field names are matched without regard to case, as the Azure SDKs do; each may appear once.
 * The value runs to the next ';' and may itself contain '=' (base64 padding). A trailing ';' and
 * trailing whitespace (a newline from a file or a pipe) are allowed. Fields that would make the
 * string mean something we cannot imprint (a hub policy key, a token, an X.509 identity, a
 * gateway) are refused by name rather than silently dropped.
 */
#ifndef SCTPM_SHIM_CONNSTR_H
#define SCTPM_SHIM_CONNSTR_H

#include <stddef.h>
#include <stdint.h>

#include "sctpm/rc.h"
#include "sctpm/sctpm.h"

/* IoT Hub keys are 16 to 64 bytes. */
#define CONNSTR_KEY_MIN 16
#define CONNSTR_KEY_MAX 64

struct connstr {
    char host[SCTPM_HOST_MAX + 1];
    char device_id[SCTPM_ID_MAX + 1];
    char module_id[SCTPM_ID_MAX + 1];
    uint8_t key[CONNSTR_KEY_MAX];
    size_t key_len;
};

/*
 * Parses `s` into `*c`. On failure returns SCTPM_RC_BAD_FORMAT (or SCTPM_RC_TOO_LARGE for a
 * value over its limit), leaves `*c` wiped, and writes one sentence naming the field to `err`.
 * Neither the sentence nor any log line ever quotes the key.
 */
enum sctpm_rc connstr_parse(const char *s, struct connstr *c, char *err, size_t errlen);

/* Wipes `*c`, the key included. */
void connstr_wipe(struct connstr *c);

/*
 * The identity string stored in NV: "host/device[/module]". SCTPM_RC_TOO_LARGE when it exceeds
 * `size` - 1 bytes.
 */
enum sctpm_rc connstr_uri(const char *host, const char *device, const char *module, char *out,
                          size_t size);

/* 1 when `id` is a valid IoT Hub device or module id (1..128 characters of the allowed set). */
int connstr_valid_id(const char *id);

/* 1 when `host` is a plausible DNS host name (labels of letters, digits and '-', dots between). */
int connstr_valid_host(const char *host);

#endif /* SCTPM_SHIM_CONNSTR_H */
