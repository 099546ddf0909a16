/* SPDX-License-Identifier: BSD-2-Clause */
#include <string.h>

#include "tpmtmpl.h"

_Static_assert(TMPL_EK_ATTRIBUTES == 0x000300b2, "the TCG EK attributes are 0x000300b2");

#define P256_BYTES 32

/* PolicySecret(TPM_RH_ENDORSEMENT) with SHA-256: the authPolicy of both default EKs. */
static const uint8_t ek_policy[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
    0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};

static void rsa_2048_storage(TPM2B_PUBLIC *out, TPMA_OBJECT attributes)
{
    memset(out, 0, sizeof(*out));
    out->publicArea.type = TPM2_ALG_RSA;
    out->publicArea.nameAlg = TPM2_ALG_SHA256;
    out->publicArea.objectAttributes = attributes;
    out->publicArea.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
    out->publicArea.parameters.rsaDetail.symmetric.keyBits.aes = 128;
    out->publicArea.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    out->publicArea.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
    out->publicArea.parameters.rsaDetail.keyBits = 2048;
    /* 0 means the default exponent, 65537. */
    out->publicArea.parameters.rsaDetail.exponent = 0;
    /* 256 zero bytes: the TCG templates fix the size of unique so that all TSSs derive one key. */
    out->publicArea.unique.rsa.size = 256;
}

void tmpl_ek_rsa(TPM2B_PUBLIC *out)
{
    rsa_2048_storage(out, TMPL_EK_ATTRIBUTES);
    out->publicArea.authPolicy.size = sizeof(ek_policy);
    memcpy(out->publicArea.authPolicy.buffer, ek_policy, sizeof(ek_policy));
}

void tmpl_ek_ecc(TPM2B_PUBLIC *out)
{
    memset(out, 0, sizeof(*out));
    out->publicArea.type = TPM2_ALG_ECC;
    out->publicArea.nameAlg = TPM2_ALG_SHA256;
    out->publicArea.objectAttributes = TMPL_EK_ATTRIBUTES;
    out->publicArea.authPolicy.size = sizeof(ek_policy);
    memcpy(out->publicArea.authPolicy.buffer, ek_policy, sizeof(ek_policy));
    out->publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
    out->publicArea.parameters.eccDetail.symmetric.keyBits.aes = 128;
    out->publicArea.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    out->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    out->publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    out->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    out->publicArea.unique.ecc.x.size = P256_BYTES;
    out->publicArea.unique.ecc.y.size = P256_BYTES;
}

void tmpl_srk(TPM2B_PUBLIC *out)
{
    rsa_2048_storage(out, TMPL_SRK_ATTRIBUTES);
}
