/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define LOGMODULE hub
#include "log.h"
#include "io.h"
#include "tls-priv.h"
#include "util-priv.h"

/* PEM files are small; anything bigger is not ours. */
#define PEM_MAX (64 * 1024)

/* Logs OpenSSL's error queue under `what` and empties it. */
static enum sctpm_rc ssl_fail(const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];

    ERR_error_string_n(e, buf, sizeof(buf));
    LOG_ERROR("%s: %s (0x%08lx)", what, e != 0 ? buf : "unknown error", e);
    ERR_clear_error();
    return SCTPM_RC_TLS;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);

    if (p != NULL) {
        snprintf(p, n, "%s/%s", dir, name);
    }
    return p;
}

/*
 * Reads a whole small file. Returns SCTPM_RC_NOT_FOUND when it does not exist. `*out` is
 * NUL-terminated, callee-allocated; wipe before freeing if it may hold a key.
 */
static enum sctpm_rc read_file(const char *path, char **out, size_t *len)
{
    enum sctpm_rc rc = SCTPM_RC_IO;
    struct stat sb;
    char *buf = NULL;
    ssize_t n;
    int fd;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return SCTPM_RC_NOT_FOUND;
        }
        LOG_ERROR("cannot open %s: %s", path, strerror(errno));
        return SCTPM_RC_IO;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        LOG_ERROR("%s is not a regular file", path);
        goto out;
    }
    if (sb.st_size > PEM_MAX) {
        LOG_ERROR("%s is larger than %d bytes", path, PEM_MAX);
        rc = SCTPM_RC_TOO_LARGE;
        goto out;
    }
    buf = malloc((size_t)sb.st_size + 1);
    if (buf == NULL) {
        rc = SCTPM_RC_NO_MEMORY;
        goto out;
    }
    n = read_full(fd, buf, (size_t)sb.st_size);
    if (n != sb.st_size) {
        LOG_ERROR("cannot read %s", path);
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    *len = (size_t)n;
    buf = NULL;
    rc = SCTPM_RC_SUCCESS;
out:
    if (buf != NULL) {
        explicit_bzero(buf, (size_t)sb.st_size + 1);
        free(buf);
    }
    close(fd);
    return rc;
}

/*
 * Writes a file atomically: a private temporary file, fsync, rename, fsync of the directory.
 * A crash leaves either the old file or the new one, never half of either.
 */
static enum sctpm_rc write_file(const char *dir, const char *name, const char *data, size_t len,
                                mode_t mode)
{
    enum sctpm_rc rc = SCTPM_RC_IO;
    char *path = join(dir, name), *tmp = NULL;
    int fd = -1, dfd = -1;

    if (path == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    tmp = malloc(strlen(path) + 8);
    if (tmp == NULL) {
        rc = SCTPM_RC_NO_MEMORY;
        goto out;
    }
    sprintf(tmp, "%s.XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        LOG_ERROR("cannot create a file in %s: %s", dir, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto out;
    }
    if (fchmod(fd, mode) != 0 || write_full(fd, data, len) != 0 || fsync(fd) != 0) {
        LOG_ERROR("cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        LOG_ERROR("cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        LOG_ERROR("cannot rename %s: %s", tmp, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    rc = SCTPM_RC_SUCCESS;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    free(path);
    return rc;
}

/* Serialises `x` (a certificate) or `key` as PEM into a malloc'ed, NUL-terminated string. */
static enum sctpm_rc to_pem(X509 *x, EVP_PKEY *key, char **out, size_t *len)
{
    enum sctpm_rc rc = SCTPM_RC_TLS;
    BIO *bio = BIO_new(BIO_s_secmem());
    char *data = NULL;
    long n;
    int ok;

    *out = NULL;
    if (bio == NULL) {
        return ssl_fail("BIO_new");
    }
    ok = x != NULL ? PEM_write_bio_X509(bio, x)
                   : PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
    if (!ok) {
        rc = ssl_fail("PEM write");
        goto out;
    }
    n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || n > PEM_MAX) {
        goto out;
    }
    *out = malloc((size_t)n + 1);
    if (*out == NULL) {
        rc = SCTPM_RC_NO_MEMORY;
        goto out;
    }
    memcpy(*out, data, (size_t)n);
    (*out)[n] = '\0';
    *len = (size_t)n;
    rc = SCTPM_RC_SUCCESS;
out:
    BIO_free(bio);
    return rc;
}

static enum sctpm_rc save_pem(const char *dir, const char *name, X509 *x, EVP_PKEY *key)
{
    enum sctpm_rc rc;
    char *pem = NULL;
    size_t len = 0;

    rc = to_pem(x, key, &pem, &len);
    if (rc == SCTPM_RC_SUCCESS) {
        rc = write_file(dir, name, pem, len, x != NULL ? 0644 : 0600);
    }
    if (pem != NULL) {
        explicit_bzero(pem, len);
        free(pem);
    }
    return rc;
}

static enum sctpm_rc load_cert(const char *path, X509 **out)
{
    enum sctpm_rc rc;
    char *pem = NULL;
    size_t len = 0;
    BIO *bio;

    *out = NULL;
    rc = read_file(path, &pem, &len);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    *out = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    free(pem);
    if (*out == NULL) {
        ssl_fail(path);
        return SCTPM_RC_CORRUPT;
    }
    return SCTPM_RC_SUCCESS;
}

static enum sctpm_rc load_key(const char *path, EVP_PKEY **out)
{
    enum sctpm_rc rc;
    char *pem = NULL;
    size_t len = 0;
    BIO *bio;

    *out = NULL;
    rc = read_file(path, &pem, &len);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    *out = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    explicit_bzero(pem, len);
    free(pem);
    if (*out == NULL) {
        ssl_fail(path);
        return SCTPM_RC_CORRUPT;
    }
    return SCTPM_RC_SUCCESS;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) {
        return 0;
    }
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/*
 * Builds and signs a certificate for `key`. With `issuer` NULL the certificate is self-signed
 * (the CA); otherwise `issuer`/`issuer_key` sign it. `exts` is a NULL-terminated list of
 * (nid, value) pairs.
 */
static enum sctpm_rc make_cert(EVP_PKEY *key, const char *cn, long days, X509 *issuer,
                               EVP_PKEY *issuer_key, const int *nids, const char *const *values,
                               X509 **out)
{
    enum sctpm_rc rc = SCTPM_RC_TLS;
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    X509_NAME *name;

    *out = NULL;
    if (x == NULL || serial == NULL) {
        rc = ssl_fail("X509_new");
        goto out;
    }
    /* A random 127-bit serial: positive, unique in practice, as RFC 5280 asks. */
    if (!X509_set_version(x, 2) || !BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
        BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL) {
        rc = ssl_fail("certificate serial");
        goto out;
    }
    /* Back-dated an hour so that a client whose clock is slightly behind still accepts it. */
    if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) == NULL) {
        rc = ssl_fail("certificate validity");
        goto out;
    }
    name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"sctpm", -1, -1,
                                    0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name) ||
        !X509_set_pubkey(x, key)) {
        rc = ssl_fail("certificate name");
        goto out;
    }
    for (size_t i = 0; nids[i] != NID_undef; i++) {
        if (!add_ext(x, issuer != NULL ? issuer : x, nids[i], values[i])) {
            rc = ssl_fail("certificate extension");
            goto out;
        }
    }
    if (X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) <= 0) {
        rc = ssl_fail("X509_sign");
        goto out;
    }
    *out = x;
    x = NULL;
    rc = SCTPM_RC_SUCCESS;
out:
    BN_free(serial);
    X509_free(x);
    return rc;
}

static enum sctpm_rc new_key(EVP_PKEY **out)
{
    *out = EVP_EC_gen("P-256");
    return *out != NULL ? SCTPM_RC_SUCCESS : ssl_fail("EVP_EC_gen");
}

static enum sctpm_rc create_ca(const char *dir, const char *hostname, X509 **ca, EVP_PKEY **key)
{
    static const int nids[] = {NID_basic_constraints, NID_key_usage, NID_subject_key_identifier,
                               NID_authority_key_identifier, NID_undef};
    static const char *const values[] = {"critical,CA:TRUE,pathlen:0",
                                         "critical,keyCertSign,cRLSign", "hash", "keyid:always"};
    enum sctpm_rc rc;
    char cn[300];

    snprintf(cn, sizeof(cn), "sctpm-hub CA %.250s", hostname);
    rc = new_key(key);
    if (rc == SCTPM_RC_SUCCESS) {
        rc = make_cert(*key, cn, HUB_TLS_CA_DAYS, NULL, NULL, nids, values, ca);
    }
    /* The key first: a CA certificate without its key would be a dead end. */
    if (rc == SCTPM_RC_SUCCESS) {
        rc = save_pem(dir, "ca-key.pem", NULL, *key);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = save_pem(dir, "ca.pem", *ca, NULL);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        LOG_INFO("created a new CA in %s/ca.pem", dir);
    }
    return rc;
}

/* Nonzero when `name` is an IP address literal (then it goes into an IP SAN). */
static int is_ip(const char *name)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

static enum sctpm_rc issue_server(const char *dir, const char *hostname, X509 *ca, EVP_PKEY *ca_key,
                                  X509 **cert, EVP_PKEY **key)
{
    static const int nids[] = {NID_basic_constraints,
                               NID_key_usage,
                               NID_ext_key_usage,
                               NID_subject_alt_name,
                               NID_subject_key_identifier,
                               NID_authority_key_identifier,
                               NID_undef};
    char san[600];
    const char *values[] = {
        "critical,CA:FALSE", "critical,digitalSignature", "serverAuth", san, "hash",
        "keyid:always"};
    enum sctpm_rc rc;

    /* The caller checked `hostname` (a DNS name or an address), so it cannot inject syntax. */
    snprintf(san, sizeof(san), "%s:%.253s,DNS:localhost,IP:127.0.0.1,IP:::1",
             is_ip(hostname) ? "IP" : "DNS", hostname);
    rc = new_key(key);
    if (rc == SCTPM_RC_SUCCESS) {
        rc = make_cert(*key, hostname, HUB_TLS_SERVER_DAYS, ca, ca_key, nids, values, cert);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = save_pem(dir, "server-key.pem", NULL, *key);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = save_pem(dir, "server.pem", *cert, NULL);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        LOG_INFO("issued a server certificate for %s, localhost, 127.0.0.1 and ::1", hostname);
    }
    return rc;
}

/* Says why an existing server certificate cannot be used, or returns NULL when it can. */
static const char *server_unusable(X509 *cert, EVP_PKEY *key, X509 *ca, const char *hostname)
{
    EVP_PKEY *ca_pub = X509_get0_pubkey(ca);
    time_t renew = time(NULL) + (time_t)HUB_TLS_RENEW_DAYS * 86400;
    int host_ok;

    if (ca_pub == NULL || X509_verify(cert, ca_pub) != 1) {
        ERR_clear_error();
        return "it is not signed by the CA";
    }
    if (X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        return "it does not match server-key.pem";
    }
    host_ok = is_ip(hostname) ? X509_check_ip_asc(cert, hostname, 0) == 1
                              : X509_check_host(cert, hostname, 0, 0, NULL) == 1;
    if (!host_ok || X509_check_host(cert, "localhost", 0, 0, NULL) != 1 ||
        X509_check_ip_asc(cert, "127.0.0.1", 0) != 1 || X509_check_ip_asc(cert, "::1", 0) != 1) {
        return "it does not name the hub's host names";
    }
    if (X509_cmp_time(X509_get0_notAfter(cert), &renew) <= 0) {
        return "it expires soon";
    }
    return NULL;
}

/* Loads both halves of a pair; returns NOT_FOUND only when neither exists. */
static enum sctpm_rc load_pair(const char *dir, const char *cert_name, const char *key_name,
                               X509 **cert, EVP_PKEY **key)
{
    char *cp = join(dir, cert_name), *kp = join(dir, key_name);
    enum sctpm_rc rc = SCTPM_RC_NO_MEMORY, rc_cert, rc_key;

    *cert = NULL;
    *key = NULL;
    if (cp == NULL || kp == NULL) {
        goto out;
    }
    rc_cert = load_cert(cp, cert);
    rc_key = load_key(kp, key);
    if (rc_cert == SCTPM_RC_NOT_FOUND && rc_key == SCTPM_RC_NOT_FOUND) {
        rc = SCTPM_RC_NOT_FOUND;
    } else if (rc_cert == SCTPM_RC_NOT_FOUND || rc_key == SCTPM_RC_NOT_FOUND) {
        LOG_ERROR("%s has only one of %s and %s", dir, cert_name, key_name);
        rc = SCTPM_RC_CORRUPT;
    } else {
        rc = rc_cert != SCTPM_RC_SUCCESS ? rc_cert : rc_key;
    }
out:
    if (rc != SCTPM_RC_SUCCESS) {
        X509_free(*cert);
        EVP_PKEY_free(*key);
        *cert = NULL;
        *key = NULL;
    }
    free(cp);
    free(kp);
    return rc;
}

void hub_tls_identity_clear(struct hub_tls_identity *id)
{
    if (id->key_pem != NULL) {
        explicit_bzero(id->key_pem, strlen(id->key_pem));
        free(id->key_pem);
    }
    free(id->cert_pem);
    id->key_pem = NULL;
    id->cert_pem = NULL;
}

enum sctpm_rc hub_tls_ensure(const char *dir, const char *hostname, struct hub_tls_identity *id)
{
    enum sctpm_rc rc;
    X509 *ca = NULL, *cert = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;
    char *leaf = NULL, *ca_pem = NULL, *lock_path = join(dir, ".tls.lock");
    size_t leaf_len = 0, ca_len = 0, key_len = 0;
    const char *why;
    int lock_fd = -1;

    memset(id, 0, sizeof(*id));
    if (lock_path == NULL) {
        return SCTPM_RC_NO_MEMORY;
    }
    if (!hub_hostname_valid(hostname) && !is_ip(hostname)) {
        LOG_ERROR("invalid host name");
        rc = SCTPM_RC_BAD_ARGUMENT;
        goto out;
    }
    /* Two hubs starting on one directory must not both create a CA. */
    lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX) != 0) {
        LOG_ERROR("cannot lock %s: %s", lock_path, strerror(errno));
        rc = SCTPM_RC_IO;
        goto out;
    }
    rc = load_pair(dir, "ca.pem", "ca-key.pem", &ca, &ca_key);
    if (rc == SCTPM_RC_NOT_FOUND) {
        rc = create_ca(dir, hostname, &ca, &ca_key);
        id->ca_created = rc == SCTPM_RC_SUCCESS;
    } else if (rc == SCTPM_RC_SUCCESS && X509_check_private_key(ca, ca_key) != 1) {
        ERR_clear_error();
        LOG_ERROR("%s/ca.pem does not match ca-key.pem", dir);
        rc = SCTPM_RC_CORRUPT;
    }
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    rc = load_pair(dir, "server.pem", "server-key.pem", &cert, &key);
    if (rc == SCTPM_RC_SUCCESS) {
        why = server_unusable(cert, key, ca, hostname);
        if (why != NULL) {
            LOG_INFO("replacing the server certificate: %s", why);
            X509_free(cert);
            EVP_PKEY_free(key);
            cert = NULL;
            key = NULL;
            rc = SCTPM_RC_NOT_FOUND;
        }
    } else if (rc == SCTPM_RC_CORRUPT) {
        LOG_WARNING("replacing an unusable server certificate");
        rc = SCTPM_RC_NOT_FOUND;
    }
    if (rc == SCTPM_RC_NOT_FOUND) {
        rc = issue_server(dir, hostname, ca, ca_key, &cert, &key);
        id->issued = rc == SCTPM_RC_SUCCESS;
    }
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    rc = to_pem(cert, NULL, &leaf, &leaf_len);
    if (rc == SCTPM_RC_SUCCESS) {
        rc = to_pem(ca, NULL, &ca_pem, &ca_len);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        rc = to_pem(NULL, key, &id->key_pem, &key_len);
    }
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    id->cert_pem = malloc(leaf_len + ca_len + 1);
    if (id->cert_pem == NULL) {
        rc = SCTPM_RC_NO_MEMORY;
        goto out;
    }
    memcpy(id->cert_pem, leaf, leaf_len);
    memcpy(id->cert_pem + leaf_len, ca_pem, ca_len + 1);
out:
    if (rc != SCTPM_RC_SUCCESS) {
        hub_tls_identity_clear(id);
    }
    if (lock_fd >= 0) {
        close(lock_fd);
    }
    free(lock_path);
    free(leaf);
    free(ca_pem);
    X509_free(ca);
    X509_free(cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    return rc;
}
