/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mfg: the first-start manufacture of a software TPM's identity.
 *
 * A chip vendor ships a TPM with endorsement keys whose certificates, signed by the vendor's CA,
 * sit in NV; sctpmd does the same for the TPM it has just created, in process, so that tools and
 * cloud services that read the EK certificate (tpm2_getekcertificate, Azure DPS attestation) find
 * what they expect. Each state directory gets its own "EK CA" (DIR/ek-ca.pem, DIR/ek-ca.key):
 * the certificates prove only that the EK belongs to this software TPM, never that it is hardware.
 *
 * Objects made (handles from the TCG EK Credential Profile and TPM 2.0 Provisioning Guidance):
 *   0x81010001  RSA-2048 EK (template L-1)        certificate in NV 0x01c00002
 *   0x81010002  ECC NIST P-256 EK (template L-2)  certificate in NV 0x01c0000a
 *   0x81000001  RSA-2048 SRK (storage key template)
 * The certificate indices are platform-created and write-locked, so no owner can replace them.
 *
 * All functions talk to the one libtpms TPM of the process (tpm.h) and so share its rule: call
 * them from the thread that owns the TPM only.
 */
#ifndef SCTPM_EMULATOR_MFG_H
#define SCTPM_EMULATOR_MFG_H

#include <stddef.h>

#include <tss2/tss2_tpm2_types.h>

#include "sctpm/rc.h"

#define MFG_EK_RSA_HANDLE  0x81010001u
#define MFG_EK_ECC_HANDLE  0x81010002u
#define MFG_SRK_HANDLE     0x81000001u
#define MFG_EK_RSA_CERT_NV 0x01c00002u
#define MFG_EK_ECC_CERT_NV 0x01c0000au

/* File names, inside the state directory, of the EK CA certificate and its private key. */
#define MFG_CA_CERT_FILE "ek-ca.pem"
#define MFG_CA_KEY_FILE  "ek-ca.key"

/*
 * Manufactures the identity of a freshly created TPM (tpm_start() reported fresh): creates and
 * persists both EKs and the SRK, creates the EK CA in `state_dir` and stores an EK certificate
 * for each EK in NV. The TPM must be running.
 *
 * It is all or nothing short of a crash: on failure the objects, NV indices and files made so far
 * are removed again (best effort), so a retry starts from a clean TPM. A TPM that already holds
 * any of the handles above is refused with SCTPM_RC_EXISTS and left untouched.
 *
 * Returns SCTPM_RC_SUCCESS, or SCTPM_RC_NO_TPM (not running), SCTPM_RC_EXISTS, SCTPM_RC_TPM (a
 * TPM or TSS error; the raw TSS2_RC is in `err` as 0x%08x and logged), SCTPM_RC_IO (a file),
 * SCTPM_RC_TOO_LARGE (a certificate exceeds the TPM's NV index size), SCTPM_RC_NO_MEMORY or
 * SCTPM_RC_GENERAL_FAILURE (OpenSSL), with one sentence in `err` (NULL or `errlen` 0: no text).
 */
enum sctpm_rc mfg_run(const char *state_dir, char *err, size_t errlen);

/*
 * mfg_run() through an ESAPI table the caller has loaded (esysdl_open()) and may have changed:
 * the unit tests put a failing function in it. mfg_run() loads the table in the process it runs
 * in, so that ESAPI is never part of the daemon itself (see esysdl.h).
 */
struct esysdl;
enum sctpm_rc mfg_run_with(const char *state_dir, const struct esysdl *api, char *err,
                           size_t errlen);

/* The templates of the keys made here are in common/tpmtmpl.h. */

#endif /* SCTPM_EMULATOR_MFG_H */
