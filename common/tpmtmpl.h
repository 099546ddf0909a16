/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The TCG key templates that sctpmd manufactures its keys from and that the shim uses to find or
 * re-create them. Keeping one copy means the emulator and the shim can never disagree about what
 * an EK or the SRK is.
 *
 *   tmpl_ek_rsa: EK Credential Profile template L-1 (RSA 2048, AES-128-CFB, 256 zero bytes of
 *                unique, policy PolicySecret(TPM_RH_ENDORSEMENT)).
 *   tmpl_ek_ecc: template L-2 (NIST P-256, AES-128-CFB, unique x and y of 32 zero bytes).
 *   tmpl_srk:    Provisioning Guidance SRK (RSA 2048, AES-128-CFB, userWithAuth|noDA,
 *                restricted decryption, empty policy).
 * Each fills all of `*out`.
 */
#ifndef SCTPM_TPMTMPL_H
#define SCTPM_TPMTMPL_H

#include <tss2/tss2_tpm2_types.h>

/* The EK Credential Profile's attributes: a restricted decryption key only the TPM can use. */
#define TMPL_EK_ATTRIBUTES                                                                         \
    (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |            \
     TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)

/* TPM 2.0 Provisioning Guidance SRK: a storage key anyone may use without a dictionary lockout. */
#define TMPL_SRK_ATTRIBUTES                                                                        \
    (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |            \
     TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)

void tmpl_ek_rsa(TPM2B_PUBLIC *out);
void tmpl_ek_ecc(TPM2B_PUBLIC *out);
void tmpl_srk(TPM2B_PUBLIC *out);

#endif /* SCTPM_TPMTMPL_H */
