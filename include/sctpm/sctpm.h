/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libsctpm: a device's IoT Hub identity held in a TPM.
 *
 * The library finds a TPM (the hardware chip first, the sctpm emulator otherwise), says which
 * kind it found and on what evidence, imprints a device's shared access key into it, and
 * computes SAS tokens with TPM2_HMAC so that the key never leaves the TPM after provisioning.
 *
 * Slots follow the Windows IoT Core ("Limpet") layout so that tools of that era and tpm2-tools
 * read the same data: slot N (0..9) keeps its HMAC key persisted at 0x81000100 + N and its
 * "host/deviceId[/moduleId]" string in the NV index 0x01400100 + N.
 *
 * Threads: a context may be used from any thread, and calls on one context are serialized by
 * the context itself. Separate contexts are independent. The library never prints and never
 * aborts; every call returns an enum sctpm_rc, and sctpm_last_error() / sctpm_tss2_rc() say
 * more about the last failure on a context.
 */
#ifndef SCTPM_SCTPM_H
#define SCTPM_SCTPM_H

#include <stddef.h>
#include <stdint.h>

#include "sctpm/rc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Number of identity slots (the Limpet layout has ten). */
#define SCTPM_SLOTS 10
/* Persistent handle of slot N's HMAC key, and NV index of its identity string. */
#define SCTPM_KEY_HANDLE(slot) (0x81000100u + (uint32_t)(slot))
#define SCTPM_NV_INDEX(slot)   (0x01400100u + (uint32_t)(slot))
/* The storage root key the slot keys are imported under. */
#define SCTPM_SRK_HANDLE 0x81000001u

/* Bounds of the identity fields (IoT Hub limits: ids 128 characters; the NV string 512 bytes). */
#define SCTPM_HOST_MAX   255
#define SCTPM_ID_MAX     128
#define SCTPM_NV_URI_MAX 512
/* A buffer of this size holds any token or connection string the library produces. */
#define SCTPM_TOKEN_MAX 2048

/* Default token lifetime, as the Azure IoT C SDK and Limpet use. */
#define SCTPM_DEFAULT_TTL 3600

struct sctpm_ctx;

/* sctpm_open() flags. */
enum {
    /* Refuse an emulated TPM (as does the environment variable SCTPM_REQUIRE_HARDWARE=1). */
    SCTPM_OPEN_REQUIRE_HARDWARE = 1u << 0,
};

/*
 * Opens a context on a TPM.
 *
 * `tcti` is a tpm2-tss TCTI configuration ("device:/dev/tpmrm0", "mssim:host=...,port=...",
 * "swtpm:path=...", "sctpm", ...). NULL or "" means the environment variable SCTPM_TCTI when
 * set, else the sctpm order: /dev/tpmrm0, /dev/tpm0, a running sctpmd, then a per-user sctpmd
 * started on demand.
 *
 * With SCTPM_OPEN_REQUIRE_HARDWARE (or SCTPM_REQUIRE_HARDWARE=1 in the environment) the TPM is
 * classified right away and an emulated one gives SCTPM_RC_NOT_HARDWARE; the context is still
 * returned so that sctpm_last_error() can say why, and every later call on it fails the same way.
 *
 * On any result but SCTPM_RC_NO_MEMORY and SCTPM_RC_BAD_ARGUMENT, `*ctx` is a context the caller
 * must release with sctpm_close().
 */
SCTPM_API enum sctpm_rc sctpm_open(struct sctpm_ctx **ctx, const char *tcti, unsigned int flags);

/* Closes the TPM connection and frees the context. NULL is ignored. */
SCTPM_API void sctpm_close(struct sctpm_ctx *ctx);

/*
 * One sentence about the last failure on `ctx`, naming the field or the cause (never key
 * material). Empty when the last call succeeded. Each thread sees the outcome of its own last
 * call on `ctx`; the string is valid until that thread's next call on `ctx`.
 */
SCTPM_API const char *sctpm_last_error(const struct sctpm_ctx *ctx);

/* The raw TSS2_RC of this thread's last failure on `ctx`, 0 when the TPM stack did not fail. */
SCTPM_API uint32_t sctpm_tss2_rc(const struct sctpm_ctx *ctx);

enum sctpm_kind {
    SCTPM_KIND_UNKNOWN = 0,
    SCTPM_KIND_HARDWARE = 1, /* the EK certificate chains to a TPM manufacturer's root */
    SCTPM_KIND_EMULATED = 2, /* no such chain: an emulator, or a TPM we cannot vouch for */
};

/* "HARDWARE", "EMULATED" or "UNKNOWN". */
SCTPM_API const char *sctpm_kind_name(enum sctpm_kind kind);

struct sctpm_status {
    enum sctpm_kind kind;
    char verdict_reason[256]; /* why `kind`: the chain that verified, or what failed */
    char tcti[256];           /* the TCTI configuration actually in use */
    char tcti_reason[256];    /* why that TCTI was chosen */
    char manufacturer[8];     /* TPM_PT_MANUFACTURER as text, e.g. "IFX", "IBM" */
    char vendor[20];          /* TPM_PT_VENDOR_STRING_1..4 */
    char firmware[32];        /* TPM_PT_FIRMWARE_VERSION_1 and _2 in hex, "xxxxxxxx.xxxxxxxx" */
    uint32_t firmware_version_1;
    uint32_t firmware_version_2;
    char spec[16];          /* TPM_PT_FAMILY_INDICATOR, level and revision, e.g. "2.0 r1.59" */
    char ek_issuer[256];    /* issuer of the EK certificate, "" when there is none */
    char ek_subject[256];   /* subject of the EK certificate, may be empty for TPM certs */
    uint32_t ek_cert_index; /* NV index the certificate came from, 0 when none */
};

/*
 * Identifies the TPM. The verdict rests on the EK certificate: it must certify this TPM's
 * EK public key and chain to a root in the CA bundle. The bundle is the file named by
 * SCTPM_TPM_CA_FILE, else the installed bundle of manufacturer roots plus every *.pem file in
 * the directory named by SCTPM_TPM_CA_DIR (default $(sysconfdir)/sctpm/tpm-ca.d). A chain
 * ending in the sctpm emulator's CA or in swtpm's local CA is always EMULATED.
 */
SCTPM_API enum sctpm_rc sctpm_status(struct sctpm_ctx *ctx, struct sctpm_status *st);

struct sctpm_identity {
    unsigned int slot;
    char host[SCTPM_HOST_MAX + 1];
    char device_id[SCTPM_ID_MAX + 1];
    char module_id[SCTPM_ID_MAX + 1]; /* "" for a device identity */
    int has_key;                      /* 1 when the slot's key handle is persisted */
};

/*
 * Imprints `connection_string` ("HostName=...;DeviceId=...;[ModuleId=...;]SharedAccessKey=...")
 * into `slot`: the key is imported under the SRK (created from the TCG template when absent) as
 * an HMAC-SHA256 keyedhash key with noDA and persisted at SCTPM_KEY_HANDLE(slot), replacing the
 * previous key; the identity goes to SCTPM_NV_INDEX(slot). The decoded key is wiped before the
 * call returns. On failure the slot keeps its previous key and identity. The caller should wipe
 * its own copy of the string.
 */
SCTPM_API enum sctpm_rc sctpm_provision(struct sctpm_ctx *ctx, unsigned int slot,
                                        const char *connection_string);

/* Removes the slot's key and identity. SCTPM_RC_NOT_PROVISIONED when the slot held neither. */
SCTPM_API enum sctpm_rc sctpm_deprovision(struct sctpm_ctx *ctx, unsigned int slot);

/* Reads one slot. SCTPM_RC_NOT_PROVISIONED when the slot has no identity string. */
SCTPM_API enum sctpm_rc sctpm_identity(struct sctpm_ctx *ctx, unsigned int slot,
                                       struct sctpm_identity *id);

/*
 * Lists provisioned slots in slot order: fills up to `max` entries of `ids` and sets `*count` to
 * the number of provisioned slots (which may exceed `max`).
 */
SCTPM_API enum sctpm_rc sctpm_list(struct sctpm_ctx *ctx, struct sctpm_identity *ids, size_t max,
                                   size_t *count);

/*
 * Computes a device (or module) SAS token for the slot's identity, valid `ttl` seconds from now
 * (0 means SCTPM_DEFAULT_TTL):
 *     SharedAccessSignature sr=<host>/devices/<id>[/modules/<m>]&sig=<sig>&se=<expiry>
 * The HMAC is computed by the TPM with the slot's persisted key. `*expiry` (may be NULL)
 * receives the expiry in seconds since the epoch.
 */
SCTPM_API enum sctpm_rc sctpm_sas_token(struct sctpm_ctx *ctx, unsigned int slot, uint32_t ttl,
                                        char *buf, size_t size, int64_t *expiry);

/*
 * As sctpm_sas_token(), for a caller-chosen scope `sr` (used exactly as given, in the token and
 * in the string to sign) and absolute `expiry`; `skn`, when not NULL, is appended as the policy
 * name (DPS uses "registration").
 */
SCTPM_API enum sctpm_rc sctpm_sas_token_for(struct sctpm_ctx *ctx, unsigned int slot,
                                            const char *sr, int64_t expiry, const char *skn,
                                            char *buf, size_t size);

/*
 * HostName=<host>;DeviceId=<id>[;ModuleId=<m>];SharedAccessSignature=<token>, the form IoT Hub
 * SDKs accept in place of a key.
 */
SCTPM_API enum sctpm_rc sctpm_connection_string(struct sctpm_ctx *ctx, unsigned int slot,
                                                uint32_t ttl, char *buf, size_t size);

/* The library version, e.g. "0.1.0". */
SCTPM_API const char *sctpm_version(void);

#ifdef __cplusplus
}
#endif

#endif /* SCTPM_SCTPM_H */
