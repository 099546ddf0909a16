/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Device-to-cloud messages as sctpm-client builds, stores and sends them.
 *
 * A message is a body (bytes) and a property set. The property set is a JSON object whose names
 * are the HTTP header names IoT Hub reads, so that the same object becomes the headers of a
 * single-message request and the "properties" of a batch element without translation:
 *     "iothub-app-<name>"        application properties (--prop NAME=VALUE)
 *     "iothub-contenttype", "iothub-contentencoding", "iothub-correlationid"
 * The message id is not in the set: it is a column of its own in the queue, assigned once at
 * enqueue and sent as "iothub-messageid" on every attempt, which is what lets the hub drop the
 * copies an at-least-once sender produces.
 *
 * Sizes are counted as IoT Hub counts them: the body plus the names and values of all
 * properties, the message id included, at most MSG_MAX_SIZE. A batch request body (JSON, bodies
 * in base64) is at most MSG_BATCH_MAX.
 */
#ifndef SCTPM_CLIENT_MSG_PRIV_H
#define SCTPM_CLIENT_MSG_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "sctpm/rc.h"

/* IoT Hub's device-to-cloud limit for one message, body and properties. */
#define MSG_MAX_SIZE (256 * 1024)
/* IoT Hub's limit for the body of a batch request: 255 KB minus one byte. */
#define MSG_BATCH_MAX (255 * 1024 - 1)
/* A message id: 1 to 128 characters of Azure's identifier set. */
#define MSG_ID_MAX 128
/* Buffer size for any message id, with its NUL. */
#define MSG_ID_SIZE (MSG_ID_MAX + 1)
/* Length of a generated id (a UUID in its 36-character text form). */
#define MSG_UUID_LEN 36
/* A property name or system property value is at most this long. */
#define MSG_PROP_MAX 1024

#define MSG_APP_PREFIX         "iothub-app-"
#define MSG_BATCH_CONTENT_TYPE "application/vnd.microsoft.iothub.json"

/* Nonzero when `id` is a valid IoT Hub message id (1-128 of A-Z a-z 0-9 -:.+%_#*?!(),=@;$'). */
int msg_id_valid(const char *id);

/*
 * A fresh random id: a version 4 UUID, lowercase, 36 characters and a NUL. Returns
 * SCTPM_RC_IO when the kernel's random source fails (out is then "").
 */
enum sctpm_rc msg_id_new(char out[MSG_ID_SIZE]);

/*
 * A stable id derived from a 32-byte digest (for example SHA-256 of a file's name and content):
 * the first 16 bytes as a UUID with the version nibble 8 (RFC 9562 "custom"). The same digest
 * always gives the same id.
 */
void msg_id_from_digest(const uint8_t digest[32], char out[MSG_ID_SIZE]);

/* A new, empty property set (never NULL unless memory runs out). Free with json_object_put(). */
json_object *msg_props_new(void);

/*
 * Adds an application property from "NAME=VALUE" (--prop). NAME must be an HTTP token (letters,
 * digits and !#$%&'*+-.^_`|~), at most MSG_PROP_MAX characters; VALUE may be empty, must not
 * contain control characters, and must not start or end with a space (HTTP would strip it, and
 * the single and batch forms would then differ). A repeated NAME replaces the earlier value.
 * Returns SCTPM_RC_BAD_FORMAT with a static `*why` for a bad item.
 */
enum sctpm_rc msg_props_add_app(json_object *props, const char *item, const char **why);

/*
 * Sets a system property (`name` one of "iothub-contenttype", "iothub-contentencoding",
 * "iothub-correlationid") to `value`: printable ASCII, 1 to MSG_PROP_MAX characters.
 */
enum sctpm_rc msg_props_set_system(json_object *props, const char *name, const char *value,
                                   const char **why);

/* The property set as compact JSON text (valid until `props` changes or is freed). */
const char *msg_props_text(json_object *props);

/*
 * Parses stored property text back into a set. Returns SCTPM_RC_CORRUPT when the text is not a
 * JSON object of strings. `*props` is callee-allocated (json_object_put()).
 */
enum sctpm_rc msg_props_parse(const char *text, json_object **props);

/*
 * The size IoT Hub counts for a message: body, message id (with its property name) and every
 * property name and value.
 */
size_t msg_size(size_t body_len, const char *id, json_object *props);

/*
 * A growing batch request body. msg_batch_add() appends one message unless the body would then
 * exceed `limit` (normally MSG_BATCH_MAX), in which case it returns SCTPM_RC_TOO_LARGE and the
 * batch is unchanged. msg_batch_finish() closes the JSON array; `b->data` (`b->len` bytes) is
 * then the request body. msg_batch_free() releases it.
 */
struct msg_batch {
    char *data;
    size_t len;
    size_t cap;
    size_t limit;
    size_t count;
};

void msg_batch_init(struct msg_batch *b, size_t limit);
enum sctpm_rc msg_batch_add(struct msg_batch *b, const char *id, json_object *props,
                            const uint8_t *body, size_t body_len);
enum sctpm_rc msg_batch_finish(struct msg_batch *b);
void msg_batch_free(struct msg_batch *b);

/* Nonzero when `len` bytes of `data` are UTF-8 text with no control characters but tab. */
int msg_printable(const uint8_t *data, size_t len);

#endif /* SCTPM_CLIENT_MSG_PRIV_H */
