/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dup: a TPM 2.0 duplication blob of an HMAC key, built on the host with OpenSSL, for
 * TPM2_Import under a storage parent (TPM 2.0 Part 1, "Protected Storage" and "Duplication").
 *
 * Provisioning used to hand the key to the TPM with TPM2_Create in a session with parameter
 * encryption. That kept the key off the wire, but the TSS encrypts the parameter itself and
 * logs the plaintext it is about to encrypt at debug level, so TSS2_LOG=all+debug printed the
 * device key. Here the key is wrapped by our own code, for the parent's public key, and only
 * the wrapped blob ever reaches tpm2-tss: no log of the TSS or of the TPM transport can hold it.
 *
 * The blob has no inner wrapper (symmetricAlg TPM2_ALG_NULL, no encryptionKey) and an outer
 * wrapper keyed by a fresh seed that only the parent's private key can recover:
 *     seed        random, the size of the parent nameAlg's digest;
 *                 RSA parent: inSymSeed = RSA-OAEP(parent, hash nameAlg, label "DUPLICATE\0")
 *                 ECC parent: an ephemeral key Qe on the parent's curve, Z = x(de * Qs),
 *                             seed = KDFe(nameAlg, Z, "DUPLICATE", Qe.x, Qs.x, digest bits),
 *                             inSymSeed = the marshalled TPMS_ECC_POINT Qe
 *     symKey      KDFa(nameAlg, seed, "STORAGE", Name(object), -, parent's AES key bits)
 *     encSens     AES-CFB(symKey, IV 0, marshalled TPM2B_SENSITIVE)
 *     hmacKey     KDFa(nameAlg, seed, "INTEGRITY", -, -, digest bits)
 *     duplicate   TPM2B(HMAC_nameAlg(hmacKey, encSens || Name(object))) || encSens
 * The functions are pure (no TPM, no ESYS, no logging) so that the unit suite can play the TPM.
 */
#ifndef SCTPM_SHIM_DUP_H
#define SCTPM_SHIM_DUP_H

#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

#include "sctpm/rc.h"

/*
 * The attributes of an imported HMAC key: used with an empty password, no dictionary lockout,
 * signing (TPM2_HMAC). TPM2_Import refuses fixedTPM and fixedParent, which a key made outside
 * the TPM cannot honestly claim. What keeps this key in the TPM instead is its empty
 * authPolicy: TPM2_Duplicate authorizes the object in the DUP role, which only a policy session
 * can satisfy (Part 1, "Authorization Roles"; a password or HMAC session is refused), and a
 * policy session succeeds only when its digest equals authPolicy, which an Empty Buffer never
 * does. So no one, the owner included, can duplicate (export) the key; TPM2_Load,
 * TPM2_EvictControl and TPM2_HMAC work as they did for a key made with TPM2_Create.
 */
#define DUP_KEY_ATTRIBUTES (TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_SIGN_ENCRYPT)

/* The largest HMAC-SHA256 key: the hash's block size (a longer key would be hashed first). */
#define DUP_KEY_MAX 64

/* The inputs of TPM2_Import (with an empty encryptionKey and symmetricAlg TPM2_ALG_NULL). */
struct dup_blob {
    TPM2B_PUBLIC pub;                   /* objectPublic; also what TPM2_Load takes */
    TPM2B_PRIVATE duplicate;            /* outerHMAC || encrypted sensitive area */
    TPM2B_ENCRYPTED_SECRET in_sym_seed; /* the seed, for the parent's private key only */
};

/*
 * Wraps the HMAC-SHA256 key `key` (1 to DUP_KEY_MAX bytes) for import under the storage key
 * whose public area is `parent` (from TPM2_ReadPublic): RSA, or ECC on NIST P-256, P-384 or
 * P-521; nameAlg SHA-1, SHA-256, SHA-384 or SHA-512; symmetric AES-128/192/256 in CFB mode.
 * Fills all of `*out`, which holds no plaintext key material (the sensitive area is
 * encrypted). On failure `*out` is zeroed and one sentence naming the cause, never key
 * material, is written to `err` (`errlen` bytes, may be 0): SCTPM_RC_UNSUPPORTED for a parent
 * we cannot wrap for, SCTPM_RC_BAD_FORMAT for a malformed parent public key,
 * SCTPM_RC_BAD_ARGUMENT / SCTPM_RC_TOO_LARGE for the key, SCTPM_RC_GENERAL_FAILURE when
 * OpenSSL fails. Every intermediate secret (seed, symKey, hmacKey, Z, the plaintext sensitive
 * area) is wiped before returning, on every path.
 */
enum sctpm_rc dup_hmac_key(const TPMT_PUBLIC *parent, const uint8_t *key, size_t key_len,
                           struct dup_blob *out, char *err, size_t errlen);

/*
 * KDFa (Part 1, "Key Derivation Functions"): SP800-108 counter mode with HMAC_hash:
 *     K(i) = HMAC(key, [i]32 || label || 0x00 || u || v || [bits]32)
 * `label` is a C string (NULL: none); the zero octet after it is always hashed, as the
 * specification requires of a label and as the reference code does. Writes (bits + 7) / 8
 * bytes to `out` (the unused high bits of the first byte cleared); `out_size` must hold them.
 * SCTPM_RC_UNSUPPORTED for an unknown `hash`, SCTPM_RC_BAD_ARGUMENT for bits 0 or a short
 * `out`, SCTPM_RC_GENERAL_FAILURE when OpenSSL fails.
 */
enum sctpm_rc dup_kdfa(TPMI_ALG_HASH hash, const uint8_t *key, size_t key_len, const char *label,
                       const uint8_t *u, size_t u_len, const uint8_t *v, size_t v_len,
                       uint32_t bits, uint8_t *out, size_t out_size);

/*
 * KDFe (Part 1, "KDFe for ECDH"): SP800-56A concatenation with hash:
 *     K(i) = H([i]32 || Z || label || 0x00 || u || v)
 * with the same conventions and results as dup_kdfa().
 */
enum sctpm_rc dup_kdfe(TPMI_ALG_HASH hash, const uint8_t *z, size_t z_len, const char *label,
                       const uint8_t *u, size_t u_len, const uint8_t *v, size_t v_len,
                       uint32_t bits, uint8_t *out, size_t out_size);

/*
 * The Name of an object: nameAlg (big-endian) || H_nameAlg(marshalled TPMT_PUBLIC).
 * SCTPM_RC_UNSUPPORTED for a nameAlg dup does not know, SCTPM_RC_BAD_FORMAT when the public
 * area does not marshal.
 */
enum sctpm_rc dup_name(const TPMT_PUBLIC *pub, TPM2B_NAME *name);

/*
 * The Qualified Name of a primary object of `hierarchy` (TPM_RH_OWNER...) whose Name is `name`:
 * nameAlg || H_nameAlg(hierarchy (big-endian) || name), the hierarchy's handle being its own
 * Qualified Name (Part 1, "Qualified Name"). The same codes as dup_name().
 */
enum sctpm_rc dup_qualified_name(TPMI_ALG_HASH name_alg, TPM2_HANDLE hierarchy,
                                 const TPM2B_NAME *name, TPM2B_NAME *qualified);

#endif /* SCTPM_SHIM_DUP_H */
