/* SPDX-License-Identifier: BSD-2-Clause */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls-priv.h"

static char dir[256];

static void setup(void)
{
    const char *base = getenv("SCTPM_TEST_DIR");

    snprintf(dir, sizeof(dir), "%s/tls.XXXXXX", base != NULL ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[400];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static char *file(const char *name)
{
    static char p[400];

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return p;
}

static X509 *load(const char *name)
{
    FILE *f = fopen(file(name), "r");
    X509 *x;

    ck_assert_ptr_nonnull(f);
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    ck_assert_ptr_nonnull(x);
    return x;
}

static unsigned mode_of(const char *name)
{
    struct stat sb;

    ck_assert_int_eq(stat(file(name), &sb), 0);
    return sb.st_mode & 0777;
}

/* Verifies server.pem against ca.pem as a TLS client would, for `host`. */
static int verifies(const char *host)
{
    X509 *ca = load("ca.pem"), *leaf = load("server.pem");
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_VERIFY_PARAM *param;
    int ok;

    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX_init(ctx, store, leaf, NULL);
    param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
    if (strchr(host, ':') != NULL || (host[0] >= '0' && host[0] <= '9')) {
        X509_VERIFY_PARAM_set1_ip_asc(param, host);
    } else {
        X509_VERIFY_PARAM_set1_host(param, host, 0);
    }
    ok = X509_verify_cert(ctx) == 1;
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(ca);
    X509_free(leaf);
    return ok;
}

START_TEST(test_first_start_creates_everything)
{
    struct hub_tls_identity id;

    ck_assert_int_eq(hub_tls_ensure(dir, "hub.example", &id), SCTPM_RC_SUCCESS);
    ck_assert(id.ca_created);
    ck_assert(id.issued);
    ck_assert_ptr_nonnull(strstr(id.cert_pem, "BEGIN CERTIFICATE"));
    ck_assert_ptr_nonnull(strstr(id.key_pem, "PRIVATE KEY"));
    /* The chain: the server certificate, then the CA. */
    ck_assert_ptr_nonnull(strstr(strstr(id.cert_pem, "END CERTIFICATE") + 1, "BEGIN CERTIFICATE"));
    hub_tls_identity_clear(&id);
    ck_assert_ptr_null(id.key_pem);
    ck_assert_uint_eq(mode_of("ca.pem"), 0644);
    ck_assert_uint_eq(mode_of("server.pem"), 0644);
    ck_assert_uint_eq(mode_of("ca-key.pem"), 0600);
    ck_assert_uint_eq(mode_of("server-key.pem"), 0600);
    ck_assert(verifies("hub.example"));
    ck_assert(verifies("HUB.example"));
    ck_assert(verifies("localhost"));
    ck_assert(verifies("127.0.0.1"));
    ck_assert(verifies("::1"));
    ck_assert(!verifies("other.example"));
    ck_assert(!verifies("10.0.0.1"));
}
END_TEST

START_TEST(test_ca_is_a_ca_and_server_is_not)
{
    struct hub_tls_identity id;
    X509 *ca, *leaf;

    ck_assert_int_eq(hub_tls_ensure(dir, "hub.example", &id), SCTPM_RC_SUCCESS);
    hub_tls_identity_clear(&id);
    ca = load("ca.pem");
    leaf = load("server.pem");
    ck_assert_int_eq(X509_check_ca(ca), 1);
    ck_assert_int_eq(X509_check_ca(leaf), 0);
    ck_assert_int_eq(X509_check_purpose(leaf, X509_PURPOSE_SSL_SERVER, 0), 1);
    X509_free(ca);
    X509_free(leaf);
}
END_TEST

START_TEST(test_restart_reuses)
{
    struct hub_tls_identity a, b;

    ck_assert_int_eq(hub_tls_ensure(dir, "hub.example", &a), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(hub_tls_ensure(dir, "hub.example", &b), SCTPM_RC_SUCCESS);
    ck_assert(!b.ca_created);
    ck_assert(!b.issued);
    ck_assert_str_eq(a.cert_pem, b.cert_pem);
    ck_assert_str_eq(a.key_pem, b.key_pem);
    hub_tls_identity_clear(&a);
    hub_tls_identity_clear(&b);
}
END_TEST

START_TEST(test_new_hostname_new_certificate_same_ca)
{
    struct hub_tls_identity a, b;
    X509 *ca1, *ca2;

    ck_assert_int_eq(hub_tls_ensure(dir, "one.example", &a), SCTPM_RC_SUCCESS);
    ca1 = load("ca.pem");
    ck_assert_int_eq(hub_tls_ensure(dir, "two.example", &b), SCTPM_RC_SUCCESS);
    ca2 = load("ca.pem");
    ck_assert(!b.ca_created);
    ck_assert(b.issued);
    ck_assert_int_eq(X509_cmp(ca1, ca2), 0);
    ck_assert(verifies("two.example"));
    ck_assert(!verifies("one.example"));
    hub_tls_identity_clear(&a);
    hub_tls_identity_clear(&b);
    X509_free(ca1);
    X509_free(ca2);
}
END_TEST

START_TEST(test_lost_server_certificate_is_reissued)
{
    struct hub_tls_identity id;

    ck_assert_int_eq(hub_tls_ensure(dir, "hub.example", &id), SCTPM_RC_SUCCESS);
    hub_tls_identity_clear(&id);
    ck_assert_int_eq(unlink(file("server.pem")), 0);
    ck_assert_int_eq(hub_tls_ensure(dir, "hub.example", &id), SCTPM_RC_SUCCESS);
    ck_assert(id.issued);
    ck_assert(!id.ca_created);
    hub_tls_identity_clear(&id);
    ck_assert(verifies("hub.example"));
}
END_TEST

START_TEST(test_foreign_server_certificate_is_replaced)
{
    struct hub_tls_identity id;
    char cmd[2048];

    ck_assert_int_eq(hub_tls_ensure(dir, "hub.example", &id), SCTPM_RC_SUCCESS);
    hub_tls_identity_clear(&id);
    /* A certificate for the right names from another CA must not be served. */
    snprintf(cmd, sizeof(cmd),
             "mkdir -p '%s/other' && cd '%s/other' && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 "
             "-subj /CN=hub.example -addext "
             "subjectAltName=DNS:hub.example,DNS:localhost,IP:127.0.0.1,IP:::1 "
             "-keyout '%s/server-key.pem' -out '%s/server.pem' 2>/dev/null",
             dir, dir, dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(hub_tls_ensure(dir, "hub.example", &id), SCTPM_RC_SUCCESS);
    ck_assert(id.issued);
    hub_tls_identity_clear(&id);
    ck_assert(verifies("hub.example"));
}
END_TEST

START_TEST(test_ca_without_key_is_an_error)
{
    struct hub_tls_identity id;

    ck_assert_int_eq(hub_tls_ensure(dir, "hub.example", &id), SCTPM_RC_SUCCESS);
    hub_tls_identity_clear(&id);
    ck_assert_int_eq(unlink(file("ca-key.pem")), 0);
    /* Making a new CA would silently break every client that trusts the old one. */
    ck_assert_int_eq(hub_tls_ensure(dir, "hub.example", &id), SCTPM_RC_CORRUPT);
    ck_assert_ptr_null(id.cert_pem);
    ck_assert_ptr_null(id.key_pem);
}
END_TEST

START_TEST(test_bad_hostname)
{
    struct hub_tls_identity id;

    ck_assert_int_eq(hub_tls_ensure(dir, "a,DNS:evil.example", &id), SCTPM_RC_BAD_ARGUMENT);
    ck_assert_int_eq(access(file("ca.pem"), F_OK), -1);
}
END_TEST

START_TEST(test_ip_hostname)
{
    struct hub_tls_identity id;

    ck_assert_int_eq(hub_tls_ensure(dir, "192.0.2.7", &id), SCTPM_RC_SUCCESS);
    hub_tls_identity_clear(&id);
    ck_assert(verifies("192.0.2.7"));
    ck_assert(verifies("localhost"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hub_tls");
    TCase *tc = tcase_create("tls");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_first_start_creates_everything);
    tcase_add_test(tc, test_ca_is_a_ca_and_server_is_not);
    tcase_add_test(tc, test_restart_reuses);
    tcase_add_test(tc, test_new_hostname_new_certificate_same_ca);
    tcase_add_test(tc, test_lost_server_certificate_is_reissued);
    tcase_add_test(tc, test_foreign_server_certificate_is_replaced);
    tcase_add_test(tc, test_ca_without_key_is_an_error);
    tcase_add_test(tc, test_bad_hostname);
    tcase_add_test(tc, test_ip_hostname);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
