/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <tss2/tss2_esys.h>

#define LOGMODULE mfg
#include "log.h"
#include "esysdl.h"
#include "io.h"
#include "mfg.h"
#include "tpmtmpl.h"
#include "tpm.h"

/*
 * The EK certificate indices: written by the platform only, readable by anyone (swtpm_setup uses
 * the same set). WRITEDEFINE makes TPM2_NV_WriteLock permanent, so the certificate cannot be
 * replaced short of the platform deleting the index.
 */
#define CERT_NV_ATTRIBUTES                                                                         \
    (TPMA_NV_PPWRITE | TPMA_NV_WRITEDEFINE | TPMA_NV_PPREAD | TPMA_NV_OWNERREAD |                  \
     TPMA_NV_AUTHREAD | TPMA_NV_NO_DA | TPMA_NV_PLATFORMCREATE)

/* TCG OIDs for the EK certificate (EK Credential Profile §3.2 and §3.3). */
#define OID_TPM_MANUFACTURER "2.23.133.2.1"
#define OID_TPM_MODEL        "2.23.133.2.2"
#define OID_TPM_VERSION      "2.23.133.2.3"
#define OID_EK_CERTIFICATE   "2.23.133.8.1"
#define TPM_MODEL            "sctpmd"

#define DAY_SECONDS 86400L
/* Twenty years, counting the five leap days they contain. */
#define CA_VALIDITY_DAYS (20 * 365 + 5)
/*
 * 2025-01-01T00:00:00Z. A device without a real-time clock may manufacture its TPM while its
 * clock still says 1970; a CA that expired in 1990 would fail every verification once the clock
 * is set, so the CA's twenty years count from no earlier than this.
 */
#define CA_TIME_FLOOR ((time_t)1735689600)
/* RFC 5280 §4.1.2.5: 99991231235959Z means "no well-defined expiration date". */
#define EK_CERT_NOT_AFTER "99991231235959Z"
#define SERIAL_BYTES      16
#define P256_BYTES        32

enum { EK_RSA, EK_ECC, EK_COUNT };

/* Everything one mfg_run() call makes, so that a failure can take it back. */
struct mfg {
    const struct esysdl *api;
    ESYS_CONTEXT *esys;
    const char *dir;
    char *err;
    size_t errlen;
    int failed; /* the first failure's sentence is in `err`; later ones are only logged */
    /* TPM properties. */
    uint32_t manufacturer;
    uint32_t firmware_version;
    uint32_t nv_buffer_max;
    uint32_t nv_index_max;
    /* The EKs' public areas as the TPM created them. */
    TPM2B_PUBLIC ek_public[EK_COUNT];
    /* Persistent objects and NV indices made so far, in creation order. */
    ESYS_TR persistent[3];
    TPM2_HANDLE persistent_handle[3];
    size_t n_persistent;
    ESYS_TR nv[EK_COUNT];
    size_t n_nv;
    int wrote_ca_cert;
    int wrote_ca_key;
    /* The EK CA. */
    EVP_PKEY *ca_key;
    X509 *ca_cert;
};

/* ---- errors and timing ---- */

/*
 * Records a failure: the first one's sentence goes to the caller's buffer, every one to the log at
 * error level. Returns `rc` so that callers can write `rc = fail(...)`.
 */
static enum sctpm_rc fail(struct mfg *m, enum sctpm_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum sctpm_rc fail(struct mfg *m, enum sctpm_rc rc, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    LOG_ERROR("%s", msg);
    if (!m->failed && m->err != NULL && m->errlen > 0) {
        snprintf(m->err, m->errlen, "%s", msg);
    }
    m->failed = 1;
    return rc;
}

static enum sctpm_rc tss_fail(struct mfg *m, const char *what, TSS2_RC r)
{
    return fail(m, SCTPM_RC_TPM, "TPM2_%s failed (TSS2_RC 0x%08x).", what, r);
}

/* Reports the newest OpenSSL error and empties OpenSSL's queue, which is per thread. */
static enum sctpm_rc ossl_fail(struct mfg *m, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char reason[160] = "no OpenSSL error recorded";

    if (e != 0) {
        ERR_error_string_n(e, reason, sizeof(reason));
    }
    ERR_clear_error();
    return fail(m, SCTPM_RC_GENERAL_FAILURE, "OpenSSL could not %s (%s).", what, reason);
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- TPM queries ---- */

/* Sets `*exists` when the TPM has a handle (persistent object or NV index) `handle`. */
static enum sctpm_rc handle_exists(struct mfg *m, TPM2_HANDLE handle, int *exists)
{
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more = TPM2_NO;
    TSS2_RC r;

    *exists = 0;
    r = m->api->GetCapability(m->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                              handle, 1, &more, &cap);
    if (r != TSS2_RC_SUCCESS) {
        return tss_fail(m, "GetCapability(HANDLES)", r);
    }
    /* The TPM lists handles from `handle` upwards; ours is there only if it comes first. */
    *exists = cap->data.handles.count > 0 && cap->data.handles.handle[0] == handle;
    m->api->Free(cap);
    return SCTPM_RC_SUCCESS;
}

/* Reads the fixed properties mfg needs, in as few TPM2_GetCapability calls as the TPM allows. */
static enum sctpm_rc read_properties(struct mfg *m)
{
    enum { HAVE_MANUFACTURER = 1, HAVE_FIRMWARE = 2, HAVE_NV_BUFFER = 4, HAVE_NV_INDEX = 8 };
    const TPM2_PT first = TPM2_PT_MANUFACTURER, last = TPM2_PT_NV_BUFFER_MAX;
    TPM2_PT next = first;
    TPMI_YES_NO more = TPM2_YES;
    unsigned have = 0;

    _Static_assert(TPM2_PT_FIRMWARE_VERSION_1 > TPM2_PT_MANUFACTURER &&
                       TPM2_PT_NV_INDEX_MAX > TPM2_PT_MANUFACTURER &&
                       TPM2_PT_NV_BUFFER_MAX > TPM2_PT_NV_INDEX_MAX,
                   "the properties read lie in [TPM2_PT_MANUFACTURER, TPM2_PT_NV_BUFFER_MAX]");
    while (more == TPM2_YES && next <= last) {
        TPMS_CAPABILITY_DATA *cap = NULL;
        TPML_TAGGED_TPM_PROPERTY *props;
        TPM2_PT previous = next;
        TSS2_RC r;
        uint32_t i;

        r = m->api->GetCapability(m->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                  TPM2_CAP_TPM_PROPERTIES, next, last - next + 1, &more, &cap);
        if (r != TSS2_RC_SUCCESS) {
            return tss_fail(m, "GetCapability(TPM_PROPERTIES)", r);
        }
        props = &cap->data.tpmProperties;
        for (i = 0; i < props->count && i < TPM2_MAX_TPM_PROPERTIES; i++) {
            const TPMS_TAGGED_PROPERTY *p = &props->tpmProperty[i];
            switch (p->property) {
            case TPM2_PT_MANUFACTURER:
                m->manufacturer = p->value;
                have |= HAVE_MANUFACTURER;
                break;
            case TPM2_PT_FIRMWARE_VERSION_1:
                m->firmware_version = p->value;
                have |= HAVE_FIRMWARE;
                break;
            case TPM2_PT_NV_BUFFER_MAX:
                m->nv_buffer_max = p->value;
                have |= HAVE_NV_BUFFER;
                break;
            case TPM2_PT_NV_INDEX_MAX:
                m->nv_index_max = p->value;
                have |= HAVE_NV_INDEX;
                break;
            default:
                break;
            }
            if (p->property >= next) {
                next = p->property + 1;
            }
        }
        m->api->Free(cap);
        /* A TPM that returns nothing new would otherwise keep this loop going forever. */
        if (next == previous) {
            break;
        }
    }
    if (have != (HAVE_MANUFACTURER | HAVE_FIRMWARE | HAVE_NV_BUFFER | HAVE_NV_INDEX)) {
        return fail(m, SCTPM_RC_TPM,
                    "The TPM did not report all of its manufacturer, firmware "
                    "version and NV size properties.");
    }
    if (m->nv_buffer_max == 0) {
        return fail(m, SCTPM_RC_TPM, "The TPM reports an NV buffer size of zero.");
    }
    LOG_DEBUG("TPM manufacturer 0x%08x, firmware 0x%08x, NV buffer %u, NV index %u",
              m->manufacturer, m->firmware_version, m->nv_buffer_max, m->nv_index_max);
    return SCTPM_RC_SUCCESS;
}

/*
 * Refuses a TPM that already has an identity. mfg_run() must never run twice on one TPM: a second
 * CA would replace ek-ca.pem/ek-ca.key while the first CA's certificates stay locked in NV.
 */
static enum sctpm_rc check_unmanufactured(struct mfg *m)
{
    static const TPM2_HANDLE handles[] = {MFG_EK_RSA_HANDLE, MFG_EK_ECC_HANDLE, MFG_SRK_HANDLE,
                                          MFG_EK_RSA_CERT_NV, MFG_EK_ECC_CERT_NV};
    enum sctpm_rc rc;
    size_t i;
    int exists;

    for (i = 0; i < sizeof(handles) / sizeof(handles[0]); i++) {
        rc = handle_exists(m, handles[i], &exists);
        if (rc != SCTPM_RC_SUCCESS) {
            return rc;
        }
        if (exists) {
            return fail(m, SCTPM_RC_EXISTS,
                        "The TPM is manufactured already: handle 0x%08x exists.", handles[i]);
        }
    }
    return SCTPM_RC_SUCCESS;
}

/* ---- keys in the TPM ---- */

/*
 * Creates a primary key from `tmpl` under `hierarchy`, makes it persistent at `handle` and flushes
 * the transient copy. `out` [out, optional] receives the public area.
 */
static enum sctpm_rc create_persistent(struct mfg *m, ESYS_TR hierarchy, const TPM2B_PUBLIC *tmpl,
                                       TPM2_HANDLE handle, const char *what, TPM2B_PUBLIC *out)
{
    TPM2B_SENSITIVE_CREATE sensitive = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcrs = {0};
    TPM2B_PUBLIC *pub = NULL;
    ESYS_TR transient = ESYS_TR_NONE, persisted = ESYS_TR_NONE;
    enum sctpm_rc rc = SCTPM_RC_TPM;
    double t0 = now_ms();
    TSS2_RC r;

    r = m->api->CreatePrimary(m->esys, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                              &sensitive, tmpl, &outside, &pcrs, &transient, &pub, NULL, NULL,
                              NULL);
    if (r != TSS2_RC_SUCCESS) {
        rc =
            fail(m, SCTPM_RC_TPM, "TPM2_CreatePrimary of the %s failed (TSS2_RC 0x%08x).", what, r);
        goto out;
    }
    LOG_DEBUG("TPM2_CreatePrimary of the %s took %.1f ms", what, now_ms() - t0);
    r = m->api->EvictControl(m->esys, ESYS_TR_RH_OWNER, transient, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                             ESYS_TR_NONE, handle, &persisted);
    if (r != TSS2_RC_SUCCESS) {
        rc = fail(m, SCTPM_RC_TPM, "TPM2_EvictControl of the %s to 0x%08x failed (TSS2_RC 0x%08x).",
                  what, handle, r);
        goto out;
    }
    m->persistent[m->n_persistent] = persisted;
    m->persistent_handle[m->n_persistent] = handle;
    m->n_persistent++;
    if (out != NULL) {
        *out = *pub;
    }
    rc = SCTPM_RC_SUCCESS;
out:
    if (transient != ESYS_TR_NONE) {
        r = m->api->FlushContext(m->esys, transient);
        if (r != TSS2_RC_SUCCESS && rc == SCTPM_RC_SUCCESS) {
            rc = fail(m, SCTPM_RC_TPM, "TPM2_FlushContext of the %s failed (TSS2_RC 0x%08x).", what,
                      r);
        }
    }
    m->api->Free(pub);
    return rc;
}

/*
 * Builds an OpenSSL public key from a TPM public area: RSA from the modulus and exponent (0 means
 * 65537), ECC from the NIST P-256 point. `*out` [out] is NULL on failure, else free with
 * EVP_PKEY_free().
 */
static enum sctpm_rc pkey_from_tpm(struct mfg *m, const TPMT_PUBLIC *pub, EVP_PKEY **out)
{
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    BIGNUM *n = NULL, *e = NULL;
    uint8_t point[1 + 2 * P256_BYTES];
    const char *type;
    enum sctpm_rc rc = SCTPM_RC_GENERAL_FAILURE;

    *out = NULL;
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL) {
        rc = ossl_fail(m, "allocate a parameter builder");
        goto out;
    }
    if (pub->type == TPM2_ALG_RSA) {
        const TPM2B_PUBLIC_KEY_RSA *mod = &pub->unique.rsa;
        uint32_t exponent = pub->parameters.rsaDetail.exponent;

        type = "RSA";
        if (mod->size == 0 || mod->size > sizeof(mod->buffer)) {
            rc = fail(m, SCTPM_RC_BAD_FORMAT, "The TPM returned an RSA modulus of %u bytes.",
                      mod->size);
            goto out;
        }
        n = BN_bin2bn(mod->buffer, mod->size, NULL);
        e = BN_new();
        if (n == NULL || e == NULL || !BN_set_word(e, exponent == 0 ? 65537 : exponent) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)) {
            rc = ossl_fail(m, "build the RSA EK parameters");
            goto out;
        }
    } else if (pub->type == TPM2_ALG_ECC &&
               pub->parameters.eccDetail.curveID == TPM2_ECC_NIST_P256) {
        const TPM2B_ECC_PARAMETER *x = &pub->unique.ecc.x, *y = &pub->unique.ecc.y;

        type = "EC";
        if (x->size == 0 || x->size > P256_BYTES || y->size == 0 || y->size > P256_BYTES) {
            rc = fail(m, SCTPM_RC_BAD_FORMAT,
                      "The TPM returned a P-256 point with coordinates of %u and %u bytes.",
                      x->size, y->size);
            goto out;
        }
        /* An uncompressed SEC1 point; coordinates shorter than the field are left-padded. */
        memset(point, 0, sizeof(point));
        point[0] = 0x04;
        memcpy(point + 1 + P256_BYTES - x->size, x->buffer, x->size);
        memcpy(point + 1 + 2 * P256_BYTES - y->size, y->buffer, y->size);
        if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point))) {
            rc = ossl_fail(m, "build the ECC EK parameters");
            goto out;
        }
    } else {
        rc = fail(m, SCTPM_RC_UNSUPPORTED, "An EK of type 0x%04x cannot be certified.", pub->type);
        goto out;
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        rc = ossl_fail(m, "import the EK public key");
        goto out;
    }
    rc = SCTPM_RC_SUCCESS;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return rc;
}

/* ---- files ---- */

/*
 * Writes DIR/name crash-safely with `mode`: a temporary file made with O_EXCL (so it is never
 * readable by others, not even before its mode is set), flushed, renamed over the old file, and
 * the directory flushed, so that after a crash the file is either absent or complete.
 */
static enum sctpm_rc write_file(struct mfg *m, const char *name, const void *data, size_t len,
                                mode_t mode)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    int fd = -1, dfd = -1, have_tmp = 0, n, e;
    enum sctpm_rc rc = SCTPM_RC_IO;

    n = snprintf(path, sizeof(path), "%s/%s", m->dir, name);
    e = snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", m->dir, name);
    if (n < 0 || (size_t)n >= sizeof(path) || e < 0 || (size_t)e >= sizeof(tmp)) {
        rc = fail(m, SCTPM_RC_TOO_LARGE, "The state directory path is too long.");
        goto out;
    }
    /* mkostemp() creates the file with O_EXCL and mode 0600. */
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = fail(m, SCTPM_RC_IO, "Cannot create a temporary file in %s: %s.", m->dir,
                  strerror(errno));
        goto out;
    }
    have_tmp = 1;
    if (mode != 0600 && fchmod(fd, mode) != 0) {
        rc = fail(m, SCTPM_RC_IO, "Cannot set the mode of %s: %s.", tmp, strerror(errno));
        goto out;
    }
    e = write_full(fd, data, len);
    if (e < 0) {
        rc = fail(m, SCTPM_RC_IO, "Cannot write %s: %s.", tmp, strerror(-e));
        goto out;
    }
    if (fsync(fd) != 0) {
        rc = fail(m, SCTPM_RC_IO, "Cannot flush %s: %s.", tmp, strerror(errno));
        goto out;
    }
    e = close(fd);
    fd = -1;
    if (e != 0) {
        rc = fail(m, SCTPM_RC_IO, "Cannot close %s: %s.", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = fail(m, SCTPM_RC_IO, "Cannot rename %s to %s: %s.", tmp, path, strerror(errno));
        goto out;
    }
    have_tmp = 0;
    dfd = open(m->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        rc = fail(m, SCTPM_RC_IO, "Cannot flush the directory %s: %s.", m->dir, strerror(errno));
        goto out;
    }
    rc = SCTPM_RC_SUCCESS;
out:
    if (dfd >= 0) {
        close(dfd);
    }
    if (fd >= 0) {
        close(fd);
    }
    if (have_tmp) {
        unlink(tmp);
    }
    return rc;
}

static void remove_file(struct mfg *m, const char *name)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", m->dir, name);

    if (n > 0 && (size_t)n < sizeof(path) && unlink(path) != 0 && errno != ENOENT) {
        LOG_WARNING("cannot remove %s: %s", path, strerror(errno));
    }
}

/* ---- certificates ---- */

/* Sets a random positive serial number of SERIAL_BYTES bytes (RFC 5280 allows up to 20). */
static int set_random_serial(X509 *x)
{
    uint8_t b[SERIAL_BYTES];
    BIGNUM *bn = NULL;
    int ok = 0;

    if (RAND_bytes(b, sizeof(b)) != 1) {
        goto out;
    }
    /* Clear the sign bit, and keep the first byte nonzero so the serial has all its bytes. */
    b[0] &= 0x7f;
    if (b[0] == 0) {
        b[0] = 1;
    }
    bn = BN_bin2bn(b, sizeof(b), NULL);
    ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
out:
    BN_free(bn);
    return ok;
}

/* Adds an extension given in OpenSSL's configuration syntax; `issuer` may be `x` itself. */
static int add_ext(X509 *issuer, X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) {
        return 0;
    }
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* Appends one RDN holding attribute `oid` as a UTF8String, as the EK Credential Profile asks. */
static int add_utf8_rdn(X509_NAME *name, const char *oid, const char *value)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    int ok;

    if (obj == NULL) {
        return 0;
    }
    ok = X509_NAME_add_entry_by_OBJ(name, obj, V_ASN1_UTF8STRING, (const unsigned char *)value, -1,
                                    -1, 0);
    ASN1_OBJECT_free(obj);
    return ok;
}

/*
 * Adds the subjectAltName directoryName with the TPM's manufacturer, model and version, critical
 * because the subject is empty (RFC 5280 §4.2.1.6).
 */
static int add_tpm_san(struct mfg *m, X509 *x)
{
    X509_NAME *dn = NULL;
    GENERAL_NAME *gn = NULL;
    GENERAL_NAMES *gens = NULL;
    char manufacturer[16], version[16];
    int ok = 0;

    snprintf(manufacturer, sizeof(manufacturer), "id:%08X", m->manufacturer);
    snprintf(version, sizeof(version), "id:%08X", m->firmware_version);
    dn = X509_NAME_new();
    gn = GENERAL_NAME_new();
    gens = GENERAL_NAMES_new();
    if (dn == NULL || gn == NULL || gens == NULL ||
        !add_utf8_rdn(dn, OID_TPM_MANUFACTURER, manufacturer) ||
        !add_utf8_rdn(dn, OID_TPM_MODEL, TPM_MODEL) ||
        !add_utf8_rdn(dn, OID_TPM_VERSION, version)) {
        goto out;
    }
    GENERAL_NAME_set0_value(gn, GEN_DIRNAME, dn);
    dn = NULL; /* owned by gn */
    if (!sk_GENERAL_NAME_push(gens, gn)) {
        goto out;
    }
    gn = NULL; /* owned by gens */
    ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 1, X509V3_ADD_DEFAULT) == 1;
out:
    GENERAL_NAMES_free(gens);
    GENERAL_NAME_free(gn);
    X509_NAME_free(dn);
    return ok;
}

/* Adds extendedKeyUsage tcg-kp-EKCertificate. */
static int add_ek_eku(X509 *x)
{
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    ASN1_OBJECT *obj = OBJ_txt2obj(OID_EK_CERTIFICATE, 1);
    int ok = 0;

    if (eku == NULL || obj == NULL || !sk_ASN1_OBJECT_push(eku, obj)) {
        goto out;
    }
    obj = NULL; /* owned by eku */
    ok = X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT) == 1;
out:
    ASN1_OBJECT_free(obj);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    return ok;
}

/* Writes `x` or `key` as PEM to a memory BIO (secure memory for the key, wiped on free). */
static BIO *to_pem(X509 *x, EVP_PKEY *key)
{
    BIO *bio = BIO_new(key != NULL ? BIO_s_secmem() : BIO_s_mem());
    int ok;

    if (bio == NULL) {
        return NULL;
    }
    ok = key != NULL ? PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)
                     : PEM_write_bio_X509(bio, x);
    if (!ok) {
        BIO_free(bio);
        return NULL;
    }
    return bio;
}

/* Writes a memory BIO's contents to DIR/name. */
static enum sctpm_rc write_bio(struct mfg *m, const char *name, BIO *bio, mode_t mode)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);

    if (len <= 0 || data == NULL) {
        return fail(m, SCTPM_RC_GENERAL_FAILURE, "OpenSSL produced an empty %s.", name);
    }
    return write_file(m, name, data, (size_t)len, mode);
}

/*
 * Creates the EK CA (an ECDSA P-256 key and a self-signed certificate) and writes DIR/ek-ca.pem
 * (0644) and DIR/ek-ca.key (0600). The key is never logged.
 */
static enum sctpm_rc make_ca(struct mfg *m)
{
    X509_NAME *name = NULL;
    BIO *pem = NULL, *key_pem = NULL;
    time_t not_after_base = time(NULL);
    uint8_t id[4];
    char cn[64];
    enum sctpm_rc rc = SCTPM_RC_GENERAL_FAILURE;

    if (not_after_base < CA_TIME_FLOOR) {
        LOG_WARNING("the clock is before 2025; the EK CA's validity counts from 2025");
        not_after_base = CA_TIME_FLOOR;
    }
    m->ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (m->ca_key == NULL) {
        rc = ossl_fail(m, "generate the EK CA key");
        goto out;
    }
    /* A short random id tells the CAs of different states apart in a trust store. */
    if (RAND_bytes(id, sizeof(id)) != 1) {
        rc = ossl_fail(m, "get random bytes for the EK CA name");
        goto out;
    }
    snprintf(cn, sizeof(cn), "sctpmd EK CA (software TPM) %02x%02x%02x%02x", id[0], id[1], id[2],
             id[3]);
    m->ca_cert = X509_new();
    name = X509_NAME_new();
    if (m->ca_cert == NULL || name == NULL ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"sctpm", -1,
                                    -1, 0) ||
        !X509_set_version(m->ca_cert, X509_VERSION_3) || !set_random_serial(m->ca_cert) ||
        !X509_set_subject_name(m->ca_cert, name) || !X509_set_issuer_name(m->ca_cert, name) ||
        /* A day of slack for verifiers whose clocks run behind ours. */
        X509_gmtime_adj(X509_getm_notBefore(m->ca_cert), -DAY_SECONDS) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(m->ca_cert), CA_VALIDITY_DAYS, 0, &not_after_base) ==
            NULL ||
        !X509_set_pubkey(m->ca_cert, m->ca_key) ||
        /* pathlen:0 because this CA signs EK certificates only, never another CA. */
        !add_ext(m->ca_cert, m->ca_cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
        !add_ext(m->ca_cert, m->ca_cert, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        !add_ext(m->ca_cert, m->ca_cert, NID_subject_key_identifier, "hash") ||
        X509_sign(m->ca_cert, m->ca_key, EVP_sha256()) <= 0) {
        rc = ossl_fail(m, "create the EK CA certificate");
        goto out;
    }
    pem = to_pem(m->ca_cert, NULL);
    key_pem = to_pem(NULL, m->ca_key);
    if (pem == NULL || key_pem == NULL) {
        rc = ossl_fail(m, "encode the EK CA as PEM");
        goto out;
    }
    /*
     * The key first: a certificate on disk without its key would be a CA nobody can use. A file
     * is only marked for rollback once written, so a failed write never removes an older file.
     */
    rc = write_bio(m, MFG_CA_KEY_FILE, key_pem, 0600);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    m->wrote_ca_key = 1;
    rc = write_bio(m, MFG_CA_CERT_FILE, pem, 0644);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    m->wrote_ca_cert = 1;
    LOG_DEBUG("EK CA '%s' written to %s", cn, m->dir);
out:
    BIO_free(key_pem);
    BIO_free(pem);
    X509_NAME_free(name);
    return rc;
}

/*
 * Issues the X.509 certificate of EK `which`, signed by the EK CA. `*der` [out] (callee-allocated,
 * free with OPENSSL_free()) receives the DER encoding of `*der_len` bytes.
 */
static enum sctpm_rc issue_ek_cert(struct mfg *m, int which, uint8_t **der, size_t *der_len)
{
    EVP_PKEY *ek = NULL;
    X509 *x = NULL;
    unsigned char *buf = NULL;
    int len;
    enum sctpm_rc rc;

    *der = NULL;
    *der_len = 0;
    rc = pkey_from_tpm(m, &m->ek_public[which].publicArea, &ek);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    rc = SCTPM_RC_GENERAL_FAILURE;
    x = X509_new();
    /*
     * The subject stays empty, as the EK Credential Profile recommends: the TPM is named by the
     * subjectAltName instead, which is therefore critical.
     */
    if (x == NULL || !X509_set_version(x, X509_VERSION_3) || !set_random_serial(x) ||
        !X509_set_issuer_name(x, X509_get_subject_name(m->ca_cert)) ||
        X509_gmtime_adj(X509_getm_notBefore(x), -DAY_SECONDS) == NULL ||
        !ASN1_TIME_set_string_X509(X509_getm_notAfter(x), EK_CERT_NOT_AFTER) ||
        !X509_set_pubkey(x, ek) ||
        !add_ext(m->ca_cert, x, NID_basic_constraints, "critical,CA:FALSE") ||
        /* An RSA EK decrypts (ActivateCredential); an ECC EK does ECDH. Neither ever signs. */
        !add_ext(m->ca_cert, x, NID_key_usage,
                 which == EK_RSA ? "critical,keyEncipherment" : "critical,keyAgreement") ||
        !add_ek_eku(x) || !add_ext(m->ca_cert, x, NID_authority_key_identifier, "keyid:always") ||
        !add_tpm_san(m, x) || X509_sign(x, m->ca_key, EVP_sha256()) <= 0) {
        rc = ossl_fail(m, "create an EK certificate");
        goto out;
    }
    len = i2d_X509(x, &buf);
    if (len <= 0) {
        rc = ossl_fail(m, "encode an EK certificate");
        goto out;
    }
    *der = buf;
    *der_len = (size_t)len;
    rc = SCTPM_RC_SUCCESS;
out:
    X509_free(x);
    EVP_PKEY_free(ek);
    return rc;
}

/*
 * Stores a DER certificate in NV index `index`: defined by the platform with exactly the
 * certificate's size, written in chunks the TPM accepts, then write-locked for good.
 */
static enum sctpm_rc store_cert(struct mfg *m, TPM2_HANDLE index, const uint8_t *der, size_t len)
{
    TPM2B_AUTH auth = {0};
    TPM2B_NV_PUBLIC pub = {0};
    TPM2B_MAX_NV_BUFFER chunk;
    ESYS_TR nv = ESYS_TR_NONE;
    size_t off, max_chunk = m->nv_buffer_max;
    TSS2_RC r;

    if (len > m->nv_index_max || len > UINT16_MAX) {
        return fail(m, SCTPM_RC_TOO_LARGE,
                    "An EK certificate of %zu bytes exceeds the TPM's NV index size of %u bytes.",
                    len, m->nv_index_max);
    }
    if (max_chunk > sizeof(chunk.buffer)) {
        max_chunk = sizeof(chunk.buffer);
    }
    pub.nvPublic.nvIndex = index;
    pub.nvPublic.nameAlg = TPM2_ALG_SHA256;
    pub.nvPublic.attributes = CERT_NV_ATTRIBUTES;
    pub.nvPublic.dataSize = (uint16_t)len;
    r = m->api->NV_DefineSpace(m->esys, ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                               ESYS_TR_NONE, &auth, &pub, &nv);
    if (r != TSS2_RC_SUCCESS) {
        return fail(m, SCTPM_RC_TPM, "TPM2_NV_DefineSpace of 0x%08x failed (TSS2_RC 0x%08x).",
                    index, r);
    }
    m->nv[m->n_nv++] = nv;
    for (off = 0; off < len; off += chunk.size) {
        chunk.size = (uint16_t)(len - off < max_chunk ? len - off : max_chunk);
        memcpy(chunk.buffer, der + off, chunk.size);
        r = m->api->NV_Write(m->esys, ESYS_TR_RH_PLATFORM, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                             ESYS_TR_NONE, &chunk, (uint16_t)off);
        if (r != TSS2_RC_SUCCESS) {
            return fail(m, SCTPM_RC_TPM,
                        "TPM2_NV_Write of 0x%08x at offset %zu failed (TSS2_RC 0x%08x).", index,
                        off, r);
        }
    }
    r = m->api->NV_WriteLock(m->esys, ESYS_TR_RH_PLATFORM, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                             ESYS_TR_NONE);
    if (r != TSS2_RC_SUCCESS) {
        return fail(m, SCTPM_RC_TPM, "TPM2_NV_WriteLock of 0x%08x failed (TSS2_RC 0x%08x).", index,
                    r);
    }
    return SCTPM_RC_SUCCESS;
}

static enum sctpm_rc certify_eks(struct mfg *m)
{
    static const TPM2_HANDLE index[EK_COUNT] = {MFG_EK_RSA_CERT_NV, MFG_EK_ECC_CERT_NV};
    enum sctpm_rc rc = SCTPM_RC_SUCCESS;
    int which;

    for (which = 0; which < EK_COUNT && rc == SCTPM_RC_SUCCESS; which++) {
        uint8_t *der = NULL;
        size_t len = 0;

        rc = issue_ek_cert(m, which, &der, &len);
        if (rc == SCTPM_RC_SUCCESS) {
            LOG_DEBUG("EK certificate for 0x%08x: %zu bytes", index[which], len);
            rc = store_cert(m, index[which], der, len);
        }
        OPENSSL_free(der);
    }
    return rc;
}

/* ---- the whole ---- */

/* Takes back what a failed run made, newest first. Failures here are logged, not returned. */
static void rollback(struct mfg *m)
{
    TSS2_RC r;

    while (m->n_nv > 0) {
        ESYS_TR nv = m->nv[--m->n_nv];
        r = m->api->NV_UndefineSpace(m->esys, ESYS_TR_RH_PLATFORM, nv, ESYS_TR_PASSWORD,
                                     ESYS_TR_NONE, ESYS_TR_NONE);
        if (r != TSS2_RC_SUCCESS) {
            LOG_WARNING("cannot remove an EK certificate index: 0x%08x", r);
        }
    }
    while (m->n_persistent > 0) {
        ESYS_TR gone = ESYS_TR_NONE;
        size_t i = --m->n_persistent;
        r = m->api->EvictControl(m->esys, ESYS_TR_RH_OWNER, m->persistent[i], ESYS_TR_PASSWORD,
                                 ESYS_TR_NONE, ESYS_TR_NONE, m->persistent_handle[i], &gone);
        if (r != TSS2_RC_SUCCESS) {
            LOG_WARNING("cannot evict persistent handle 0x%08x: 0x%08x", m->persistent_handle[i],
                        r);
        }
    }
    if (m->wrote_ca_cert) {
        remove_file(m, MFG_CA_CERT_FILE);
    }
    if (m->wrote_ca_key) {
        remove_file(m, MFG_CA_KEY_FILE);
    }
}

enum sctpm_rc mfg_run_with(const char *state_dir, const struct esysdl *api, char *err,
                           size_t errlen)
{
    struct mfg m = {.api = api, .dir = state_dir, .err = err, .errlen = errlen};
    TPM2B_PUBLIC tmpl;
    enum sctpm_rc rc = SCTPM_RC_GENERAL_FAILURE;
    double t_start = now_ms(), t = t_start, t_prop, t_rsa, t_ecc, t_ca, t_cert, t_srk;
    TSS2_RC r;

    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (state_dir == NULL) {
        return fail(&m, SCTPM_RC_BAD_ARGUMENT, "No state directory was given.");
    }
    if (!tpm_running()) {
        return fail(&m, SCTPM_RC_NO_TPM, "The TPM is not running.");
    }
    r = api->Initialize(&m.esys, tpm_inproc_tcti(), NULL);
    if (r != TSS2_RC_SUCCESS) {
        rc = fail(&m, SCTPM_RC_TPM, "ESYS could not be initialised (TSS2_RC 0x%08x).", r);
        goto out;
    }
    rc = check_unmanufactured(&m);
    if (rc == SCTPM_RC_SUCCESS) {
        rc = read_properties(&m);
    }
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    t_prop = now_ms() - t;
    t = now_ms();

    tmpl_ek_rsa(&tmpl);
    rc = create_persistent(&m, ESYS_TR_RH_ENDORSEMENT, &tmpl, MFG_EK_RSA_HANDLE, "RSA EK",
                           &m.ek_public[EK_RSA]);
    if (rc != SCTPM_RC_SUCCESS) {
        goto undo;
    }
    t_rsa = now_ms() - t;
    t = now_ms();

    tmpl_ek_ecc(&tmpl);
    rc = create_persistent(&m, ESYS_TR_RH_ENDORSEMENT, &tmpl, MFG_EK_ECC_HANDLE, "ECC EK",
                           &m.ek_public[EK_ECC]);
    if (rc != SCTPM_RC_SUCCESS) {
        goto undo;
    }
    t_ecc = now_ms() - t;
    t = now_ms();

    /* The CA reaches the disk before any certificate it signs is locked into NV. */
    rc = make_ca(&m);
    if (rc != SCTPM_RC_SUCCESS) {
        goto undo;
    }
    t_ca = now_ms() - t;
    t = now_ms();

    rc = certify_eks(&m);
    if (rc != SCTPM_RC_SUCCESS) {
        goto undo;
    }
    t_cert = now_ms() - t;
    t = now_ms();

    tmpl_srk(&tmpl);
    rc = create_persistent(&m, ESYS_TR_RH_OWNER, &tmpl, MFG_SRK_HANDLE, "SRK", NULL);
    if (rc != SCTPM_RC_SUCCESS) {
        goto undo;
    }
    t_srk = now_ms() - t;

    LOG_INFO("TPM manufactured in %.1f ms: checks %.1f, RSA EK %.1f, ECC EK %.1f, EK CA %.1f, "
             "EK certificates %.1f, SRK %.1f",
             now_ms() - t_start, t_prop, t_rsa, t_ecc, t_ca, t_cert, t_srk);
    rc = SCTPM_RC_SUCCESS;
    goto out;
undo:
    rollback(&m);
out:
    X509_free(m.ca_cert);
    EVP_PKEY_free(m.ca_key);
    if (m.esys != NULL) {
        api->Finalize(&m.esys);
    }
    return rc;
}

enum sctpm_rc mfg_run(const char *state_dir, char *err, size_t errlen)
{
    struct esysdl api;
    enum sctpm_rc rc;
    char why[256];

    rc = esysdl_open(&api, why, sizeof(why));
    if (rc != SCTPM_RC_SUCCESS) {
        struct mfg m = {.err = err, .errlen = errlen};

        if (err != NULL && errlen > 0) {
            err[0] = '\0';
        }
        return fail(&m, rc, "Manufacture needs ESAPI: %s.", why);
    }
    rc = mfg_run_with(state_dir, &api, err, errlen);
    esysdl_close(&api);
    return rc;
}
