/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * shim/dup: the KDFs against published vectors, the duplication blob unwrapped the way
 * TPM2_Import unwraps it (this file plays the TPM, with the parent's private key), and every
 * parent and key that dup refuses.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include "dup.h"
#include "tpmtmpl.h"

static char err[256];

/* Decodes the hex string `hex` into `out`; returns the number of bytes. */
static size_t unhex(const char *hex, uint8_t *out, size_t size)
{
    size_t n = strlen(hex) / 2;

    ck_assert_uint_le(n, size);
    for (size_t i = 0; i < n; i++) {
        unsigned int b;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &b), 1);
        out[i] = (uint8_t)b;
    }
    return n;
}

static void assert_hex(const uint8_t *got, size_t len, const char *want)
{
    char buf[1024] = "";

    ck_assert_uint_lt(2 * len, sizeof(buf));
    for (size_t i = 0; i < len; i++) {
        snprintf(buf + 2 * i, 3, "%02x", got[i]);
    }
    ck_assert_str_eq(buf, want);
}

/* ---- KDFa ---- */

/*
 * The KDFa self-test vector of the TCG reference implementation (KdfTestData.h, also in
 * libtpms): key, label "KDFSELFTESTLABEL" with its zero octet, contextU, contextV, 160 bits,
 * one result per hash.
 */
static const struct {
    TPMI_ALG_HASH hash;
    const char *result;
} kdfa_tcg[] = {
    {TPM2_ALG_SHA1, "55b5a7184aa07423c47dae766c26a2377d7cf851"},
    {TPM2_ALG_SHA256, "bb0259e1c8ba607e6a2cd704b69a902e9ade84c4"},
    {TPM2_ALG_SHA384, "1dce70c9113eb2dba47bd9cfc72bf46f45b09312"},
    {TPM2_ALG_SHA512, "8be2c1b85b78569b9fa759f5857c56d684810fd3"},
};

START_TEST(test_kdfa_tcg)
{
    uint8_t key[20], u[8], v[8], out[20];

    unhex("271fa08bbdc5060ec3dfa928ff9b73123a12da0c", key, sizeof(key));
    unhex("ce244f395dca7391", u, sizeof(u));
    unhex("da504031ddf12e83", v, sizeof(v));
    ck_assert_int_eq(dup_kdfa(kdfa_tcg[_i].hash, key, sizeof(key), "KDFSELFTESTLABEL", u, sizeof(u),
                              v, sizeof(v), 160, out, sizeof(out)),
                     SCTPM_RC_SUCCESS);
    assert_hex(out, sizeof(out), kdfa_tcg[_i].result);
}
END_TEST

/*
 * Several blocks, no contextV, and a bit count that is not a whole number of bytes. Computed
 * independently of dup.c, from Part 1's definition, with Python:
 *     def kdfa(h, key, label, u, v, bits):
 *         out, i = b"", 1
 *         while len(out) * 8 < bits:
 *             out += hmac.new(key, struct.pack(">I", i) + label + b"\0" + u + v
 *                             + struct.pack(">I", bits), h).digest()
 *             i += 1
 *         out = bytearray(out[:(bits + 7) // 8])
 *         if bits % 8:
 *             out[0] &= (1 << bits % 8) - 1
 *         return out
 *     seed = bytes(range(32)); name = bytes.fromhex("000b") + hashlib.sha256(b"sctpm").digest()
 *     kdfa(hashlib.sha256, seed, b"STORAGE", name, b"", 520)
 *     kdfa(hashlib.sha256, seed, b"INTEGRITY", b"", b"", 131)
 * The function reproduces the TCG vectors above, which checks the snippet.
 */
START_TEST(test_kdfa_blocks_and_bits)
{
    uint8_t seed[32], name[34], out[65];
    unsigned int len = 0;

    for (int i = 0; i < 32; i++) {
        seed[i] = (uint8_t)i;
    }
    name[0] = 0x00;
    name[1] = 0x0b;
    ck_assert_int_eq(EVP_Digest("sctpm", 5, name + 2, &len, EVP_sha256(), NULL), 1);
    ck_assert_int_eq(dup_kdfa(TPM2_ALG_SHA256, seed, sizeof(seed), "STORAGE", name, sizeof(name),
                              NULL, 0, 520, out, sizeof(out)),
                     SCTPM_RC_SUCCESS);
    assert_hex(out, 65,
               "ca612ceffe49e6c4512bc82237a286154575b4513cfea12e0a35e50e65f557cf3816d2b87bd191ca7c"
               "3e9309ae9f7158d13cfffb8b6cabe5f213d75397d0d0156e");
    ck_assert_int_eq(
        dup_kdfa(TPM2_ALG_SHA256, seed, sizeof(seed), "INTEGRITY", NULL, 0, NULL, 0, 131, out, 17),
        SCTPM_RC_SUCCESS);
    assert_hex(out, 17, "062f51d7bafa5d5cb0772dafac517837f2");
}
END_TEST

/* ---- KDFe ---- */

/*
 * Vectors of github.com/chrisfenner/tpm-test-vectors (vectors/kdfe.json, generated with go-tpm
 * and checked against a TPM simulator), named as there.
 */
static const struct {
    const char *name;
    TPMI_ALG_HASH hash;
    const char *z, *use, *u, *v;
    uint32_t bits;
    const char *result;
} kdfe_vectors[] = {
    {"06_SHA1_32", TPM2_ALG_SHA1, "9b050039c8e5ca60deeb978f2faf573c94af61", "IDENTITY",
     "ff1a1852db7b60a5c963f17eb306f3a905d100ae", "0047ee45771a256d58b091b6d6", 32, "94c3c160"},
    {"09_SHA1_410", TPM2_ALG_SHA1, "b1facea1ed6c647f172371aa83e685", "DUPLICATE", "ffee686e77c6",
     "ffdb27f11b549f2a", 410,
     "03599a56a3ee277b8f15fadbc38b26be52a64d8bbd18abb0acda80e01b5437df3a2ed0ba2a7f1399e066ccdfdf7d"
     "f1db49c6b908"},
    {"35_SHA256_336", TPM2_ALG_SHA256, "8995a6318a0217c7c7bf543f50da29016c4ff2a1ea5daf54ebcb00",
     "INTEGRITY", "8852f14d8e9b68", "74ff", 336,
     "92343ef558feb95fd14838f9ca39c8618598a7eeb31af7fc276030b8c3ff326d4870f190e54abbec9da4"},
    {"48_SHA256_744", TPM2_ALG_SHA256, "fd4f9daba331a0a50a4e4c5fdf55034267", "CFB", "93bc3d509a00",
     "beb773b718a4642d40ac3f80d34f2361b7c5f47cf7f69bb397a45b00", 744,
     "cf21b4a548a004a64acf5e5a5a199cfa3407fe691f0eb73a7ec664a973bb22c9fd79155cd0972e0f2b1c135e6174"
     "9723833e7cfc9e82df2e74e46ab0c3a9a25d64016c1de347bb48d134d9c92e37043497839c57aec585b0f434c79f"
     "f5"},
    {"58_SHA384_232", TPM2_ALG_SHA384,
     "ff1f419e5f1dbb2077d6a82e82a928a56bedf5c8c223a10c6646ca5f0db99f91f0", "XOR",
     "6dcf4b9a62a0438b83c7e27d18ecd75075341ae7bd1d3a2615ff09885363abcef324eb1396816c3bb196",
     "004352c8abc6f41bc955e09f9eeab29e83b3451f", 232,
     "af807b1ff3cf665c976579e765cb93d6c1f35159364fb8e5b6f1742015"},
};

START_TEST(test_kdfe_vectors)
{
    uint8_t z[128], u[128], v[128], out[128];
    size_t zl = unhex(kdfe_vectors[_i].z, z, sizeof(z));
    size_t ul = unhex(kdfe_vectors[_i].u, u, sizeof(u));
    size_t vl = unhex(kdfe_vectors[_i].v, v, sizeof(v));
    size_t n = (kdfe_vectors[_i].bits + 7) / 8;

    ck_assert_int_eq(dup_kdfe(kdfe_vectors[_i].hash, z, zl, kdfe_vectors[_i].use, u, ul, v, vl,
                              kdfe_vectors[_i].bits, out, n),
                     SCTPM_RC_SUCCESS);
    assert_hex(out, n, kdfe_vectors[_i].result);
}
END_TEST

START_TEST(test_kdf_refusals)
{
    uint8_t key[32] = {1}, out[32];

    ck_assert_int_eq(
        dup_kdfa(TPM2_ALG_SM3_256, key, 32, "STORAGE", NULL, 0, NULL, 0, 128, out, sizeof(out)),
        SCTPM_RC_UNSUPPORTED);
    ck_assert_int_eq(
        dup_kdfe(TPM2_ALG_SHA3_256, key, 32, "DUPLICATE", NULL, 0, NULL, 0, 128, out, sizeof(out)),
        SCTPM_RC_UNSUPPORTED);
    ck_assert_int_eq(
        dup_kdfa(TPM2_ALG_SHA256, key, 32, "STORAGE", NULL, 0, NULL, 0, 0, out, sizeof(out)),
        SCTPM_RC_BAD_ARGUMENT);
    ck_assert_int_eq(
        dup_kdfa(TPM2_ALG_SHA256, key, 32, "STORAGE", NULL, 0, NULL, 0, 257, out, sizeof(out)),
        SCTPM_RC_BAD_ARGUMENT);
    ck_assert_int_eq(
        dup_kdfe(TPM2_ALG_SHA256, key, 32, "DUPLICATE", NULL, 0, NULL, 0, 264, out, sizeof(out)),
        SCTPM_RC_BAD_ARGUMENT);
    ck_assert_int_eq(
        dup_kdfa(TPM2_ALG_SHA256, NULL, 0, "STORAGE", NULL, 0, NULL, 0, 128, out, sizeof(out)),
        SCTPM_RC_BAD_ARGUMENT);
    ck_assert_int_eq(
        dup_kdfa(TPM2_ALG_SHA256, key, 32, "STORAGE", NULL, 5, NULL, 0, 128, out, sizeof(out)),
        SCTPM_RC_BAD_ARGUMENT);
}
END_TEST

/* ---- the blob, unwrapped as TPM2_Import does ---- */

static const EVP_MD *md_of(TPMI_ALG_HASH alg)
{
    switch (alg) {
    case TPM2_ALG_SHA1:
        return EVP_sha1();
    case TPM2_ALG_SHA256:
        return EVP_sha256();
    case TPM2_ALG_SHA384:
        return EVP_sha384();
    case TPM2_ALG_SHA512:
        return EVP_sha512();
    default:
        ck_abort_msg("no hash 0x%04x", alg);
        return NULL;
    }
}

static const EVP_CIPHER *cfb_of(uint16_t bits)
{
    return bits == 128   ? EVP_aes_128_cfb128()
           : bits == 192 ? EVP_aes_192_cfb128()
                         : EVP_aes_256_cfb128();
}

/* An RSA storage parent from our SRK template, and its private key. */
static EVP_PKEY *rsa_parent(TPMT_PUBLIC *p, TPMI_ALG_HASH name_alg, uint16_t aes_bits)
{
    TPM2B_PUBLIC tmpl;
    EVP_PKEY *k = EVP_RSA_gen(2048);
    BIGNUM *n = NULL;

    ck_assert_ptr_nonnull(k);
    tmpl_srk(&tmpl);
    *p = tmpl.publicArea;
    p->nameAlg = name_alg;
    p->parameters.rsaDetail.symmetric.keyBits.aes = aes_bits;
    ck_assert_int_eq(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    ck_assert_int_eq(BN_bn2binpad(n, p->unique.rsa.buffer, 256), 256);
    p->unique.rsa.size = 256;
    BN_free(n);
    return k;
}

/* An ECC storage parent on `group`, as tpm2_createprimary -G ecc makes one. */
static EVP_PKEY *ecc_parent(TPMT_PUBLIC *p, TPMI_ECC_CURVE curve, const char *group, int bytes,
                            TPMI_ALG_HASH name_alg, uint16_t aes_bits)
{
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *g = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    BIGNUM *x = NULL, *y = NULL;

    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(EVP_PKEY_keygen_init(g), 1);
    ck_assert_int_eq(EVP_PKEY_CTX_set_group_name(g, group), 1);
    ck_assert_int_eq(EVP_PKEY_generate(g, &k), 1);
    EVP_PKEY_CTX_free(g);
    memset(p, 0, sizeof(*p));
    p->type = TPM2_ALG_ECC;
    p->nameAlg = name_alg;
    p->objectAttributes = TMPL_SRK_ATTRIBUTES;
    p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
    p->parameters.eccDetail.symmetric.keyBits.aes = aes_bits;
    p->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    p->parameters.eccDetail.curveID = curve;
    p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    ck_assert_int_eq(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
    ck_assert_int_eq(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
    ck_assert_int_eq(BN_bn2binpad(x, p->unique.ecc.x.buffer, bytes), bytes);
    ck_assert_int_eq(BN_bn2binpad(y, p->unique.ecc.y.buffer, bytes), bytes);
    p->unique.ecc.x.size = p->unique.ecc.y.size = (uint16_t)bytes;
    BN_free(x);
    BN_free(y);
    return k;
}

/* The seed, recovered from inSymSeed with the parent's private key. */
static size_t recover_seed(EVP_PKEY *priv, const TPMT_PUBLIC *parent, const struct dup_blob *b,
                           uint8_t *seed)
{
    size_t hlen = (size_t)EVP_MD_get_size(md_of(parent->nameAlg)), len = 0;

    if (parent->type == TPM2_ALG_RSA) {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
        void *label = OPENSSL_memdup("DUPLICATE", 10);
        uint8_t buf[256];
        ck_assert_int_eq(EVP_PKEY_decrypt_init(c), 1);
        ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING), 1);
        ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_oaep_md(c, md_of(parent->nameAlg)), 1);
        ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_mgf1_md(c, md_of(parent->nameAlg)), 1);
        ck_assert_int_eq(EVP_PKEY_CTX_set0_rsa_oaep_label(c, label, 10), 1);
        ck_assert_uint_eq(b->in_sym_seed.size, 256);
        /* OpenSSL wants room for a whole modulus, whatever the padding leaves. */
        len = sizeof(buf);
        ck_assert_int_eq(EVP_PKEY_decrypt(c, buf, &len, b->in_sym_seed.secret, b->in_sym_seed.size),
                         1);
        ck_assert_uint_le(len, 64);
        memcpy(seed, buf, len);
        EVP_PKEY_CTX_free(c);
    } else {
        TPMS_ECC_POINT qe;
        size_t off = 0, fb = parent->unique.ecc.x.size, zlen = 0;
        uint8_t point[1 + 2 * 66], z[66];
        char group[16];
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        OSSL_PARAM *params;
        EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL), *dc;
        EVP_PKEY *peer = NULL;

        ck_assert_int_eq(
            Tss2_MU_TPMS_ECC_POINT_Unmarshal(b->in_sym_seed.secret, b->in_sym_seed.size, &off, &qe),
            TSS2_RC_SUCCESS);
        ck_assert_uint_eq(off, b->in_sym_seed.size);
        /* The ephemeral point is sent at the full field size, as a TPM would send it. */
        ck_assert_uint_eq(qe.x.size, fb);
        ck_assert_uint_eq(qe.y.size, fb);
        point[0] = 0x04;
        memcpy(point + 1, qe.x.buffer, fb);
        memcpy(point + 1 + fb, qe.y.buffer, fb);
        ck_assert_int_eq(EVP_PKEY_get_utf8_string_param(priv, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                        sizeof(group), NULL),
                         1);
        ck_assert_int_eq(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
                         1);
        ck_assert_int_eq(
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * fb), 1);
        params = OSSL_PARAM_BLD_to_param(bld);
        ck_assert_int_eq(EVP_PKEY_fromdata_init(kc), 1);
        ck_assert_int_eq(EVP_PKEY_fromdata(kc, &peer, EVP_PKEY_PUBLIC_KEY, params), 1);
        dc = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
        ck_assert_int_eq(EVP_PKEY_derive_init(dc), 1);
        ck_assert_int_eq(EVP_PKEY_derive_set_peer(dc, peer), 1);
        zlen = sizeof(z);
        ck_assert_int_eq(EVP_PKEY_derive(dc, z, &zlen), 1);
        ck_assert_uint_eq(zlen, fb);
        ck_assert_int_eq(dup_kdfe(parent->nameAlg, z, zlen, "DUPLICATE", qe.x.buffer, qe.x.size,
                                  parent->unique.ecc.x.buffer, parent->unique.ecc.x.size,
                                  (uint32_t)hlen * 8, seed, hlen),
                         SCTPM_RC_SUCCESS);
        len = hlen;
        EVP_PKEY_CTX_free(dc);
        EVP_PKEY_free(peer);
        EVP_PKEY_CTX_free(kc);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
    }
    ck_assert_uint_eq(len, hlen);
    return len;
}

/*
 * TPM2_Import's checks, in its order: recover the seed, check the outer HMAC over
 * encSensitive || Name, decrypt with AES-CFB, unmarshal a TPM2B_SENSITIVE that fills the
 * buffer exactly, and check that it belongs to the public area. Returns the key it found.
 */
static void tpm_import(EVP_PKEY *priv, const TPMT_PUBLIC *parent, const struct dup_blob *b,
                       const uint8_t *key, size_t key_len)
{
    const EVP_MD *md = md_of(parent->nameAlg);
    size_t hlen = (size_t)EVP_MD_get_size(md), off = 0, enc_len, soff = 0;
    uint16_t aes_bits = parent->type == TPM2_ALG_RSA
                            ? parent->parameters.rsaDetail.symmetric.keyBits.aes
                            : parent->parameters.eccDetail.symmetric.keyBits.aes;
    uint8_t seed[64], sym_key[32], hmac_key[64], mac[64], macin[1024], plain[1024], unique[32];
    unsigned int mac_len = 0, ulen = 0;
    TPM2B_NAME name;
    TPM2B_DIGEST outer;
    TPM2B_SENSITIVE sens = {0};
    const TPMT_PUBLIC *pub = &b->pub.publicArea;
    EVP_CIPHER_CTX *c;
    int n = 0;

    recover_seed(priv, parent, b, seed);
    ck_assert_int_eq(dup_name(pub, &name), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(name.size, 34);
    ck_assert_int_eq(dup_kdfa(parent->nameAlg, seed, hlen, "STORAGE", name.name, name.size, NULL, 0,
                              aes_bits, sym_key, sizeof(sym_key)),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(dup_kdfa(parent->nameAlg, seed, hlen, "INTEGRITY", NULL, 0, NULL, 0,
                              (uint32_t)hlen * 8, hmac_key, sizeof(hmac_key)),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(
        Tss2_MU_TPM2B_DIGEST_Unmarshal(b->duplicate.buffer, b->duplicate.size, &off, &outer),
        TSS2_RC_SUCCESS);
    ck_assert_uint_eq(outer.size, hlen);
    enc_len = b->duplicate.size - off;
    memcpy(macin, b->duplicate.buffer + off, enc_len);
    memcpy(macin + enc_len, name.name, name.size);
    ck_assert_ptr_nonnull(HMAC(md, hmac_key, (int)hlen, macin, enc_len + name.size, mac, &mac_len));
    ck_assert_uint_eq(mac_len, hlen);
    ck_assert_mem_eq(mac, outer.buffer, hlen);
    c = EVP_CIPHER_CTX_new();
    ck_assert_int_eq(EVP_DecryptInit_ex(c, cfb_of(aes_bits), NULL, sym_key, (const uint8_t[16]){0}),
                     1);
    ck_assert_int_eq(EVP_DecryptUpdate(c, plain, &n, b->duplicate.buffer + off, (int)enc_len), 1);
    ck_assert_uint_eq((size_t)n, enc_len);
    EVP_CIPHER_CTX_free(c);
    ck_assert_int_eq(Tss2_MU_TPM2B_SENSITIVE_Unmarshal(plain, enc_len, &soff, &sens),
                     TSS2_RC_SUCCESS);
    ck_assert_uint_eq(soff, enc_len);
    ck_assert_uint_eq(sens.size + 2u, enc_len);
    ck_assert_uint_eq(sens.sensitiveArea.sensitiveType, TPM2_ALG_KEYEDHASH);
    ck_assert_uint_eq(sens.sensitiveArea.authValue.size, 0);
    ck_assert_uint_eq(sens.sensitiveArea.seedValue.size, 32);
    ck_assert_uint_eq(sens.sensitiveArea.sensitive.bits.size, key_len);
    ck_assert_mem_eq(sens.sensitiveArea.sensitive.bits.buffer, key, key_len);
    /* unique binds the public area to this sensitive area (Part 1, keyedHash unique). */
    memcpy(macin, sens.sensitiveArea.seedValue.buffer, 32);
    memcpy(macin + 32, key, key_len);
    ck_assert_int_eq(EVP_Digest(macin, 32 + key_len, unique, &ulen, EVP_sha256(), NULL), 1);
    ck_assert_uint_eq(pub->unique.keyedHash.size, 32);
    ck_assert_mem_eq(pub->unique.keyedHash.buffer, unique, 32);
}

/* The public area dup makes: importable, never duplicable, an HMAC-SHA256 signing key. */
static void assert_public(const struct dup_blob *b)
{
    const TPMT_PUBLIC *pub = &b->pub.publicArea;
    uint8_t buf[sizeof(TPMT_PUBLIC)];
    size_t off = 0;

    ck_assert_uint_eq(pub->type, TPM2_ALG_KEYEDHASH);
    ck_assert_uint_eq(pub->nameAlg, TPM2_ALG_SHA256);
    ck_assert_uint_eq(pub->objectAttributes,
                      TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_SIGN_ENCRYPT);
    ck_assert_uint_eq(pub->objectAttributes & (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT), 0);
    ck_assert_uint_eq(pub->authPolicy.size, 0);
    ck_assert_uint_eq(pub->parameters.keyedHashDetail.scheme.scheme, TPM2_ALG_HMAC);
    ck_assert_uint_eq(pub->parameters.keyedHashDetail.scheme.details.hmac.hashAlg, TPM2_ALG_SHA256);
    ck_assert_int_eq(Tss2_MU_TPMT_PUBLIC_Marshal(pub, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
    ck_assert_uint_eq(b->pub.size, off);
}

static const struct {
    TPM2_ALG_ID type;
    TPMI_ECC_CURVE curve;
    const char *group;
    int bytes;
    TPMI_ALG_HASH name_alg;
    uint16_t aes_bits;
    size_t key_len;
} parents[] = {
    {TPM2_ALG_RSA, 0, NULL, 0, TPM2_ALG_SHA256, 128, 32}, /* our SRK template */
    {TPM2_ALG_RSA, 0, NULL, 0, TPM2_ALG_SHA1, 192, 16},
    {TPM2_ALG_RSA, 0, NULL, 0, TPM2_ALG_SHA384, 256, 64},
    {TPM2_ALG_RSA, 0, NULL, 0, TPM2_ALG_SHA512, 256, 1},
    {TPM2_ALG_ECC, TPM2_ECC_NIST_P256, "P-256", 32, TPM2_ALG_SHA256, 128, 32},
    {TPM2_ALG_ECC, TPM2_ECC_NIST_P384, "P-384", 48, TPM2_ALG_SHA384, 256, 64},
    {TPM2_ALG_ECC, TPM2_ECC_NIST_P521, "P-521", 66, TPM2_ALG_SHA512, 256, 33},
    {TPM2_ALG_ECC, TPM2_ECC_NIST_P256, "P-256", 32, TPM2_ALG_SHA1, 128, 20},
};

START_TEST(test_import_round_trip)
{
    TPMT_PUBLIC parent;
    struct dup_blob b, b2;
    uint8_t key[DUP_KEY_MAX];
    EVP_PKEY *priv;

    for (size_t i = 0; i < sizeof(key); i++) {
        key[i] = (uint8_t)(0xa0 + i);
    }
    priv = parents[_i].type == TPM2_ALG_RSA
               ? rsa_parent(&parent, parents[_i].name_alg, parents[_i].aes_bits)
               : ecc_parent(&parent, parents[_i].curve, parents[_i].group, parents[_i].bytes,
                            parents[_i].name_alg, parents[_i].aes_bits);
    err[0] = '\0';
    ck_assert_int_eq(dup_hmac_key(&parent, key, parents[_i].key_len, &b, err, sizeof(err)),
                     SCTPM_RC_SUCCESS);
    ck_assert_str_eq(err, "");
    assert_public(&b);
    tpm_import(priv, &parent, &b, key, parents[_i].key_len);
    /* Every wrap is fresh: a new seed and a new obfuscation value, so nothing repeats. */
    ck_assert_int_eq(dup_hmac_key(&parent, key, parents[_i].key_len, &b2, err, sizeof(err)),
                     SCTPM_RC_SUCCESS);
    tpm_import(priv, &parent, &b2, key, parents[_i].key_len);
    ck_assert_mem_ne(b.pub.publicArea.unique.keyedHash.buffer,
                     b2.pub.publicArea.unique.keyedHash.buffer, 32);
    ck_assert_mem_ne(b.in_sym_seed.secret, b2.in_sym_seed.secret, 32);
    EVP_PKEY_free(priv);
}
END_TEST

/* ---- refusals ---- */

/* A blob that must have been zeroed by a failing call. */
static int all_zero(const struct dup_blob *b)
{
    const uint8_t *p = (const uint8_t *)b;

    for (size_t i = 0; i < sizeof(*b); i++) {
        if (p[i] != 0) {
            return 0;
        }
    }
    return 1;
}

/* Runs dup_hmac_key on `parent` and expects `rc` with `needle` in the message. */
static void expect_refusal(const TPMT_PUBLIC *parent, size_t key_len, enum sctpm_rc rc,
                           const char *needle)
{
    static const uint8_t key[DUP_KEY_MAX + 1] = {0x5a};
    struct dup_blob b;

    memset(&b, 0xee, sizeof(b));
    err[0] = '\0';
    ck_assert_int_eq(dup_hmac_key(parent, key, key_len, &b, err, sizeof(err)), rc);
    ck_assert_msg(strstr(err, needle) != NULL, "\"%s\" does not say \"%s\"", err, needle);
    ck_assert_msg(all_zero(&b), "a failed call left data in the blob");
}

START_TEST(test_refusals)
{
    TPMT_PUBLIC good, p;
    EVP_PKEY *priv = ecc_parent(&good, TPM2_ECC_NIST_P256, "P-256", 32, TPM2_ALG_SHA256, 128);
    TPM2B_PUBLIC srk;
    struct dup_blob b;

    /* The key: none, or longer than an HMAC-SHA256 block. */
    expect_refusal(&good, 0, SCTPM_RC_BAD_ARGUMENT, "empty");
    expect_refusal(&good, DUP_KEY_MAX + 1, SCTPM_RC_TOO_LARGE, "65 bytes");
    ck_assert_int_eq(dup_hmac_key(&good, NULL, 32, &b, err, sizeof(err)), SCTPM_RC_BAD_ARGUMENT);

    /* Parents that are not RSA or ECC storage keys. */
    p = good;
    p.type = TPM2_ALG_KEYEDHASH;
    expect_refusal(&p, 32, SCTPM_RC_UNSUPPORTED, "only an RSA or ECC storage key");
    p = good;
    p.type = TPM2_ALG_SYMCIPHER;
    expect_refusal(&p, 32, SCTPM_RC_UNSUPPORTED, "TPM_ALG 0x0025");
    p = good;
    p.objectAttributes |= TPMA_OBJECT_SIGN_ENCRYPT;
    expect_refusal(&p, 32, SCTPM_RC_UNSUPPORTED, "not a storage key");
    p = good;
    p.objectAttributes &= ~TPMA_OBJECT_RESTRICTED;
    expect_refusal(&p, 32, SCTPM_RC_UNSUPPORTED, "not a storage key");

    /* Curves, name algorithms and symmetric definitions we do not wrap for. */
    p = good;
    p.parameters.eccDetail.curveID = TPM2_ECC_BN_P256;
    expect_refusal(&p, 32, SCTPM_RC_UNSUPPORTED, "0x0010");
    p = good;
    p.parameters.eccDetail.curveID = TPM2_ECC_SM2_P256;
    expect_refusal(&p, 32, SCTPM_RC_UNSUPPORTED, "not NIST P-256, P-384 or P-521");
    p = good;
    p.nameAlg = TPM2_ALG_SM3_256;
    expect_refusal(&p, 32, SCTPM_RC_UNSUPPORTED, "name algorithm (TPM_ALG 0x0012)");
    p = good;
    p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_CAMELLIA;
    expect_refusal(&p, 32, SCTPM_RC_UNSUPPORTED, "symmetric algorithm (TPM_ALG 0x0026");
    p = good;
    p.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CTR;
    expect_refusal(&p, 32, SCTPM_RC_UNSUPPORTED, "in CFB mode");
    p = good;
    p.parameters.eccDetail.symmetric.keyBits.aes = 512;
    expect_refusal(&p, 32, SCTPM_RC_UNSUPPORTED, "512 bits");
    p = good;
    p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    expect_refusal(&p, 32, SCTPM_RC_UNSUPPORTED, "AES-128, -192 or -256");

    /* Malformed public keys: a point off the curve, coordinates too long, a short modulus. */
    p = good;
    p.unique.ecc.y.buffer[31] ^= 1;
    expect_refusal(&p, 32, SCTPM_RC_BAD_FORMAT, "point on P-256");
    p = good;
    p.unique.ecc.x.size = 33;
    expect_refusal(&p, 32, SCTPM_RC_BAD_FORMAT, "33 and 32 bytes");
    p = good;
    p.unique.ecc.y.size = 0;
    expect_refusal(&p, 32, SCTPM_RC_BAD_FORMAT, "P-256 takes up to 32");
    tmpl_srk(&srk);
    srk.publicArea.unique.rsa.size = 128;
    expect_refusal(&srk.publicArea, 32, SCTPM_RC_BAD_FORMAT, "128 bytes");
    srk.publicArea.unique.rsa.size = 0;
    expect_refusal(&srk.publicArea, 32, SCTPM_RC_BAD_FORMAT, "RSA modulus is 0 bytes");
    EVP_PKEY_free(priv);
}
END_TEST

START_TEST(test_name_refusal)
{
    TPMT_PUBLIC p = {.type = TPM2_ALG_KEYEDHASH, .nameAlg = TPM2_ALG_NULL};
    TPM2B_NAME name;

    ck_assert_int_eq(dup_name(&p, &name), SCTPM_RC_UNSUPPORTED);
    ck_assert_uint_eq(name.size, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dup");
    TCase *kdf = tcase_create("kdf"), *blob = tcase_create("blob");
    SRunner *sr;
    int failed;

    tcase_add_loop_test(kdf, test_kdfa_tcg, 0, sizeof(kdfa_tcg) / sizeof(kdfa_tcg[0]));
    tcase_add_test(kdf, test_kdfa_blocks_and_bits);
    tcase_add_loop_test(kdf, test_kdfe_vectors, 0, sizeof(kdfe_vectors) / sizeof(kdfe_vectors[0]));
    tcase_add_test(kdf, test_kdf_refusals);
    suite_add_tcase(s, kdf);
    /* RSA key generation is slow under valgrind. */
    tcase_set_timeout(blob, 120);
    tcase_add_loop_test(blob, test_import_round_trip, 0, sizeof(parents) / sizeof(parents[0]));
    tcase_add_test(blob, test_refusals);
    tcase_add_test(blob, test_name_refusal);
    suite_add_tcase(s, blob);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
