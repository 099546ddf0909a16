/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Which TPM is this? The answer rests on the EK certificate, not on the strings a TPM reports
 * about itself (an emulator can report any manufacturer):
 *
 *   1. an EK certificate is read from the TCG NV indices;
 *   2. it must certify this TPM's EK: its public key must equal the EK's, read from the
 *      persistent handle or re-created from the TCG template (same seed, same key);
 *   3. it must chain to a certificate in the CA bundle (the manufacturers' roots and
 *      intermediates we install, plus whatever the user adds).
 *
 * All three → HARDWARE. A chain through the sctpm emulator's CA or swtpm's local CA, no
 * certificate, a certificate for another key, or no chain → EMULATED, with the reason.
 *
 * Certificate validity dates are not checked: EK certificates and the intermediates that issue
 * them are made when the chip is, and several vendors' intermediates have since expired while
 * their TPMs remain in service; expiry says nothing about whether the chip is genuine.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define LOGMODULE shim
#include "log.h"
#include "ctx-priv.h"
#include "dup.h"
#include "tpmtmpl.h"

#ifndef SCTPM_TPM_CA_BUNDLE
#define SCTPM_TPM_CA_BUNDLE "/usr/share/sctpm/tpm-ca-bundle.pem"
#endif
#ifndef SCTPM_TPM_CA_DIR
#define SCTPM_TPM_CA_DIR "/etc/sctpm/tpm-ca.d"
#endif

/* TPM_PT_* fixed properties read for the report. */
#define PT_FIXED              0x100
#define PT_FAMILY_INDICATOR   0x100
#define PT_LEVEL              0x101
#define PT_REVISION           0x102
#define PT_MANUFACTURER       0x105
#define PT_VENDOR_STRING_1    0x106
#define PT_FIRMWARE_VERSION_1 0x10b
#define PT_FIRMWARE_VERSION_2 0x10c
#define PT_COUNT              0x20

/* Where EK certificates live (TCG EK Credential Profile §2.2.1.5), and their keys. */
static const struct ek_slot {
    uint32_t nv;
    uint32_t persistent;
    int type; /* TPM2_ALG_RSA or TPM2_ALG_ECC */
    void (*tmpl)(TPM2B_PUBLIC *);
    const char *what;
} ek_slots[] = {
    {0x01c0000a, 0x81010002, TPM2_ALG_ECC, tmpl_ek_ecc, "ECC P-256"},
    {0x01c00002, 0x81010001, TPM2_ALG_RSA, tmpl_ek_rsa, "RSA 2048"},
    /* swtpm_setup 0.7 puts its ECC EK on P-384 here; there is no template to re-create it. */
    {0x01c00016, 0x81010016, TPM2_ALG_ECC, NULL, "ECC P-384"},
};

/* Four big-endian characters of a property, printable ones only, trailing blanks dropped. */
static void prop_chars(uint32_t v, char *out, size_t size)
{
    size_t n = 0;

    for (int shift = 24; shift >= 0 && n + 1 < size; shift -= 8) {
        char c = (char)((v >> shift) & 0xff);
        if (c >= 0x20 && c < 0x7f) {
            out[n++] = c;
        }
    }
    while (n > 0 && out[n - 1] == ' ') {
        n--;
    }
    out[n] = '\0';
}

static enum sctpm_rc read_properties(struct sctpm_ctx *ctx, struct sctpm_status *st)
{
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more;
    uint32_t level = 0, revision = 0;
    char family[8] = "";
    TSS2_RC r;

    r = Esys_GetCapability(ctx->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                           TPM2_CAP_TPM_PROPERTIES, PT_FIXED, PT_COUNT, &more, &cap);
    if (r != TSS2_RC_SUCCESS) {
        return ctx_tss(ctx, "reading the TPM's properties (TPM2_GetCapability)", r);
    }
    st->vendor[0] = '\0';
    for (uint32_t i = 0; i < cap->data.tpmProperties.count; i++) {
        uint32_t p = cap->data.tpmProperties.tpmProperty[i].property;
        uint32_t v = cap->data.tpmProperties.tpmProperty[i].value;
        switch (p) {
        case PT_FAMILY_INDICATOR:
            prop_chars(v, family, sizeof(family));
            break;
        case PT_LEVEL:
            level = v;
            break;
        case PT_REVISION:
            revision = v;
            break;
        case PT_MANUFACTURER:
            prop_chars(v, st->manufacturer, sizeof(st->manufacturer));
            break;
        case PT_FIRMWARE_VERSION_1:
            st->firmware_version_1 = v;
            break;
        case PT_FIRMWARE_VERSION_2:
            st->firmware_version_2 = v;
            break;
        default:
            if (p >= PT_VENDOR_STRING_1 && p < PT_VENDOR_STRING_1 + 4) {
                /* The vendor strings keep their inner blanks: "SW   TPM" is two strings. */
                size_t n = strlen(st->vendor);
                for (int shift = 24; shift >= 0 && n + 1 < sizeof(st->vendor); shift -= 8) {
                    char c = (char)((v >> shift) & 0xff);
                    if (c >= 0x20 && c < 0x7f) {
                        st->vendor[n++] = c;
                    }
                }
                st->vendor[n] = '\0';
            }
            break;
        }
    }
    Esys_Free(cap);
    for (size_t n = strlen(st->vendor); n > 0 && st->vendor[n - 1] == ' '; n--) {
        st->vendor[n - 1] = '\0';
    }
    /* Vendors encode it differently; the raw words are what their release notes quote. */
    snprintf(st->firmware, sizeof(st->firmware), "%08x.%08x", st->firmware_version_1,
             st->firmware_version_2);
    snprintf(st->spec, sizeof(st->spec), "%s r%u.%02u", family, (unsigned)(revision / 100),
             (unsigned)(revision % 100));
    (void)level;
    return SCTPM_RC_SUCCESS;
}

/* Reads the certificate at `index`; NULL (no message) when the index does not exist. */
static enum sctpm_rc read_cert(struct sctpm_ctx *ctx, uint32_t index, X509 **cert)
{
    TPM2B_NV_PUBLIC *pub = NULL;
    uint8_t *der = NULL;
    const uint8_t *p;
    ESYS_TR nv, auth;
    enum sctpm_rc rc;
    TSS2_RC r;

    *cert = NULL;
    rc = ctx_tr(ctx, index, &nv);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    r = Esys_NV_ReadPublic(ctx->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
    if (r != TSS2_RC_SUCCESS) {
        rc = ctx_tss(ctx, "TPM2_NV_ReadPublic on the EK certificate", r);
        goto out;
    }
    if ((pub->nvPublic.attributes & TPMA_NV_WRITTEN) == 0 || pub->nvPublic.dataSize == 0) {
        rc = SCTPM_RC_NOT_FOUND;
        goto out;
    }
    /* EK certificate indices are readable with their own empty auth or the owner's. */
    auth = (pub->nvPublic.attributes & TPMA_NV_AUTHREAD) ? nv : ESYS_TR_RH_OWNER;
    der = malloc(pub->nvPublic.dataSize);
    if (der == NULL) {
        rc = ctx_fail(ctx, SCTPM_RC_NO_MEMORY, "out of memory.");
        goto out;
    }
    rc = ctx_nv_read(ctx, auth, nv, der, pub->nvPublic.dataSize);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    /* Vendors pad the index: d2i reads the certificate's own length and ignores the rest. */
    p = der;
    *cert = d2i_X509(NULL, &p, pub->nvPublic.dataSize);
    if (*cert == NULL) {
        rc = ctx_fail(ctx, SCTPM_RC_BAD_FORMAT,
                      "NV index 0x%08x does not hold a DER X.509 certificate.", index);
    }
out:
    free(der);
    Esys_Free(pub);
    Esys_TR_Close(ctx->esys, &nv);
    return rc;
}

/* The EK public area: the persistent key, else the key the template derives. */
static enum sctpm_rc read_ek(struct sctpm_ctx *ctx, const struct ek_slot *s, TPM2B_PUBLIC **ek,
                             int *persisted)
{
    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcrs = {0};
    TPM2B_PUBLIC tmpl;
    ESYS_TR tr;
    enum sctpm_rc rc;
    TSS2_RC r;

    *ek = NULL;
    *persisted = 0;
    rc = ctx_tr(ctx, s->persistent, &tr);
    if (rc == SCTPM_RC_SUCCESS) {
        r = Esys_ReadPublic(ctx->esys, tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ek, NULL,
                            NULL);
        Esys_TR_Close(ctx->esys, &tr);
        if (r != TSS2_RC_SUCCESS) {
            return ctx_tss(ctx, "TPM2_ReadPublic on the EK", r);
        }
        *persisted = 1;
        return SCTPM_RC_SUCCESS;
    }
    if (rc != SCTPM_RC_NOT_FOUND || s->tmpl == NULL) {
        return rc;
    }
    s->tmpl(&tmpl);
    r = Esys_CreatePrimary(ctx->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs, &tr, ek, NULL, NULL, NULL);
    if (r != TSS2_RC_SUCCESS) {
        return ctx_tss(ctx, "re-creating the EK from its template (TPM2_CreatePrimary)", r);
    }
    Esys_FlushContext(ctx->esys, tr);
    return SCTPM_RC_SUCCESS;
}

/* Compares a big-endian TPM buffer with a BIGNUM parameter of `key`. */
static int same_bn(const EVP_PKEY *key, const char *param, const uint8_t *buf, size_t len)
{
    BIGNUM *bn = NULL, *tpm = BN_bin2bn(buf, (int)len, NULL);
    int same = 0;

    if (tpm != NULL && EVP_PKEY_get_bn_param(key, param, &bn) == 1) {
        same = BN_cmp(bn, tpm) == 0;
    }
    BN_free(bn);
    BN_free(tpm);
    return same;
}

/* 1 when the certificate's key is the EK's. */
static int certifies(X509 *cert, const TPM2B_PUBLIC *ek)
{
    const EVP_PKEY *key = X509_get0_pubkey(cert);
    const TPMT_PUBLIC *p = &ek->publicArea;

    if (key == NULL) {
        return 0;
    }
    if (p->type == TPM2_ALG_RSA && EVP_PKEY_is_a(key, "RSA")) {
        return same_bn(key, OSSL_PKEY_PARAM_RSA_N, p->unique.rsa.buffer, p->unique.rsa.size);
    }
    if (p->type == TPM2_ALG_ECC && EVP_PKEY_is_a(key, "EC")) {
        return same_bn(key, OSSL_PKEY_PARAM_EC_PUB_X, p->unique.ecc.x.buffer,
                       p->unique.ecc.x.size) &&
               same_bn(key, OSSL_PKEY_PARAM_EC_PUB_Y, p->unique.ecc.y.buffer, p->unique.ecc.y.size);
    }
    return 0;
}

/* One line naming a certificate: its CN, else the whole distinguished name. */
static void cert_name(const X509_NAME *name, char *out, size_t size)
{
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);

    out[0] = '\0';
    if (i >= 0) {
        const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
        unsigned char *utf8 = NULL;
        int n = ASN1_STRING_to_UTF8(&utf8, s);
        if (n >= 0) {
            snprintf(out, size, "CN=%.*s", n, (const char *)utf8);
            OPENSSL_free(utf8);
            return;
        }
    }
    X509_NAME_oneline(name, out, (int)size);
}

/* Which emulator, if any, a CA name belongs to. */
static const char *emulator_ca(const X509_NAME *name)
{
    char cn[256] = "", o[256] = "";

    X509_NAME_get_text_by_NID(name, NID_commonName, cn, sizeof(cn));
    X509_NAME_get_text_by_NID(name, NID_organizationName, o, sizeof(o));
    if (strcmp(o, "sctpm") == 0 && strncmp(cn, "sctpmd EK CA", strlen("sctpmd EK CA")) == 0) {
        return "the sctpm emulator's EK CA";
    }
    if (strstr(cn, "swtpm") != NULL) {
        return "swtpm's local CA";
    }
    return NULL;
}

/* EK certificates carry extensions OpenSSL does not know, some marked critical. */
static int verify_cb(int ok, X509_STORE_CTX *sctx)
{
    if (!ok && X509_STORE_CTX_get_error(sctx) == X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION) {
        return 1;
    }
    return ok;
}

static void load_dir(X509_STORE *store, const char *dir)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);

    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]->d_name);
        if (len > 4 && strcmp(names[i]->d_name + len - 4, ".pem") == 0) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
            if (X509_STORE_load_file(store, path) != 1) {
                LOG_WARNING("cannot load CA certificates from %s", path);
            }
        }
        free(names[i]);
    }
    free(names);
}

static X509_STORE *ca_store(void)
{
    const char *file = getenv("SCTPM_TPM_CA_FILE"), *dir = getenv("SCTPM_TPM_CA_DIR");
    X509_STORE *store = X509_STORE_new();

    if (store == NULL) {
        return NULL;
    }
    if (file == NULL || *file == '\0') {
        file = SCTPM_TPM_CA_BUNDLE;
    }
    if (dir == NULL || *dir == '\0') {
        dir = SCTPM_TPM_CA_DIR;
    }
    if (X509_STORE_load_file(store, file) != 1) {
        LOG_DEBUG("no CA bundle at %s", file);
    }
    load_dir(store, dir);
    ERR_clear_error();
    /* Intermediates in the bundle are trusted as they are: the chip vendors publish them. */
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_NO_CHECK_TIME);
    X509_STORE_set_verify_cb(store, verify_cb);
    return store;
}

/*
 * Judges one certificate. Returns 1 for hardware, 0 otherwise, with the reason in `why`.
 */
static int judge(X509 *cert, const TPM2B_PUBLIC *ek, X509_STORE *store, char *why, size_t size)
{
    X509_STORE_CTX *sctx = X509_STORE_CTX_new();
    const char *emu;
    char name[256];
    int hw = 0;

    if ((emu = emulator_ca(X509_get_issuer_name(cert))) != NULL) {
        snprintf(why, size, "the EK certificate is issued by %s", emu);
        goto out;
    }
    if (!certifies(cert, ek)) {
        snprintf(why, size, "the EK certificate is for another key than this TPM's EK");
        goto out;
    }
    if (sctx == NULL || X509_STORE_CTX_init(sctx, store, cert, NULL) != 1) {
        snprintf(why, size, "cannot set up certificate verification (OpenSSL)");
        goto out;
    }
    if (X509_verify_cert(sctx) != 1) {
        cert_name(X509_get_issuer_name(cert), name, sizeof(name));
        snprintf(
            why, size,
            "the EK certificate (issuer %.80s) does not chain to a TPM manufacturer's CA in the "
            "bundle: %.60s",
            name, X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));
        goto out;
    }
    {
        STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(sctx);
        for (int i = 0; i < sk_X509_num(chain); i++) {
            if ((emu = emulator_ca(X509_get_subject_name(sk_X509_value(chain, i)))) != NULL) {
                snprintf(why, size, "the EK certificate chains to %s", emu);
                goto out;
            }
        }
        cert_name(X509_get_subject_name(sk_X509_value(chain, sk_X509_num(chain) - 1)), name,
                  sizeof(name));
    }
    snprintf(why, size, "the EK certificate certifies this TPM's EK and chains to %.150s", name);
    hw = 1;
out:
    X509_STORE_CTX_free(sctx);
    ERR_clear_error();
    return hw;
}

enum sctpm_rc status_classify(struct sctpm_ctx *ctx)
{
    struct sctpm_status *st = &ctx->status;
    X509_STORE *store = NULL;
    char why[256] = "";
    enum sctpm_rc rc;
    int found = 0;

    if (ctx->classified) {
        return SCTPM_RC_SUCCESS;
    }
    memset(st, 0, sizeof(*st));
    snprintf(st->tcti, sizeof(st->tcti), "%s", ctx->choice.conf);
    snprintf(st->tcti_reason, sizeof(st->tcti_reason), "%s", ctx->choice.reason);
    rc = read_properties(ctx, st);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    store = ca_store();
    if (store == NULL) {
        return ctx_fail(ctx, SCTPM_RC_NO_MEMORY, "out of memory.");
    }
    st->kind = SCTPM_KIND_EMULATED;
    for (size_t i = 0; i < sizeof(ek_slots) / sizeof(ek_slots[0]); i++) {
        const struct ek_slot *s = &ek_slots[i];
        TPM2B_PUBLIC *ek = NULL;
        X509 *cert = NULL;
        int persisted, hw;

        rc = read_cert(ctx, s->nv, &cert);
        if (rc == SCTPM_RC_NOT_FOUND) {
            continue;
        }
        if (rc != SCTPM_RC_SUCCESS) {
            /* A broken certificate is a finding, not a failure of the status call. */
            snprintf(why, sizeof(why), "%.200s", ctx->err);
            ctx->err[0] = '\0';
            ctx->tss2_rc = 0;
            continue;
        }
        if (!found) {
            st->ek_cert_index = s->nv;
            cert_name(X509_get_issuer_name(cert), st->ek_issuer, sizeof(st->ek_issuer));
            cert_name(X509_get_subject_name(cert), st->ek_subject, sizeof(st->ek_subject));
            found = 1;
        }
        rc = read_ek(ctx, s, &ek, &persisted);
        if (rc != SCTPM_RC_SUCCESS) {
            snprintf(why, sizeof(why), "cannot read the %s EK to match its certificate: %.180s",
                     s->what, ctx->err);
            ctx->err[0] = '\0';
            ctx->tss2_rc = 0;
            X509_free(cert);
            continue;
        }
        hw = judge(cert, ek, store, why, sizeof(why));
        Esys_Free(ek);
        if (hw) {
            st->kind = SCTPM_KIND_HARDWARE;
            st->ek_cert_index = s->nv;
            cert_name(X509_get_issuer_name(cert), st->ek_issuer, sizeof(st->ek_issuer));
            cert_name(X509_get_subject_name(cert), st->ek_subject, sizeof(st->ek_subject));
            X509_free(cert);
            break;
        }
        X509_free(cert);
    }
    if (!found && why[0] == '\0') {
        snprintf(why, sizeof(why),
                 "the TPM holds no EK certificate (NV 0x01c00002, 0x01c0000a, 0x01c00016)");
    }
    snprintf(st->verdict_reason, sizeof(st->verdict_reason), "%s", why);
    X509_STORE_free(store);
    ctx->classified = 1;
    return SCTPM_RC_SUCCESS;
}

/*
 * Confirming the SRK. The device key is wrapped for the public key that TPM2_ReadPublic returns
 * for 0x81000001; whoever sits between us and the TPM (an interposer on the TPM's bus, or a
 * process answering on the emulator's port first) could return a key of its own and unwrap the
 * device key. So the SRK is read in an audit session salted with the EK: only the TPM holding
 * the EK's private key can derive the session key, so only it can make the response HMAC that
 * ESYS checks, and a response changed on the way fails that check. The session does not cover
 * which object the TPM read: that is what the Qualified Name settles, a digest over the owner
 * hierarchy's handle and the key's Name that the TPM computes from where the key really sits.
 * A key of the owner hierarchy that is fixedTPM, fixedParent and TPM-generated cannot have a
 * private part anyone outside the TPM knows.
 *
 * The salt is only as good as the EK it is encrypted for. When the TPM's EK certificate chains
 * to a manufacturer's CA (HARDWARE), the EK must be the certified key; an emulated TPM has no
 * such anchor, and its own EK is used (which still stops a changed response, not an impostor
 * that answers every command itself).
 */

/* The ek_slots entry of the EK certificate at NV `index`; NULL when there is none. */
static const struct ek_slot *slot_of_index(uint32_t index)
{
    for (size_t i = 0; i < sizeof(ek_slots) / sizeof(ek_slots[0]); i++) {
        if (ek_slots[i].nv == index) {
            return &ek_slots[i];
        }
    }
    return NULL;
}

/*
 * Loads the EK of `s` to salt with; `cert` NULL: nothing to check it against. Re-created from
 * its template, ESYS keeps the public area the TPM returned for the salt, and that is the area
 * checked against `cert`. The persistent key is the fallback (no template, an endorsement
 * password, or a certificate for a key made another way); ESYS's Name of it must then be that
 * of the public area checked. `*flush` is set when the key is transient.
 */
static enum sctpm_rc load_ek(struct sctpm_ctx *ctx, const struct ek_slot *s, X509 *cert,
                             X509_STORE *store, ESYS_TR *ek, int *flush)
{
    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcrs = {0};
    TPM2B_PUBLIC tmpl, *pub = NULL;
    TPM2B_NAME *held = NULL, computed;
    char why[256] = "";
    enum sctpm_rc rc;
    TSS2_RC r = TSS2_RC_SUCCESS;

    *ek = ESYS_TR_NONE;
    *flush = 0;
    if (s->tmpl != NULL) {
        s->tmpl(&tmpl);
        r = Esys_CreatePrimary(ctx->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                               ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs, ek, &pub, NULL, NULL,
                               NULL);
        if (r == TSS2_RC_SUCCESS && (cert == NULL || judge(cert, pub, store, why, sizeof(why)))) {
            *flush = 1;
            Esys_Free(pub);
            return SCTPM_RC_SUCCESS;
        }
        if (r == TSS2_RC_SUCCESS) {
            Esys_FlushContext(ctx->esys, *ek);
        }
        *ek = ESYS_TR_NONE;
        Esys_Free(pub);
        pub = NULL;
    }
    rc = ctx_tr(ctx, s->persistent, ek);
    if (rc == SCTPM_RC_NOT_FOUND) {
        if (why[0] != '\0') {
            return ctx_fail(ctx, SCTPM_RC_UNTRUSTED,
                            "the %s EK the TPM makes now is not the certified one: %s.", s->what,
                            why);
        }
        if (r != TSS2_RC_SUCCESS) {
            char what[128];
            snprintf(what, sizeof(what),
                     "the TPM has no %s EK at 0x%08x; re-creating it from its template "
                     "(TPM2_CreatePrimary)",
                     s->what, s->persistent);
            return ctx_tss(ctx, what, r);
        }
        return ctx_fail(ctx, SCTPM_RC_NOT_FOUND, "the TPM has no %s EK at 0x%08x.", s->what,
                        s->persistent);
    }
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    r = Esys_ReadPublic(ctx->esys, *ek, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL, NULL);
    if (r != TSS2_RC_SUCCESS) {
        rc = ctx_tss(ctx, "TPM2_ReadPublic on the EK", r);
        goto out;
    }
    if (Esys_TR_GetName(ctx->esys, *ek, &held) != TSS2_RC_SUCCESS ||
        dup_name(&pub->publicArea, &computed) != SCTPM_RC_SUCCESS || held->size != computed.size ||
        memcmp(held->name, computed.name, computed.size) != 0) {
        rc = ctx_fail(ctx, SCTPM_RC_UNTRUSTED,
                      "the EK at 0x%08x changed between two reads of its public area.",
                      s->persistent);
        goto out;
    }
    rc = SCTPM_RC_SUCCESS;
    if (cert != NULL && !judge(cert, pub, store, why, sizeof(why))) {
        rc = ctx_fail(ctx, SCTPM_RC_UNTRUSTED,
                      "the %s EK the TPM holds now is not the certified one: %s.", s->what, why);
    }
out:
    if (rc != SCTPM_RC_SUCCESS) {
        Esys_TR_Close(ctx->esys, ek);
    }
    Esys_Free(held);
    Esys_Free(pub);
    return rc;
}

/* The EK to salt with: the certified one (HARDWARE), else the first the TPM can give. */
static enum sctpm_rc salt_ek(struct sctpm_ctx *ctx, ESYS_TR *ek, int *flush, char *how,
                             size_t how_size)
{
    const struct ek_slot *s;
    X509_STORE *store = NULL;
    X509 *cert = NULL;
    enum sctpm_rc rc = SCTPM_RC_NOT_FOUND, first_rc = SCTPM_RC_NOT_FOUND;
    char first[CTX_ERR_MAX - 64] = "";
    uint32_t first_tss = 0;

    if (ctx->status.kind == SCTPM_KIND_HARDWARE &&
        (s = slot_of_index(ctx->status.ek_cert_index)) != NULL) {
        /* The certificate is read again: the one classified may not be the one served now. */
        store = ca_store();
        if (store == NULL) {
            return ctx_fail(ctx, SCTPM_RC_NO_MEMORY, "out of memory.");
        }
        rc = read_cert(ctx, s->nv, &cert);
        if (rc == SCTPM_RC_NOT_FOUND) {
            rc = ctx_fail(ctx, SCTPM_RC_UNTRUSTED,
                          "the EK certificate at NV 0x%08x has gone since it was verified.", s->nv);
        }
        if (rc == SCTPM_RC_SUCCESS) {
            rc = load_ek(ctx, s, cert, store, ek, flush);
        }
        snprintf(how, how_size, "the %s EK certified by %.200s", s->what, ctx->status.ek_issuer);
        X509_free(cert);
        X509_STORE_free(store);
        return rc;
    }
    for (size_t i = 0; i < sizeof(ek_slots) / sizeof(ek_slots[0]); i++) {
        s = &ek_slots[i];
        rc = load_ek(ctx, s, NULL, NULL, ek, flush);
        if (rc == SCTPM_RC_SUCCESS) {
            ctx->err[0] = '\0';
            ctx->tss2_rc = 0;
            snprintf(how, how_size,
                     "the TPM's own %s EK, which no manufacturer vouches for (%.200s)", s->what,
                     ctx->status.verdict_reason);
            return rc;
        }
        /* The next kind of EK may do; the first failure (the common EK) is the one reported. */
        if (i == 0) {
            first_rc = rc;
            first_tss = ctx->tss2_rc;
            snprintf(first, sizeof(first), "%.400s", ctx->err);
        }
    }
    ctx->tss2_rc = first_tss;
    return ctx_fail(ctx, first_rc, "no EK to confirm the SRK with: %s", first);
}

enum sctpm_rc status_confirm_srk(struct sctpm_ctx *ctx, ESYS_TR *srk, TPM2B_PUBLIC **out)
{
    const TPMA_OBJECT need = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                             TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_RESTRICTED |
                             TPMA_OBJECT_DECRYPT;
    TPMT_SYM_DEF no_cipher = {.algorithm = TPM2_ALG_NULL};
    TPM2B_NAME *name = NULL, *qualified = NULL, want_name, want_qualified;
    TPM2B_PUBLIC *pub = NULL;
    ESYS_TR ek = ESYS_TR_NONE, session = ESYS_TR_NONE;
    char how[320];
    int flush = 0;
    enum sctpm_rc rc;
    TSS2_RC r;

    *out = NULL;
    rc = status_classify(ctx);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    rc = salt_ek(ctx, &ek, &flush, how, sizeof(how));
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    r = Esys_StartAuthSession(ctx->esys, ek, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                              NULL, TPM2_SE_HMAC, &no_cipher, TPM2_ALG_SHA256, &session);
    if (r != TSS2_RC_SUCCESS) {
        session = ESYS_TR_NONE;
        rc = ctx_tss(ctx, "starting a session salted with the EK (TPM2_StartAuthSession)", r);
        goto out;
    }
    r = Esys_TRSess_SetAttributes(ctx->esys, session,
                                  TPMA_SESSION_AUDIT | TPMA_SESSION_CONTINUESESSION, 0xff);
    if (r != TSS2_RC_SUCCESS) {
        rc = ctx_tss(ctx, "setting the session's attributes", r);
        goto out;
    }
    r = Esys_ReadPublic(ctx->esys, *srk, session, ESYS_TR_NONE, ESYS_TR_NONE, &pub, &name,
                        &qualified);
    if (r != TSS2_RC_SUCCESS) {
        /* A response HMAC that does not verify is the case this function exists for. */
        rc = ctx_tss(ctx,
                     "reading the SRK's public area in a session salted with the EK "
                     "(TPM2_ReadPublic)",
                     r);
        if (r == TSS2_ESYS_RC_RSP_AUTH_FAILED) {
            TPM2_HANDLE stale[2] = {TPM2_RH_NULL, TPM2_RH_NULL};
            rc = ctx_fail(ctx, SCTPM_RC_UNTRUSTED,
                          "the TPM's answer for the SRK at 0x%08x was changed on its way: its "
                          "HMAC in the session salted with %s does not verify.",
                          SCTPM_SRK_HANDLE, how);
            Esys_TR_GetTpmHandle(ctx->esys, session, &stale[0]);
            if (flush) {
                Esys_TR_GetTpmHandle(ctx->esys, ek, &stale[1]);
            }
            ctx_esys_renew(ctx, stale, 2);
            session = ek = *srk = ESYS_TR_NONE;
            flush = 0;
        }
        goto out;
    }
    if (dup_name(&pub->publicArea, &want_name) != SCTPM_RC_SUCCESS ||
        dup_qualified_name(pub->publicArea.nameAlg, TPM2_RH_OWNER, &want_name, &want_qualified) !=
            SCTPM_RC_SUCCESS) {
        rc = ctx_fail(ctx, SCTPM_RC_UNSUPPORTED,
                      "the SRK at 0x%08x has a name algorithm (TPM_ALG 0x%04x) this library does "
                      "not know.",
                      SCTPM_SRK_HANDLE, (unsigned)pub->publicArea.nameAlg);
        goto out;
    }
    if (name->size != want_name.size || memcmp(name->name, want_name.name, want_name.size) != 0 ||
        qualified->size != want_qualified.size ||
        memcmp(qualified->name, want_qualified.name, want_qualified.size) != 0) {
        rc = ctx_fail(ctx, SCTPM_RC_UNTRUSTED,
                      "the key the TPM read for the SRK at 0x%08x is not a primary key of the "
                      "owner hierarchy (its Qualified Name says otherwise): the device key is not "
                      "wrapped for it.",
                      SCTPM_SRK_HANDLE);
        goto out;
    }
    if ((pub->publicArea.objectAttributes & (need | TPMA_OBJECT_SIGN_ENCRYPT)) != need) {
        rc = ctx_fail(ctx, SCTPM_RC_UNTRUSTED,
                      "the SRK at 0x%08x (attributes 0x%08x) is not a storage key that stays in "
                      "the TPM: it must be fixedTPM, fixedParent, sensitiveDataOrigin, restricted "
                      "and decrypt, and not sign.",
                      SCTPM_SRK_HANDLE, (unsigned)pub->publicArea.objectAttributes);
        goto out;
    }
    LOG_INFO("SRK 0x%08x confirmed in an audit session salted with %s", SCTPM_SRK_HANDLE, how);
    *out = pub;
    pub = NULL;
out:
    if (session != ESYS_TR_NONE) {
        Esys_FlushContext(ctx->esys, session);
    }
    if (flush) {
        Esys_FlushContext(ctx->esys, ek);
    } else if (ek != ESYS_TR_NONE) {
        Esys_TR_Close(ctx->esys, &ek);
    }
    Esys_Free(pub);
    Esys_Free(name);
    Esys_Free(qualified);
    return rc;
}

enum sctpm_rc sctpm_status(struct sctpm_ctx *ctx, struct sctpm_status *st)
{
    enum sctpm_rc rc;

    if (st == NULL) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    memset(st, 0, sizeof(*st));
    rc = ctx_enter(ctx);
    if (rc == SCTPM_RC_SUCCESS) {
        rc = status_classify(ctx);
    }
    if (rc == SCTPM_RC_SUCCESS) {
        *st = ctx->status;
        rc = ctx_policy(ctx);
    }
    return ctx_end(ctx, rc);
}
