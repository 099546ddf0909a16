/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#define LOGMODULE hub
#include "log.h"
#include "base64.h"
#include "cli-priv.h"
#include "format-priv.h"
#include "message-priv.h"
#include "sas-priv.h"
#include "store-priv.h"
#include "tls-priv.h"
#include "util-priv.h"

/* messages --follow looks for new rows this often. */
#define FOLLOW_POLL_MS 200
/* messages reads the store in pages of this many rows. */
#define PAGE 1000

static void complain(const char *what, enum sctpm_rc rc)
{
    fprintf(stderr, "sctpm-hub: %s: %s\n", what, sctpm_strerror(rc));
}

static char *db_path(const char *dir)
{
    size_t n = strlen(dir) + sizeof("/" HUB_DB_NAME);
    char *p = malloc(n);

    if (p != NULL) {
        snprintf(p, n, "%s/%s", dir, HUB_DB_NAME);
    }
    return p;
}

/*
 * Opens the hub database in the data directory. With `create` the directory (mode 0700) and the
 * database are made when missing; without it a missing database is an error, so that a
 * mistyped --data does not silently start an empty hub.
 */
static int open_store(const struct hub_cli *o, int create, struct hub_store **st)
{
    enum sctpm_rc rc;
    struct stat sb;
    char *path = db_path(o->data_dir);

    *st = NULL;
    if (path == NULL) {
        complain("open", SCTPM_RC_NO_MEMORY);
        return 1;
    }
    if (create && mkdir(o->data_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "sctpm-hub: cannot create %s: %s\n", o->data_dir, strerror(errno));
        free(path);
        return 1;
    }
    if (stat(o->data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "sctpm-hub: %s is not a directory\n", o->data_dir);
        free(path);
        return 1;
    }
    if (!create && access(path, F_OK) != 0) {
        fprintf(stderr, "sctpm-hub: no hub in %s (start the hub there, or add a device)\n",
                o->data_dir);
        free(path);
        return 1;
    }
    rc = hub_store_open(path, st);
    if (rc != SCTPM_RC_SUCCESS) {
        fprintf(stderr, "sctpm-hub: cannot open %s: %s\n", path, sctpm_strerror(rc));
    }
    free(path);
    return rc == SCTPM_RC_SUCCESS ? 0 : 1;
}

/* The hub's host name: --hostname, else the one the hub was started with, else the default. */
static char *hostname_of(const struct hub_cli *o, struct hub_store *st)
{
    char *name = NULL;

    if (o->hostname != NULL) {
        return strdup(o->hostname);
    }
    if (hub_store_meta_get(st, "hostname", &name) == SCTPM_RC_SUCCESS) {
        return name;
    }
    return strdup(HUB_DEFAULT_HOSTNAME);
}

int hub_cli_serve(const struct hub_cli *o)
{
    struct hub_tls_identity tls = {NULL, NULL, 0, 0};
    struct hub_server_config cfg = o->server;
    struct hub_store *st = NULL;
    struct hub_server *srv = NULL;
    char *hostname = NULL, *stored = NULL;
    enum sctpm_rc rc;
    sigset_t sigs;
    int status = 1, sig = 0;

    /*
     * Block the stop signals before any thread exists so that every thread inherits the mask
     * and sigwait() below is the only place they are taken.
     */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (open_store(o, 1, &st) != 0) {
        return 1;
    }
    hostname = hostname_of(o, st);
    if (hostname == NULL) {
        complain("start", SCTPM_RC_NO_MEMORY);
        goto out_store;
    }
    if (hub_store_meta_get(st, "hostname", &stored) != SCTPM_RC_SUCCESS ||
        strcmp(stored, hostname) != 0) {
        /* Remembered so that the CLI prints connection strings for the name the hub serves. */
        rc = hub_store_meta_set(st, "hostname", hostname);
        if (rc != SCTPM_RC_SUCCESS) {
            complain("save the host name", rc);
            goto out_store;
        }
    }
    rc = hub_tls_ensure(o->data_dir, hostname, &tls);
    if (rc != SCTPM_RC_SUCCESS) {
        complain("TLS set-up", rc);
        goto out_store;
    }
    cfg.hostname = hostname;
    cfg.cert_pem = tls.cert_pem;
    cfg.key_pem = tls.key_pem;
    rc = hub_server_start(&cfg, st, &srv);
    if (rc != SCTPM_RC_SUCCESS) {
        complain("start the server", rc);
        goto out_tls;
    }
    LOG_INFO("hub %s serving https://127.0.0.1:%u%s; clients trust %s/ca.pem", hostname,
             (unsigned)hub_server_port(srv), hub_server_ipv6(srv) ? " and https://[::1]" : "",
             o->data_dir);
    while (sigwait(&sigs, &sig) != 0) {
    }
    LOG_INFO("stopping on signal %d", sig);
    hub_server_stop(srv);
    status = 0;
out_tls:
    hub_tls_identity_clear(&tls);
out_store:
    hub_store_close(st);
    free(stored);
    free(hostname);
    return status;
}

/* Decodes a --primary-key/--secondary-key value, or makes a random key when it is NULL. */
static int make_key(const char *b64, uint8_t *key, size_t *len)
{
    uint8_t *raw = NULL;
    size_t n = 0;

    if (b64 == NULL) {
        *len = HUB_KEY_DEFAULT;
        if (RAND_bytes(key, HUB_KEY_DEFAULT) != 1) {
            fprintf(stderr, "sctpm-hub: the random generator failed\n");
            return 1;
        }
        return 0;
    }
    if (base64_decode(b64, strlen(b64), &raw, &n) != SCTPM_RC_SUCCESS || n < HUB_KEY_MIN ||
        n > HUB_KEY_MAX) {
        fprintf(stderr, "sctpm-hub: a key must be base64 of %d to %d bytes\n", HUB_KEY_MIN,
                HUB_KEY_MAX);
        if (raw != NULL) {
            explicit_bzero(raw, n);
            free(raw);
        }
        return 1;
    }
    memcpy(key, raw, n);
    *len = n;
    explicit_bzero(raw, n);
    free(raw);
    return 0;
}

static int print_connection_string(const char *hostname, const struct hub_device *d)
{
    enum sctpm_rc rc;
    char *cs = NULL;

    rc = hub_connection_string(hostname, d->id, d->primary_key, d->primary_len, &cs);
    if (rc != SCTPM_RC_SUCCESS) {
        complain("connection string", rc);
        return 1;
    }
    printf("%s\n", cs);
    explicit_bzero(cs, strlen(cs));
    free(cs);
    return 0;
}

int hub_cli_device_add(const struct hub_cli *o)
{
    struct hub_store *st = NULL;
    struct hub_device d;
    char *hostname = NULL;
    enum sctpm_rc rc;
    int status = 1;

    memset(&d, 0, sizeof(d));
    if (!hub_device_id_valid(o->device_id)) {
        fprintf(stderr,
                "sctpm-hub: invalid device id \"%s\" (1-128 characters: letters, digits "
                "and -:.+%%_#*?!(),=@;$')\n",
                o->device_id);
        return 1;
    }
    strcpy(d.id, o->device_id);
    if (make_key(o->primary_key, d.primary_key, &d.primary_len) != 0 ||
        make_key(o->secondary_key, d.secondary_key, &d.secondary_len) != 0) {
        goto out;
    }
    d.enabled = !o->disabled;
    d.created_ms = hub_now_ms();
    d.updated_ms = d.created_ms;
    if (open_store(o, 1, &st) != 0) {
        goto out;
    }
    rc = hub_store_device_add(st, &d);
    if (rc == SCTPM_RC_EXISTS) {
        fprintf(stderr, "sctpm-hub: device %s already exists\n", d.id);
        goto out;
    }
    if (rc != SCTPM_RC_SUCCESS) {
        complain("add device", rc);
        goto out;
    }
    hostname = hostname_of(o, st);
    status = hostname != NULL ? print_connection_string(hostname, &d) : 1;
out:
    hub_device_wipe(&d);
    hub_store_close(st);
    free(hostname);
    return status;
}

static int list_one(void *ctx, const struct hub_device *d)
{
    char when[HUB_ISO_TIME_LEN];

    (void)ctx;
    hub_iso_time(d->created_ms, when);
    printf("%s %s created=%s\n", d->id, d->enabled ? "enabled" : "disabled", when);
    return 0;
}

int hub_cli_device_list(const struct hub_cli *o)
{
    struct hub_store *st = NULL;
    enum sctpm_rc rc;

    if (open_store(o, 0, &st) != 0) {
        return 1;
    }
    rc = hub_store_device_list(st, list_one, NULL);
    hub_store_close(st);
    if (rc != SCTPM_RC_SUCCESS) {
        complain("list devices", rc);
        return 1;
    }
    return 0;
}

/* Looks a device up, reporting a missing one the way every command should. */
static int get_device(struct hub_store *st, const char *id, struct hub_device *d)
{
    enum sctpm_rc rc = hub_store_device_get(st, id, d);

    if (rc == SCTPM_RC_NOT_FOUND) {
        fprintf(stderr, "sctpm-hub: device %s not found\n", id);
        return 1;
    }
    if (rc != SCTPM_RC_SUCCESS) {
        complain("look up device", rc);
        return 1;
    }
    return 0;
}

int hub_cli_device_show(const struct hub_cli *o)
{
    char created[HUB_ISO_TIME_LEN], updated[HUB_ISO_TIME_LEN];
    char pk[HUB_KEY_MAX * 2], sk[HUB_KEY_MAX * 2];
    struct hub_store *st = NULL;
    struct hub_device d;
    char *hostname = NULL;
    int status = 1;

    memset(&d, 0, sizeof(d));
    if (open_store(o, 0, &st) != 0) {
        return 1;
    }
    if (get_device(st, o->device_id, &d) != 0) {
        goto out;
    }
    hostname = hostname_of(o, st);
    if (hostname == NULL) {
        goto out;
    }
    hub_iso_time(d.created_ms, created);
    hub_iso_time(d.updated_ms, updated);
    base64_encode(d.primary_key, d.primary_len, pk);
    base64_encode(d.secondary_key, d.secondary_len, sk);
    printf("device-id: %s\nstatus: %s\ncreated: %s\nupdated: %s\nprimary-key: %s\n"
           "secondary-key: %s\nconnection-string: ",
           d.id, d.enabled ? "enabled" : "disabled", created, updated, pk, sk);
    explicit_bzero(pk, sizeof(pk));
    explicit_bzero(sk, sizeof(sk));
    status = print_connection_string(hostname, &d);
out:
    hub_device_wipe(&d);
    hub_store_close(st);
    free(hostname);
    return status;
}

int hub_cli_device_remove(const struct hub_cli *o)
{
    struct hub_store *st = NULL;
    enum sctpm_rc rc;

    if (open_store(o, 0, &st) != 0) {
        return 1;
    }
    rc = hub_store_device_remove(st, o->device_id);
    hub_store_close(st);
    if (rc == SCTPM_RC_NOT_FOUND) {
        fprintf(stderr, "sctpm-hub: device %s not found\n", o->device_id);
        return 1;
    }
    if (rc != SCTPM_RC_SUCCESS) {
        complain("remove device", rc);
        return 1;
    }
    return 0;
}

int hub_cli_device_enable(const struct hub_cli *o, int enabled)
{
    struct hub_store *st = NULL;
    enum sctpm_rc rc;

    if (open_store(o, 0, &st) != 0) {
        return 1;
    }
    rc = hub_store_device_set_enabled(st, o->device_id, enabled, hub_now_ms());
    hub_store_close(st);
    if (rc == SCTPM_RC_NOT_FOUND) {
        fprintf(stderr, "sctpm-hub: device %s not found\n", o->device_id);
        return 1;
    }
    if (rc != SCTPM_RC_SUCCESS) {
        complain(enabled ? "enable device" : "disable device", rc);
        return 1;
    }
    return 0;
}

struct print_ctx {
    int json;
    int failed;
};

/*
 * Prints one formatted line (callee-owned `line`, freed here); `rc` is the formatter's result.
 * Returns nonzero to stop the listing: on a formatting error, or when stdout is gone (a closed
 * pipe), since there is no one left to print for.
 */
static int print_line(struct print_ctx *p, enum sctpm_rc rc, char *line)
{
    if (rc != SCTPM_RC_SUCCESS) {
        p->failed = 1;
        return 1;
    }
    if (fputs(line, stdout) == EOF || fputc('\n', stdout) == EOF) {
        p->failed = 1;
    }
    free(line);
    return p->failed;
}

static int print_record(void *cls, const struct hub_record *r)
{
    struct print_ctx *p = cls;
    char *line = NULL;
    enum sctpm_rc rc = hub_format_record(r, p->json, &line);

    return print_line(p, rc, line);
}

int hub_cli_messages(const struct hub_cli *o)
{
    struct print_ctx p = {o->json, 0};
    struct hub_store *st = NULL;
    int64_t after = o->after_seq, last;
    enum sctpm_rc rc;
    sigset_t sigs;
    int status = 1;

    if (o->follow) {
        /* Taken synchronously by sigtimedwait(), which doubles as the poll interval. */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    }
    signal(SIGPIPE, SIG_IGN);
    if (open_store(o, 0, &st) != 0) {
        return 1;
    }
    for (;;) {
        rc = hub_store_messages(st, o->device_id, after, PAGE, print_record, &p, &last);
        if (p.failed) {
            goto out;
        }
        if (rc != SCTPM_RC_SUCCESS) {
            complain("read messages", rc);
            goto out;
        }
        if (fflush(stdout) == EOF) {
            goto out;
        }
        if (last != after) {
            after = last;
            continue;
        }
        if (!o->follow) {
            break;
        }
        {
            struct timespec ts = {0, FOLLOW_POLL_MS * 1000000L};

            if (sigtimedwait(&sigs, NULL, &ts) > 0) {
                break;
            }
        }
    }
    status = 0;
out:
    hub_store_close(st);
    return status;
}

/* Values sent back in HTTP headers must be printable ASCII. */
static int header_value_ok(const char *v)
{
    for (; *v != '\0'; v++) {
        if ((unsigned char)*v < 0x20 || (unsigned char)*v > 0x7e) {
            return 0;
        }
    }
    return 1;
}

/* Builds the cloud-to-device message from the command line. */
static int build_c2d(const struct hub_cli *o, struct hub_msg *m)
{
    const struct {
        const char *name;
        const char *value;
    } sys[] = {
        {"iothub-messageid", o->message_id},     {"iothub-correlationid", o->correlation_id},
        {"iothub-contenttype", o->content_type}, {"iothub-contentencoding", o->content_encoding},
        {"iothub-userid", o->user_id},
    };
    const char *why = "invalid property";
    size_t len = strlen(o->body);
    uint8_t *body;

    for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
        if (sys[i].value != NULL &&
            hub_msg_set_property(m, sys[i].name, sys[i].value, &why) != SCTPM_RC_SUCCESS) {
            fprintf(stderr, "sctpm-hub: %s: %s\n", sys[i].name + 7, why);
            return 1;
        }
    }
    for (unsigned i = 0; i < o->nprops; i++) {
        const char *eq = strchr(o->props[i], '=');
        char name[HUB_PROP_MAX + sizeof(HUB_APP_PREFIX)];

        if (eq == NULL || eq == o->props[i] || (size_t)(eq - o->props[i]) > HUB_PROP_MAX ||
            !header_value_ok(eq + 1)) {
            fprintf(stderr, "sctpm-hub: --property wants NAME=VALUE (printable ASCII): %s\n",
                    o->props[i]);
            return 1;
        }
        snprintf(name, sizeof(name), HUB_APP_PREFIX "%.*s", (int)(eq - o->props[i]), o->props[i]);
        if (hub_msg_set_property(m, name, eq + 1, &why) != SCTPM_RC_SUCCESS) {
            fprintf(stderr, "sctpm-hub: --property %s: %s\n", o->props[i], why);
            return 1;
        }
    }
    body = malloc(len + 1);
    if (body == NULL) {
        return 1;
    }
    memcpy(body, o->body, len);
    if (hub_msg_set_body(m, body, len) != SCTPM_RC_SUCCESS) {
        free(body);
        fprintf(stderr, "sctpm-hub: message too large\n");
        return 1;
    }
    if (hub_msg_finish(m) != SCTPM_RC_SUCCESS) {
        fprintf(stderr, "sctpm-hub: message too large\n");
        return 1;
    }
    return 0;
}

int hub_cli_c2d_send(const struct hub_cli *o)
{
    static const char *const acks[] = {"none", "positive", "negative", "full"};
    struct hub_store *st = NULL;
    struct hub_msg m;
    enum sctpm_rc rc;
    int status = 1, ack_ok = o->ack == NULL;

    for (size_t i = 0; i < sizeof(acks) / sizeof(acks[0]) && !ack_ok; i++) {
        ack_ok = strcmp(o->ack, acks[i]) == 0;
    }
    if (!ack_ok) {
        fprintf(stderr, "sctpm-hub: --ack must be none, positive, negative or full\n");
        return 2;
    }
    if (hub_msg_init(&m) != SCTPM_RC_SUCCESS) {
        complain("c2d send", SCTPM_RC_NO_MEMORY);
        return 1;
    }
    if (build_c2d(o, &m) != 0 || open_store(o, 0, &st) != 0) {
        goto out;
    }
    rc = hub_store_c2d_send(st, o->device_id, &m, o->ack, hub_now_ms(), (int64_t)o->ttl_s * 1000,
                            HUB_C2D_MAX_QUEUE);
    if (rc == SCTPM_RC_NOT_FOUND) {
        fprintf(stderr, "sctpm-hub: device %s not found\n", o->device_id);
        goto out;
    }
    if (rc == SCTPM_RC_QUEUE_FULL) {
        fprintf(stderr, "sctpm-hub: device %s already has %d messages waiting\n", o->device_id,
                HUB_C2D_MAX_QUEUE);
        goto out;
    }
    if (rc != SCTPM_RC_SUCCESS) {
        complain("c2d send", rc);
        goto out;
    }
    printf("%s\n", m.message_id);
    status = 0;
out:
    hub_msg_clear(&m);
    hub_store_close(st);
    return status;
}

static int print_c2d(void *cls, const struct hub_c2d_record *r)
{
    struct print_ctx *p = cls;
    char *line = NULL;
    enum sctpm_rc rc = hub_format_c2d(r, p->json, &line);

    return print_line(p, rc, line);
}

int hub_cli_c2d_list(const struct hub_cli *o)
{
    struct print_ctx p = {o->json, 0};
    struct hub_store *st = NULL;
    enum sctpm_rc rc;

    if (open_store(o, 0, &st) != 0) {
        return 1;
    }
    rc = hub_store_c2d_list(st, o->device_id, print_c2d, &p);
    hub_store_close(st);
    if (rc != SCTPM_RC_SUCCESS && !p.failed) {
        complain("list the queue", rc);
    }
    return rc == SCTPM_RC_SUCCESS && fflush(stdout) == 0 ? 0 : 1;
}

int hub_cli_token(const struct hub_cli *o)
{
    struct hub_store *st = NULL;
    struct hub_device d;
    char *hostname = NULL, *sr = NULL, *token = NULL;
    enum sctpm_rc rc;
    int status = 1;

    memset(&d, 0, sizeof(d));
    if (open_store(o, 0, &st) != 0) {
        return 1;
    }
    if (get_device(st, o->device_id, &d) != 0) {
        goto out;
    }
    hostname = hostname_of(o, st);
    /* The C SDK's form: the scope is not URL-encoded (where it need not be), signed as sent. */
    rc = hostname != NULL ? hub_sas_device_scope(hostname, d.id, &sr) : SCTPM_RC_NO_MEMORY;
    if (rc != SCTPM_RC_SUCCESS) {
        complain("token", rc);
        goto out;
    }
    rc = hub_sas_sign(sr, hub_now_ms() / 1000 + o->ttl_s, d.primary_key, d.primary_len, &token);
    if (rc != SCTPM_RC_SUCCESS) {
        complain("token", rc);
        goto out;
    }
    printf("%s\n", token);
    status = 0;
out:
    if (token != NULL) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    hub_device_wipe(&d);
    hub_store_close(st);
    free(sr);
    free(hostname);
    return status;
}
