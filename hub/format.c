/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base64.h"
#include "format-priv.h"
#include "util-priv.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
/* A rendered line holds a message (at most 256 KiB, base64 makes it 342 KiB) and its metadata. */
#define LINE_MAX_BYTES (1024 * 1024)

enum sctpm_rc hub_connection_string(const char *hostname, const char *device_id, const uint8_t *key,
                                    size_t key_len, char **out)
{
    struct hub_buf b;
    char *b64;
    enum sctpm_rc rc;

    *out = NULL;
    b64 = malloc(base64_encoded_len(key_len) + 1);
    if (b64 == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    base64_encode(key, key_len, b64);
    hub_buf_init(&b, LINE_MAX_BYTES);
    rc = hub_buf_printf(&b, "HostName=%s;DeviceId=%s;SharedAccessKey=%s", hostname, device_id, b64);
    explicit_bzero(b64, strlen(b64));
    free(b64);
    if (rc != SCTPM_RC_SUCCESS) {
        hub_buf_free(&b);
        return rc;
    }
    *out = hub_buf_steal(&b, NULL);
    return *out != NULL ? SCTPM_RC_SUCCESS : SCTPM_RC_NO_MEMORY;
}

static void put_str(json_object *o, const char *key, const char *value)
{
    if (value != NULL) {
        json_object_object_add(o, key, json_object_new_string(value));
    }
}

/* The optional system properties as a JSON object (NULL members left out). */
static json_object *system_props(const struct hub_record *r)
{
    json_object *o = json_object_new_object();

    if (o != NULL) {
        put_str(o, "correlationId", r->correlation_id);
        put_str(o, "contentType", r->content_type);
        put_str(o, "contentEncoding", r->content_encoding);
        put_str(o, "userId", r->user_id);
        put_str(o, "creationTimeUtc", r->creation_time);
    }
    return o;
}

static const uint8_t *body_of(const struct hub_record *r)
{
    return r->body != NULL ? r->body : (const uint8_t *)"";
}

/* Appends `body=<text>` or `body64=<base64>` (text mode). */
static enum sctpm_rc append_body(struct hub_buf *b, const struct hub_record *r)
{
    enum sctpm_rc rc;
    char *b64;

    if (hub_printable_utf8(body_of(r), r->body_len)) {
        rc = hub_buf_puts(b, "body=");
        return rc == SCTPM_RC_SUCCESS ? hub_buf_append(b, body_of(r), r->body_len) : rc;
    }
    b64 = malloc(base64_encoded_len(r->body_len) + 1);
    if (b64 == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    base64_encode(body_of(r), r->body_len, b64);
    rc = hub_buf_printf(b, "body64=%s", b64);
    free(b64);
    return rc;
}

/* Adds the body to a JSON object: "body" as text when printable, else "body64". */
static void json_body(json_object *o, const struct hub_record *r)
{
    char *b64;

    if (hub_printable_utf8(body_of(r), r->body_len)) {
        json_object_object_add(
            o, "body", json_object_new_string_len((const char *)body_of(r), (int)r->body_len));
        return;
    }
    b64 = malloc(base64_encoded_len(r->body_len) + 1);
    if (b64 != NULL) {
        base64_encode(body_of(r), r->body_len, b64);
        json_object_object_add(o, "body64", json_object_new_string(b64));
        free(b64);
    }
}

static json_object *record_json(const struct hub_record *r)
{
    char when[HUB_ISO_TIME_LEN];
    json_object *o = json_object_new_object(), *props;

    if (o == NULL) {
        return NULL;
    }
    hub_iso_time(r->enqueued_ms, when);
    json_object_object_add(o, "seq", json_object_new_int64(r->seq));
    json_object_object_add(o, "enqueuedTime", json_object_new_string(when));
    put_str(o, "deviceId", r->device_id);
    put_str(o, "messageId", r->message_id);
    put_str(o, "correlationId", r->correlation_id);
    put_str(o, "contentType", r->content_type);
    put_str(o, "contentEncoding", r->content_encoding);
    put_str(o, "userId", r->user_id);
    put_str(o, "creationTimeUtc", r->creation_time);
    props = json_tokener_parse(r->properties);
    json_object_object_add(o, "properties", props != NULL ? props : json_object_new_object());
    return o;
}

static enum sctpm_rc finish_json(json_object *o, char **line)
{
    if (o == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    *line = strdup(json_object_to_json_string_ext(o, JSON_FLAGS));
    json_object_put(o);
    return *line != NULL ? SCTPM_RC_SUCCESS : SCTPM_RC_NO_MEMORY;
}

/* Appends the fields every line has: time, device, id, sys and props. */
static enum sctpm_rc append_common(struct hub_buf *b, const struct hub_record *r)
{
    char when[HUB_ISO_TIME_LEN];
    json_object *sys = system_props(r);
    enum sctpm_rc rc;

    if (sys == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    hub_iso_time(r->enqueued_ms, when);
    rc = hub_buf_printf(b, "time=%s device=%s id=%s ", when,
                        r->device_id != NULL ? r->device_id : "",
                        r->message_id != NULL ? r->message_id : "");
    if (rc == SCTPM_RC_SUCCESS && json_object_object_length(sys) > 0) {
        rc = hub_buf_printf(b, "sys=%s ", json_object_to_json_string_ext(sys, JSON_FLAGS));
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = hub_buf_printf(b, "props=%s ", r->properties);
    }
    json_object_put(sys);
    return rc;
}

enum sctpm_rc hub_format_record(const struct hub_record *r, int json, char **line)
{
    struct hub_buf b;
    enum sctpm_rc rc;

    *line = NULL;
    if (json) {
        json_object *o = record_json(r);
        if (o != NULL) {
            json_body(o, r);
        }
        return finish_json(o, line);
    }
    hub_buf_init(&b, LINE_MAX_BYTES);
    rc = hub_buf_printf(&b, "seq=%lld ", (long long)r->seq);
    if (rc == SCTPM_RC_SUCCESS) {
        rc = append_common(&b, r);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = append_body(&b, r);
    }
    if (rc != SCTPM_RC_SUCCESS) {
        hub_buf_free(&b);
        return rc;
    }
    *line = hub_buf_steal(&b, NULL);
    return *line != NULL ? SCTPM_RC_SUCCESS : SCTPM_RC_NO_MEMORY;
}

enum sctpm_rc hub_format_c2d(const struct hub_c2d_record *r, int json, char **line)
{
    char expiry[HUB_ISO_TIME_LEN], until[HUB_ISO_TIME_LEN];
    struct hub_buf b;
    enum sctpm_rc rc;

    *line = NULL;
    hub_iso_time(r->expiry_ms, expiry);
    hub_iso_time(r->lock_until_ms, until);
    if (json) {
        json_object *o = record_json(&r->r);
        if (o != NULL) {
            json_object_object_add(o, "state", json_object_new_string(r->state));
            json_object_object_add(o, "deliveryCount", json_object_new_int((int)r->delivery_count));
            json_object_object_add(o, "expiryTime", json_object_new_string(expiry));
            put_str(o, "ack", r->ack);
            if (r->lock_token != NULL) {
                put_str(o, "lockToken", r->lock_token);
                put_str(o, "lockedUntil", until);
            }
            json_body(o, &r->r);
        }
        return finish_json(o, line);
    }
    hub_buf_init(&b, LINE_MAX_BYTES);
    rc = hub_buf_printf(&b, "seq=%lld state=%s deliveries=%u expiry=%s ", (long long)r->r.seq,
                        r->state, r->delivery_count, expiry);
    if (rc == SCTPM_RC_SUCCESS && r->lock_token != NULL) {
        rc = hub_buf_printf(&b, "locked-until=%s ", until);
    }
    if (rc == SCTPM_RC_SUCCESS && r->ack != NULL) {
        rc = hub_buf_printf(&b, "ack=%s ", r->ack);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = append_common(&b, &r->r);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = append_body(&b, &r->r);
    }
    if (rc != SCTPM_RC_SUCCESS) {
        hub_buf_free(&b);
        return rc;
    }
    *line = hub_buf_steal(&b, NULL);
    return *line != NULL ? SCTPM_RC_SUCCESS : SCTPM_RC_NO_MEMORY;
}
