/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dup: the duplication blob of an HMAC key for TPM2_Import (see dup.h for the construction).
 *
 * Every buffer that holds key material (the key inside the sensitive area, the obfuscation
 * seedValue, the wrapper's seed, the ECDH secret Z, symKey and hmacKey) lives on this file's
 * stack frames and is wiped with explicit_bzero on the way out of the function that made it,
 * on every path. Nothing here logs.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include "dup.h"
#include "errbuf.h"

/* The hash algorithms a parent's nameAlg may be, and OpenSSL's names for them. */
static const struct hash_alg {
    TPMI_ALG_HASH alg;
    const char *name;
    size_t size;
} hashes[] = {
    {TPM2_ALG_SHA1, "SHA1", 20},
    {TPM2_ALG_SHA256, "SHA256", 32},
    {TPM2_ALG_SHA384, "SHA384", 48},
    {TPM2_ALG_SHA512, "SHA512", 64},
};

/* The curves an ECC parent may be on: OpenSSL's group name and the size of a coordinate. */
static const struct curve {
    TPMI_ECC_CURVE id;
    const char *group;
    size_t bytes;
} curves[] = {
    {TPM2_ECC_NIST_P256, "P-256", 32},
    {TPM2_ECC_NIST_P384, "P-384", 48},
    {TPM2_ECC_NIST_P521, "P-521", 66},
};

/* The labels of Part 1; each is used with its terminating zero octet. */
#define LABEL_DUPLICATE "DUPLICATE"
#define LABEL_STORAGE   "STORAGE"
#define LABEL_INTEGRITY "INTEGRITY"

static const struct hash_alg *hash_find(TPMI_ALG_HASH alg)
{
    for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++) {
        if (hashes[i].alg == alg) {
            return &hashes[i];
        }
    }
    return NULL;
}

static const struct curve *curve_find(TPMI_ECC_CURVE id)
{
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        if (curves[i].id == id) {
            return &curves[i];
        }
    }
    return NULL;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Clears the bits of the first output byte beyond `bits`, as the KDFs of Part 1 require. */
static void mask_bits(uint8_t *out, uint32_t bits)
{
    if (bits % 8 != 0) {
        out[0] &= (uint8_t)((1u << (bits % 8)) - 1);
    }
}

enum sctpm_rc dup_kdfa(TPMI_ALG_HASH hash, const uint8_t *key, size_t key_len, const char *label,
                       const uint8_t *u, size_t u_len, const uint8_t *v, size_t v_len,
                       uint32_t bits, uint8_t *out, size_t out_size)
{
    const struct hash_alg *h = hash_find(hash);
    size_t n = ((size_t)bits + 7) / 8, done = 0, blen = 0;
    uint8_t block[EVP_MAX_MD_SIZE], counter[4], length[4], zero = 0;
    char digest[16];
    OSSL_PARAM params[2];
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *mctx = NULL;
    enum sctpm_rc rc = SCTPM_RC_GENERAL_FAILURE;

    if (h == NULL) {
        return SCTPM_RC_UNSUPPORTED;
    }
    if (bits == 0 || n > out_size || out == NULL || key == NULL || key_len == 0 ||
        (u == NULL && u_len > 0) || (v == NULL && v_len > 0)) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    /* OSSL_PARAM takes a mutable string; the table's names are const. */
    snprintf(digest, sizeof(digest), "%s", h->name);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) {
        goto out;
    }
    mctx = EVP_MAC_CTX_new(mac);
    if (mctx == NULL) {
        goto out;
    }
    put_be32(length, bits);
    for (uint32_t i = 1; done < n; i++) {
        size_t take;
        put_be32(counter, i);
        if (EVP_MAC_init(mctx, key, key_len, params) != 1 ||
            EVP_MAC_update(mctx, counter, sizeof(counter)) != 1 ||
            (label != NULL && EVP_MAC_update(mctx, (const uint8_t *)label, strlen(label)) != 1) ||
            EVP_MAC_update(mctx, &zero, 1) != 1 ||
            (u_len > 0 && EVP_MAC_update(mctx, u, u_len) != 1) ||
            (v_len > 0 && EVP_MAC_update(mctx, v, v_len) != 1) ||
            EVP_MAC_update(mctx, length, sizeof(length)) != 1 ||
            EVP_MAC_final(mctx, block, &blen, sizeof(block)) != 1 || blen != h->size) {
            goto out;
        }
        take = n - done < blen ? n - done : blen;
        memcpy(out + done, block, take);
        done += take;
    }
    mask_bits(out, bits);
    rc = SCTPM_RC_SUCCESS;
out:
    explicit_bzero(block, sizeof(block));
    if (rc != SCTPM_RC_SUCCESS) {
        explicit_bzero(out, n);
    }
    EVP_MAC_CTX_free(mctx);
    EVP_MAC_free(mac);
    return rc;
}

enum sctpm_rc dup_kdfe(TPMI_ALG_HASH hash, const uint8_t *z, size_t z_len, const char *label,
                       const uint8_t *u, size_t u_len, const uint8_t *v, size_t v_len,
                       uint32_t bits, uint8_t *out, size_t out_size)
{
    const struct hash_alg *h = hash_find(hash);
    size_t n = ((size_t)bits + 7) / 8, done = 0;
    uint8_t block[EVP_MAX_MD_SIZE], counter[4], zero = 0;
    unsigned int blen = 0;
    const EVP_MD *md;
    EVP_MD_CTX *mdctx = NULL;
    enum sctpm_rc rc = SCTPM_RC_GENERAL_FAILURE;

    if (h == NULL) {
        return SCTPM_RC_UNSUPPORTED;
    }
    if (bits == 0 || n > out_size || out == NULL || (z == NULL && z_len > 0) ||
        (u == NULL && u_len > 0) || (v == NULL && v_len > 0)) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    md = EVP_get_digestbyname(h->name);
    mdctx = EVP_MD_CTX_new();
    if (md == NULL || mdctx == NULL) {
        goto out;
    }
    for (uint32_t i = 1; done < n; i++) {
        size_t take;
        put_be32(counter, i);
        if (EVP_DigestInit_ex(mdctx, md, NULL) != 1 ||
            EVP_DigestUpdate(mdctx, counter, sizeof(counter)) != 1 ||
            (z_len > 0 && EVP_DigestUpdate(mdctx, z, z_len) != 1) ||
            (label != NULL && EVP_DigestUpdate(mdctx, label, strlen(label)) != 1) ||
            EVP_DigestUpdate(mdctx, &zero, 1) != 1 ||
            (u_len > 0 && EVP_DigestUpdate(mdctx, u, u_len) != 1) ||
            (v_len > 0 && EVP_DigestUpdate(mdctx, v, v_len) != 1) ||
            EVP_DigestFinal_ex(mdctx, block, &blen) != 1 || blen != h->size) {
            goto out;
        }
        take = n - done < blen ? n - done : blen;
        memcpy(out + done, block, take);
        done += take;
    }
    mask_bits(out, bits);
    rc = SCTPM_RC_SUCCESS;
out:
    explicit_bzero(block, sizeof(block));
    if (rc != SCTPM_RC_SUCCESS) {
        explicit_bzero(out, n);
    }
    EVP_MD_CTX_free(mdctx);
    return rc;
}

enum sctpm_rc dup_name(const TPMT_PUBLIC *pub, TPM2B_NAME *name)
{
    const struct hash_alg *h = hash_find(pub->nameAlg);
    uint8_t buf[sizeof(TPMT_PUBLIC)];
    size_t off = 0, alg_len = 0;
    unsigned int len = 0;

    memset(name, 0, sizeof(*name));
    if (h == NULL) {
        return SCTPM_RC_UNSUPPORTED;
    }
    if (Tss2_MU_TPMT_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS ||
        Tss2_MU_UINT16_Marshal(pub->nameAlg, name->name, sizeof(name->name), &alg_len) !=
            TSS2_RC_SUCCESS) {
        return SCTPM_RC_BAD_FORMAT;
    }
    if (alg_len + h->size > sizeof(name->name) ||
        EVP_Digest(buf, off, name->name + alg_len, &len, EVP_get_digestbyname(h->name), NULL) !=
            1 ||
        len != h->size) {
        memset(name, 0, sizeof(*name));
        return SCTPM_RC_GENERAL_FAILURE;
    }
    name->size = (uint16_t)(alg_len + len);
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc dup_qualified_name(TPMI_ALG_HASH name_alg, TPM2_HANDLE hierarchy,
                                 const TPM2B_NAME *name, TPM2B_NAME *qualified)
{
    const struct hash_alg *h = hash_find(name_alg);
    uint8_t buf[sizeof(TPM2_HANDLE) + sizeof(name->name)];
    size_t alg_len = 0;
    unsigned int len = 0;

    memset(qualified, 0, sizeof(*qualified));
    if (h == NULL) {
        return SCTPM_RC_UNSUPPORTED;
    }
    if (name->size > sizeof(name->name) ||
        Tss2_MU_UINT16_Marshal(name_alg, qualified->name, sizeof(qualified->name), &alg_len) !=
            TSS2_RC_SUCCESS) {
        return SCTPM_RC_BAD_FORMAT;
    }
    put_be32(buf, hierarchy);
    memcpy(buf + sizeof(TPM2_HANDLE), name->name, name->size);
    if (EVP_Digest(buf, sizeof(TPM2_HANDLE) + name->size, qualified->name + alg_len, &len,
                   EVP_get_digestbyname(h->name), NULL) != 1 ||
        len != h->size) {
        memset(qualified, 0, sizeof(*qualified));
        return SCTPM_RC_GENERAL_FAILURE;
    }
    qualified->size = (uint16_t)(alg_len + len);
    return SCTPM_RC_SUCCESS;
}

/* An OpenSSL public key from the parent's RSA public area. */
static enum sctpm_rc rsa_public(const TPMT_PUBLIC *parent, EVP_PKEY **pkey, char *err,
                                size_t errlen)
{
    const TPMS_RSA_PARMS *p = &parent->parameters.rsaDetail;
    const TPM2B_PUBLIC_KEY_RSA *n = &parent->unique.rsa;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *kctx = NULL;
    enum sctpm_rc rc = SCTPM_RC_GENERAL_FAILURE;

    *pkey = NULL;
    /* A TPM reports the modulus at its full size; anything else is not a key it made. */
    if (n->size == 0 || n->size > sizeof(n->buffer) || (uint32_t)n->size * 8 != p->keyBits) {
        errbuf_set(err, errlen,
                   "the parent's RSA modulus is %u bytes, which does not match its %u key bits.",
                   (unsigned)n->size, (unsigned)p->keyBits);
        return SCTPM_RC_BAD_FORMAT;
    }
    bn_n = BN_bin2bn(n->buffer, n->size, NULL);
    bn_e = BN_new();
    bld = OSSL_PARAM_BLD_new();
    /* An exponent of 0 in a TPM public area means the default, 65537. */
    if (bn_n == NULL || bn_e == NULL || bld == NULL ||
        BN_set_word(bn_e, p->exponent != 0 ? p->exponent : 65537) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) != 1) {
        errbuf_set(err, errlen, "building the parent's RSA public key failed (OpenSSL).");
        goto out;
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    kctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (params == NULL || kctx == NULL || EVP_PKEY_fromdata_init(kctx) != 1 ||
        EVP_PKEY_fromdata(kctx, pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        *pkey = NULL;
        errbuf_set(err, errlen, "OpenSSL refused the parent's RSA public key.");
        rc = SCTPM_RC_BAD_FORMAT;
        goto out;
    }
    rc = SCTPM_RC_SUCCESS;
out:
    EVP_PKEY_CTX_free(kctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_e);
    BN_free(bn_n);
    return rc;
}

/*
 * RSA secret sharing (Part 1, "RSA-based secret sharing"): a random seed, encrypted with
 * RSA-OAEP under the parent's key, its nameAlg as the OAEP and MGF1 hash, and the label
 * "DUPLICATE" with its zero octet.
 */
static enum sctpm_rc rsa_seed(const TPMT_PUBLIC *parent, const struct hash_alg *h, uint8_t *seed,
                              TPM2B_ENCRYPTED_SECRET *secret, char *err, size_t errlen)
{
    static const char label[] = LABEL_DUPLICATE;
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ectx = NULL;
    const EVP_MD *md = EVP_get_digestbyname(h->name);
    void *oaep_label = NULL;
    size_t len = 0;
    enum sctpm_rc rc;

    rc = rsa_public(parent, &pkey, err, errlen);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    rc = SCTPM_RC_GENERAL_FAILURE;
    if (RAND_priv_bytes(seed, (int)h->size) != 1) {
        errbuf_set(err, errlen, "no random bytes for the seed (OpenSSL).");
        goto out;
    }
    ectx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (md == NULL || ectx == NULL || EVP_PKEY_encrypt_init(ectx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ectx, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ectx, md) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ectx, md) != 1) {
        errbuf_set(err, errlen, "setting up RSA-OAEP for the parent failed (OpenSSL).");
        goto out;
    }
    /* OpenSSL takes ownership of the label on success only. */
    oaep_label = OPENSSL_memdup(label, sizeof(label));
    if (oaep_label == NULL ||
        EVP_PKEY_CTX_set0_rsa_oaep_label(ectx, oaep_label, sizeof(label)) != 1) {
        OPENSSL_free(oaep_label);
        errbuf_set(err, errlen, "setting the OAEP label failed (OpenSSL).");
        goto out;
    }
    if (EVP_PKEY_encrypt(ectx, NULL, &len, seed, h->size) != 1 || len > sizeof(secret->secret)) {
        errbuf_set(err, errlen, "the parent's RSA key cannot carry a %zu-byte seed with OAEP.",
                   h->size);
        rc = SCTPM_RC_UNSUPPORTED;
        goto out;
    }
    if (EVP_PKEY_encrypt(ectx, secret->secret, &len, seed, h->size) != 1) {
        errbuf_set(err, errlen, "RSA-OAEP encryption of the seed failed (OpenSSL).");
        goto out;
    }
    secret->size = (uint16_t)len;
    rc = SCTPM_RC_SUCCESS;
out:
    EVP_PKEY_CTX_free(ectx);
    EVP_PKEY_free(pkey);
    return rc;
}

/* An OpenSSL public key from the parent's ECC public area, checked to be on its curve. */
static enum sctpm_rc ecc_public(const TPMT_PUBLIC *parent, const struct curve *c, EVP_PKEY **pkey,
                                char *err, size_t errlen)
{
    const TPMS_ECC_POINT *q = &parent->unique.ecc;
    uint8_t point[1 + 2 * 66];
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *kctx = NULL, *cctx = NULL;
    enum sctpm_rc rc = SCTPM_RC_GENERAL_FAILURE;

    *pkey = NULL;
    if (q->x.size == 0 || q->x.size > c->bytes || q->y.size == 0 || q->y.size > c->bytes) {
        errbuf_set(err, errlen,
                   "the parent's ECC point has coordinates of %u and %u bytes; %s takes up to %zu.",
                   (unsigned)q->x.size, (unsigned)q->y.size, c->group, c->bytes);
        return SCTPM_RC_BAD_FORMAT;
    }
    /* SEC1 uncompressed form, each coordinate left-padded to the field size. */
    memset(point, 0, sizeof(point));
    point[0] = 0x04;
    memcpy(point + 1 + c->bytes - q->x.size, q->x.buffer, q->x.size);
    memcpy(point + 1 + 2 * c->bytes - q->y.size, q->y.buffer, q->y.size);
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, c->group, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * c->bytes) !=
            1) {
        errbuf_set(err, errlen, "building the parent's ECC public key failed (OpenSSL).");
        goto out;
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    kctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (params == NULL || kctx == NULL || EVP_PKEY_fromdata_init(kctx) != 1 ||
        EVP_PKEY_fromdata(kctx, pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        *pkey = NULL;
        errbuf_set(err, errlen, "the parent's ECC public key is not a point on %s.", c->group);
        rc = SCTPM_RC_BAD_FORMAT;
        goto out;
    }
    /*
     * A point off the curve, or of small order, would let whoever chose it guess Z, and with it
     * the seed and the key.
     */
    cctx = EVP_PKEY_CTX_new_from_pkey(NULL, *pkey, NULL);
    if (cctx == NULL || EVP_PKEY_public_check(cctx) != 1) {
        EVP_PKEY_free(*pkey);
        *pkey = NULL;
        errbuf_set(err, errlen, "the parent's ECC public key is not a valid point on %s.",
                   c->group);
        rc = SCTPM_RC_BAD_FORMAT;
        goto out;
    }
    rc = SCTPM_RC_SUCCESS;
out:
    EVP_PKEY_CTX_free(cctx);
    EVP_PKEY_CTX_free(kctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return rc;
}

/*
 * ECC secret sharing (Part 1, "ECDH"; one-pass C(1e, 1s)): an ephemeral key Qe on the parent's
 * curve, Z = x(de * Qs), seed = KDFe(nameAlg, Z, "DUPLICATE", Qe.x, Qs.x, digest bits), and
 * Qe as the marshalled TPMS_ECC_POINT the TPM multiplies by its private key.
 */
static enum sctpm_rc ecc_seed(const TPMT_PUBLIC *parent, const struct hash_alg *h, uint8_t *seed,
                              TPM2B_ENCRYPTED_SECRET *secret, char *err, size_t errlen)
{
    const struct curve *c = curve_find(parent->parameters.eccDetail.curveID);
    TPMS_ECC_POINT qe;
    uint8_t z[66];
    size_t z_len = 0, off = 0;
    EVP_PKEY *parent_key = NULL, *eph = NULL;
    EVP_PKEY_CTX *gctx = NULL, *dctx = NULL;
    BIGNUM *x = NULL, *y = NULL;
    enum sctpm_rc rc;

    if (c == NULL) {
        errbuf_set(err, errlen,
                   "the parent's curve (TPM_ECC_CURVE 0x%04x) is not NIST P-256, P-384 or P-521.",
                   (unsigned)parent->parameters.eccDetail.curveID);
        return SCTPM_RC_UNSUPPORTED;
    }
    rc = ecc_public(parent, c, &parent_key, err, errlen);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    rc = SCTPM_RC_GENERAL_FAILURE;
    gctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (gctx == NULL || EVP_PKEY_keygen_init(gctx) != 1 ||
        EVP_PKEY_CTX_set_group_name(gctx, c->group) != 1 || EVP_PKEY_generate(gctx, &eph) != 1) {
        eph = NULL;
        errbuf_set(err, errlen, "generating an ephemeral %s key failed (OpenSSL).", c->group);
        goto out;
    }
    dctx = EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL);
    if (dctx == NULL || EVP_PKEY_derive_init(dctx) != 1 ||
        EVP_PKEY_derive_set_peer(dctx, parent_key) != 1 ||
        EVP_PKEY_derive(dctx, NULL, &z_len) != 1 || z_len != c->bytes ||
        EVP_PKEY_derive(dctx, z, &z_len) != 1 || z_len != c->bytes) {
        errbuf_set(err, errlen, "ECDH with the parent's key failed (OpenSSL).");
        goto out;
    }
    /* The TPM's Z and its party infos are coordinates at the full field size. */
    memset(&qe, 0, sizeof(qe));
    if (EVP_PKEY_get_bn_param(eph, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
        EVP_PKEY_get_bn_param(eph, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1 ||
        BN_bn2binpad(x, qe.x.buffer, (int)c->bytes) != (int)c->bytes ||
        BN_bn2binpad(y, qe.y.buffer, (int)c->bytes) != (int)c->bytes) {
        errbuf_set(err, errlen, "reading the ephemeral public key failed (OpenSSL).");
        goto out;
    }
    qe.x.size = qe.y.size = (uint16_t)c->bytes;
    rc = dup_kdfe(h->alg, z, z_len, LABEL_DUPLICATE, qe.x.buffer, qe.x.size,
                  parent->unique.ecc.x.buffer, parent->unique.ecc.x.size, (uint32_t)h->size * 8,
                  seed, h->size);
    if (rc != SCTPM_RC_SUCCESS) {
        errbuf_set(err, errlen, "KDFe failed (OpenSSL).");
        goto out;
    }
    if (Tss2_MU_TPMS_ECC_POINT_Marshal(&qe, secret->secret, sizeof(secret->secret), &off) !=
        TSS2_RC_SUCCESS) {
        errbuf_set(err, errlen, "marshalling the ephemeral point failed.");
        rc = SCTPM_RC_GENERAL_FAILURE;
        goto out;
    }
    secret->size = (uint16_t)off;
    rc = SCTPM_RC_SUCCESS;
out:
    explicit_bzero(z, sizeof(z));
    BN_free(x);
    BN_free(y);
    EVP_PKEY_CTX_free(dctx);
    EVP_PKEY_CTX_free(gctx);
    EVP_PKEY_free(eph);
    EVP_PKEY_free(parent_key);
    return rc;
}

/*
 * Checks that `parent` is a storage key we can wrap for; sets its nameAlg and the AES-CFB
 * cipher of its symmetric definition.
 */
static enum sctpm_rc check_parent(const TPMT_PUBLIC *parent, const struct hash_alg **h,
                                  const EVP_CIPHER **cipher, char *err, size_t errlen)
{
    const TPMT_SYM_DEF_OBJECT *sym;
    const TPMA_OBJECT storage = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;

    if (parent->type == TPM2_ALG_RSA) {
        sym = &parent->parameters.rsaDetail.symmetric;
    } else if (parent->type == TPM2_ALG_ECC) {
        sym = &parent->parameters.eccDetail.symmetric;
    } else {
        errbuf_set(err, errlen,
                   "the parent is of type TPM_ALG 0x%04x; only an RSA or ECC storage key can be "
                   "a parent.",
                   (unsigned)parent->type);
        return SCTPM_RC_UNSUPPORTED;
    }
    if ((parent->objectAttributes & (storage | TPMA_OBJECT_SIGN_ENCRYPT)) != storage) {
        errbuf_set(err, errlen,
                   "the parent (attributes 0x%08x) is not a storage key: it must be restricted, "
                   "decrypt and not sign.",
                   (unsigned)parent->objectAttributes);
        return SCTPM_RC_UNSUPPORTED;
    }
    *h = hash_find(parent->nameAlg);
    if (*h == NULL) {
        errbuf_set(err, errlen,
                   "the parent's name algorithm (TPM_ALG 0x%04x) is not SHA-1, SHA-256, SHA-384 or "
                   "SHA-512.",
                   (unsigned)parent->nameAlg);
        return SCTPM_RC_UNSUPPORTED;
    }
    *cipher = NULL;
    if (sym->algorithm == TPM2_ALG_AES && sym->mode.aes == TPM2_ALG_CFB) {
        switch (sym->keyBits.aes) {
        case 128:
            *cipher = EVP_aes_128_cfb128();
            break;
        case 192:
            *cipher = EVP_aes_192_cfb128();
            break;
        case 256:
            *cipher = EVP_aes_256_cfb128();
            break;
        default:
            break;
        }
    }
    if (*cipher == NULL) {
        errbuf_set(err, errlen,
                   "the parent's symmetric algorithm (TPM_ALG 0x%04x, %u bits, mode 0x%04x) is not "
                   "AES-128, -192 or -256 in CFB mode.",
                   (unsigned)sym->algorithm, (unsigned)sym->keyBits.sym, (unsigned)sym->mode.sym);
        return SCTPM_RC_UNSUPPORTED;
    }
    return SCTPM_RC_SUCCESS;
}

/* AES-CFB with a zero IV, as Part 1 prescribes for the outer wrapper. */
static int cfb_encrypt(const EVP_CIPHER *cipher, const uint8_t *key, const uint8_t *in, size_t len,
                       uint8_t *out)
{
    static const uint8_t iv[16];
    EVP_CIPHER_CTX *cctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0, ok;

    ok = cctx != NULL && len <= INT32_MAX && EVP_EncryptInit_ex(cctx, cipher, NULL, key, iv) == 1 &&
         EVP_EncryptUpdate(cctx, out, &n, in, (int)len) == 1 &&
         EVP_EncryptFinal_ex(cctx, out + n, &fin) == 1 && (size_t)n + (size_t)fin == len;
    EVP_CIPHER_CTX_free(cctx);
    return ok;
}

/* unique of a keyedhash object: H_nameAlg(seedValue || key), so the key cannot be guessed. */
static int keyedhash_unique(const TPMT_SENSITIVE *s, TPM2B_DIGEST *unique)
{
    EVP_MD_CTX *mdctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok;

    ok = mdctx != NULL && EVP_DigestInit_ex(mdctx, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(mdctx, s->seedValue.buffer, s->seedValue.size) == 1 &&
         EVP_DigestUpdate(mdctx, s->sensitive.bits.buffer, s->sensitive.bits.size) == 1 &&
         EVP_DigestFinal_ex(mdctx, unique->buffer, &len) == 1;
    EVP_MD_CTX_free(mdctx);
    unique->size = (uint16_t)len;
    return ok && len == 32;
}

/* outerHMAC := HMAC_nameAlg(hmacKey, encSensitive || Name). */
static int outer_hmac(const struct hash_alg *h, const uint8_t *hmac_key, const uint8_t *enc,
                      size_t enc_len, const TPM2B_NAME *name, TPM2B_DIGEST *outer)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *mctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    char digest[16];
    OSSL_PARAM params[2];
    size_t len = 0;
    int ok;

    snprintf(digest, sizeof(digest), "%s", h->name);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    ok = mctx != NULL && EVP_MAC_init(mctx, hmac_key, h->size, params) == 1 &&
         EVP_MAC_update(mctx, enc, enc_len) == 1 &&
         EVP_MAC_update(mctx, name->name, name->size) == 1 &&
         EVP_MAC_final(mctx, outer->buffer, &len, sizeof(outer->buffer)) == 1 && len == h->size;
    EVP_MAC_CTX_free(mctx);
    EVP_MAC_free(mac);
    outer->size = (uint16_t)len;
    return ok;
}

enum sctpm_rc dup_hmac_key(const TPMT_PUBLIC *parent, const uint8_t *key, size_t key_len,
                           struct dup_blob *out, char *err, size_t errlen)
{
    const struct hash_alg *h = NULL;
    const EVP_CIPHER *cipher = NULL;
    TPMT_PUBLIC *pub;
    TPM2B_SENSITIVE sens;
    TPM2B_NAME name;
    TPM2B_DIGEST outer;
    uint8_t plain[sizeof(TPM2B_SENSITIVE)], enc[sizeof(TPM2B_SENSITIVE)];
    uint8_t pub_buf[sizeof(TPMT_PUBLIC)];
    uint8_t seed[EVP_MAX_MD_SIZE], sym_key[32], hmac_key[EVP_MAX_MD_SIZE];
    size_t plain_len = 0, pub_len = 0, off = 0;
    enum sctpm_rc rc;

    memset(out, 0, sizeof(*out));
    memset(&sens, 0, sizeof(sens));
    if (key == NULL || key_len == 0) {
        errbuf_set(err, errlen, "the key to import is empty.");
        return SCTPM_RC_BAD_ARGUMENT;
    }
    if (key_len > DUP_KEY_MAX) {
        errbuf_set(err, errlen, "the key to import is %zu bytes; an HMAC-SHA256 key is at most %d.",
                   key_len, DUP_KEY_MAX);
        return SCTPM_RC_TOO_LARGE;
    }
    rc = check_parent(parent, &h, &cipher, err, errlen);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }

    /* The object: an HMAC-SHA256 keyedhash key with an empty authPolicy (see dup.h). */
    pub = &out->pub.publicArea;
    pub->type = TPM2_ALG_KEYEDHASH;
    pub->nameAlg = TPM2_ALG_SHA256;
    pub->objectAttributes = DUP_KEY_ATTRIBUTES;
    pub->parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_HMAC;
    pub->parameters.keyedHashDetail.scheme.details.hmac.hashAlg = TPM2_ALG_SHA256;

    /* Its sensitive area: no authValue, a random obfuscation value, the key. */
    rc = SCTPM_RC_GENERAL_FAILURE;
    sens.sensitiveArea.sensitiveType = TPM2_ALG_KEYEDHASH;
    sens.sensitiveArea.seedValue.size = 32;
    if (RAND_priv_bytes(sens.sensitiveArea.seedValue.buffer, 32) != 1) {
        errbuf_set(err, errlen, "no random bytes for the obfuscation value (OpenSSL).");
        goto out;
    }
    sens.sensitiveArea.sensitive.bits.size = (uint16_t)key_len;
    memcpy(sens.sensitiveArea.sensitive.bits.buffer, key, key_len);
    if (!keyedhash_unique(&sens.sensitiveArea, &pub->unique.keyedHash)) {
        errbuf_set(err, errlen, "SHA-256 failed (OpenSSL).");
        goto out;
    }
    if (Tss2_MU_TPMT_PUBLIC_Marshal(pub, pub_buf, sizeof(pub_buf), &pub_len) != TSS2_RC_SUCCESS ||
        pub_len > UINT16_MAX) {
        errbuf_set(err, errlen, "marshalling the key's public area failed.");
        goto out;
    }
    out->pub.size = (uint16_t)pub_len;
    rc = dup_name(pub, &name);
    if (rc != SCTPM_RC_SUCCESS) {
        errbuf_set(err, errlen, "computing the key's Name failed.");
        goto out;
    }
    rc = SCTPM_RC_GENERAL_FAILURE;
    if (Tss2_MU_TPM2B_SENSITIVE_Marshal(&sens, plain, sizeof(plain), &plain_len) !=
        TSS2_RC_SUCCESS) {
        errbuf_set(err, errlen, "marshalling the key's sensitive area failed.");
        goto out;
    }

    /* The outer wrapper's seed, shared with the parent's private key only. */
    rc = parent->type == TPM2_ALG_RSA ? rsa_seed(parent, h, seed, &out->in_sym_seed, err, errlen)
                                      : ecc_seed(parent, h, seed, &out->in_sym_seed, err, errlen);
    if (rc != SCTPM_RC_SUCCESS) {
        goto out;
    }
    rc = dup_kdfa(h->alg, seed, h->size, LABEL_STORAGE, name.name, name.size, NULL, 0,
                  (uint32_t)EVP_CIPHER_get_key_length(cipher) * 8, sym_key, sizeof(sym_key));
    if (rc == SCTPM_RC_SUCCESS) {
        rc = dup_kdfa(h->alg, seed, h->size, LABEL_INTEGRITY, NULL, 0, NULL, 0,
                      (uint32_t)h->size * 8, hmac_key, sizeof(hmac_key));
    }
    if (rc != SCTPM_RC_SUCCESS) {
        errbuf_set(err, errlen, "KDFa failed (OpenSSL).");
        goto out;
    }
    rc = SCTPM_RC_GENERAL_FAILURE;
    if (!cfb_encrypt(cipher, sym_key, plain, plain_len, enc)) {
        errbuf_set(err, errlen, "AES-CFB encryption of the sensitive area failed (OpenSSL).");
        goto out;
    }

    /* outerHMAC over encSensitive || Name, then duplicate = TPM2B(outerHMAC) || encSensitive. */
    memset(&outer, 0, sizeof(outer));
    if (!outer_hmac(h, hmac_key, enc, plain_len, &name, &outer)) {
        errbuf_set(err, errlen, "the outer HMAC failed (OpenSSL).");
        goto out;
    }
    if (Tss2_MU_TPM2B_DIGEST_Marshal(&outer, out->duplicate.buffer, sizeof(out->duplicate.buffer),
                                     &off) != TSS2_RC_SUCCESS ||
        off + plain_len > sizeof(out->duplicate.buffer)) {
        errbuf_set(err, errlen, "the duplicate does not fit a TPM2B_PRIVATE.");
        goto out;
    }
    memcpy(out->duplicate.buffer + off, enc, plain_len);
    out->duplicate.size = (uint16_t)(off + plain_len);
    rc = SCTPM_RC_SUCCESS;
out:
    explicit_bzero(&sens, sizeof(sens));
    explicit_bzero(plain, sizeof(plain));
    explicit_bzero(seed, sizeof(seed));
    explicit_bzero(sym_key, sizeof(sym_key));
    explicit_bzero(hmac_key, sizeof(hmac_key));
    if (rc != SCTPM_RC_SUCCESS) {
        memset(out, 0, sizeof(*out));
        /* `err` says what failed; leave no OpenSSL errors of ours on the caller's thread. */
        ERR_clear_error();
    }
    return rc;
}
