/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * hub-client: a small IoT Hub device client on libcurl, for the hub's tests and benchmark.
 *
 * It shares no code with the hub (only common/'s base64 and URL encoding): tokens are signed
 * and requests built here independently, as a device would, so a test that passes shows the
 * hub agrees with a separate implementation of the protocol, not with itself.
 *
 *   hub-client [OPTIONS] COMMAND [ARGS]
 *
 * Options (before the command):
 *   --url https://HOST:PORT      the hub (HOST is what tokens and TLS names use)
 *   --connect-to ADDR            connect to ADDR instead of resolving HOST (default 127.0.0.1)
 *   --cacert FILE                trust this CA; without it the system store is used
 *   --device ID --key BASE64     device credentials (or --connection-string CS)
 *   --token TOKEN                send this Authorization value instead of signing one
 *   --ttl SECONDS                token lifetime, may be negative (default 3600)
 *   --api-version V              (default 2020-03-13)
 *
 * Commands:
 *   token                                 print a token
 *   send BODY [--id ID] [--cid ID] [--ct TYPE] [--ce ENC] [--prop NAME=VALUE]...
 *   batch N [--id-prefix P]               one batch request with N messages
 *   receive                               print the next cloud-to-device message
 *   complete|reject|abandon ETAG
 *   load CONNECTIONS REQUESTS [--batch N | --receive]
 *                                         concurrent keep-alive senders (or receivers, on an
 *                                         empty queue: authentication and HTTP without a
 *                                         commit, the benchmark's yardstick); prints statistics
 *   scenario                              the whole device API over one keep-alive connection;
 *                                         expects three queued messages "c2d-1".."c2d-3"
 * Output is one line of key=value pairs per request; the exit status is 0 when every request
 * got the status the command expects, 1 when not, 2 for usage errors, 3 for transport errors.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base64.h"
#include "urlenc.h"

#define MAX_PROPS    32
#define MAX_RESPONSE (1024 * 1024)

struct config {
    const char *url;
    char host[256];
    long port;
    const char *connect_to;
    const char *cacert;
    char device[200];
    uint8_t key[64];
    size_t key_len;
    const char *token;
    long ttl;
    const char *api_version;
};

static struct config cfg = {.connect_to = "127.0.0.1", .ttl = 3600, .api_version = "2020-03-13"};

/* A response: status, headers and body. */
struct response {
    long status;
    char *headers;
    size_t headers_len;
    char *body;
    size_t body_len;
    CURLcode code;
    char error[CURL_ERROR_SIZE];
};

static void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void die(int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("hub-client: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(status);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Signs a device token the way the C SDK does: sr not encoded, sig URL-encoded. */
static char *make_token(void)
{
    char sr[600], se[32], msg[640], b64[64], *sig = NULL, *tok;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    size_t n;

    if (cfg.token != NULL) {
        return strdup(cfg.token);
    }
    snprintf(sr, sizeof(sr), "%s/devices/%s", cfg.host, cfg.device);
    snprintf(se, sizeof(se), "%lld", (long long)time(NULL) + cfg.ttl);
    n = (size_t)snprintf(msg, sizeof(msg), "%s\n%s", sr, se);
    if (HMAC(EVP_sha256(), cfg.key, (int)cfg.key_len, (unsigned char *)msg, n, mac, &maclen) ==
        NULL) {
        die(3, "HMAC failed");
    }
    base64_encode(mac, maclen, b64);
    if (url_encode(b64, strlen(b64), &sig) != SCTPM_RC_SUCCESS) {
        die(3, "out of memory");
    }
    n = strlen(sr) + strlen(sig) + strlen(se) + 64;
    tok = malloc(n);
    if (tok == NULL) {
        die(3, "out of memory");
    }
    snprintf(tok, n, "SharedAccessSignature sr=%s&sig=%s&se=%s", sr, sig, se);
    free(sig);
    return tok;
}

static size_t collect(char *data, size_t size, size_t nmemb, void *cls, int headers)
{
    struct response *r = cls;
    size_t n = size * nmemb;
    char **buf = headers ? &r->headers : &r->body;
    size_t *len = headers ? &r->headers_len : &r->body_len;
    char *p;

    if (*len + n > MAX_RESPONSE) {
        return 0;
    }
    p = realloc(*buf, *len + n + 1);
    if (p == NULL) {
        return 0;
    }
    memcpy(p + *len, data, n);
    *len += n;
    p[*len] = '\0';
    *buf = p;
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *cls)
{
    return collect(data, size, nmemb, cls, 0);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *cls)
{
    struct response *r = cls;

    /* Keep only the last response's headers (a 100 Continue may come first). */
    if (size * nmemb >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        free(r->headers);
        r->headers = NULL;
        r->headers_len = 0;
    }
    return collect(data, size, nmemb, cls, 1);
}

static void response_clear(struct response *r)
{
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* Returns the value of response header `name` (case-insensitive) in a static-ish buffer. */
static int header_value(const struct response *r, const char *name, char *out, size_t size)
{
    size_t nl = strlen(name);
    const char *p = r->headers;

    out[0] = '\0';
    while (p != NULL && *p != '\0') {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);

        if (len > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            size_t vl = len - nl - 1;
            while (vl > 0 && *v == ' ') {
                v++;
                vl--;
            }
            snprintf(out, size, "%.*s", (int)vl, v);
            return 1;
        }
        p = eol != NULL ? eol + 2 : NULL;
    }
    return 0;
}

/* HOST:PORT:ADDR for CURLOPT_RESOLVE, built once before any thread starts. */
static struct curl_slist *resolve;

static CURL *new_handle(void)
{
    CURL *h = curl_easy_init();

    if (h == NULL) {
        die(3, "curl_easy_init failed");
    }
    curl_easy_setopt(h, CURLOPT_RESOLVE, resolve);
    if (cfg.cacert != NULL) {
        curl_easy_setopt(h, CURLOPT_CAINFO, cfg.cacert);
    }
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    return h;
}

/*
 * Performs one request on `h` (keeping its connection). `path` is appended to the URL, then
 * "?api-version=..." and `query`. `headers` (may be NULL) is added to Authorization.
 */
static void request(CURL *h, const char *method, const char *path, const char *query,
                    struct curl_slist *headers, const void *body, size_t body_len,
                    struct response *r)
{
    char url[2048], auth[1200];
    struct curl_slist *all = NULL;
    char *token = make_token();

    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "%s%s?api-version=%s%s", cfg.url, path, cfg.api_version,
             query != NULL ? query : "");
    snprintf(auth, sizeof(auth), "Authorization: %s", token);
    free(token);
    all = curl_slist_append(all, auth);
    /* Identify as the C SDK does, and stop curl's Expect: 100-continue round trip. */
    all = curl_slist_append(all, "User-Agent: sctpm-hub-client/1.0");
    all = curl_slist_append(all, "Expect:");
    for (struct curl_slist *l = headers; l != NULL; l = l->next) {
        all = curl_slist_append(all, l->data);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, all);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->error);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    } else if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    r->code = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(all);
}

/* Prints a transport failure and exits: there is no HTTP status to report. */
static void check_transport(const struct response *r)
{
    if (r->code != CURLE_OK) {
        printf("error=%d curl=\"%s\" detail=\"%s\"\n", (int)r->code, curl_easy_strerror(r->code),
               r->error);
        fflush(stdout);
        exit(3);
    }
}

static void device_path(char *out, size_t size, const char *tail)
{
    char *enc = NULL;

    /* The C SDK URL-encodes the device id in the path. */
    if (url_encode(cfg.device, strlen(cfg.device), &enc) != SCTPM_RC_SUCCESS) {
        die(3, "out of memory");
    }
    snprintf(out, size, "/devices/%s%s", enc, tail);
    free(enc);
}

/* Parses the arguments of send into headers; returns the body. */
static const char *send_args(int argc, char **argv, struct curl_slist **headers)
{
    const char *body = NULL;
    char line[1200];

    for (int i = 0; i < argc; i++) {
        const char *name = NULL;

        if (strcmp(argv[i], "--id") == 0) {
            name = "iothub-messageid";
        } else if (strcmp(argv[i], "--cid") == 0) {
            name = "iothub-correlationid";
        } else if (strcmp(argv[i], "--ct") == 0) {
            name = "iothub-contenttype";
        } else if (strcmp(argv[i], "--ce") == 0) {
            name = "iothub-contentencoding";
        } else if (strcmp(argv[i], "--header") == 0 && i + 1 < argc) {
            *headers = curl_slist_append(*headers, argv[++i]);
            continue;
        } else if (strcmp(argv[i], "--prop") == 0 && i + 1 < argc) {
            const char *eq = strchr(argv[++i], '=');
            if (eq == NULL) {
                die(2, "--prop wants NAME=VALUE");
            }
            snprintf(line, sizeof(line), "iothub-app-%.*s: %s", (int)(eq - argv[i]), argv[i],
                     eq + 1);
            *headers = curl_slist_append(*headers, line);
            continue;
        } else if (body == NULL && argv[i][0] != '-') {
            body = argv[i];
            continue;
        } else {
            die(2, "send: unexpected argument %s", argv[i]);
        }
        if (i + 1 >= argc) {
            die(2, "%s wants a value", argv[i]);
        }
        snprintf(line, sizeof(line), "%s: %s", name, argv[++i]);
        *headers = curl_slist_append(*headers, line);
    }
    if (body == NULL) {
        die(2, "send wants a body");
    }
    return body;
}

/* Builds a batch body of `n` messages; ids are "<prefix>-<i>" when prefix is not NULL. */
static char *batch_body(size_t n, const char *prefix, unsigned salt, size_t *len)
{
    size_t cap = 256 + n * 300, off = 0;
    char *buf = malloc(cap);

    if (buf == NULL) {
        die(3, "out of memory");
    }
    off += (size_t)snprintf(buf + off, cap - off, "[");
    for (size_t i = 0; i < n; i++) {
        char text[100], b64[200];

        snprintf(text, sizeof(text), "{\"n\":%zu,\"t\":21.5,\"s\":%u}", i, salt);
        /* Alternate the two body forms the C SDK sends. */
        if (i % 2 == 0) {
            base64_encode((const uint8_t *)text, strlen(text), b64);
            off += (size_t)snprintf(buf + off, cap - off, "%s{\"body\":\"%s\"", i ? "," : "", b64);
        } else {
            off += (size_t)snprintf(buf + off, cap - off,
                                    "%s{\"body\":\"{\\\"n\\\":%zu,"
                                    "\\\"t\\\":21.5,\\\"s\\\":%u}\","
                                    "\"base64Encoded\":false",
                                    i ? "," : "", i, salt);
        }
        off +=
            (size_t)snprintf(buf + off, cap - off, ",\"properties\":{\"iothub-app-n\":\"%zu\"", i);
        if (prefix != NULL) {
            off += (size_t)snprintf(buf + off, cap - off, ",\"iothub-messageid\":\"%s-%zu\"",
                                    prefix, i);
        }
        off += (size_t)snprintf(buf + off, cap - off, "}}");
    }
    off += (size_t)snprintf(buf + off, cap - off, "]");
    *len = off;
    return buf;
}

static int cmd_send(int argc, char **argv)
{
    struct curl_slist *headers = NULL;
    const char *body = send_args(argc, argv, &headers);
    struct response r;
    char path[600];
    CURL *h = new_handle();
    int ok;

    headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
    device_path(path, sizeof(path), "/messages/events");
    request(h, "POST", path, NULL, headers, body, strlen(body), &r);
    check_transport(&r);
    printf("status=%ld%s%s\n", r.status, r.body_len > 0 ? " body=" : "",
           r.body_len > 0 ? r.body : "");
    ok = r.status == 204;
    response_clear(&r);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return ok ? 0 : 1;
}

static int cmd_batch(int argc, char **argv)
{
    struct curl_slist *headers = NULL;
    const char *prefix = NULL;
    struct response r;
    char path[600], *body;
    size_t n, len;
    CURL *h = new_handle();
    int ok;

    if (argc < 1) {
        die(2, "batch wants a count");
    }
    n = strtoul(argv[0], NULL, 10);
    if (argc == 3 && strcmp(argv[1], "--id-prefix") == 0) {
        prefix = argv[2];
    }
    body = batch_body(n, prefix, 0, &len);
    headers = curl_slist_append(headers, "Content-Type: application/vnd.microsoft.iothub.json");
    device_path(path, sizeof(path), "/messages/events");
    request(h, "POST", path, NULL, headers, body, len, &r);
    check_transport(&r);
    printf("status=%ld%s%s\n", r.status, r.body_len > 0 ? " body=" : "",
           r.body_len > 0 ? r.body : "");
    ok = r.status == 204;
    free(body);
    response_clear(&r);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return ok ? 0 : 1;
}

/* Prints a receive response: status, the useful headers, application properties and body. */
static void print_received(const struct response *r)
{
    static const char *const names[] = {"ETag",
                                        "iothub-messageid",
                                        "iothub-correlationid",
                                        "iothub-deliverycount",
                                        "iothub-sequencenumber",
                                        "ContentType",
                                        "ContentEncoding",
                                        "iothub-to"};
    char v[400];

    printf("status=%ld", r->status);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (header_value(r, names[i], v, sizeof(v))) {
            if (i == 0 && v[0] == '"') {
                /* Print the token bare, the way it goes back into the path. */
                size_t n = strlen(v);
                memmove(v, v + 1, n);
                if (n >= 2) {
                    v[n - 2] = '\0';
                }
                printf(" etag=%s", v);
                continue;
            }
            printf(" %s=%s", names[i], v);
        }
    }
    for (const char *p = r->headers; p != NULL && *p != '\0';) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        if (len > 11 && strncmp(p, "iothub-app-", 11) == 0) {
            const char *colon = memchr(p, ':', len);
            if (colon != NULL) {
                printf(" app.%.*s=%.*s", (int)(colon - p - 11), p + 11,
                       (int)(len - (size_t)(colon - p) - 2), colon + 2);
            }
        }
        p = eol != NULL ? eol + 2 : NULL;
    }
    if (r->body_len > 0) {
        printf(" body=%.*s", (int)r->body_len, r->body);
    }
    printf("\n");
}

static int cmd_receive(void)
{
    struct response r;
    char path[600];
    CURL *h = new_handle();
    int ok;

    device_path(path, sizeof(path), "/messages/devicebound");
    request(h, "GET", path, NULL, NULL, NULL, 0, &r);
    check_transport(&r);
    print_received(&r);
    ok = r.status == 200 || r.status == 204;
    response_clear(&r);
    curl_easy_cleanup(h);
    return ok ? 0 : 1;
}

/* complete, reject or abandon with `etag`, on handle `h`; returns the status. */
static long settle(CURL *h, const char *what, const char *etag, struct response *r)
{
    struct curl_slist *headers = NULL;
    char path[800], tail[300], ifmatch[300];

    snprintf(ifmatch, sizeof(ifmatch), "If-Match: \"%s\"", etag);
    headers = curl_slist_append(headers, ifmatch);
    if (strcmp(what, "abandon") == 0) {
        snprintf(tail, sizeof(tail), "/messages/deviceBound/%s/abandon", etag);
        device_path(path, sizeof(path), tail);
        request(h, "POST", path, NULL, headers, NULL, 0, r);
    } else {
        snprintf(tail, sizeof(tail), "/messages/devicebound/%s", etag);
        device_path(path, sizeof(path), tail);
        request(h, "DELETE", path, strcmp(what, "reject") == 0 ? "&reject" : NULL, headers, NULL, 0,
                r);
    }
    curl_slist_free_all(headers);
    check_transport(r);
    return r->status;
}

static int cmd_settle(const char *what, int argc, char **argv)
{
    struct response r;
    CURL *h = new_handle();
    long status;

    if (argc != 1) {
        die(2, "%s wants an etag", what);
    }
    status = settle(h, what, argv[0], &r);
    printf("status=%ld%s%s\n", status, r.body_len > 0 ? " body=" : "",
           r.body_len > 0 ? r.body : "");
    response_clear(&r);
    curl_easy_cleanup(h);
    return status == 204 ? 0 : 1;
}

/* The load generator: each thread sends over its own keep-alive connection. */
struct worker {
    pthread_t thread;
    unsigned index;
    size_t requests;
    size_t batch;
    int receive;
    size_t ok;
    size_t errors;
    long connects;
    double *latency;
    long first_bad_status;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    struct curl_slist *headers = NULL;
    char path[600];
    CURL *h = new_handle();

    headers = curl_slist_append(headers, w->batch > 0
                                             ? "Content-Type: application/vnd.microsoft.iothub.json"
                                             : "Content-Type: application/json");
    device_path(path, sizeof(path), w->receive ? "/messages/devicebound" : "/messages/events");
    for (size_t i = 0; i < w->requests; i++) {
        struct response r;
        char single[128], *body = single;
        size_t len = 0;
        long connects = 0;
        double t0;

        if (w->receive) {
            /* A GET: no body. */
        } else if (w->batch > 0) {
            body = batch_body(w->batch, NULL, w->index, &len);
        } else {
            len = (size_t)snprintf(single, sizeof(single), "{\"w\":%u,\"n\":%zu,\"t\":21.5}",
                                   w->index, i);
            body = single;
        }
        t0 = now_s();
        if (w->receive) {
            request(h, "GET", path, NULL, NULL, NULL, 0, &r);
        } else {
            request(h, "POST", path, NULL, headers, body, len, &r);
        }
        w->latency[i] = now_s() - t0;
        curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
        w->connects += connects;
        if (r.code == CURLE_OK && r.status == 204) {
            w->ok++;
        } else {
            if (w->errors == 0) {
                w->first_bad_status = r.code != CURLE_OK ? -(long)r.code : r.status;
            }
            w->errors++;
        }
        response_clear(&r);
        if (body != single) {
            free(body);
        }
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return NULL;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int cmd_load(int argc, char **argv)
{
    size_t conns, reqs, batch = 0, total, ok = 0, errors = 0, k = 0;
    int receive = 0;
    struct worker *w;
    double *all, t0, elapsed;
    long connects = 0, bad = 0;

    if (argc < 2) {
        die(2, "load wants CONNECTIONS REQUESTS");
    }
    conns = strtoul(argv[0], NULL, 10);
    reqs = strtoul(argv[1], NULL, 10);
    if (argc == 4 && strcmp(argv[2], "--batch") == 0) {
        batch = strtoul(argv[3], NULL, 10);
    } else if (argc == 3 && strcmp(argv[2], "--receive") == 0) {
        receive = 1;
    } else if (argc != 2) {
        die(2, "load CONNECTIONS REQUESTS [--batch N | --receive]");
    }
    if (conns == 0 || conns > 256 || reqs == 0 || reqs > 10000000) {
        die(2, "load: 1-256 connections, at least one request each");
    }
    w = calloc(conns, sizeof(*w));
    all = calloc(conns * reqs, sizeof(*all));
    if (w == NULL || all == NULL) {
        die(3, "out of memory");
    }
    t0 = now_s();
    for (size_t i = 0; i < conns; i++) {
        w[i].index = (unsigned)i;
        w[i].requests = reqs;
        w[i].batch = batch;
        w[i].receive = receive;
        w[i].latency = all + i * reqs;
        if (pthread_create(&w[i].thread, NULL, work, &w[i]) != 0) {
            die(3, "pthread_create failed");
        }
    }
    for (size_t i = 0; i < conns; i++) {
        pthread_join(w[i].thread, NULL);
        ok += w[i].ok;
        errors += w[i].errors;
        connects += w[i].connects;
        if (bad == 0) {
            bad = w[i].first_bad_status;
        }
    }
    elapsed = now_s() - t0;
    total = conns * reqs;
    qsort(all, total, sizeof(*all), by_value);
    k = total * 99 / 100;
    printf("connections=%zu requests=%zu batch=%zu ok=%zu errors=%zu tcp_connects=%ld "
           "elapsed_s=%.3f requests_per_s=%.1f messages_per_s=%.1f p50_ms=%.2f p99_ms=%.2f "
           "max_ms=%.2f",
           conns, total, batch, ok, errors, connects, elapsed, (double)total / elapsed,
           (double)total * (double)(batch > 0 ? batch : 1) / elapsed, all[total / 2] * 1000,
           all[k < total ? k : total - 1] * 1000, all[total - 1] * 1000);
    if (bad != 0) {
        printf(" first_error=%ld", bad);
    }
    printf("\n");
    free(all);
    free(w);
    return errors == 0 ? 0 : 1;
}

/* Asserts for the scenario: print the step and stop at the first surprise. */
static int step_failed;

static void expect(int cond, const char *what, const struct response *r)
{
    printf("%s %s (status %ld)\n", cond ? "ok" : "FAILED", what, r->status);
    if (!cond) {
        step_failed = 1;
        if (r->body_len > 0) {
            printf("  body: %.*s\n", (int)r->body_len, r->body);
        }
    }
}

/* Receives on `h` and checks the body; returns the bare lock token in `etag`. */
static void receive_expect(CURL *h, const char *body, const char *count, char *etag, size_t size)
{
    struct response r;
    char path[600], v[400], what[200];

    device_path(path, sizeof(path), "/messages/devicebound");
    request(h, "GET", path, NULL, NULL, NULL, 0, &r);
    check_transport(&r);
    snprintf(what, sizeof(what), "receive \"%s\"", body);
    expect(r.status == 200 && r.body_len == strlen(body) && memcmp(r.body, body, r.body_len) == 0,
           what, &r);
    header_value(&r, "iothub-deliverycount", v, sizeof(v));
    snprintf(what, sizeof(what), "delivery count %s", count);
    expect(strcmp(v, count) == 0, what, &r);
    header_value(&r, "ETag", v, sizeof(v));
    expect(strlen(v) > 2 && v[0] == '"' && v[strlen(v) - 1] == '"', "ETag is quoted", &r);
    snprintf(etag, size, "%.*s", (int)(strlen(v) > 2 ? strlen(v) - 2 : 0), v + 1);
    response_clear(&r);
}

static int cmd_scenario(void)
{
    struct curl_slist *headers = NULL;
    struct response r;
    char path[600], etag[200], old[200], v[400];
    CURL *h = new_handle();
    long connects = 0, n = 0;
    size_t len;
    char *body;

    device_path(path, sizeof(path), "/messages/events");

    /* Telemetry with every system property and two application properties. */
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "iothub-to: /devices/x/messages/events");
    headers = curl_slist_append(headers, "iothub-messageid: scenario-1");
    headers = curl_slist_append(headers, "iothub-correlationid: corr-1");
    headers = curl_slist_append(headers, "iothub-contenttype: application/json");
    headers = curl_slist_append(headers, "iothub-contentencoding: utf-8");
    headers = curl_slist_append(headers, "iothub-app-temperature: 21.5");
    headers = curl_slist_append(headers, "iothub-app-unit: celsius");
    request(h, "POST", path, NULL, headers, "{\"scenario\":1}", 14, &r);
    check_transport(&r);
    expect(r.status == 204, "telemetry with properties", &r);
    response_clear(&r);
    request(h, "POST", path, NULL, headers, "{\"scenario\":1}", 14, &r);
    check_transport(&r);
    expect(r.status == 204, "the same message id again (acknowledged, stored once)", &r);
    response_clear(&r);
    curl_slist_free_all(headers);

    /* A batch of three with ids, both body encodings. */
    headers = curl_slist_append(NULL, "Content-Type: application/vnd.microsoft.iothub.json");
    body = batch_body(3, "scenario-batch", 7, &len);
    request(h, "POST", path, NULL, headers, body, len, &r);
    check_transport(&r);
    expect(r.status == 204, "batch of three", &r);
    response_clear(&r);
    free(body);
    curl_slist_free_all(headers);

    /* Cloud-to-device: complete, reject, abandon and redelivery, lock tokens used once. */
    receive_expect(h, "c2d-1", "1", etag, sizeof(etag));
    settle(h, "complete", etag, &r);
    expect(r.status == 204, "complete", &r);
    response_clear(&r);
    settle(h, "complete", etag, &r);
    expect(r.status == 412, "complete with a used lock token is 412", &r);
    header_value(&r, "iothub-errorcode", v, sizeof(v));
    expect(strcmp(v, "DeviceMessageLockLost") == 0, "iothub-errorcode DeviceMessageLockLost", &r);
    response_clear(&r);
    receive_expect(h, "c2d-2", "1", etag, sizeof(etag));
    settle(h, "reject", etag, &r);
    expect(r.status == 204, "reject", &r);
    response_clear(&r);
    receive_expect(h, "c2d-3", "1", etag, sizeof(etag));
    snprintf(old, sizeof(old), "%s", etag);
    settle(h, "abandon", etag, &r);
    expect(r.status == 204, "abandon", &r);
    response_clear(&r);
    receive_expect(h, "c2d-3", "2", etag, sizeof(etag));
    expect(strcmp(old, etag) != 0, "a redelivery has a new lock token", &r);
    settle(h, "complete", old, &r);
    expect(r.status == 412, "the abandoned lock token is dead", &r);
    response_clear(&r);
    settle(h, "complete", etag, &r);
    expect(r.status == 204, "complete the redelivery", &r);
    response_clear(&r);
    device_path(path, sizeof(path), "/messages/devicebound");
    request(h, "GET", path, NULL, NULL, NULL, 0, &r);
    check_transport(&r);
    expect(r.status == 204 && r.body_len == 0, "empty queue is 204", &r);
    response_clear(&r);

    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &n);
    connects = n;
    printf("%s all requests on one keep-alive connection (last request opened %ld)\n",
           connects == 0 ? "ok" : "FAILED", connects);
    if (connects != 0) {
        step_failed = 1;
    }
    curl_easy_cleanup(h);
    return step_failed ? 1 : 0;
}

static void parse_url(const char *url)
{
    const char *p;
    char *end;

    if (strncmp(url, "https://", 8) != 0) {
        die(2, "--url must be https://HOST:PORT");
    }
    p = strrchr(url + 8, ':');
    if (p == NULL || (size_t)(p - url - 8) >= sizeof(cfg.host)) {
        die(2, "--url must be https://HOST:PORT");
    }
    snprintf(cfg.host, sizeof(cfg.host), "%.*s", (int)(p - url - 8), url + 8);
    cfg.port = strtol(p + 1, &end, 10);
    if (*end != '\0' && *end != '/') {
        die(2, "--url must be https://HOST:PORT");
    }
    cfg.url = url;
}

static void set_key(const char *b64)
{
    uint8_t *key = NULL;
    size_t n = 0;

    if (base64_decode(b64, strlen(b64), &key, &n) != SCTPM_RC_SUCCESS || n > sizeof(cfg.key)) {
        die(2, "the key must be base64 of at most 64 bytes");
    }
    memcpy(cfg.key, key, n);
    cfg.key_len = n;
    free(key);
}

static void connection_string(const char *cs)
{
    char *copy = strdup(cs), *save = NULL;

    if (copy == NULL) {
        die(3, "out of memory");
    }
    for (char *f = strtok_r(copy, ";", &save); f != NULL; f = strtok_r(NULL, ";", &save)) {
        if (strncmp(f, "HostName=", 9) == 0) {
            snprintf(cfg.host, sizeof(cfg.host), "%s", f + 9);
        } else if (strncmp(f, "DeviceId=", 9) == 0) {
            snprintf(cfg.device, sizeof(cfg.device), "%s", f + 9);
        } else if (strncmp(f, "SharedAccessKey=", 16) == 0) {
            set_key(f + 16);
        }
    }
    free(copy);
}

int main(int argc, char **argv)
{
    static char url[400];
    int i = 1, status;

    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (val == NULL) {
            die(2, "%s wants a value", opt);
        }
        if (strcmp(opt, "--url") == 0) {
            parse_url(val);
        } else if (strcmp(opt, "--port") == 0) {
            cfg.port = strtol(val, NULL, 10);
        } else if (strcmp(opt, "--connect-to") == 0) {
            cfg.connect_to = val;
        } else if (strcmp(opt, "--cacert") == 0) {
            cfg.cacert = val;
        } else if (strcmp(opt, "--device") == 0) {
            snprintf(cfg.device, sizeof(cfg.device), "%s", val);
        } else if (strcmp(opt, "--key") == 0) {
            set_key(val);
        } else if (strcmp(opt, "--connection-string") == 0) {
            /* In order: options after it (--key, --device) override its fields. */
            connection_string(val);
        } else if (strcmp(opt, "--token") == 0) {
            cfg.token = val;
        } else if (strcmp(opt, "--ttl") == 0) {
            cfg.ttl = strtol(val, NULL, 10);
        } else if (strcmp(opt, "--api-version") == 0) {
            cfg.api_version = val;
        } else {
            die(2, "unknown option %s", opt);
        }
    }
    if (cfg.url == NULL && cfg.host[0] != '\0' && cfg.port != 0) {
        snprintf(url, sizeof(url), "https://%s:%ld", cfg.host, cfg.port);
        cfg.url = url;
    }
    if (i >= argc) {
        die(2, "no command (token, send, batch, receive, complete, reject, abandon, load, "
               "scenario)");
    }
    if (strcmp(argv[i], "token") == 0) {
        char *t = make_token();
        printf("%s\n", t);
        free(t);
        return 0;
    }
    if (cfg.url == NULL || cfg.device[0] == '\0' || (cfg.key_len == 0 && cfg.token == NULL)) {
        die(2, "--url (or --connection-string and --port), --device and --key are required");
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    {
        char entry[400];

        snprintf(entry, sizeof(entry), "%s:%ld:%s", cfg.host, cfg.port, cfg.connect_to);
        resolve = curl_slist_append(NULL, entry);
    }
    if (strcmp(argv[i], "send") == 0) {
        status = cmd_send(argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "batch") == 0) {
        status = cmd_batch(argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "receive") == 0) {
        status = cmd_receive();
    } else if (strcmp(argv[i], "complete") == 0 || strcmp(argv[i], "reject") == 0 ||
               strcmp(argv[i], "abandon") == 0) {
        status = cmd_settle(argv[i], argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "load") == 0) {
        status = cmd_load(argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "scenario") == 0) {
        status = cmd_scenario();
    } else {
        die(2, "unknown command %s", argv[i]);
    }
    curl_slist_free_all(resolve);
    curl_global_cleanup();
    return status;
}
