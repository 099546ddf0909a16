/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sctpm return codes.
 *
 * Every public sctpm call returns an enum sctpm_rc. The numbers are frozen: a code keeps its number
 * forever and new codes are only ever appended, so a number pasted from a log can always be looked
 * up. Where a lower layer (tpm2-tss, libcurl, OpenSSL) produced the failure, the API that returned
 * the code also keeps the raw lower-layer code retrievable.
 */
#ifndef SCTPM_RC_H
#define SCTPM_RC_H

#ifdef __cplusplus
extern "C" {
#endif

#ifndef SCTPM_API
#define SCTPM_API __attribute__((visibility("default")))
#endif

enum sctpm_rc {
    SCTPM_RC_SUCCESS = 0,
    SCTPM_RC_GENERAL_FAILURE = 1,  /* an internal error with no better code */
    SCTPM_RC_BAD_ARGUMENT = 2,     /* a caller passed an invalid argument */
    SCTPM_RC_NO_MEMORY = 3,        /* an allocation failed */
    SCTPM_RC_IO = 4,               /* a system call on a file or socket failed */
    SCTPM_RC_BAD_FORMAT = 5,       /* input is malformed (encoding, syntax, framing) */
    SCTPM_RC_TOO_LARGE = 6,        /* input or output exceeds a size limit */
    SCTPM_RC_NOT_FOUND = 7,        /* the named thing does not exist */
    SCTPM_RC_EXISTS = 8,           /* the named thing exists already */
    SCTPM_RC_PERMISSION = 9,       /* the operation is not permitted */
    SCTPM_RC_BUSY = 10,            /* the resource is held by someone else (a lock) */
    SCTPM_RC_TIMEOUT = 11,         /* the operation did not complete in time */
    SCTPM_RC_CORRUPT = 12,         /* stored data failed its integrity check */
    SCTPM_RC_BAD_KEY = 13,         /* a key does not match the data it should open */
    SCTPM_RC_UNSUPPORTED = 14,     /* the request is valid but not supported */
    SCTPM_RC_TPM = 15,             /* the TPM or the TSS returned an error; see the raw code */
    SCTPM_RC_NO_TPM = 16,          /* no TPM could be reached */
    SCTPM_RC_NOT_HARDWARE = 17,    /* an emulated TPM was refused by policy */
    SCTPM_RC_NOT_PROVISIONED = 18, /* the slot holds no device identity */
    SCTPM_RC_NETWORK = 19,         /* a connection to a server failed */
    SCTPM_RC_TLS = 20,             /* TLS setup or certificate verification failed */
    SCTPM_RC_UNAUTHORIZED = 21,    /* the server refused our credentials */
    SCTPM_RC_SERVER = 22,          /* the server answered with an error */
    SCTPM_RC_QUEUE_FULL = 23,      /* the outgoing queue is at its bound */
    SCTPM_RC_EXPIRED = 24,         /* a token or lock has expired */
    SCTPM_RC_INTERRUPTED = 25,     /* the operation was interrupted by a signal or a stop request */
    SCTPM_RC_UNTRUSTED = 26,       /* the TPM's answer could not be confirmed as the TPM's own */
};

/*
 * Returns a static, human-readable description of rc. Unknown values yield "unknown error code";
 * the function never returns NULL and is safe to call from any thread.
 */
SCTPM_API const char *sctpm_strerror(enum sctpm_rc rc);

#ifdef __cplusplus
}
#endif

#endif /* SCTPM_RC_H */
