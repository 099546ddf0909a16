/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define LOGMODULE http
#include "log.h"
#include "http-priv.h"

struct http {
    CURL *easy;
    struct http_config cfg;
    FILE *log;
    STACK_OF(X509) * extra_cas; /* --ca-file, added to the store of each new connection */
    char errbuf[CURL_ERROR_SIZE];
    char err[640];
    int curl_code;
    int retryable;
    struct http_response *resp; /* the response being read */
    size_t header_bytes;
    int overflow;
};

static void set_err(struct http *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(struct http *h, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(h->err, sizeof(h->err), fmt, ap);
    va_end(ap);
}

void http_redact(const char *line, size_t len, char *out, size_t size)
{
    static const char auth[] = "authorization:";
    static const char mark[] = "[redacted]";
    size_t o = 0, i = 0;
    int is_auth = 0;

    if (size == 0) {
        return;
    }
    if (len >= sizeof(auth) - 1 && strncasecmp(line, auth, sizeof(auth) - 1) == 0) {
        is_auth = 1;
        /* Not a SAS token: nothing of the value is shown. */
        if (memmem(line, len, "sig=", 4) == NULL) {
            snprintf(out, size, "%.*s %s", (int)(sizeof(auth) - 1), line, mark);
            return;
        }
    }
    while (i < len && o + 1 < size) {
        if (i + 4 <= len && memcmp(line + i, "sig=", 4) == 0 &&
            (i == 0 || line[i - 1] == '&' || line[i - 1] == ' ' || line[i - 1] == '?' || is_auth)) {
            size_t n = snprintf(out + o, size - o, "sig=%s", mark);
            o = o + n < size ? o + n : size - 1;
            i += 4;
            while (i < len && line[i] != '&' && line[i] != ' ' && line[i] != '\r' &&
                   line[i] != '\n') {
                i++;
            }
            continue;
        }
        out[o++] = isprint((unsigned char)line[i]) ? line[i] : '.';
        i++;
    }
    out[o] = '\0';
}

/* Prints each line of `data` with `prefix`, redacted; CR LF endings are dropped. */
static void log_lines(struct http *h, const char *prefix, const char *data, size_t len)
{
    char out[1024];
    size_t start = 0;

    while (start < len) {
        size_t end = start, n;

        while (end < len && data[end] != '\n') {
            end++;
        }
        n = end - start;
        if (n > 0 && data[start + n - 1] == '\r') {
            n--;
        }
        if (n > 0) {
            http_redact(data + start, n, out, sizeof(out));
            fprintf(h->log, "%s%s\n", prefix, out);
        }
        start = end + 1;
    }
}

static int on_debug(CURL *easy, curl_infotype type, char *data, size_t size, void *ctx)
{
    struct http *h = ctx;

    (void)easy;
    switch (type) {
    case CURLINFO_TEXT:
        log_lines(h, "* ", data, size);
        break;
    case CURLINFO_HEADER_OUT:
        log_lines(h, "> ", data, size);
        break;
    case CURLINFO_HEADER_IN:
        log_lines(h, "< ", data, size);
        break;
    case CURLINFO_DATA_OUT:
        fprintf(h->log, "> [%zu bytes of body]\n", size);
        break;
    case CURLINFO_DATA_IN:
        fprintf(h->log, "< [%zu bytes of body]\n", size);
        break;
    default:
        break;
    }
    fflush(h->log);
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct http *h = ctx;
    struct http_response *r = h->resp;
    size_t n = size * nmemb;
    char *p;

    if (r->body_len + n > HTTP_RESPONSE_MAX) {
        h->overflow = 1;
        return 0;
    }
    p = realloc(r->body, r->body_len + n + 1);
    if (p == NULL) {
        return 0;
    }
    memcpy(p + r->body_len, data, n);
    r->body = p;
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

static void clear_headers(struct http_response *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    r->nheaders = 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct http *h = ctx;
    struct http_response *r = h->resp;
    size_t n = size * nmemb, name_len, vstart, vend;
    const char *colon;

    h->header_bytes += n;
    if (h->header_bytes > HTTP_RESPONSE_MAX) {
        h->overflow = 1;
        return 0;
    }
    /* A status line starts a new response (after a 100 Continue or a proxy's CONNECT). */
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        clear_headers(r);
        return n;
    }
    colon = memchr(data, ':', n);
    if (colon == NULL) {
        return n;
    }
    if (r->nheaders == HTTP_HEADERS_MAX) {
        h->overflow = 1;
        return 0;
    }
    name_len = (size_t)(colon - data);
    vstart = name_len + 1;
    while (vstart < n && (data[vstart] == ' ' || data[vstart] == '\t')) {
        vstart++;
    }
    vend = n;
    while (vend > vstart && (data[vend - 1] == '\r' || data[vend - 1] == '\n' ||
                             data[vend - 1] == ' ' || data[vend - 1] == '\t')) {
        vend--;
    }
    r->headers[r->nheaders].name = strndup(data, name_len);
    r->headers[r->nheaders].value = strndup(data + vstart, vend - vstart);
    if (r->headers[r->nheaders].name == NULL || r->headers[r->nheaders].value == NULL) {
        free(r->headers[r->nheaders].name);
        free(r->headers[r->nheaders].value);
        return 0;
    }
    r->nheaders++;
    return n;
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct http *h = ctx;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return h->cfg.stop != NULL && *h->cfg.stop ? 1 : 0;
}

static CURLcode on_ssl_ctx(CURL *easy, void *sslctx, void *ctx)
{
    struct http *h = ctx;
    X509_STORE *store = SSL_CTX_get_cert_store((SSL_CTX *)sslctx);

    (void)easy;
    if (store == NULL) {
        return CURLE_SSL_CACERT_BADFILE;
    }
    for (int i = 0; i < sk_X509_num(h->extra_cas); i++) {
        /* OpenSSL 3 accepts a certificate already in the store. */
        if (X509_STORE_add_cert(store, sk_X509_value(h->extra_cas, i)) != 1) {
            ERR_clear_error();
            return CURLE_SSL_CACERT_BADFILE;
        }
    }
    return CURLE_OK;
}

/* Reads every certificate in a PEM file. */
static int load_cas(struct http *h, const char *path, char *err, size_t err_size)
{
    BIO *bio = BIO_new_file(path, "r");
    X509 *x;

    if (bio == NULL) {
        snprintf(err, err_size, "--ca-file %s: cannot read it", path);
        ERR_clear_error();
        return -1;
    }
    h->extra_cas = sk_X509_new_null();
    while (h->extra_cas != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_push(h->extra_cas, x) <= 0) {
            X509_free(x);
            break;
        }
    }
    ERR_clear_error();
    BIO_free(bio);
    if (h->extra_cas == NULL || sk_X509_num(h->extra_cas) == 0) {
        snprintf(err, err_size, "--ca-file %s: no PEM certificate in it", path);
        return -1;
    }
    return 0;
}

static int backend_is_openssl(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

    return v != NULL && v->ssl_version != NULL && strncmp(v->ssl_version, "OpenSSL", 7) == 0;
}

enum sctpm_rc http_new(const struct http_config *cfg, struct http **hp, char *err, size_t err_size)
{
    struct http *h;
    CURL *e;
    int ok;

    *hp = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, err_size, "libcurl failed to initialise");
        return SCTPM_RC_GENERAL_FAILURE;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        curl_global_cleanup();
        snprintf(err, err_size, "out of memory");
        return SCTPM_RC_NO_MEMORY;
    }
    h->cfg = *cfg;
    h->log = cfg->log != NULL ? cfg->log : stderr;
    if (h->cfg.connect_timeout_ms <= 0) {
        h->cfg.connect_timeout_ms = HTTP_CONNECT_TIMEOUT_MS;
    }
    if (h->cfg.timeout_ms <= 0) {
        h->cfg.timeout_ms = HTTP_TIMEOUT_MS;
    }
    h->easy = e = curl_easy_init();
    if (e == NULL) {
        snprintf(err, err_size, "libcurl failed to initialise");
        http_free(h);
        return SCTPM_RC_NO_MEMORY;
    }
    ok = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->cfg.connect_timeout_ms) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->cfg.timeout_ms) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_USERAGENT, "sctpm-client/" PACKAGE_VERSION) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_WRITEDATA, h) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_HEADERDATA, h) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_XFERINFODATA, h) == CURLE_OK;
    if (ok && cfg->verbose) {
        ok = curl_easy_setopt(e, CURLOPT_VERBOSE, 1L) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_DEBUGDATA, h) == CURLE_OK;
    }
    if (!ok) {
        snprintf(err, err_size, "libcurl refused an option (is it older than 7.85?)");
        http_free(h);
        return SCTPM_RC_UNSUPPORTED;
    }
    if (cfg->ca_file != NULL) {
        if (load_cas(h, cfg->ca_file, err, err_size) != 0) {
            http_free(h);
            return SCTPM_RC_TLS;
        }
        if (backend_is_openssl()) {
            ok = curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx) == CURLE_OK &&
                 curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, h) == CURLE_OK;
        } else {
            ok = curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_file) == CURLE_OK;
            if (ok && cfg->verbose) {
                fprintf(h->log, "* libcurl's TLS backend is not OpenSSL: --ca-file replaces the "
                                "system CA bundle instead of adding to it\n");
            }
        }
        if (!ok) {
            snprintf(err, err_size, "libcurl refused the CA options");
            http_free(h);
            return SCTPM_RC_TLS;
        }
    }
    *hp = h;
    return SCTPM_RC_SUCCESS;
}

void http_free(struct http *h)
{
    if (h == NULL) {
        return;
    }
    if (h->easy != NULL) {
        curl_easy_cleanup(h->easy);
    }
    if (h->extra_cas != NULL) {
        sk_X509_pop_free(h->extra_cas, X509_free);
    }
    free(h);
    curl_global_cleanup();
}

void http_response_clear(struct http_response *r)
{
    clear_headers(r);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

const char *http_response_header(const struct http_response *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        if (strcasecmp(r->headers[i].name, name) == 0) {
            return r->headers[i].value;
        }
    }
    return NULL;
}

const char *http_error(const struct http *h)
{
    return h->err;
}

int http_retryable(const struct http *h)
{
    return h->retryable;
}

int http_curl_code(const struct http *h)
{
    return h->curl_code;
}

/* Classifies a transfer failure and writes the sentence users see. */
static enum sctpm_rc transfer_failed(struct http *h, CURLcode cc, const char *url)
{
    const char *detail = h->errbuf[0] != '\0' ? h->errbuf : curl_easy_strerror(cc);
    char where[300];
    const char *slash;

    /* "https://host:port" without the path: the path is ours and says nothing about the cause. */
    slash = strchr(url + (strncmp(url, "https://", 8) == 0 ? 8 : 0), '/');
    snprintf(where, sizeof(where), "%.*s", slash != NULL ? (int)(slash - url) : (int)strlen(url),
             url);
    h->curl_code = (int)cc;
    LOG_DEBUG("curl error %d on %s: %s", (int)cc, where, detail);
    switch (cc) {
    case CURLE_ABORTED_BY_CALLBACK:
        set_err(h, "interrupted");
        h->retryable = 0;
        return SCTPM_RC_INTERRUPTED;
    case CURLE_PEER_FAILED_VERIFICATION:
        set_err(h,
                "TLS: the server at %s could not be verified: %s (curl %d); check --ca-file and "
                "--endpoint",
                where, detail, (int)cc);
        h->retryable = 0;
        return SCTPM_RC_TLS;
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
        set_err(h, "TLS: %s: %s (curl %d)", where, detail, (int)cc);
        h->retryable = 0;
        return SCTPM_RC_TLS;
    case CURLE_SSL_CONNECT_ERROR:
        /* A handshake cut short by a restarting server looks the same as a refused one. */
        set_err(h, "TLS handshake with %s failed: %s (curl %d)", where, detail, (int)cc);
        h->retryable = 1;
        return SCTPM_RC_TLS;
    case CURLE_OPERATION_TIMEDOUT:
        set_err(h, "%s did not answer in time: %s (curl %d)", where, detail, (int)cc);
        h->retryable = 1;
        return SCTPM_RC_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
    case CURLE_SSL_SHUTDOWN_FAILED:
        set_err(h, "cannot reach %s: %s (curl %d)", where, detail, (int)cc);
        h->retryable = 1;
        return SCTPM_RC_NETWORK;
    case CURLE_WRITE_ERROR:
        if (h->overflow) {
            set_err(h, "%s sent an answer over %d bytes or %d headers", where, HTTP_RESPONSE_MAX,
                    HTTP_HEADERS_MAX);
            h->retryable = 0;
            return SCTPM_RC_TOO_LARGE;
        }
        set_err(h, "out of memory reading the answer of %s", where);
        h->retryable = 1;
        return SCTPM_RC_NO_MEMORY;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        set_err(h, "bad URL %s: %s (curl %d)", where, detail, (int)cc);
        h->retryable = 0;
        return SCTPM_RC_BAD_ARGUMENT;
    default:
        set_err(h, "request to %s failed: %s (curl %d)", where, detail, (int)cc);
        h->retryable = 1;
        return SCTPM_RC_NETWORK;
    }
}

enum sctpm_rc http_request(struct http *h, const char *method, const char *url,
                           const struct http_header *headers, size_t nheaders, const void *body,
                           size_t body_len, struct http_response *resp)
{
    struct curl_slist *list = NULL, *tmp;
    enum sctpm_rc rc = SCTPM_RC_NO_MEMORY;
    CURL *e = h->easy;
    CURLcode cc;
    char *line = NULL;
    int ok;

    memset(resp, 0, sizeof(*resp));
    h->resp = resp;
    h->errbuf[0] = '\0';
    h->err[0] = '\0';
    h->curl_code = 0;
    h->retryable = 0;
    h->overflow = 0;
    h->header_bytes = 0;
    if (h->cfg.stop != NULL && *h->cfg.stop) {
        set_err(h, "interrupted");
        return SCTPM_RC_INTERRUPTED;
    }
    for (size_t i = 0; i < nheaders; i++) {
        if (asprintf(&line, "%s: %s", headers[i].name, headers[i].value) < 0) {
            line = NULL;
            goto out;
        }
        tmp = curl_slist_append(list, line);
        free(line);
        line = NULL;
        if (tmp == NULL) {
            goto out;
        }
        list = tmp;
    }
    /* No "Expect: 100-continue" round trip before bodies over 1 KiB. */
    tmp = curl_slist_append(list, "Expect:");
    if (tmp == NULL) {
        goto out;
    }
    list = tmp;
    ok = curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_HTTPHEADER, list) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    if (ok && strcmp(method, "POST") == 0) {
        ok = curl_easy_setopt(e, CURLOPT_POST, 1L) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_POSTFIELDS, body_len > 0 ? body : "") == CURLE_OK;
    } else if (ok && strcmp(method, "GET") != 0) {
        ok = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
    }
    if (!ok) {
        set_err(h, "libcurl refused the request options");
        rc = SCTPM_RC_BAD_ARGUMENT;
        goto out;
    }
    cc = curl_easy_perform(e);
    if (cc != CURLE_OK) {
        rc = transfer_failed(h, cc, url);
        goto out;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
    rc = SCTPM_RC_SUCCESS;
out:
    if (rc == SCTPM_RC_NO_MEMORY && h->err[0] == '\0') {
        set_err(h, "out of memory");
    }
    /* The handle must not keep pointers to the caller's body and our header list. */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(list);
    h->resp = NULL;
    return rc;
}
