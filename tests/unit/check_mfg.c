/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <tss2/tss2_esys.h>

#define LOGMODULE check_mfg
#include "log.h"
#include "esysdl.h"
#include "mfg.h"
#include "tpmtmpl.h"
#include "tpm.h"

/*
 * The expected values are spelled out here rather than taken from mfg.c, so that a wrong template
 * there cannot agree with itself.
 */
static const uint8_t tcg_ek_policy[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
    0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};
#define TCG_EK_ATTRIBUTES 0x000300b2u
/* restricted|decrypt|noDA|userWithAuth|sensitiveDataOrigin|fixedParent|fixedTPM */
#define TCG_SRK_ATTRIBUTES 0x00030472u

/*
 * The first handle of each range. tss2's TPM2_PERSISTENT_FIRST and TPM2_TRANSIENT_FIRST shift an
 * int-promoted 0x81/0x80 left by 24, which UBSan rightly reports as undefined.
 */
#define PERSISTENT_FIRST 0x81000000u
#define TRANSIENT_FIRST  0x80000000u
#define SESSION_FIRST    0x02000000u

static char base[PATH_MAX];
static char dir_a[PATH_MAX], dir_b[PATH_MAX];

/*
 * Each test gets a fresh directory. Under tests/run-test it lies inside SCTPM_TEST_DIR, which
 * run-test removes even when a failed assertion ends the test before teardown() runs.
 */
static void setup(void)
{
    const char *parent = getenv("SCTPM_TEST_DIR");
    int n;

    if (parent == NULL || parent[0] == '\0') {
        parent = "/tmp";
    }
    n = snprintf(base, sizeof(base), "%s/check_mfg.XXXXXX", parent);
    ck_assert(n > 0 && (size_t)n < sizeof(base) - 2);
    ck_assert_ptr_nonnull(mkdtemp(base));
    n = snprintf(dir_a, sizeof(dir_a), "%s/a", base);
    ck_assert(n > 0 && (size_t)n < sizeof(dir_a));
    n = snprintf(dir_b, sizeof(dir_b), "%s/b", base);
    ck_assert(n > 0 && (size_t)n < sizeof(dir_b));
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    int n = snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);

    ck_assert(n > 0 && (size_t)n < sizeof(cmd));
    ck_assert_int_eq(system(cmd), 0);
}

/* Writes dir/name to `buf`, which must hold it. */
static void join(char *buf, size_t size, const char *dir, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);

    ck_assert(n > 0 && (size_t)n < size);
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static struct nvstore *start_fresh(const char *dir, enum nvstore_fsync fsync_mode)
{
    struct nvstore *st = NULL;
    char err[256];
    int fresh = -1;

    ck_assert_int_eq(nvstore_open(dir, NULL, fsync_mode, &st, err, sizeof(err)), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(tpm_start(st, &fresh, err, sizeof(err)), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(fresh, 1);
    return st;
}

static void stop(struct nvstore *st)
{
    tpm_stop();
    nvstore_close(st);
}

/* Runs mfg_run() on `dir`, which must succeed, and prints how long it took. */
static void manufacture(const char *dir, const char *label)
{
    char err[256] = "";
    double t0 = now_ms(), ms;
    enum sctpm_rc rc = mfg_run(dir, err, sizeof(err));

    ms = now_ms() - t0;
    ck_assert_msg(rc == SCTPM_RC_SUCCESS, "mfg_run: %d: %s", rc, err);
    printf("check_mfg: mfg_run (%s) took %.1f ms\n", label, ms);
    fflush(stdout);
}

static ESYS_CONTEXT *esys_open(void)
{
    ESYS_CONTEXT *esys = NULL;

    ck_assert_int_eq(Esys_Initialize(&esys, tpm_inproc_tcti(), NULL), TSS2_RC_SUCCESS);
    return esys;
}

/* Lists the handles from `first` up to the end of its range (`first` | 0x00ffffff). */
static void list_handles(ESYS_CONTEXT *esys, TPM2_HANDLE first, TPML_HANDLE *out)
{
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more = TPM2_NO;
    uint32_t i;

    ck_assert_int_eq(Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                        TPM2_CAP_HANDLES, first, TPM2_MAX_CAP_HANDLES, &more, &cap),
                     TSS2_RC_SUCCESS);
    ck_assert_int_eq(more, TPM2_NO);
    out->count = 0;
    for (i = 0; i < cap->data.handles.count; i++) {
        if ((cap->data.handles.handle[i] & 0xff000000u) == (first & 0xff000000u)) {
            out->handle[out->count++] = cap->data.handles.handle[i];
        }
    }
    Esys_Free(cap);
}

static int has_handle(ESYS_CONTEXT *esys, TPM2_HANDLE h)
{
    TPML_HANDLE list;
    uint32_t i;

    list_handles(esys, h & 0xff000000u, &list);
    for (i = 0; i < list.count; i++) {
        if (list.handle[i] == h) {
            return 1;
        }
    }
    return 0;
}

static TPM2B_PUBLIC *read_public(ESYS_CONTEXT *esys, TPM2_HANDLE h)
{
    ESYS_TR tr = ESYS_TR_NONE;
    TPM2B_PUBLIC *pub = NULL;

    ck_assert_int_eq(Esys_TR_FromTPMPublic(esys, h, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr),
                     TSS2_RC_SUCCESS);
    ck_assert_int_eq(
        Esys_ReadPublic(esys, tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL, NULL),
        TSS2_RC_SUCCESS);
    ck_assert_int_eq(Esys_TR_Close(esys, &tr), TSS2_RC_SUCCESS);
    return pub;
}

/* Creates the primary key of `tmpl` again and checks that it is the persisted one. */
static void check_recreates(ESYS_CONTEXT *esys, ESYS_TR hierarchy, const TPM2B_PUBLIC *tmpl,
                            const TPM2B_PUBLIC *persisted)
{
    TPM2B_SENSITIVE_CREATE sensitive = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcrs = {0};
    TPM2B_PUBLIC *pub = NULL;
    ESYS_TR h = ESYS_TR_NONE;
    double t0 = now_ms();

    ck_assert_int_eq(Esys_CreatePrimary(esys, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                        ESYS_TR_NONE, &sensitive, tmpl, &outside, &pcrs, &h, &pub,
                                        NULL, NULL, NULL),
                     TSS2_RC_SUCCESS);
    printf("check_mfg: re-creating a primary key (type 0x%04x) took %.1f ms\n",
           tmpl->publicArea.type, now_ms() - t0);
    ck_assert_int_eq(Esys_FlushContext(esys, h), TSS2_RC_SUCCESS);
    /* The whole public area, unique included, so template and key both match. */
    ck_assert_int_eq(pub->publicArea.type, persisted->publicArea.type);
    ck_assert_int_eq(pub->publicArea.objectAttributes, persisted->publicArea.objectAttributes);
    if (pub->publicArea.type == TPM2_ALG_RSA) {
        ck_assert_uint_eq(pub->publicArea.unique.rsa.size, persisted->publicArea.unique.rsa.size);
        ck_assert_mem_eq(pub->publicArea.unique.rsa.buffer, persisted->publicArea.unique.rsa.buffer,
                         pub->publicArea.unique.rsa.size);
    } else {
        ck_assert_uint_eq(pub->publicArea.unique.ecc.x.size,
                          persisted->publicArea.unique.ecc.x.size);
        ck_assert_mem_eq(pub->publicArea.unique.ecc.x.buffer,
                         persisted->publicArea.unique.ecc.x.buffer,
                         pub->publicArea.unique.ecc.x.size);
        ck_assert_mem_eq(pub->publicArea.unique.ecc.y.buffer,
                         persisted->publicArea.unique.ecc.y.buffer,
                         pub->publicArea.unique.ecc.y.size);
    }
    Esys_Free(pub);
}

static void check_ek_public(const TPM2B_PUBLIC *pub, TPM2_ALG_ID type)
{
    const TPMT_PUBLIC *p = &pub->publicArea;

    ck_assert_int_eq(p->type, type);
    ck_assert_int_eq(p->nameAlg, TPM2_ALG_SHA256);
    ck_assert_uint_eq(p->objectAttributes, TCG_EK_ATTRIBUTES);
    ck_assert_uint_eq(p->authPolicy.size, sizeof(tcg_ek_policy));
    ck_assert_mem_eq(p->authPolicy.buffer, tcg_ek_policy, sizeof(tcg_ek_policy));
    if (type == TPM2_ALG_RSA) {
        ck_assert_int_eq(p->parameters.rsaDetail.symmetric.algorithm, TPM2_ALG_AES);
        ck_assert_int_eq(p->parameters.rsaDetail.symmetric.keyBits.aes, 128);
        ck_assert_int_eq(p->parameters.rsaDetail.symmetric.mode.aes, TPM2_ALG_CFB);
        ck_assert_int_eq(p->parameters.rsaDetail.scheme.scheme, TPM2_ALG_NULL);
        ck_assert_int_eq(p->parameters.rsaDetail.keyBits, 2048);
        ck_assert_uint_eq(p->parameters.rsaDetail.exponent, 0);
        ck_assert_uint_eq(p->unique.rsa.size, 256);
    } else {
        ck_assert_int_eq(p->parameters.eccDetail.symmetric.algorithm, TPM2_ALG_AES);
        ck_assert_int_eq(p->parameters.eccDetail.symmetric.keyBits.aes, 128);
        ck_assert_int_eq(p->parameters.eccDetail.symmetric.mode.aes, TPM2_ALG_CFB);
        ck_assert_int_eq(p->parameters.eccDetail.scheme.scheme, TPM2_ALG_NULL);
        ck_assert_int_eq(p->parameters.eccDetail.curveID, TPM2_ECC_NIST_P256);
        ck_assert_int_eq(p->parameters.eccDetail.kdf.scheme, TPM2_ALG_NULL);
        ck_assert_uint_eq(p->unique.ecc.x.size, 32);
        ck_assert_uint_eq(p->unique.ecc.y.size, 32);
    }
}

/* Reads a whole NV index, in chunks of at most TPM_PT_NV_BUFFER_MAX. */
static uint8_t *read_nv(ESYS_CONTEXT *esys, TPM2_HANDLE index, size_t *len, TPMA_NV *attributes)
{
    ESYS_TR nv = ESYS_TR_NONE;
    TPM2B_NV_PUBLIC *pub = NULL;
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more;
    uint32_t max;
    uint16_t off = 0;
    uint8_t *data;

    ck_assert_int_eq(Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                        TPM2_CAP_TPM_PROPERTIES, TPM2_PT_NV_BUFFER_MAX, 1, &more,
                                        &cap),
                     TSS2_RC_SUCCESS);
    ck_assert_uint_eq(cap->data.tpmProperties.count, 1);
    ck_assert_uint_eq(cap->data.tpmProperties.tpmProperty[0].property, TPM2_PT_NV_BUFFER_MAX);
    max = cap->data.tpmProperties.tpmProperty[0].value;
    Esys_Free(cap);
    ck_assert_int_eq(
        Esys_TR_FromTPMPublic(esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv),
        TSS2_RC_SUCCESS);
    ck_assert_int_eq(
        Esys_NV_ReadPublic(esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL),
        TSS2_RC_SUCCESS);
    *len = pub->nvPublic.dataSize;
    *attributes = pub->nvPublic.attributes;
    ck_assert_int_eq(pub->nvPublic.nameAlg, TPM2_ALG_SHA256);
    ck_assert_uint_eq(pub->nvPublic.authPolicy.size, 0);
    Esys_Free(pub);
    ck_assert_uint_gt(*len, 0);
    data = malloc(*len);
    ck_assert_ptr_nonnull(data);
    while (off < *len) {
        TPM2B_MAX_NV_BUFFER *chunk = NULL;
        uint16_t n = (uint16_t)(*len - off < max ? *len - off : max);
        /* AUTHREAD with the empty index password: what any tool reading an EK certificate does. */
        ck_assert_int_eq(Esys_NV_Read(esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n,
                                      off, &chunk),
                         TSS2_RC_SUCCESS);
        ck_assert_uint_eq(chunk->size, n);
        memcpy(data + off, chunk->buffer, n);
        off = (uint16_t)(off + n);
        Esys_Free(chunk);
    }
    /* The certificate is immutable: even the platform cannot write it. */
    {
        TPM2B_MAX_NV_BUFFER one = {.size = 1, .buffer = {0}};
        ck_assert_uint_eq(Esys_NV_Write(esys, ESYS_TR_RH_PLATFORM, nv, ESYS_TR_PASSWORD,
                                        ESYS_TR_NONE, ESYS_TR_NONE, &one, 0),
                          TPM2_RC_NV_LOCKED);
    }
    ck_assert_int_eq(Esys_TR_Close(esys, &nv), TSS2_RC_SUCCESS);
    return data;
}

static X509 *load_cert_pem(const char *dir)
{
    char path[PATH_MAX];
    FILE *f;
    X509 *x;

    join(path, sizeof(path), dir, MFG_CA_CERT_FILE);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    ck_assert_ptr_nonnull(x);
    return x;
}

static int has_extension_oid(X509 *x, const char *oid, int *critical)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    int loc;

    ck_assert_ptr_nonnull(obj);
    loc = X509_get_ext_by_OBJ(x, obj, -1);
    ASN1_OBJECT_free(obj);
    if (loc < 0) {
        return 0;
    }
    *critical = X509_EXTENSION_get_critical(X509_get_ext(x, loc));
    return 1;
}

/* Checks one EK certificate: signed by the CA, for this EK, with the TCG extensions. */
static void check_ek_cert(X509 *ca, X509_STORE *store, const uint8_t *der, size_t len,
                          const TPMT_PUBLIC *ek)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    EVP_PKEY *pk;
    X509_STORE_CTX *ctx;
    EXTENDED_KEY_USAGE *eku;
    GENERAL_NAMES *san;
    ASN1_OBJECT *ek_oid;
    int critical = 0, i, found = 0;

    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_eq(p, der + len); /* the index holds exactly one certificate, nothing after */
    ck_assert_int_eq(X509_verify(x, X509_get0_pubkey(ca)), 1);
    ck_assert_int_eq(X509_check_issued(ca, x), X509_V_OK);
    /* A full path validation too: dates, critical extensions, the CA's constraints. */
    ctx = X509_STORE_CTX_new();
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(X509_STORE_CTX_init(ctx, store, x, NULL), 1);
    ck_assert_msg(X509_verify_cert(ctx) == 1, "verify: %s",
                  X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);

    ck_assert_int_eq(X509_get_version(x), X509_VERSION_3);
    ck_assert_int_eq(X509_NAME_entry_count(X509_get_subject_name(x)), 0);
    /* No well-defined expiry (RFC 5280 4.1.2.5), and valid since yesterday. */
    {
        ASN1_TIME *forever = ASN1_TIME_new();
        ck_assert_int_eq(ASN1_TIME_set_string_X509(forever, "99991231235959Z"), 1);
        ck_assert_int_eq(ASN1_TIME_compare(X509_get0_notAfter(x), forever), 0);
        ASN1_TIME_free(forever);
        ck_assert_int_lt(X509_cmp_current_time(X509_get0_notBefore(x)), 0);
    }
    ck_assert_int_eq(X509_check_ca(x), 0);
    /* OpenSSL understands every critical extension (EXFLAG_CRITICAL flags one it does not). */
    ck_assert_uint_eq(X509_get_extension_flags(x) & EXFLAG_CRITICAL, 0);

    /* The public key is the EK's. */
    pk = X509_get0_pubkey(x);
    ck_assert_ptr_nonnull(pk);
    if (ek->type == TPM2_ALG_RSA) {
        BIGNUM *n = NULL, *e = NULL;
        uint8_t mod[256];

        ck_assert(EVP_PKEY_is_a(pk, "RSA"));
        ck_assert_int_eq(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n), 1);
        ck_assert_int_eq(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e), 1);
        ck_assert_int_eq(BN_bn2binpad(n, mod, sizeof(mod)), 256);
        ck_assert_uint_eq(ek->unique.rsa.size, 256);
        ck_assert_mem_eq(mod, ek->unique.rsa.buffer, 256);
        ck_assert_uint_eq(BN_get_word(e), 65537);
        BN_free(n);
        BN_free(e);
        ck_assert_uint_eq(X509_get_key_usage(x), KU_KEY_ENCIPHERMENT);
    } else {
        uint8_t point[65];
        size_t plen = 0;
        char group[32];

        ck_assert(EVP_PKEY_is_a(pk, "EC"));
        ck_assert_int_eq(EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                        sizeof(group), NULL),
                         1);
        ck_assert_str_eq(group, "prime256v1");
        ck_assert_int_eq(EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, point,
                                                         sizeof(point), &plen),
                         1);
        ck_assert_uint_eq(plen, 65);
        ck_assert_uint_eq(point[0], 0x04);
        ck_assert_mem_eq(point + 1, ek->unique.ecc.x.buffer, 32);
        ck_assert_mem_eq(point + 33, ek->unique.ecc.y.buffer, 32);
        ck_assert_uint_eq(X509_get_key_usage(x), KU_KEY_AGREEMENT);
    }

    /* extendedKeyUsage tcg-kp-EKCertificate. */
    eku = X509_get_ext_d2i(x, NID_ext_key_usage, &critical, NULL);
    ck_assert_ptr_nonnull(eku);
    ek_oid = OBJ_txt2obj("2.23.133.8.1", 1);
    for (i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
        found |= OBJ_cmp(sk_ASN1_OBJECT_value(eku, i), ek_oid) == 0;
    }
    ck_assert(found);
    ASN1_OBJECT_free(ek_oid);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);

    /* authorityKeyIdentifier, and a critical subjectAltName naming the TPM. */
    ck_assert(has_extension_oid(x, "2.5.29.35", &critical));
    ck_assert(has_extension_oid(x, "2.5.29.17", &critical));
    ck_assert_int_eq(critical, 1);
    san = X509_get_ext_d2i(x, NID_subject_alt_name, &critical, NULL);
    ck_assert_ptr_nonnull(san);
    ck_assert_int_eq(sk_GENERAL_NAME_num(san), 1);
    {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(san, 0);
        X509_NAME *dn;
        char buf[64];
        ASN1_OBJECT *model = OBJ_txt2obj("2.23.133.2.2", 1);
        ASN1_OBJECT *mfr = OBJ_txt2obj("2.23.133.2.1", 1);
        ASN1_OBJECT *ver = OBJ_txt2obj("2.23.133.2.3", 1);

        ck_assert_int_eq(gn->type, GEN_DIRNAME);
        dn = gn->d.directoryName;
        ck_assert_int_eq(X509_NAME_entry_count(dn), 3);
        ck_assert_int_gt(X509_NAME_get_text_by_OBJ(dn, model, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "sctpmd");
        ck_assert_int_gt(X509_NAME_get_text_by_OBJ(dn, mfr, buf, sizeof(buf)), 0);
        ck_assert_int_eq(strncmp(buf, "id:", 3), 0);
        ck_assert_uint_eq(strlen(buf), 11);
        ck_assert_int_gt(X509_NAME_get_text_by_OBJ(dn, ver, buf, sizeof(buf)), 0);
        ck_assert_int_eq(strncmp(buf, "id:", 3), 0);
        ck_assert_int_eq(ASN1_STRING_type(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(dn, 0))),
                         V_ASN1_UTF8STRING);
        ASN1_OBJECT_free(model);
        ASN1_OBJECT_free(mfr);
        ASN1_OBJECT_free(ver);
    }
    GENERAL_NAMES_free(san);
    X509_free(x);
}

static mode_t file_mode(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat sb;

    join(path, sizeof(path), dir, name);
    ck_assert_int_eq(stat(path, &sb), 0);
    return sb.st_mode & 07777;
}

static int file_exists(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat sb;

    join(path, sizeof(path), dir, name);
    return stat(path, &sb) == 0;
}

static char *slurp(const char *dir, const char *name)
{
    char path[PATH_MAX];
    char *buf = calloc(1, 8192);
    FILE *f;

    ck_assert_ptr_nonnull(buf);
    join(path, sizeof(path), dir, name);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_lt(fread(buf, 1, 8191, f), 8191);
    fclose(f);
    return buf;
}

/* No temporary files are left behind. */
static void check_no_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)) != NULL) {
        ck_assert_msg(strncmp(de->d_name, ".ek-ca", 6) != 0, "left over: %s", de->d_name);
    }
    closedir(d);
}

static void check_no_transients(ESYS_CONTEXT *esys)
{
    TPML_HANDLE list;

    list_handles(esys, TRANSIENT_FIRST, &list);
    ck_assert_uint_eq(list.count, 0);
    list_handles(esys, SESSION_FIRST, &list);
    ck_assert_uint_eq(list.count, 0);
}

/* A fresh TPM is manufactured completely, and exactly as the TCG profiles say. */
START_TEST(test_manufacture)
{
    struct nvstore *st;
    ESYS_CONTEXT *esys;
    TPML_HANDLE list;
    TPM2B_PUBLIC *ek_rsa, *ek_ecc, *srk, tmpl;
    X509 *ca;
    X509_STORE *store;
    EVP_PKEY *ca_key;
    FILE *f;
    char path[PATH_MAX], err[256], *pem_before, *pem_after;
    uint8_t *der;
    size_t len;
    TPMA_NV attrs;

    /* Per-step timings from mfg_run() go to the test log. */
    ck_assert_int_eq(log_configure("mfg+info"), 0);
    /* The daemon's durable mode, so the time includes every fsync a real first start makes. */
    st = start_fresh(dir_a, NVSTORE_FSYNC_ALWAYS);
    manufacture(dir_a, "fsync always");
    esys = esys_open();

    /* Exactly the three persistent keys, and nothing transient left loaded. */
    list_handles(esys, PERSISTENT_FIRST, &list);
    ck_assert_uint_eq(list.count, 3);
    ck_assert_uint_eq(list.handle[0], 0x81000001);
    ck_assert_uint_eq(list.handle[1], 0x81010001);
    ck_assert_uint_eq(list.handle[2], 0x81010002);
    check_no_transients(esys);

    /* The EKs and the SRK follow the TCG templates: re-creating them yields the same keys. */
    ek_rsa = read_public(esys, 0x81010001);
    check_ek_public(ek_rsa, TPM2_ALG_RSA);
    tmpl_ek_rsa(&tmpl);
    check_recreates(esys, ESYS_TR_RH_ENDORSEMENT, &tmpl, ek_rsa);
    ek_ecc = read_public(esys, 0x81010002);
    check_ek_public(ek_ecc, TPM2_ALG_ECC);
    tmpl_ek_ecc(&tmpl);
    check_recreates(esys, ESYS_TR_RH_ENDORSEMENT, &tmpl, ek_ecc);
    srk = read_public(esys, 0x81000001);
    ck_assert_uint_eq(srk->publicArea.objectAttributes, TCG_SRK_ATTRIBUTES);
    ck_assert_uint_eq(srk->publicArea.authPolicy.size, 0);
    ck_assert_int_eq(srk->publicArea.parameters.rsaDetail.keyBits, 2048);
    ck_assert_int_eq(srk->publicArea.parameters.rsaDetail.symmetric.algorithm, TPM2_ALG_AES);
    tmpl_srk(&tmpl);
    check_recreates(esys, ESYS_TR_RH_OWNER, &tmpl, srk);

    /* The CA: self-signed, a CA, its key on disk 0600 and matching. */
    ck_assert_uint_eq(file_mode(dir_a, MFG_CA_KEY_FILE), 0600);
    ck_assert_uint_eq(file_mode(dir_a, MFG_CA_CERT_FILE), 0644);
    ca = load_cert_pem(dir_a);
    ck_assert_int_eq(X509_verify(ca, X509_get0_pubkey(ca)), 1);
    ck_assert_int_eq(X509_check_ca(ca), 1);
    {
        int days = 0, secs = 0;
        ck_assert_int_eq(
            ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(ca), X509_get0_notAfter(ca)), 1);
        /* Twenty years (7305 days) from now, from a notBefore of yesterday. */
        ck_assert_int_ge(days, 7305);
        ck_assert_int_le(days, 7306);
    }
    join(path, sizeof(path), dir_a, MFG_CA_KEY_FILE);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    ck_assert_ptr_nonnull(ca_key);
    ck_assert_int_eq(X509_check_private_key(ca, ca_key), 1);
    EVP_PKEY_free(ca_key);
    store = X509_STORE_new();
    ck_assert_ptr_nonnull(store);
    ck_assert_int_eq(X509_STORE_add_cert(store, ca), 1);

    /* The EK certificates: in their indices, locked, signed by the CA, for the EKs. */
    der = read_nv(esys, 0x01c00002, &len, &attrs);
    /* An ordinary index (TPM_NT 0), written and locked, with exactly the swtpm_setup set. */
    ck_assert_uint_eq(attrs, TPMA_NV_PPWRITE | TPMA_NV_WRITEDEFINE | TPMA_NV_PPREAD |
                                 TPMA_NV_OWNERREAD | TPMA_NV_AUTHREAD | TPMA_NV_NO_DA |
                                 TPMA_NV_PLATFORMCREATE | TPMA_NV_WRITELOCKED | TPMA_NV_WRITTEN);
    printf("check_mfg: RSA EK certificate %zu bytes\n", len);
    check_ek_cert(ca, store, der, len, &ek_rsa->publicArea);
    free(der);
    der = read_nv(esys, 0x01c0000a, &len, &attrs);
    ck_assert_uint_eq(attrs, TPMA_NV_PPWRITE | TPMA_NV_WRITEDEFINE | TPMA_NV_PPREAD |
                                 TPMA_NV_OWNERREAD | TPMA_NV_AUTHREAD | TPMA_NV_NO_DA |
                                 TPMA_NV_PLATFORMCREATE | TPMA_NV_WRITELOCKED | TPMA_NV_WRITTEN);
    printf("check_mfg: ECC EK certificate %zu bytes\n", len);
    check_ek_cert(ca, store, der, len, &ek_ecc->publicArea);
    free(der);
    check_no_transients(esys);
    check_no_temp_files(dir_a);

    /* A second run refuses the manufactured TPM and leaves its CA alone. */
    pem_before = slurp(dir_a, MFG_CA_CERT_FILE);
    ck_assert_int_eq(mfg_run(dir_a, err, sizeof(err)), SCTPM_RC_EXISTS);
    ck_assert_ptr_nonnull(strstr(err, "0x81010001"));
    pem_after = slurp(dir_a, MFG_CA_CERT_FILE);
    ck_assert_str_eq(pem_before, pem_after);
    free(pem_before);
    free(pem_after);
    list_handles(esys, PERSISTENT_FIRST, &list);
    ck_assert_uint_eq(list.count, 3);

    X509_STORE_free(store);
    X509_free(ca);
    Esys_Free(ek_rsa);
    Esys_Free(ek_ecc);
    Esys_Free(srk);
    Esys_Finalize(&esys);
    stop(st);
    log_reset();
}
END_TEST

/* libtpms draws new seeds for each state, so two fresh states have different EKs and CAs. */
START_TEST(test_fresh_states_differ)
{
    struct nvstore *st;
    ESYS_CONTEXT *esys;
    TPM2B_PUBLIC *rsa_a, *ecc_a, *rsa_b, *ecc_b;
    char *ca_a, *ca_b;

    /* libtpms is one TPM per process: the two states take turns. */
    st = start_fresh(dir_a, NVSTORE_FSYNC_NEVER);
    manufacture(dir_a, "fsync never, state A");
    esys = esys_open();
    rsa_a = read_public(esys, 0x81010001);
    ecc_a = read_public(esys, 0x81010002);
    Esys_Finalize(&esys);
    stop(st);

    st = start_fresh(dir_b, NVSTORE_FSYNC_NEVER);
    manufacture(dir_b, "fsync never, state B");
    esys = esys_open();
    rsa_b = read_public(esys, 0x81010001);
    ecc_b = read_public(esys, 0x81010002);
    Esys_Finalize(&esys);
    stop(st);

    ck_assert_mem_ne(rsa_a->publicArea.unique.rsa.buffer, rsa_b->publicArea.unique.rsa.buffer, 256);
    ck_assert_mem_ne(ecc_a->publicArea.unique.ecc.x.buffer, ecc_b->publicArea.unique.ecc.x.buffer,
                     32);
    ca_a = slurp(dir_a, MFG_CA_CERT_FILE);
    ca_b = slurp(dir_b, MFG_CA_CERT_FILE);
    ck_assert_str_ne(ca_a, ca_b);
    free(ca_a);
    free(ca_b);
    Esys_Free(rsa_a);
    Esys_Free(ecc_a);
    Esys_Free(rsa_b);
    Esys_Free(ecc_b);
}
END_TEST

/*
 * The SRK is the last step, so failing it shows that everything before is taken back. The seam is
 * mfg_run_with()'s ESAPI table: its CreatePrimary is replaced by this function, which fails the
 * next CreatePrimary under the owner hierarchy with `srk_failure` when that is set.
 */
static TSS2_RC srk_failure = TSS2_RC_SUCCESS;
static __typeof__(Esys_CreatePrimary) *real_create_primary;

static TSS2_RC failing_create_primary(ESYS_CONTEXT *esys, ESYS_TR primaryHandle, ESYS_TR shandle1,
                                      ESYS_TR shandle2, ESYS_TR shandle3,
                                      const TPM2B_SENSITIVE_CREATE *inSensitive,
                                      const TPM2B_PUBLIC *inPublic, const TPM2B_DATA *outsideInfo,
                                      const TPML_PCR_SELECTION *creationPCR, ESYS_TR *objectHandle,
                                      TPM2B_PUBLIC **outPublic, TPM2B_CREATION_DATA **creationData,
                                      TPM2B_DIGEST **creationHash,
                                      TPMT_TK_CREATION **creationTicket)
{
    if (srk_failure != TSS2_RC_SUCCESS && primaryHandle == ESYS_TR_RH_OWNER) {
        TSS2_RC r = srk_failure;
        srk_failure = TSS2_RC_SUCCESS;
        return r;
    }
    return real_create_primary(esys, primaryHandle, shandle1, shandle2, shandle3, inSensitive,
                               inPublic, outsideInfo, creationPCR, objectHandle, outPublic,
                               creationData, creationHash, creationTicket);
}

/* Nothing of a manufacture is left: no keys, no certificate indices, no CA files. */
static void check_nothing_made(ESYS_CONTEXT *esys, const char *dir)
{
    TPML_HANDLE list;

    list_handles(esys, PERSISTENT_FIRST, &list);
    ck_assert_uint_eq(list.count, 0);
    ck_assert(!has_handle(esys, 0x01c00002));
    ck_assert(!has_handle(esys, 0x01c0000a));
    check_no_transients(esys);
    ck_assert(!file_exists(dir, MFG_CA_CERT_FILE));
    ck_assert(!file_exists(dir, MFG_CA_KEY_FILE));
    check_no_temp_files(dir);
}

/* A failed run takes back what it made, so that a retry finds a clean TPM and succeeds. */
START_TEST(test_failure_rolls_back)
{
    struct nvstore *st = start_fresh(dir_a, NVSTORE_FSYNC_NEVER);
    ESYS_CONTEXT *esys = esys_open();
    TPML_HANDLE list;
    struct esysdl api;
    char missing[PATH_MAX + 16], err[256];

    /* The CA files cannot be written: the EKs made before are evicted again. */
    join(missing, sizeof(missing), base, "missing");
    ck_assert_int_eq(mfg_run(missing, err, sizeof(err)), SCTPM_RC_IO);
    ck_assert_ptr_nonnull(strstr(err, "temporary file"));
    check_nothing_made(esys, dir_a);

    /* The SRK fails after both certificates are locked in NV: the indices go too. */
    ck_assert_int_eq(esysdl_open(&api, err, sizeof(err)), SCTPM_RC_SUCCESS);
    real_create_primary = api.CreatePrimary;
    api.CreatePrimary = failing_create_primary;
    srk_failure = TPM2_RC_OBJECT_MEMORY;
    ck_assert_int_eq(mfg_run_with(dir_a, &api, err, sizeof(err)), SCTPM_RC_TPM);
    esysdl_close(&api);
    ck_assert_ptr_nonnull(strstr(err, "SRK"));
    ck_assert_ptr_nonnull(strstr(err, "(TSS2_RC 0x00000902)"));
    check_nothing_made(esys, dir_a);

    manufacture(dir_a, "after two failures");
    list_handles(esys, PERSISTENT_FIRST, &list);
    ck_assert_uint_eq(list.count, 3);
    ck_assert(has_handle(esys, 0x01c00002));
    ck_assert(has_handle(esys, 0x01c0000a));
    Esys_Finalize(&esys);
    stop(st);
}
END_TEST

/* A TPM error is reported with its raw code (here: no platform hierarchy for the NV indices). */
START_TEST(test_tpm_error_reported)
{
    struct nvstore *st = start_fresh(dir_a, NVSTORE_FSYNC_NEVER);
    ESYS_CONTEXT *esys = esys_open();
    char err[256];

    ck_assert_int_eq(Esys_HierarchyControl(esys, ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD,
                                           ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_RH_PLATFORM,
                                           TPM2_NO),
                     TSS2_RC_SUCCESS);
    ck_assert_int_eq(mfg_run(dir_a, err, sizeof(err)), SCTPM_RC_TPM);
    ck_assert_ptr_nonnull(strstr(err, "NV_DefineSpace"));
    /* TPM_RC_HIERARCHY (0x085) for handle 1 (0x100). */
    ck_assert_ptr_nonnull(strstr(err, "(TSS2_RC 0x00000185)"));
    check_nothing_made(esys, dir_a);
    Esys_Finalize(&esys);
    stop(st);
}
END_TEST

/* The ESAPI table loads every function, and closing it clears it (twice is harmless). */
START_TEST(test_esysdl)
{
    struct esysdl api;
    char err[256] = "";

    ck_assert_int_eq(esysdl_open(&api, err, sizeof(err)), SCTPM_RC_SUCCESS);
    ck_assert_ptr_nonnull(api.handle);
    ck_assert_ptr_nonnull(api.Initialize);
    ck_assert_ptr_nonnull(api.NV_UndefineSpace);
    /* The same function the linker gives this test program. */
    ck_assert(api.CreatePrimary == Esys_CreatePrimary);
    esysdl_close(&api);
    ck_assert_ptr_null(api.handle);
    ck_assert_ptr_null(api.CreatePrimary);
    esysdl_close(&api);
}
END_TEST

START_TEST(test_needs_running_tpm)
{
    char err[256] = "";

    ck_assert(!tpm_running());
    ck_assert_int_eq(mfg_run(base, err, sizeof(err)), SCTPM_RC_NO_TPM);
    ck_assert_str_ne(err, "");
    ck_assert(!file_exists(base, MFG_CA_KEY_FILE));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mfg");
    TCase *tc = tcase_create("manufacture");
    SRunner *sr;
    int failed;

    /* Line-buffered, so the timings land in the log in order with the library's log lines. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* RSA key generation is slow under valgrind; the time limit only catches a hang. */
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_esysdl);
    tcase_add_test(tc, test_needs_running_tpm);
    tcase_add_test(tc, test_manufacture);
    tcase_add_test(tc, test_fresh_states_differ);
    tcase_add_test(tc, test_failure_rolls_back);
    tcase_add_test(tc, test_tpm_error_reported);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
