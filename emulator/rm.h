/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rm: the resource manager inside sctpmd. Every client gets its own view of the TPM, as
 * /dev/tpmrm0 gives each open file, without D-Bus or a second daemon.
 *
 * A space holds one client's transient objects (keys, sequence objects) and sessions. Clients see
 * virtual transient handles that stay valid for the life of their space, whatever physical slot
 * the object occupies; sessions keep their TPM handles (they are unique in the TPM anyway). The
 * TPM (libtpms) holds only 3 loaded objects and 3 loaded sessions, so the RM swaps them with
 * ContextSave/ContextLoad. Swapping is lazy: a space's objects stay loaded while that space keeps
 * the TPM, and are only saved and flushed when another space needs the slots.
 *
 * Which commands take or return handles, and which flush their objects, is read from the TPM
 * itself (GetCapability(TPM_CAP_COMMANDS), the TPMA_CC of every command), not from a hand list.
 * FlushContext, ContextSave, ContextLoad and GetCapability(HANDLES and the handle-count
 * properties) are virtualised so that a client sees only its own objects and sessions.
 *
 * When a space is released every object and session it owned is flushed, except sessions the
 * client saved itself (ContextSave): those stay loadable by a later client (e.g. the next
 * tpm2-tools process) for a bounded time and count, as with tpm2-abrmd.
 *
 * Like tpm.c, this module is single-threaded: sctpmd's event loop is its only caller.
 */
#ifndef SCTPM_EMULATOR_RM_H
#define SCTPM_EMULATOR_RM_H

#include <stddef.h>
#include <stdint.h>

#include "sctpm/rc.h"

struct rm_config {
    unsigned max_objects_per_space;  /* transient objects one space may hold */
    unsigned max_sessions_per_space; /* sessions one space may hold */
    unsigned max_objects_total;      /* transient objects all spaces may hold together */
    unsigned abandoned_sessions_max; /* client-saved sessions kept after their space closed */
    unsigned abandoned_sessions_ttl; /* ... and for how many seconds */
};

struct rm;
struct rm_space;

/* Reads the command attributes and slot counts from the running TPM. */
enum sctpm_rc rm_create(const struct rm_config *cfg, struct rm **out, char *err, size_t errlen);
void rm_destroy(struct rm *rm);

/* A new, empty space; `name` (copied) names it in log lines. NULL when out of memory. */
struct rm_space *rm_space_new(struct rm *rm, const char *name);

/* Flushes everything the space owned (see above) and frees it. NULL is a no-op. */
void rm_space_free(struct rm_space *space);

/* Number of objects and sessions the space holds. */
unsigned rm_space_objects(const struct rm_space *space);
unsigned rm_space_sessions(const struct rm_space *space);
const char *rm_space_name(const struct rm_space *space);

/*
 * Executes one command for `space`. `cmd` may be rewritten in place. On return `*rsp` points to
 * the response (valid until the next call) of `*rsp_len` bytes. Errors are TPM responses: a
 * handle the space does not own gets TPM_RC_HANDLE, an exhausted quota TPM_RC_OBJECT_MEMORY or
 * TPM_RC_SESSION_MEMORY (with a log line naming the space).
 */
void rm_execute(struct rm_space *space, uint8_t locality, uint8_t *cmd, size_t len,
                const uint8_t **rsp, size_t *rsp_len);

/*
 * The TPM was reset or powered off: every object and session is gone. Forgets them all (spaces
 * stay, empty) and drops the abandoned sessions.
 */
void rm_tpm_reset(struct rm *rm);

/* Flushes abandoned client-saved sessions older than their time to live. */
void rm_expire(struct rm *rm);

/* Logs every space with its objects and sessions (sctpmd's SIGUSR1). */
void rm_log_status(struct rm *rm);

#endif /* SCTPM_EMULATOR_RM_H */
