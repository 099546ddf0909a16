/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "base64.h"
#include "msg-priv.h"
#include "utf8.h"

/* The special characters Azure allows in message ids, besides letters and digits. */
static int id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-:.+%_#*?!(),=@;$'", c) != NULL);
}

int msg_id_valid(const char *id)
{
    size_t n = 0;

    if (id == NULL) {
        return 0;
    }
    for (; id[n] != '\0'; n++) {
        if (n >= MSG_ID_MAX || !id_char((unsigned char)id[n])) {
            return 0;
        }
    }
    return n > 0;
}

static void uuid_text(const uint8_t b[16], char out[MSG_ID_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[o++] = '-';
        }
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

enum sctpm_rc msg_id_new(char out[MSG_ID_SIZE])
{
    uint8_t b[16];
    size_t got = 0;

    out[0] = '\0';
    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return SCTPM_RC_IO;
        }
        got += (size_t)n;
    }
    /* RFC 4122 version 4 and variant bits. */
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    uuid_text(b, out);
    return SCTPM_RC_SUCCESS;
}

void msg_id_from_digest(const uint8_t digest[32], char out[MSG_ID_SIZE])
{
    uint8_t b[16];

    memcpy(b, digest, sizeof(b));
    /* Version 8 (custom, RFC 9562) and the RFC 4122 variant: never equal to a random v4 id. */
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x80);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    uuid_text(b, out);
}

json_object *msg_props_new(void)
{
    return json_object_new_object();
}

/* RFC 7230 token characters: what an HTTP header name may hold. */
static int token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static enum sctpm_rc put(json_object *props, const char *name, size_t name_len, const char *value)
{
    char key[sizeof(MSG_APP_PREFIX) + MSG_PROP_MAX];
    json_object *v;

    if (name_len >= sizeof(key)) {
        return SCTPM_RC_TOO_LARGE;
    }
    memcpy(key, name, name_len);
    key[name_len] = '\0';
    v = json_object_new_string(value);
    if (v == NULL || json_object_object_add(props, key, v) != 0) {
        json_object_put(v);
        return SCTPM_RC_NO_MEMORY;
    }
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc msg_props_add_app(json_object *props, const char *item, const char **why)
{
    char key[sizeof(MSG_APP_PREFIX) + MSG_PROP_MAX];
    const char *eq = strchr(item, '='), *value;
    size_t name_len, value_len;

    if (eq == NULL) {
        *why = "a property is NAME=VALUE";
        return SCTPM_RC_BAD_FORMAT;
    }
    name_len = (size_t)(eq - item);
    if (name_len == 0 || name_len > MSG_PROP_MAX) {
        *why = "a property name is 1 to 1024 characters";
        return SCTPM_RC_BAD_FORMAT;
    }
    for (size_t i = 0; i < name_len; i++) {
        if (!token_char((unsigned char)item[i])) {
            *why = "a property name may hold only letters, digits and !#$%&'*+-.^_`|~";
            return SCTPM_RC_BAD_FORMAT;
        }
    }
    value = eq + 1;
    value_len = strlen(value);
    for (size_t i = 0; i < value_len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x20 || c == 0x7f) {
            *why = "a property value must not contain control characters";
            return SCTPM_RC_BAD_FORMAT;
        }
    }
    if (value_len > 0 && (value[0] == ' ' || value[value_len - 1] == ' ')) {
        *why = "a property value must not start or end with a space";
        return SCTPM_RC_BAD_FORMAT;
    }
    if (value_len > MSG_MAX_SIZE) {
        *why = "a property value is too long";
        return SCTPM_RC_BAD_FORMAT;
    }
    memcpy(key, MSG_APP_PREFIX, sizeof(MSG_APP_PREFIX) - 1);
    memcpy(key + sizeof(MSG_APP_PREFIX) - 1, item, name_len);
    return put(props, key, sizeof(MSG_APP_PREFIX) - 1 + name_len, value);
}

enum sctpm_rc msg_props_set_system(json_object *props, const char *name, const char *value,
                                   const char **why)
{
    size_t n = strlen(value);

    if (strcmp(name, "iothub-contenttype") != 0 && strcmp(name, "iothub-contentencoding") != 0 &&
        strcmp(name, "iothub-correlationid") != 0) {
        *why = "not a system property the client sets";
        return SCTPM_RC_BAD_ARGUMENT;
    }
    if (n == 0 || n > MSG_PROP_MAX) {
        *why = "a system property is 1 to 1024 characters";
        return SCTPM_RC_BAD_FORMAT;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)value[i] < 0x20 || (unsigned char)value[i] > 0x7e) {
            *why = "a system property must be printable ASCII";
            return SCTPM_RC_BAD_FORMAT;
        }
    }
    if (value[0] == ' ' || value[n - 1] == ' ') {
        *why = "a system property must not start or end with a space";
        return SCTPM_RC_BAD_FORMAT;
    }
    return put(props, name, strlen(name), value);
}

const char *msg_props_text(json_object *props)
{
    return json_object_to_json_string_ext(props,
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

enum sctpm_rc msg_props_parse(const char *text, json_object **props)
{
    json_object *o = json_tokener_parse(text);

    *props = NULL;
    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return SCTPM_RC_CORRUPT;
    }
    json_object_object_foreach(o, key, val)
    {
        (void)key;
        if (!json_object_is_type(val, json_type_string)) {
            json_object_put(o);
            return SCTPM_RC_CORRUPT;
        }
    }
    *props = o;
    return SCTPM_RC_SUCCESS;
}

size_t msg_size(size_t body_len, const char *id, json_object *props)
{
    size_t size = body_len;

    if (id != NULL) {
        size += strlen("iothub-messageid") + strlen(id);
    }
    if (props != NULL) {
        json_object_object_foreach(props, key, val)
        {
            size += strlen(key) + (size_t)json_object_get_string_len(val);
        }
    }
    return size;
}

void msg_batch_init(struct msg_batch *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit;
}

static enum sctpm_rc batch_reserve(struct msg_batch *b, size_t more)
{
    size_t want = b->len + more + 1, cap;
    char *p;

    if (want <= b->cap) {
        return SCTPM_RC_SUCCESS;
    }
    cap = b->cap > 0 ? b->cap : 4096;
    while (cap < want) {
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    b->data = p;
    b->cap = cap;
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc msg_batch_add(struct msg_batch *b, const char *id, json_object *props,
                            const uint8_t *body, size_t body_len)
{
    enum sctpm_rc rc = SCTPM_RC_NO_MEMORY;
    json_object *el = NULL, *p = NULL, *v;
    char *b64 = NULL;
    const char *text;
    size_t text_len, need;

    /* Base64 grows the body by a third: a body that cannot fit is refused before encoding. */
    if (base64_encoded_len(body_len) > b->limit) {
        return SCTPM_RC_TOO_LARGE;
    }
    b64 = malloc(base64_encoded_len(body_len) + 1);
    el = json_object_new_object();
    p = json_object_new_object();
    if (b64 == NULL || el == NULL || p == NULL) {
        goto out;
    }
    base64_encode(body, body_len, b64);
    v = json_object_new_string(b64);
    if (v == NULL || json_object_object_add(el, "body", v) != 0) {
        json_object_put(v);
        goto out;
    }
    v = json_object_new_string(id);
    if (v == NULL || json_object_object_add(p, "iothub-messageid", v) != 0) {
        json_object_put(v);
        goto out;
    }
    if (props != NULL) {
        json_object_object_foreach(props, key, val)
        {
            v = json_object_get(val);
            if (json_object_object_add(p, key, v) != 0) {
                json_object_put(v);
                goto out;
            }
        }
    }
    if (json_object_object_add(el, "properties", p) != 0) {
        goto out;
    }
    p = NULL;
    text =
        json_object_to_json_string_ext(el, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (text == NULL) {
        goto out;
    }
    text_len = strlen(text);
    /* "[" + elements joined by "," + "]": the separator (or "[") and the closing "]". */
    need = b->len + 1 + text_len + 1;
    if (need > b->limit) {
        rc = SCTPM_RC_TOO_LARGE;
        goto out;
    }
    rc = batch_reserve(b, text_len + 2);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    b->data[b->len++] = b->count == 0 ? '[' : ',';
    memcpy(b->data + b->len, text, text_len);
    b->len += text_len;
    b->data[b->len] = '\0';
    b->count++;
    rc = SCTPM_RC_SUCCESS;
out:
    json_object_put(p);
    json_object_put(el);
    free(b64);
    return rc;
}

enum sctpm_rc msg_batch_finish(struct msg_batch *b)
{
    enum sctpm_rc rc;

    if (b->count == 0) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    rc = batch_reserve(b, 1);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    b->data[b->len++] = ']';
    b->data[b->len] = '\0';
    return SCTPM_RC_SUCCESS;
}

void msg_batch_free(struct msg_batch *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

int msg_printable(const uint8_t *data, size_t len)
{
    return utf8_printable(data, len);
}
