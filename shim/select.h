/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * select: which TPM a program that asked for "sctpm" (or for nothing) talks to. Shared by the
 * sctpm TCTI module (tcti-sctpm.c) and libsctpm, so both choose the same way:
 *
 *   1. the TPM device nodes /dev/tpmrm0, then /dev/tpm0 (SCTPM_TPM_DEVICES replaces the list),
 *      through tcti-device;
 *   2. a running sctpmd: the per-user socket, then the system socket /run/sctpm/sctpmd.sock,
 *      through tcti-mssim (one persistent connection);
 *   3. a TPM simulator on localhost:2321 (SCTPM_MSSIM_PORT), through tcti-mssim, or tcti-swtpm
 *      when it speaks the swtpm control protocol;
 *   4. the embedded default: a per-user sctpmd started on first use (state under
 *      $XDG_STATE_HOME/sctpm, socket under $XDG_RUNTIME_DIR/sctpm; /var/lib/sctpm and /run/sctpm
 *      for root), which exits after SCTPM_IDLE_EXIT seconds without clients. Concurrent first
 *      uses start one daemon: the start is serialised by a lock file next to the socket.
 *
 * docs/tcti-sctpm.md describes the order, the paths and every environment variable.
 */
#ifndef SCTPM_SHIM_SELECT_H
#define SCTPM_SHIM_SELECT_H

#include <tss2/tss2_tcti.h>

struct select_choice {
    char conf[256];    /* the TCTI configuration actually used, e.g. "device:/dev/tpmrm0",
                          "mssim:path=/run/user/0/sctpm/sctpmd.sock" */
    char reason[256];  /* one sentence: why it was chosen, e.g. "/dev/tpmrm0 exists and opened
                          (kernel resource manager)"; on failure, why nothing was usable */
    char skipped[512]; /* the candidates passed over and why, "; "-separated, e.g.
                          "/dev/tpmrm0: does not exist; /dev/tpm0: cannot open it: Permission
                          denied"; empty when the first candidate was taken */
};

/*
 * Opens a TCTI. `conf` NULL, "", "sctpm" or "sctpm:OPTIONS" means the sctpm order above, OPTIONS
 * being comma-separated key=value items that override the environment (devices=LIST, port=N,
 * autostart=yes|no, idle-exit=SECONDS). Any other configuration goes to Tss2_TctiLdr_Initialize
 * unchanged.
 *
 * [out] tcti: on success a context to release with select_finalize(); NULL on failure.
 * [out] choice: may be NULL; filled on success and on failure (then `reason` says why).
 *
 * Returns TSS2_RC_SUCCESS, TSS2_TCTI_RC_BAD_VALUE for bad options or environment, or the error of
 * the last candidate tried. Never prints; logs at debug level (SCTPM_LOG=select+debug).
 * May fork and execute sctpmd (the embedded default); the caller's descriptors are not passed on.
 */
TSS2_RC select_tcti(const char *conf, TSS2_TCTI_CONTEXT **tcti, struct select_choice *choice);

/* Finalizes and frees a context from select_tcti(). NULL is a no-op. */
void select_finalize(TSS2_TCTI_CONTEXT *tcti);

#endif /* SCTPM_SHIM_SELECT_H */
