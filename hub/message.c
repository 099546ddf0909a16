/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "message-priv.h"
#include "util-priv.h"

/* Nesting deeper than this is not a batch: refuse it before json-c recurses. */
#define BATCH_MAX_DEPTH 8

static void set_reason(const char **reason, const char *why)
{
    if (reason != NULL) {
        *reason = why;
    }
}

/* System properties: the header name, where the value goes, and how it is checked. */
enum check { CHECK_MESSAGE_ID, CHECK_TEXT };

static const struct {
    const char *name;
    size_t offset;
    enum check check;
} system_props[] = {
    {"iothub-messageid", offsetof(struct hub_msg, message_id), CHECK_MESSAGE_ID},
    {"iothub-correlationid", offsetof(struct hub_msg, correlation_id), CHECK_TEXT},
    {"iothub-contenttype", offsetof(struct hub_msg, content_type), CHECK_TEXT},
    {"iothub-contentencoding", offsetof(struct hub_msg, content_encoding), CHECK_TEXT},
    {"iothub-userid", offsetof(struct hub_msg, user_id), CHECK_TEXT},
    {"iothub-creation-time-utc", offsetof(struct hub_msg, creation_time), CHECK_TEXT},
};

enum sctpm_rc hub_msg_init(struct hub_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->app = json_object_new_object();
    return m->app != NULL ? SCTPM_RC_SUCCESS : SCTPM_RC_NO_MEMORY;
}

void hub_msg_clear(struct hub_msg *m)
{
    free(m->message_id);
    free(m->correlation_id);
    free(m->content_type);
    free(m->content_encoding);
    free(m->user_id);
    free(m->creation_time);
    if (m->app != NULL) {
        json_object_put(m->app);
    }
    free(m->body);
    memset(m, 0, sizeof(*m));
}

void hub_msgs_free(struct hub_msg *msgs, size_t count)
{
    if (msgs == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        hub_msg_clear(&msgs[i]);
    }
    free(msgs);
}

/* Text a system property may hold: printable ASCII and spaces, nothing that breaks a line. */
static int text_valid(const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= HUB_PROP_MAX || c < 0x20 || c > 0x7e) {
            return 0;
        }
    }
    return 1;
}

/* Application property names must be usable as HTTP header names (RFC 7230 tokens). */
static int app_name_valid(const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= HUB_PROP_MAX || c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c)) {
            return 0;
        }
    }
    return n > 0;
}

enum sctpm_rc hub_msg_set_property(struct hub_msg *m, const char *name, const char *value,
                                   const char **reason)
{
    static const size_t app_len = sizeof(HUB_APP_PREFIX) - 1;
    json_object *v;

    if (strncasecmp(name, HUB_APP_PREFIX, app_len) == 0) {
        if (!app_name_valid(name + app_len)) {
            set_reason(reason, "invalid application property name");
            return SCTPM_RC_BAD_FORMAT;
        }
        if (strlen(value) > HUB_MSG_MAX_SIZE) {
            set_reason(reason, "application property value too long");
            return SCTPM_RC_TOO_LARGE;
        }
        v = json_object_new_string(value);
        if (v == NULL || json_object_object_add(m->app, name + app_len, v) != 0) {
            json_object_put(v);
            return SCTPM_RC_NO_MEMORY;
        }
        return SCTPM_RC_SUCCESS;
    }
    for (size_t i = 0; i < sizeof(system_props) / sizeof(system_props[0]); i++) {
        char **slot;

        if (strcasecmp(name, system_props[i].name) != 0) {
            continue;
        }
        if (system_props[i].check == CHECK_MESSAGE_ID && !hub_message_id_valid(value)) {
            set_reason(reason, "invalid message id (1-128 characters: letters, digits and "
                               "-:.+%_#*?!(),=@;$')");
            return SCTPM_RC_BAD_FORMAT;
        }
        if (system_props[i].check == CHECK_TEXT && !text_valid(value)) {
            set_reason(reason, "invalid system property value");
            return SCTPM_RC_BAD_FORMAT;
        }
        slot = (char **)((char *)m + system_props[i].offset);
        free(*slot);
        *slot = strdup(value);
        return *slot != NULL ? SCTPM_RC_SUCCESS : SCTPM_RC_NO_MEMORY;
    }
    /* Not a message property (iothub-to, Authorization, User-Agent...): not ours to keep. */
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc hub_msg_set_body(struct hub_msg *m, uint8_t *body, size_t len)
{
    if (len > HUB_MSG_MAX_SIZE) {
        return SCTPM_RC_TOO_LARGE;
    }
    free(m->body);
    m->body = body;
    m->body_len = len;
    return SCTPM_RC_SUCCESS;
}

/* Body plus the names and values of every property: the size Azure limits. */
static size_t msg_size(const struct hub_msg *m)
{
    size_t size = m->body_len;

    for (size_t i = 0; i < sizeof(system_props) / sizeof(system_props[0]); i++) {
        const char *v = *(char *const *)((const char *)m + system_props[i].offset);
        if (v != NULL) {
            size += strlen(system_props[i].name) + strlen(v);
        }
    }
    json_object_object_foreach(m->app, key, val)
    {
        size += strlen(key) + (size_t)json_object_get_string_len(val);
    }
    return size;
}

enum sctpm_rc hub_msg_finish(struct hub_msg *m)
{
    char id[HUB_GUID_LEN];
    enum sctpm_rc rc;

    m->size = msg_size(m);
    if (m->size > HUB_MSG_MAX_SIZE) {
        return SCTPM_RC_TOO_LARGE;
    }
    if (m->message_id != NULL) {
        return SCTPM_RC_SUCCESS;
    }
    rc = hub_guid(id);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    m->message_id = strdup(id);
    return m->message_id != NULL ? SCTPM_RC_SUCCESS : SCTPM_RC_NO_MEMORY;
}

const char *hub_msg_app_json(const struct hub_msg *m)
{
    return json_object_to_json_string_ext(m->app,
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* Converts one batch element into `m` (initialised by the caller). */
static enum sctpm_rc batch_element(json_object *el, struct hub_msg *m, const char **reason)
{
    json_object *body = NULL, *b64 = NULL, *props = NULL;
    enum sctpm_rc rc = SCTPM_RC_BAD_FORMAT;
    int base64 = 1;
    const char *text;
    size_t text_len;
    uint8_t *bytes = NULL;
    size_t bytes_len = 0;

    if (!json_object_is_type(el, json_type_object)) {
        set_reason(reason, "batch element is not an object");
        goto out;
    }
    if (!json_object_object_get_ex(el, "body", &body) ||
        !json_object_is_type(body, json_type_string)) {
        set_reason(reason, "batch element has no string \"body\"");
        goto out;
    }
    if (json_object_object_get_ex(el, "base64Encoded", &b64)) {
        if (!json_object_is_type(b64, json_type_boolean)) {
            set_reason(reason, "\"base64Encoded\" is not a boolean");
            goto out;
        }
        base64 = json_object_get_boolean(b64);
    }
    if (json_object_object_get_ex(el, "properties", &props)) {
        if (!json_object_is_type(props, json_type_object)) {
            set_reason(reason, "\"properties\" is not an object");
            goto out;
        }
        json_object_object_foreach(props, key, val)
        {
            const char *v;

            if (!json_object_is_type(val, json_type_string)) {
                set_reason(reason, "a property value is not a string");
                goto out;
            }
            v = json_object_get_string(val);
            if (strlen(v) != (size_t)json_object_get_string_len(val)) {
                set_reason(reason, "a property value contains NUL");
                goto out;
            }
            rc = hub_msg_set_property(m, key, v, reason);
            if (rc != SCTPM_RC_SUCCESS) {
                goto out;
            }
            rc = SCTPM_RC_BAD_FORMAT;
        }
    }
    text = json_object_get_string(body);
    text_len = (size_t)json_object_get_string_len(body);
    if (base64) {
        if (base64_decode(text, text_len, &bytes, &bytes_len) != SCTPM_RC_SUCCESS) {
            set_reason(reason,
                       "\"body\" is not valid base64 (set \"base64Encoded\": false for text)");
            goto out;
        }
    } else {
        bytes = malloc(text_len + 1);
        if (bytes == NULL) {
            rc = SCTPM_RC_NO_MEMORY;
            goto out;
        }
        memcpy(bytes, text, text_len);
        bytes_len = text_len;
    }
    rc = hub_msg_set_body(m, bytes, bytes_len);
    if (rc != SCTPM_RC_SUCCESS) {
        set_reason(reason, "message too large");
        goto out;
    }
    bytes = NULL;
    rc = hub_msg_finish(m);
    if (rc == SCTPM_RC_TOO_LARGE) {
        set_reason(reason, "message too large");
    }
out:
    free(bytes);
    return rc;
}

enum sctpm_rc hub_msg_parse_batch(const uint8_t *body, size_t len, struct hub_msg **msgs,
                                  size_t *count, const char **reason)
{
    enum sctpm_rc rc = SCTPM_RC_BAD_FORMAT;
    struct json_tokener *tok = NULL;
    json_object *root = NULL;
    struct hub_msg *out = NULL;
    size_t n = 0, done = 0;

    *msgs = NULL;
    *count = 0;
    set_reason(reason, "malformed batch");
    if (len > HUB_MSG_MAX_SIZE) {
        set_reason(reason, "batch too large");
        rc = SCTPM_RC_TOO_LARGE;
        goto out;
    }
    if (len > INT32_MAX) {
        goto out;
    }
    tok = json_tokener_new_ex(BATCH_MAX_DEPTH);
    if (tok == NULL) {
        rc = SCTPM_RC_NO_MEMORY;
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tok, (const char *)body, (int)len);
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        set_reason(reason, "batch body is not valid JSON");
        goto out;
    }
    /* Only whitespace may follow the array. */
    for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
        if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r' && body[i] != '\n') {
            set_reason(reason, "data after the batch array");
            goto out;
        }
    }
    if (!json_object_is_type(root, json_type_array)) {
        set_reason(reason, "batch body is not a JSON array");
        goto out;
    }
    n = json_object_array_length(root);
    if (n == 0) {
        set_reason(reason, "empty batch");
        goto out;
    }
    if (n > HUB_BATCH_MAX) {
        set_reason(reason, "too many messages in the batch");
        rc = SCTPM_RC_TOO_LARGE;
        goto out;
    }
    out = calloc(n, sizeof(*out));
    if (out == NULL) {
        rc = SCTPM_RC_NO_MEMORY;
        goto out;
    }
    for (; done < n; done++) {
        rc = hub_msg_init(&out[done]);
        if (rc == SCTPM_RC_SUCCESS) {
            rc = batch_element(json_object_array_get_idx(root, done), &out[done], reason);
        }
        if (rc != SCTPM_RC_SUCCESS) {
            done++;
            goto out;
        }
    }
    *msgs = out;
    *count = n;
    out = NULL;
    rc = SCTPM_RC_SUCCESS;
    set_reason(reason, "ok");
out:
    hub_msgs_free(out, done);
    if (root != NULL) {
        json_object_put(root);
    }
    if (tok != NULL) {
        json_tokener_free(tok);
    }
    return rc;
}
